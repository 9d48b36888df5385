"""Per-column statistics of training rows in one streaming pass, for :class:`Preprocessor`.

The rows are read ``CHUNK_ROWS`` at a time (a memory-mapped .npy is never read
whole), and each chunk's float64 mean and sum of squared deviations are merged
with the pairwise update of Chan, Golub & LeVeque (1979):

    n = n_a + n_b,  mean = mean_a + d n_b / n,  M2 = M2_a + M2_b + d^2 n_a n_b / n,
    d = mean_b - mean_a,

which equals the two-pass ``x.mean(0)``, ``x.var(0)`` to rounding (~1e-15
relative), without the temporaries of a second full copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK_ROWS = 16384


@dataclass
class ColumnStatistics:
    """Row count; per column (D,): mean, sum of squared deviations M2; the largest |x|
    and the largest x; whether every value is 0 or 1, and whether every value is a whole
    number >= 0."""

    n: int
    mean: np.ndarray
    m2: np.ndarray
    largest_abs: float
    maximum: float
    binary: bool
    levels: bool

    @property
    def variance(self) -> np.ndarray:
        """Per-column variance over the rows (ddof 0)."""
        return self.m2 / self.n

    @classmethod
    def of_chunk(cls, x: np.ndarray) -> "ColumnStatistics":
        """The statistics of the rows x (n, D)."""
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # values past 1e30 are refused by the caller
            mean = x.mean(axis=0)
            m2 = ((x - mean) ** 2).sum(axis=0)
        return cls(
            n=len(x), mean=mean, m2=m2,
            largest_abs=float(np.abs(x).max()),
            maximum=float(x.max()), binary=bool(np.isin(x, (0.0, 1.0)).all()),
            levels=bool((x >= 0).all() and (x == np.round(x)).all()),
        )

    def merge(self, other: "ColumnStatistics") -> "ColumnStatistics":
        """The statistics of these rows followed by ``other``'s."""
        n = self.n + other.n
        delta = other.mean - self.mean
        return ColumnStatistics(
            n=n, mean=self.mean + delta * (other.n / n), m2=self.m2 + other.m2 + delta**2 * (self.n * other.n / n),
            largest_abs=max(self.largest_abs, other.largest_abs),
            maximum=max(self.maximum, other.maximum), binary=self.binary and other.binary,
            levels=self.levels and other.levels,
        )


def column_statistics(rows: np.ndarray) -> ColumnStatistics:
    """The statistics of ``rows`` (n, D), any array or memory map, read chunk by chunk."""
    total = None
    for start in range(0, len(rows), CHUNK_ROWS):
        part = ColumnStatistics.of_chunk(rows[start : start + CHUNK_ROWS])
        total = part if total is None else total.merge(part)
    return total
