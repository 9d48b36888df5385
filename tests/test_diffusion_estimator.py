"""aevb.Diffusion and ``aevb fit --model diffusion``: units, save/load, the commands, bad input."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from cli_helpers import call

import aevb
from aevb import Diffusion
from aevb.errors import AevbError

TINY = {"epochs": 2, "hidden": (16,), "sample_steps": 8}


@pytest.fixture(scope="module")
def level_rows():
    return np.random.default_rng(0).integers(0, 8, size=(240, 4)).astype(np.float64)


@pytest.fixture(scope="module")
def level_model(level_rows):
    return Diffusion(**TINY).fit(level_rows)


def test_level_data_scores_are_bounds_on_a_discrete_log_probability(level_model, level_rows):
    terms = level_model.bound_samples(level_rows[:50], t_samples=8)
    # log P(x) <= 0 for a probability; the bound sits below it, up to its Monte-Carlo error
    assert np.all(terms["bound"] <= 4 * terms["std_error"])
    assert np.allclose(terms["bound"], terms["reconstruction"] - terms["prior"] - terms["diffusion"])
    assert np.all(terms["reconstruction"] <= 0) and np.all(terms["prior"] >= 0)


def test_continuous_scores_move_by_the_jacobian_when_the_data_are_rescaled():
    rows = np.random.default_rng(1).normal(size=(200, 3)) @ np.diag([1.0, 2.0, 0.5])
    first = Diffusion(**TINY).fit(rows).score_samples(rows[:20], t_samples=4)
    second = Diffusion(**TINY).fit(10 * rows).score_samples(10 * rows[:20], t_samples=4)
    # log p(10 x) = log p(x) - D log 10 for the same model of the standardized data
    assert np.allclose(second, first - 3 * math.log(10), atol=1e-3)


def test_save_and_load_give_the_same_scores_and_samples(level_model, level_rows, tmp_path):
    level_model.save(tmp_path / "model")
    loaded = aevb.load(tmp_path / "model")
    assert isinstance(loaded, Diffusion)
    assert np.array_equal(loaded.score_samples(level_rows[:30], seed=3), level_model.score_samples(level_rows[:30], seed=3))
    drawn = loaded.sample(5, seed=2, steps=6)
    assert np.array_equal(drawn, level_model.sample(5, seed=2, steps=6))
    assert drawn.shape == (5, 4) and np.all(drawn == np.round(drawn)) and drawn.min() >= 0 and drawn.max() <= 7


def test_more_draws_of_t_shrink_the_monte_carlo_error_as_reported(level_model, level_rows):
    rows = level_rows[:40]

    def spread(t_samples):
        """The bound's spread over 12 seeds, per row, and the mean reported standard error."""
        runs = [level_model.bound_samples(rows, t_samples=t_samples, seed=seed) for seed in range(12)]
        return np.stack([r["bound"] for r in runs]).std(0, ddof=1).mean(), np.mean([r["std_error"] for r in runs])

    few, _ = spread(4)
    many, reported = spread(64)
    assert many < few / 2  # ~ 1 / sqrt(draws): a factor 4 expected
    assert reported / 2 < many < reported * 2  # the reported error is the real one


def test_a_diffusion_model_has_no_latent_code(level_model, level_rows):
    with pytest.raises(AevbError, match="no latent code"):
        level_model.transform(level_rows)


def test_the_commands_fit_evaluate_score_and_sample(level_rows, tmp_path, capsys):
    np.save(tmp_path / "rows.npy", level_rows)
    run = tmp_path / "run"
    options = ["--epochs", "2", "--hidden", "16", "--quiet"]
    assert call(["fit", tmp_path / "rows.npy", "--model", "diffusion", "--out", run, *options]) == 0
    with open(run / "metrics.csv") as handle:
        header = next(csv.reader(handle))
    assert header[:3] == ["epoch", "seconds", "train_bound"] and "val_bound" in header
    capsys.readouterr()
    assert call(["evaluate", run, tmp_path / "rows.npy", "--t-samples", "4"]) == 0
    printed = capsys.readouterr().out
    assert "variational bound on log p(x)" in printed and "bits/dim" in printed
    assert call(["score", run, tmp_path / "rows.npy", "--out", tmp_path / "s.csv", "--t-samples", "2"]) == 0
    with open(tmp_path / "s.csv") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:3] == ["log_likelihood", "std_error", "bits_per_dim"] and len(rows) == 1 + len(level_rows)
    assert call(["sample", run, "-n", "6", "--steps", "4", "--out", tmp_path / "draws.npy"]) == 0
    assert np.load(tmp_path / "draws.npy").shape == (6, 4)


