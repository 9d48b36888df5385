"""A new model family needs no change to the training machinery: a diagonal Gaussian fitted by
gradient, written here in ~50 lines (options, family, estimator), trains through the generic
loop, writes metrics.csv and checkpoints, is SIGKILLed and resumes bit for bit, stops early,
scores (checked against the closed form), saves and loads."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal

import aevb
from aevb.config import TrainingConfig
from aevb.core.family import DataDescription, Family, Progress
from aevb.estimator import Estimator
from aevb.train import checkpoint

# -- the family: everything a new one has to write ------------------------------------------


@dataclass
class GaussianConfig(TrainingConfig):
    init_log_scale: float = field(default=0.0, metadata={"help": "Starting log standard deviation."})


class DiagonalGaussian(nn.Module):
    """p(x) = prod_j N(x_j; loc_j, exp(log_scale_j)^2)."""

    def __init__(self, n_features: int, init_log_scale: float):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(n_features))
        self.log_scale = nn.Parameter(torch.full((n_features,), init_log_scale))

    def forward(self) -> Independent:
        return Independent(Normal(self.loc, self.log_scale.exp()), 1)


class GaussianFamily(Family):
    metric_names = validation_names = ("log_likelihood",)
    bound_name = "log_likelihood"
    log_density_names = frozenset({"log_likelihood"})

    def __init__(self, config: GaussianConfig):
        self.config = config

    def build(self, data: DataDescription) -> DiagonalGaussian:
        return DiagonalGaussian(data.n_features, self.config.init_log_scale)

    def loss(self, module: DiagonalGaussian, x: torch.Tensor, progress: Progress):
        log_p = module().log_prob(x)
        return -log_p, {"log_likelihood": log_p}

    def validate(self, module: DiagonalGaussian, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"log_likelihood": module().log_prob(x)}

    def score(self, module: DiagonalGaussian, x: torch.Tensor, k: int):
        return module().log_prob(x), "log p(x)"

    def sample(self, module: DiagonalGaussian, n: int) -> torch.Tensor:
        return module().sample((n,))


class GaussianEstimator(Estimator):
    config_class = GaussianConfig
    family_class = GaussianFamily


# -- the checks ---------------------------------------------------------------------------

HERE = Path(__file__).parent
OPTIONS = dict(batch_size=8, learning_rate=0.05, patience=5, seed=1)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    rng = np.random.default_rng(4)
    return rng.normal(loc=[3.0, -1.0, 10.0], scale=[0.5, 2.0, 4.0], size=(300, 3))


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """The one registry entry a new family adds, so that aevb.load finds it."""
    monkeypatch.setitem(aevb.registry.BY_CLASS_NAME, "GaussianEstimator", GaussianEstimator)


def run_in_process(data: Path, run: Path, epochs: int, resume: bool) -> None:
    """Entry point of the child process that the kill test starts."""
    torch.set_num_threads(1)
    GaussianEstimator(epochs=epochs, checkpoint_every=0.01, **OPTIONS).fit(np.load(data), run_dir=run, resume=resume)


def test_trains_stops_early_and_scores_the_closed_form(rows, tmp_path):
    model = GaussianEstimator(epochs=400, **OPTIONS).fit(rows, run_dir=tmp_path / "run")
    assert model.stopped_because_ == "early stopping"
    assert len(model.history_) == model.best_epoch_ + OPTIONS["patience"]
    with open(tmp_path / "run" / "metrics.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == ["epoch", "seconds", "train_log_likelihood", "val_log_likelihood"]
    assert len(table) == len(model.history_)
    # The module's Gaussian, mapped back through the preprocessor (x = shift + scale y), in float64.
    pre = model.preprocessor_
    loc = np.array(pre.shift) + np.array(pre.scale) * model.model_.loc.detach().double().numpy()
    std = np.array(pre.scale) * model.model_.log_scale.detach().double().exp().numpy()
    closed_form = (-0.5 * ((rows - loc) / std) ** 2 - np.log(std) - 0.5 * math.log(2 * math.pi)).sum(1)
    np.testing.assert_allclose(model.score_samples(rows), closed_form, rtol=1e-5)
    # Gradient descent reaches the maximum-likelihood Gaussian: the sample mean and standard deviation.
    np.testing.assert_allclose(loc, rows.mean(0), atol=0.15 * rows.std(0).max())
    np.testing.assert_allclose(std, rows.std(0), rtol=0.1)
    best = model.history_[model.best_epoch_ - 1]["val_log_likelihood"]
    assert model.validation_bound() == ("log_likelihood", best)
    # Saved and loaded through the registry entry, it scores the same.
    model.save(tmp_path / "saved")
    np.testing.assert_array_equal(aevb.load(tmp_path / "saved").score_samples(rows), model.score_samples(rows))
    assert model.sample(5, seed=0).shape == (5, 3)


def test_sigkilled_run_resumes_bit_for_bit(rows, tmp_path):
    data = tmp_path / "rows.npy"
    np.save(data, rows)
    epochs = 60  # patience 5 may stop it sooner: both runs stop at the same epoch
    unbroken = GaussianEstimator(epochs=epochs, **OPTIONS).fit(rows, run_dir=tmp_path / "unbroken")
    run = tmp_path / "run"
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import test_family as t; t.run_in_process(*sys.argv[1:3], {epochs}, False)"
    child = subprocess.Popen([sys.executable, "-c", code, str(data), str(run)], env=ENV, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        try:  # wait until training is under way: a checkpoint past the first epoch
            if checkpoint.read(run)[0]["progress"]["epoch"] >= 2:
                break
        except aevb.AevbError:
            pass
        time.sleep(0.002)
    child.send_signal(signal.SIGKILL)
    _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err.decode()[-2000:]
    progress = checkpoint.read(run)[0]["progress"]
    assert 2 <= progress["epoch"] < len(unbroken.history_), progress
    resumed = GaussianEstimator(epochs=epochs, **OPTIONS).fit(rows, run_dir=run, resume=True)
    for name, tensor in unbroken.model_.state_dict().items():
        assert torch.equal(tensor, resumed.model_.state_dict()[name]), name
    strip = lambda history: [{k: v for k, v in row.items() if k != "seconds"} for row in history]  # noqa: E731
    assert strip(resumed.history_) == strip(unbroken.history_)
    assert resumed.best_epoch_ == unbroken.best_epoch_ and resumed.stopped_because_ == unbroken.stopped_because_
