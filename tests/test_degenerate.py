"""Data on which a continuous density is unbounded is flagged, naming the columns, and a
run whose best bound is absurd is an error, not a model saved with exit status 0."""

import warnings

import numpy as np
import pytest
from cli_helpers import call

import aevb
from aevb.data.degenerate import degenerate_findings
from aevb.data.preprocess import Preprocessor
from aevb.errors import AevbWarning, TrainingDiverged


def _normal(n=500, d=4):
    return np.random.default_rng(0).normal(size=(n, d))


def _warnings_of(x):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Preprocessor.fit(x, "gaussian")
    return [str(w.message) for w in caught if issubclass(w.category, AevbWarning)]


def test_constant_and_near_constant_columns_are_named():
    x = _normal()
    x[:, 1] = 3.7
    x[: int(0.9 * len(x)), 3] = -0.25
    (message,) = _warnings_of(x)
    assert "constant column(s) 1" in message
    assert "near-constant column(s) 3 (90% of rows share one value)" in message


def test_repeated_rows_are_flagged():
    x = _normal()
    x[100:300] = x[0]
    (message,) = _warnings_of(x)
    assert "of the rows repeat another row" in message


def test_ordinary_level_and_binary_data_pass_quietly():
    assert _warnings_of(_normal()) == []
    assert _warnings_of(aevb.datasets.load("digits").values) == []  # levels: constant pixels are bounded
    assert _warnings_of(np.random.default_rng(0).integers(0, 2, size=(200, 3)).astype(float)) == []
    assert degenerate_findings(_normal(1, 3), np.zeros(3), np.ones(3)) == []


def test_the_command_prints_the_warning_on_one_line(tmp_path, capsys):
    x = _normal(200, 3)
    x[:, 0] = 2.5
    np.save(tmp_path / "x.npy", x)
    assert call(["fit", tmp_path / "x.npy", "--out", tmp_path / "run", "--epochs", 1, "--hidden", 8, "--quiet"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aevb: warning: the data has constant column(s) 0")


def _wide():
    rng = np.random.default_rng(0)
    return rng.standard_normal((1000, 5)) @ rng.standard_normal((5, 10))


def test_an_absurd_best_bound_is_an_error_and_the_model_stays_fitted():
    model = aevb.VAE(latent_dim=2, hidden=(32,), epochs=3, learning_rate=1.0, seed=0)
    with pytest.raises(TrainingDiverged, match=r"training failed: the best validation ELBO.*--learning-rate \(now 1\)"):
        model.fit(_wide())
    assert model.best_epoch_ >= 1 and np.isfinite(model.score(_wide()[:10]))


def test_the_command_exits_2_on_an_absurd_run(tmp_path, capsys):
    np.save(tmp_path / "x.npy", _wide())
    args = ["fit", tmp_path / "x.npy", "--out", tmp_path / "run", "--epochs", 3, "--hidden", 32,
            "--latent-dim", 2, "--learning-rate", 1.0, "--quiet"]
    assert call(args) == 2
    assert "training failed" in capsys.readouterr().err
    assert (tmp_path / "run" / "model.safetensors").exists()  # kept for inspection, but not silently