@pytest.mark.parametrize(
    "args, message",
    [
        (["encode", "{run}", "{rows}", "--out", "{tmp}/z.npy"], "no latent code"),
        (["evaluate", "{run}", "{rows}", "--t-samples", "0"], "--t-samples"),
        (["sample", "{run}", "--out", "{tmp}/x.npy", "--steps", "0"], "--steps"),
        (["fit", "{rows}", "--model", "diffusion", "--out", "{tmp}/r2", "--latent-dim", "3"], "--latent-dim does not apply"),
    ],
)
def test_bad_input_is_one_line(level_model, level_rows, tmp_path, capsys, args, message):
    np.save(tmp_path / "rows.npy", level_rows)
    level_model.save(tmp_path / "run")
    names = {"run": tmp_path / "run", "rows": tmp_path / "rows.npy", "tmp": tmp_path}
    assert call([a.format(**names) for a in args]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("aevb: error:") and message in error and "\n" not in error


def test_the_unset_batch_size_follows_the_network(level_rows):
    rows_model = Diffusion(**TINY).fit(level_rows)
    assert rows_model.automatic_options_ == {"batch_size": 512} and rows_model.config.batch_size == 512
    digits = aevb.datasets.load("digits")
    images = type(digits)(digits.values[:200], digits.image_shape)
    image_model = Diffusion(epochs=1, conv_width=8, sample_steps=8).fit(images)
    assert image_model.config.net == "auto" and image_model.config.batch_size == 128
    assert Diffusion(**TINY, batch_size=64).fit(level_rows).automatic_options_ == {}
    assert "batch size 128 for the unet" in Diffusion().describe_data(images)


def test_samples_are_drawn_a_chunk_at_a_time_and_the_first_chunk_is_the_small_draw(level_model, tmp_path, monkeypatch):
    from aevb.scale import streaming

    small = level_model.sample(5, seed=3, steps=4)
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 5)
    chunked = level_model.sample(12, seed=3, steps=4)
    np.testing.assert_array_equal(chunked[:5], small)
    assert chunked.shape == (12, 4) and not np.array_equal(chunked[5:10], small)
    level_model.save(tmp_path / "run")
    assert call(["sample", tmp_path / "run", "-n", "12", "--seed", "3", "--steps", "4", "--out", tmp_path / "x.npy"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), chunked)


def test_mean_ends_with_the_decoders_mean_instead_of_a_draw():
    rows = np.random.default_rng(3).normal(size=(200, 3))
    model = Diffusion(**TINY).fit(rows)
    drawn, means = model.sample(50, seed=1, steps=4), model.sample(50, seed=1, steps=4, mean=True)
    # the same z_0; the draw adds N(0, exp(gamma_0)) noise (mean was ignored before: both were draws)
    noise = (drawn - means) / np.asarray(model.preprocessor_.scale) / np.exp(0.5 * float(model.model_.ends()[0].detach()))
    assert 0.8 < noise.std() < 1.2 and abs(noise.mean()) < 0.2


def test_unseeded_samples_differ_between_calls_and_follow_torchs_seed(level_model):
    import torch

    assert not np.array_equal(level_model.sample(20, steps=4), level_model.sample(20, steps=4))
    torch.manual_seed(5)
    first = level_model.sample(20, steps=4)
    torch.manual_seed(5)
    np.testing.assert_array_equal(level_model.sample(20, steps=4), first)
