"""Requests that would run for hours are announced before they start, with an estimate.

The estimate times a scaled-down piece of the work and multiplies by how much larger
the request is; with a clock that makes every timed piece last exactly one second the
estimates have closed forms, checked here.
"""

import itertools

import numpy as np
import pandas as pd
import pytest
from cli_helpers import call

import aevb
from aevb.core import forecast
from aevb.data.preprocess import Preprocessor
from aevb.errors import AevbWarning
from aevb.scale import streaming

TINY = dict(epochs=1, hidden=(8,), latent_dim=2)


@pytest.fixture
def one_second_pieces(monkeypatch):
    """A clock that advances one second at each reading: every timed piece takes 1 s."""
    ticks = itertools.count()
    monkeypatch.setattr(forecast, "clock", lambda: float(next(ticks)))


def test_durations_read_as_a_person_would():
    assert forecast.duration(30) == "30 seconds"
    assert forecast.duration(150) == "2.5 minutes"
    assert forecast.duration(7200) == "2 hours"
    assert forecast.duration(5 * 86400) == "5 days"
    assert forecast.duration(2000 * 86400) == "2,000 days"


def test_scoring_estimate_scales_the_piece_by_rows_and_draws(one_second_pieces):
    rows = np.random.default_rng(0).normal(size=(1000, 3))
    model = aevb.VAE(**TINY).fit(rows)
    # 1 s for 16 rows x 64 draws; 1000 rows x 10,000 draws is 9,765.6 s, 2.71 hours.
    with pytest.warns(AevbWarning, match=r"scoring 1000 rows will take about 2.71 hours .*lower --k \(now 10000\)"):
        streaming.forecast_scoring(model, rows, "rows", 10_000, 0, "posterior")
    with pytest.warns(AevbWarning, match="81.4 minutes"):  # two ranks share the rows out
        streaming.forecast_scoring(model, rows, "rows", 10_000, 0, "posterior", streaming.Group(0, 2))


def test_no_warning_under_an_hour_and_no_timing_for_small_requests(one_second_pieces, recwarn):
    rows = np.random.default_rng(0).normal(size=(1000, 3))
    model = aevb.VAE(**TINY).fit(rows)
    streaming.forecast_scoring(model, rows, "rows", 1100, 0, "posterior")  # 1,074 s: no warning
    streaming.forecast_scoring(model, rows, "rows", 100, 0, "posterior")  # 1e5 draws: not timed
    assert forecast.clock() == 4.0  # two readings for each of the two runs of the one piece timed
    assert not [w for w in recwarn if issubclass(w.category, AevbWarning)]


def test_training_estimate_scales_build_and_steps_by_the_layers(one_second_pieces, monkeypatch):
    rows = np.random.default_rng(0).normal(size=(40, 3))
    model = aevb.VAE(**{**TINY, "epochs": 3}, posterior="iaf", flow_layers=160)
    monkeypatch.setattr(forecast, "LONG_SECONDS", 30.0)
    # 160 layers are 10 times the probe's 16: 10 x (1 s build + 3 epochs x 1 step x 1 s) = 40 s
    with pytest.warns(AevbWarning, match=r"training will take about 40 seconds .*lower --flow-layers 160"):
        model._forecast_training(model.config, rows, Preprocessor.fit(rows, "auto"), None, 36)


def test_imputation_estimate_names_the_multiple(one_second_pieces, monkeypatch):
    frame = pd.DataFrame({"a": np.r_[np.linspace(0, 1, 99), np.nan], "b": np.linspace(1, 2, 100)})
    model = aevb.TabularVAE(**TINY).fit(frame)
    monkeypatch.setattr(forecast, "LONG_SECONDS", 600.0)
    # 16 rows with 64 + 64 draws take 1 s: 100 rows with 100 + 20,000 draws, 981.4 s
    with pytest.warns(AevbWarning, match=r"imputing 100 rows will take about 16.4 minutes .*--multiple \(now 20000\)"):
        model._forecast_imputation(frame, 100, 20_000, 0)


def test_the_command_warns_in_one_line_and_goes_on(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(forecast, "LONG_SECONDS", 0.0)
    monkeypatch.setattr(streaming, "PROBE_WORK", 0)
    rows = np.random.default_rng(0).normal(size=(60, 3))
    np.save(tmp_path / "rows.npy", rows)
    args = ["--epochs", "1", "--hidden", "8", "--latent-dim", "2", "--prior", "vamp", "--prior-components", "32", "-q"]
    assert call(["fit", tmp_path / "rows.npy", "--out", tmp_path / "run", *args]) == 0
    err = capsys.readouterr().err
    assert err.startswith("aevb: warning: training will take about") and "--prior-components 32" in err
    assert err.count("\n") == 1
    for command in ("score", "evaluate"):
        extra = ["--out", tmp_path / "s.csv"] if command == "score" else []
        assert call([command, tmp_path / "run", tmp_path / "rows.npy", "--k", "3", *extra]) == 0
        err = capsys.readouterr().err
        assert err.startswith("aevb: warning: scoring 60 rows will take about") and "--k (now 3)" in err, err
