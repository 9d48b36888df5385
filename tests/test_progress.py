"""Long work shows a progress bar where someone can see it (a terminal, a notebook) and
stays quiet with --quiet or in a pipe."""

import sys

import numpy as np
import pytest
from cli_helpers import call, save_small_level_model

import aevb
from aevb.core import progress


@pytest.fixture
def visible(monkeypatch):
    """Pretend stderr is a terminal and show bars at once."""
    monkeypatch.setattr(progress, "DELAY", 0)
    monkeypatch.setattr(progress, "interactive", lambda: True)


def test_a_notebook_kernel_counts_as_interactive(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipykernel", object())
    assert progress.interactive()


def test_a_pipe_is_quiet(capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(progress, "DELAY", 0)
    with progress.rows(10, "work") as bar:
        bar.update(10)
    assert "work" not in capsys.readouterr().err  # pytest's stderr is not a terminal


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_score_and_evaluate_show_progress_unless_quiet(tmp_path, capsys, visible, command):
    save_small_level_model(tmp_path, seed=0)
    out = ["--out", tmp_path / "s.npy"] if command == "score" else []
    args = [command, tmp_path / "run", tmp_path / "rows.npy", "--k", 3, *out]
    capsys.readouterr()
    assert call(args) == 0
    err = capsys.readouterr().err
    assert ("scoring" if command == "score" else "evaluating") in err and "300/300" in err
    assert call([*args, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_factor_analysis_and_training_bars_stay_on_screen(tmp_path, capsys, visible):
    x = np.random.default_rng(0).normal(size=(100, 4))
    aevb.FactorAnalysis(latent_dim=1).fit(x)
    assert "factor analysis" in capsys.readouterr().err
    aevb.VAE(latent_dim=2, hidden=(8,), epochs=2).fit(x)
    err = capsys.readouterr().err
    assert "training" in err and "2/2" in err  # left on screen at the end


def test_table_imputation_shows_progress(tmp_path, capsys, visible):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.choice(["x", "y"], size=60)})
    frame.loc[::7, "a"] = np.nan
    model = aevb.TabularVAE(latent_dim=2, hidden=(8,), epochs=1).fit(frame)
    capsys.readouterr()
    model.impute(frame, k=3)
    assert "imputing" in capsys.readouterr().err
