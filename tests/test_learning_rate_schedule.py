"""The learning rate over a run: the cosine schedule's closed form, and the rates the
training loop actually sets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aevb import VAE
from aevb.config import VAEConfig
from aevb.errors import AevbError
from aevb.train import loop
from aevb.train.schedule import fraction_done, scheduled_rate


def test_the_fraction_done_is_the_nearer_of_the_two_limits():
    steps_only = VAEConfig(learning_rate=0.01)
    assert fraction_done(steps_only, 25, 1e9, 100) == 0.25  # no time budget: the clock does not count
    timed = VAEConfig(max_time=10.0)
    assert fraction_done(timed, 25, 5.0, 100) == 0.5
    assert fraction_done(timed, 75, 5.0, 100) == 0.75
    assert fraction_done(timed, 10, 3.0, None) == pytest.approx(0.3)  # no epoch limit under --max-time
    assert fraction_done(timed, 10, 30.0, None) == 1.0


def test_cosine_runs_from_the_full_rate_to_zero_and_constant_stays():
    cosine = VAEConfig(learning_rate=0.02, learning_rate_schedule="cosine")
    assert scheduled_rate(cosine, 0.0) == 0.02
    assert scheduled_rate(cosine, 0.5) == pytest.approx(0.01)
    assert scheduled_rate(cosine, 0.25) == pytest.approx(0.01 * (1 + math.cos(math.pi / 4)))
    assert scheduled_rate(cosine, 1.0) == pytest.approx(0.0, abs=1e-18)
    assert scheduled_rate(VAEConfig(learning_rate=0.02), 0.7) == 0.02


def test_an_unknown_schedule_is_refused():
    with pytest.raises(AevbError, match="learning_rate_schedule"):
        VAEConfig(learning_rate_schedule="linear")


def test_the_loop_anneals_step_by_step_over_the_epoch_limit(monkeypatch):
    rates = []
    original = loop.set_rate
    monkeypatch.setattr(loop, "set_rate", lambda optimizer, rate: (rates.append(rate), original(optimizer, rate)))
    rows = np.random.default_rng(0).normal(size=(40, 2))
    # 36 training rows in batches of 12: 3 steps an epoch, 4 epochs, 12 steps.
    VAE(batch_size=12, hidden=(4,), latent_dim=1, epochs=4, patience=100, learning_rate=0.01,
        learning_rate_schedule="cosine").fit(rows, progress=False)
    expected = [0.005 * (1 + math.cos(math.pi * step / 12)) for step in range(12)]
    assert rates == pytest.approx(expected)
    rates.clear()
    VAE(batch_size=12, hidden=(4,), latent_dim=1, epochs=4, patience=100).fit(rows, progress=False)
    assert rates == []  # constant: the optimizer's rate is never touched


def test_a_module_may_ask_for_a_larger_rate_for_some_of_its_parameters():
    import torch

    from aevb.diffusion.schedule import SHAPE_RATE_SCALE, MonotoneSchedule
    from aevb.train.schedule import set_rate

    model = torch.nn.Sequential(MonotoneSchedule(width=4), torch.nn.Linear(2, 2))
    optimizer = loop.make_optimizer(model, VAEConfig(learning_rate=0.002))
    by_scale = {group["scale"]: group for group in optimizer.param_groups}
    schedule = model[0]
    shape = {id(p) for p in (schedule.a, schedule.b, schedule.c, schedule.d)}
    assert {id(p) for p in by_scale[SHAPE_RATE_SCALE]["params"]} == shape
    assert by_scale[SHAPE_RATE_SCALE]["lr"] == pytest.approx(0.002 * SHAPE_RATE_SCALE)
    rest = {id(p) for p in by_scale[1.0]["params"]}  # the end points and the linear layer
    assert rest == {id(p) for p in model.parameters()} - shape
    set_rate(optimizer, 0.001)
    assert by_scale[SHAPE_RATE_SCALE]["lr"] == pytest.approx(0.001 * SHAPE_RATE_SCALE)
    assert by_scale[1.0]["lr"] == 0.001
