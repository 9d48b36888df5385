"""`aevb score` over a memory-mapped .npy, chunk by chunk, gives the in-memory numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import call, save_small_level_model

import aevb
from aevb.scale import streaming


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("streaming")
    return folder, save_small_level_model(folder, seed=0)


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


def test_memory_mapped_evaluate_equals_the_figures_of_its_rows_in_memory(fitted, monkeypatch, tmp_path):
    folder, rows = fitted
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 64)
    assert call(["evaluate", folder / "run", folder / "rows.npy", "--k", 5, "--seed", 2, "--json", tmp_path / "e.json"]) == 0
    figures = json.loads((tmp_path / "e.json").read_text())
    assert figures == aevb.load(folder / "run").evaluate(rows, k=5, seed=2)  # the library's in-memory path
    # Oracle: the per-row arrays of each chunk, scored in memory with its seed, then numpy's statistics.
    model = aevb.load(folder / "run")
    seeds = [2 + i * streaming.SEED_STRIDE for i in range(5)]
    parts = [model.row_scores(rows[64 * i : 64 * i + 64], k=5, seed=s) for i, s in enumerate(seeds)]
    joined = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    kl_dims = np.concatenate([model.elbo_samples(rows[64 * i : 64 * i + 64], s)["kl_per_dimension"] for i, s in enumerate(seeds)])
    for name in ("log_likelihood", "elbo", "reconstruction", "kl", "effective_sample_size"):
        assert figures[name] == pytest.approx(joined[name].mean(), rel=1e-12)
    ll = joined["log_likelihood"]
    assert figures["log_likelihood_std_error"] == pytest.approx(ll.std(ddof=1) / np.sqrt(300), rel=1e-10)
    np.testing.assert_allclose(figures["latent_activity"], model.transform(rows).var(axis=0), rtol=1e-10)
    np.testing.assert_allclose(figures["kl_per_dimension"], kl_dims.mean(0), rtol=1e-12)
    assert figures["n_rows"] == 300
    # Not trivially equal: the rows as one chunk draw other numbers.
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 1000)
    assert abs(figures["log_likelihood"] - model.evaluate(rows, k=5, seed=2)["log_likelihood"]) > 1e-6
