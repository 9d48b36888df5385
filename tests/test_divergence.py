"""A loss or gradient that turns NaN or infinite ends training with a clear message,
the best weights so far in the model and the last good checkpoint untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cli_helpers import call

import aevb
import aevb.train.loop
import aevb.vae.family
from aevb.errors import TrainingDiverged
from aevb.train import checkpoint

SMALL = dict(hidden=(8,), latent_dim=2, batch_size=16, epochs=6, patience=100)
STEPS_PER_EPOCH = 5  # 72 training rows of 80 in batches of 16: four full, one of 8


@pytest.fixture
def rows():
    return np.random.default_rng(0).normal(size=(80, 5))


def test_huge_learning_rate_ends_with_the_documented_message_and_a_loadable_model(rows, tmp_path, capsys):
    np.save(tmp_path / "x.npy", rows)
    run = tmp_path / "run"
    code = call(["fit", tmp_path / "x.npy", "--out", run, "--hidden", 8, "--latent-dim", 2,
                 "--epochs", 3, "--learning-rate", 1e6, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("aevb: error: training diverged"), err
    assert "--learning-rate" in err and "--grad-clip" in err, err
    model = aevb.load(run)
    assert model.stopped_because_ == "diverged"
    assert np.isfinite(model.score_samples(rows[:5], k=2)).all()
    checkpoint.read(run)  # the last good checkpoint is still readable


def poison(monkeypatch, at_step: int, part: str):
    """Make the ``at_step``-th training objective non-finite (part="loss"), or finite
    with an infinite gradient (part="gradient")."""
    real, steps = aevb.vae.family.training_objective, []

    def training_objective(model, x, *args):
        objective, terms = real(model, x, *args)
        steps.append(1)
        if len(steps) != at_step:
            return objective, terms
        if part == "loss":
            return objective * float("nan"), terms
        objective.register_hook(lambda grad: grad * float("inf"))
        return objective, terms

    monkeypatch.setattr(aevb.vae.family, "training_objective", training_objective)


@pytest.mark.parametrize("part", ["loss", "gradient"])
def test_injected_non_finite_step_keeps_the_best_weights_and_the_last_checkpoint(rows, tmp_path, monkeypatch, part):
    run = tmp_path / "run"
    poison(monkeypatch, at_step=3 * STEPS_PER_EPOCH + 2, part=part)  # step 2 of epoch 4
    model = aevb.VAE(**SMALL, checkpoint_every=1e-9)  # a checkpoint after every step
    with pytest.raises(TrainingDiverged, match=f"epoch 4 .*the {part} became NaN") as caught:
        model.fit(rows, run_dir=run)
    assert caught.value.exit_code == 2
    meta, tensors = checkpoint.read(run)
    assert meta["progress"]["step"] == 3 * STEPS_PER_EPOCH + 1, "the last good checkpoint is kept"
    assert meta["progress"]["epoch"] == 3
    assert 1 <= model.best_epoch_ <= 3 and len(model.history_) == 3
    for name, value in model.model_.state_dict().items():
        assert torch.equal(value, tensors[f"best/{name}"]), name
    assert model.stopped_because_ == "diverged"
    model.save(tmp_path / "saved")
    assert np.isfinite(aevb.load(tmp_path / "saved").score_samples(rows[:5], k=2)).all()


@pytest.mark.parametrize("clip", [None, 1e-3])
def test_gradient_clipping_bounds_what_adam_sees(rows, monkeypatch, clip):
    real, norms = aevb.train.loop.make_optimizer, []

    def recording_optimizer(model, config):
        optimizer = real(model, config)
        optimizer.register_step_pre_hook(
            lambda opt, args, kwargs: norms.append(
                float(torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]))
            )
        )
        return optimizer

    monkeypatch.setattr(aevb.train.loop, "make_optimizer", recording_optimizer)
    aevb.VAE(**{**SMALL, "epochs": 1}, grad_clip=clip).fit(rows)
    assert len(norms) == STEPS_PER_EPOCH
    if clip is None:
        assert min(norms) > 1e-2  # so that the clipped run below is really clipped
    else:
        assert max(norms) <= clip * (1 + 1e-5)
