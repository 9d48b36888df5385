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

from .chunks import CHUNK_ROWS


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sum of squared deviations M2 over the rows (axis 0)."""
    mean = x.mean(axis=0)
    return mean, ((x - mean) ** 2).sum(axis=0)


def merge_moments(a: tuple, b: tuple) -> tuple:
    """The (n, mean, M2) of rows a followed by rows b: the pairwise update above."""
    (n_a, mean_a, m2_a), (n_b, mean_b, m2_b) = a, b
    n = n_a + n_b
    delta = mean_b - mean_a
    return n, mean_a + delta * (n_b / n), m2_a + m2_b + delta**2 * (n_a * n_b / n)


def is_binary(x: np.ndarray) -> bool:
    return bool(np.isin(x, (0.0, 1.0)).all())


def is_levels(x: np.ndarray) -> bool:
    return bool((x >= 0).all() and (x == np.round(x)).all())


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
            mean, m2 = moments(x)
        return cls(
            n=len(x), mean=mean, m2=m2, largest_abs=float(np.abs(x).max()),
            maximum=float(x.max()), binary=is_binary(x), levels=is_levels(x),
        )

    def merge(self, other: "ColumnStatistics") -> "ColumnStatistics":
        """The statistics of these rows followed by ``other``'s."""
        n, mean, m2 = merge_moments((self.n, self.mean, self.m2), (other.n, other.mean, other.m2))
        return ColumnStatistics(
            n=n, mean=mean, m2=m2, largest_abs=max(self.largest_abs, other.largest_abs),
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
