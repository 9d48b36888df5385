"""Continuous data on which a density is unbounded, found before training.

A continuous model gives a column of one repeated value (or rows repeated many times)
as much density as it likes: its log p(x) grows without bound as the decoder's
scale shrinks (+214 nats/row on a table with one constant column). Such scores mean
nothing, so fitting warns, naming the columns. Level and binary data are exempt:
their dequantized or discrete likelihoods are bounded.

The checks read at most SAMPLE_ROWS rows, spread evenly over the data, so a
memory-mapped file is not read whole.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import AevbWarning

SAMPLE_ROWS = 10000
# One value in at least this share of a column's rows makes it near-constant.
MOST_COMMON_SHARE = 0.5
# Rows that repeat another row in at least this share of the rows make the data degenerate.
REPEATED_SHARE = 0.1
NAMED = 5  # columns named in a warning, at most


def degenerate_findings(x: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> list[str]:
    """One sentence per problem of the continuous rows ``x`` (n, D) with per-column
    ``mean`` and ``variance`` (D,) over all rows."""
    findings = []
    rows = np.asarray(x[np.unique(np.linspace(0, len(x) - 1, min(len(x), SAMPLE_ROWS)).astype(np.int64))])
    # A constant column's streamed variance is its mean's rounding error, not exactly 0; a
    # spread of a few float64 steps (1e12 +- 1e-3) looks the same, so the sample decides.
    tiny = np.flatnonzero(np.sqrt(variance) <= 1e-12 * np.abs(mean))
    constant = np.array([j for j in tiny if np.unique(rows[:, j]).size == 1], dtype=np.int64)
    if constant.size:
        findings.append(f"constant column(s) {_names(constant)}")
    if len(rows) < 2:
        return findings
    near = []
    for j in np.setdiff1d(np.arange(x.shape[1]), constant):
        _, counts = np.unique(rows[:, j], return_counts=True)
        share = counts.max() / len(rows)
        if share >= MOST_COMMON_SHARE:
            near.append((j, share))
    if near:
        listed = ", ".join(f"{j} ({share:.0%} of rows share one value)" for j, share in near[:NAMED])
        findings.append(f"near-constant column(s) {listed}{' and more' if len(near) > NAMED else ''}")
    repeated = 1 - len(np.unique(rows, axis=0)) / len(rows)
    if repeated >= REPEATED_SHARE:
        findings.append(f"{repeated:.0%} of the rows repeat another row")
    return findings


def warn_if_degenerate(x: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> None:
    """Warn (:class:`AevbWarning`) about what :func:`degenerate_findings` finds in ``x``."""
    findings = degenerate_findings(x, mean, variance)
    if findings:
        warnings.warn(
            f"the data has {'; '.join(findings)} (counting columns from 0): a continuous density there is "
            "unbounded, so log p(x) comes out too high and means little; drop those columns or duplicate "
            "rows, or give whole-number data (modelled as levels)",
            AevbWarning,
            stacklevel=2,
        )


def _names(columns: np.ndarray) -> str:
    listed = ", ".join(str(j) for j in columns[:NAMED])
    return listed + (f" and {len(columns) - NAMED} more" if len(columns) > NAMED else "")
