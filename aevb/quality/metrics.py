"""How closely synthetic rows follow real ones, column by column and pair by pair.

Each score lies in [0, 1], 1 meaning the two samples agree:

- **KS complement** of a numeric column: 1 - sup_t |F_real(t) - F_synthetic(t)|, one minus
  the two-sample Kolmogorov-Smirnov statistic of the empirical CDFs.
- **TV complement** of a category column: 1 - (1/2) sum_c |f_real(c) - f_synthetic(c)|, one
  minus the total-variation distance of the category frequencies.
- **Correlation similarity** of two numeric columns: 1 - |r_real - r_synthetic| / 2, with
  Pearson's r of each sample (rows holding both values).
- **Contingency similarity** of two columns: 1 - (1/2) sum_{a,b} |p_real(a,b) - p_synthetic(a,b)|,
  the TV complement of their joint frequencies; a numeric column among the two is cut
  into ``BINS`` equal-width bins over the real column's range first.

Holes (missing cells) are left out of every score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

BINS = 10


def ks_complement(real: pd.Series, synthetic: pd.Series) -> float:
    a, b = real.dropna().to_numpy(float), synthetic.dropna().to_numpy(float)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return 1.0 - float(ks_2samp(a, b).statistic)


def _frequencies(series) -> pd.Series:
    return series.value_counts(normalize=True, dropna=True)


def tv_complement(real: pd.Series, synthetic: pd.Series) -> float:
    a, b = _frequencies(real.astype(object)), _frequencies(synthetic.astype(object))
    labels = a.index.union(b.index)
    return 1.0 - 0.5 * float(np.abs(a.reindex(labels, fill_value=0.0) - b.reindex(labels, fill_value=0.0)).sum())


def correlation_similarity(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """Of the two columns of ``real`` and ``synthetic`` (each a two-column frame)."""
    r = [float(np.corrcoef(frame.dropna().to_numpy(float), rowvar=False)[0, 1]) for frame in (real, synthetic)]
    return 1.0 - abs(r[0] - r[1]) / 2.0


def _binned(real: pd.Series, synthetic: pd.Series) -> tuple[pd.Series, pd.Series]:
    edges = np.histogram_bin_edges(real.dropna().to_numpy(float), bins=BINS)
    edges[0], edges[-1] = -np.inf, np.inf  # synthetic values past the real range fall in the end bins
    return tuple(pd.cut(s.astype(float), edges, labels=False) for s in (real, synthetic))


def contingency_similarity(real: pd.DataFrame, synthetic: pd.DataFrame, numeric: tuple[bool, bool]) -> float:
    """Of the two columns of ``real`` and ``synthetic``; ``numeric`` says which are numbers (binned)."""
    real, synthetic = real.copy(), synthetic.copy()
    for position, is_number in enumerate(numeric):
        if is_number:
            name = real.columns[position]
            real[name], synthetic[name] = _binned(real[name], synthetic[name])
    joint = [frame.dropna().astype(str).value_counts(normalize=True) for frame in (real, synthetic)]
    labels = joint[0].index.union(joint[1].index)
    return 1.0 - 0.5 * float(np.abs(joint[0].reindex(labels, fill_value=0.0) - joint[1].reindex(labels, fill_value=0.0)).sum())
