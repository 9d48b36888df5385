"""`aevb score` over a memory-mapped .npy, chunk by chunk, gives the in-memory numbers."""

from __future__ import annotations

import numpy as np
import pytest

import aevb
from aevb import streaming
from cli_helpers import call


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("streaming")
    rows = np.random.default_rng(0).integers(0, 8, size=(300, 4)).astype(np.float64)  # levels: noise is drawn
    np.save(folder / "rows.npy", rows)
    aevb.VAE(epochs=2, hidden=(8,), latent_dim=2).fit(rows).save(folder / "run")
    return folder, rows


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_memory_mapped_score_equals_the_in_memory_scores(fitted, suffix):
    folder, rows = fitted
    out = folder / f"scores{suffix}"
    assert call(["score", folder / "run", folder / "rows.npy", "--out", out, "--k", 7, "--seed", 3]) == 0
    expected = aevb.load(folder / "run").row_scores(rows, k=7, seed=3)
    got = np.load(out) if suffix == ".npy" else np.loadtxt(out, delimiter=",", skiprows=1)
    assert got.shape == (300, len(expected))
    np.testing.assert_array_equal(got, np.column_stack(list(expected.values())))  # CSV floats round-trip


def test_chunks_are_scored_as_their_rows_in_memory(fitted, monkeypatch):
    folder, rows = fitted
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 64)
    out = folder / "chunked.npy"
    assert call(["score", folder / "run", folder / "rows.npy", "--out", out, "--k", 5]) == 0
    model = aevb.load(folder / "run")
    expected = [
        np.column_stack(list(model.row_scores(rows[s : s + 64], k=5, seed=i * streaming.SEED_STRIDE).values()))
        for i, s in enumerate(range(0, 300, 64))
    ]
    np.testing.assert_array_equal(np.load(out), np.concatenate(expected))
    assert np.load(out).shape[0] == 300


def test_a_bad_value_is_reported_with_its_row(fitted, tmp_path, capsys):
    folder, rows = fitted
    broken = rows.copy()
    broken[250, 1] = np.nan
    np.save(tmp_path / "broken.npy", broken)
    assert call(["score", folder / "run", tmp_path / "broken.npy", "--out", tmp_path / "s.csv"]) == 2
    assert "rows 0 to 299" in capsys.readouterr().err
