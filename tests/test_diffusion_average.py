"""The running average of the diffusion denoiser's weights: its arithmetic, where it is used,
and that checkpoints and old config.json files carry it right."""

from __future__ import annotations

import copy
import json

import numpy as np
import torch
from torch import nn

import aevb
from aevb import Diffusion
from aevb.diffusion.average import WeightAverage

TINY = {"epochs": 2, "hidden": (16,), "sample_steps": 8, "threads": 1}


def test_the_average_follows_its_warmed_up_recurrence():
    network = nn.Linear(1, 1, bias=False).double()
    average = WeightAverage(network, decay=0.9).double()
    expected = float(network.weight.detach())
    for n, value in enumerate([3.0, -1.0, 2.0, 5.0, 0.5] * 4):
        with torch.no_grad():
            network.weight.fill_(value)
        average.update(network)
        decay = min(0.9, (1 + n) / (10 + n))
        expected = decay * expected + (1 - decay) * value
        assert abs(float(average.call(network, torch.ones(1, 1, dtype=torch.float64))) - expected) < 1e-12
    assert int(average.steps) == 20


def test_training_uses_the_live_weights_and_scoring_their_average():
    rows = np.random.default_rng(0).normal(size=(200, 3))
    model = Diffusion(**TINY).fit(rows, progress=False).model_
    live = copy.deepcopy(model.denoiser)
    averaged = copy.deepcopy(model.denoiser)
    averaged.load_state_dict({name: getattr(model.average, "average_" + name.replace(".", "__"))
                              for name in model.average.names})
    z, gamma = torch.randn(5, 3), torch.linspace(-5, 3, 5)
    assert not torch.equal(live(z, gamma), averaged(z, gamma))  # two epochs moved them apart
    model.eval()
    assert torch.equal(model.epsilon(z, gamma), averaged(z, gamma))
    model.train()
    assert torch.equal(model.epsilon(z, gamma), live(z, gamma))
    assert Diffusion(**TINY, weight_average=0.0).fit(rows, progress=False).model_.average is None


def test_a_resumed_run_carries_the_average_bit_for_bit(tmp_path):
    rows = np.random.default_rng(1).normal(size=(300, 3))
    # Resumed with more epochs: a constant rate, since a cosine one anneals over the epochs asked for.
    tiny = {**TINY, "learning_rate_schedule": "constant"}
    unbroken = Diffusion(**{**tiny, "epochs": 4}).fit(rows, run_dir=tmp_path / "unbroken", progress=False)
    Diffusion(**tiny).fit(rows, run_dir=tmp_path / "run", progress=False)
    resumed = Diffusion(**{**tiny, "epochs": 4}).fit(rows, run_dir=tmp_path / "run", resume=True, progress=False)
    state = unbroken.model_.state_dict()
    assert any(name.startswith("average.") for name in state)
    for name, tensor in state.items():
        assert torch.equal(tensor, resumed.model_.state_dict()[name]), name


def test_a_model_saved_before_the_average_existed_loads_without_one(tmp_path):
    rows = np.random.default_rng(2).normal(size=(200, 3))
    model = Diffusion(**TINY, weight_average=0.0).fit(rows, progress=False)
    model.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    del config["model"]["weight_average"]
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    loaded = aevb.load(tmp_path / "model")
    assert loaded.config.weight_average == 0.0 and loaded.model_.average is None
    np.testing.assert_array_equal(loaded.score_samples(rows[:20], t_samples=2), model.score_samples(rows[:20], t_samples=2))
