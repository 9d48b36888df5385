"""All the quality figures of synthetic rows against real ones, in one dict."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from ..errors import AevbError
from .learning import detection_auc, train_synthetic_test_real
from .metrics import contingency_similarity, correlation_similarity, ks_complement, tv_complement

NUMERIC_KINDS = ("continuous", "integer")


def assess(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str], target: str | None = None,
           seed: int = 0) -> dict:
    """Figures for the columns named in ``kinds`` (name -> continuous, integer, categorical or
    boolean): ``columns`` (a shape score each), ``pairs`` (a trend score per pair), their means
    ``column_shapes`` and ``column_pair_trends``, ``detection_auc`` and, with a ``target``
    column, ``train_synthetic_test_real``."""
    names = list(kinds)
    missing = [n for n in names if n not in synthetic.columns]
    if missing:
        raise AevbError(f"the synthetic rows lack the column {missing[0]!r} of the real ones")
    if target is not None and target not in kinds:
        raise AevbError(f"--target {target!r} is not a modelled column; choose one of: {', '.join(names)}")
    numeric = {n: kinds[n] in NUMERIC_KINDS for n in names}
    columns = [
        {"column": n, "metric": "KSComplement" if numeric[n] else "TVComplement",
         "score": (ks_complement if numeric[n] else tv_complement)(real[n], synthetic[n])}
        for n in names
    ]
    pairs = []
    for a, b in combinations(names, 2):
        if numeric[a] and numeric[b]:
            score, metric = correlation_similarity(real[[a, b]], synthetic[[a, b]]), "CorrelationSimilarity"
        else:
            score = contingency_similarity(real[[a, b]], synthetic[[a, b]], (numeric[a], numeric[b]))
            metric = "ContingencySimilarity"
        pairs.append({"columns": f"{a} / {b}", "metric": metric, "score": score})
    categorical = {n for n in names if not numeric[n]}
    figures = {
        "real_rows": len(real), "synthetic_rows": len(synthetic),
        "column_shapes": float(np.nanmean([c["score"] for c in columns])),
        "column_pair_trends": float(np.nanmean([p["score"] for p in pairs])) if pairs else None,
        "detection_auc": detection_auc(real[names], synthetic[names], categorical, seed),
        "columns": columns, "pairs": pairs,
    }
    if target is not None:
        figures["train_synthetic_test_real"] = train_synthetic_test_real(real[names], synthetic[names], target, categorical, seed)
    return figures
