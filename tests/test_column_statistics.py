"""Preprocessing statistics from one chunked pass over a memory-mapped .npy equal the
two-pass in-memory ones (numpy's mean and var) to 1e-12 relative."""

from __future__ import annotations

import numpy as np
import pytest

from aevb.data import column_statistics as cs
from aevb.data.preprocess import Preprocessor


@pytest.mark.parametrize("kind", ["continuous", "levels", "binary"])
def test_memory_mapped_chunked_statistics_equal_the_in_memory_ones(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(cs, "CHUNK_ROWS", 97)  # 1000 rows: 11 chunks, the last short
    rng = np.random.default_rng(0)
    if kind == "continuous":
        x = 1e3 + 3.0 * rng.normal(size=(1000, 5))  # an offset: a one-pass sum of squares would lose digits
    elif kind == "levels":
        x = rng.integers(0, 256, size=(1000, 5)).astype(np.float64)
    else:
        x = rng.integers(0, 2, size=(1000, 5)).astype(np.float64)
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    stats = cs.column_statistics(mapped)
    np.testing.assert_allclose(stats.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.variance, x.var(axis=0), rtol=1e-12)
    assert stats.maximum == x.max() and stats.n == 1000
    assert (stats.binary, stats.levels) == (kind == "binary", kind != "continuous")
    fitted = Preprocessor.fit(mapped, "auto")
    offset = 0.5 if kind == "levels" else 0.0
    expected_scale = np.sqrt(x.var(axis=0) + (1 / 12 if kind == "levels" else 0.0))
    if kind != "binary":
        np.testing.assert_allclose(fitted.shift, x.mean(axis=0) + offset, rtol=1e-12)
        np.testing.assert_allclose(fitted.scale, expected_scale, rtol=1e-12)
    assert fitted.kind == {"continuous": "continuous", "levels": "levels", "binary": "binary"}[kind]


def test_a_value_too_large_is_named_by_its_row_in_a_later_chunk(monkeypatch):
    monkeypatch.setattr(cs, "CHUNK_ROWS", 10)
    x = np.zeros((50, 3))
    x[37, 2] = 1e31
    with pytest.raises(Exception, match="at row 37, column 2"):
        Preprocessor.fit(x, "auto")
