"""Sizes left unset are chosen from the data's shape, saved, and lose to explicit options."""

from __future__ import annotations

import json

import numpy as np

from aevb import VAE, load
from aevb.vae.sizes import automatic


def test_the_rule_half_the_features_up_to_16_wider_from_256():
    unset = {"latent_dim": None, "hidden": None}
    assert automatic(unset, 100, 5)[0] == {"latent_dim": 2, "hidden": (256, 256)}
    assert automatic(unset, 100, 1)[0]["latent_dim"] == 1
    assert automatic(unset, 100, 64)[0]["latent_dim"] == 16
    assert automatic(unset, 100, 784)[0] == {"latent_dim": 20, "hidden": (512, 512)}
    chosen, why = automatic({"latent_dim": 3, "hidden": None}, 100, 784)
    assert chosen == {"hidden": (512, 512)} and "--hidden" in why and "--latent-dim" not in why
    assert automatic({"latent_dim": 3, "hidden": (8,)}, 100, 784) == ({}, "")


def test_fit_builds_saves_and_reloads_the_chosen_sizes_and_explicit_options_win(tmp_path):
    rows = np.random.default_rng(0).normal(size=(60, 6))
    model = VAE(epochs=1).fit(rows, progress=False)
    assert model.get_params()["latent_dim"] is None  # the parameters stay as given (scikit-learn's rule)
    assert model.model_.latent_dim == 3 and model.config.hidden == (256, 256)
    model.save(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())["model"]
    assert saved["latent_dim"] == 3 and saved["hidden"] == [256, 256]
    assert load(tmp_path / "m").model_.latent_dim == 3
    explicit = VAE(epochs=1, latent_dim=5, hidden=(8,)).fit(rows, progress=False)
    assert explicit.model_.latent_dim == 5 and explicit.automatic_options_ == {}


def test_unset_patience_waits_for_1000_steps_on_small_data():
    from aevb.config import VAEConfig
    from aevb.train.loop import patience_epochs

    config = VAEConfig(batch_size=100)
    assert patience_epochs(config, 270) == 334  # 3 steps an epoch
    assert patience_epochs(config, 100_000) == 30  # 1,000 steps an epoch: 30 epochs
    assert patience_epochs(VAEConfig(batch_size=100, patience=5), 270) == 5  # an explicit value wins


def test_early_stopping_counts_the_unset_patience_in_steps():
    rows = np.random.default_rng(0).normal(size=(40, 2))
    # 36 training rows in batches of 36: one step an epoch, so 1,000 epochs of patience.
    model = VAE(epochs=60, batch_size=36, hidden=(4,), latent_dim=1, learning_rate=1e-9).fit(rows, progress=False)
    assert model.stopped_because_ == "epochs"
    assert VAE(epochs=60, batch_size=36, hidden=(4,), latent_dim=1, learning_rate=1e-9, patience=3).fit(
        rows, progress=False).stopped_because_ == "early stopping"


def test_unset_epochs_allow_20000_steps_on_small_data():
    from aevb.config import VAEConfig
    from aevb.train.loop import epoch_limit

    config = VAEConfig(batch_size=100)
    assert epoch_limit(config, 270) == 6667  # 3 steps an epoch
    assert epoch_limit(config, 100_000) == 500  # 1,000 steps an epoch: 500 epochs
    assert epoch_limit(VAEConfig(batch_size=100, epochs=7), 270) == 7  # an explicit value wins
    assert epoch_limit(VAEConfig(batch_size=100, max_time=60), 270) is None  # the budget is the cap


def test_training_stops_at_the_step_based_epoch_cap(monkeypatch):
    from aevb.train import loop

    monkeypatch.setattr(loop, "EPOCH_CAP", 3)
    monkeypatch.setattr(loop, "EPOCH_CAP_STEPS", 8)
    rows = np.random.default_rng(0).normal(size=(40, 2))
    # 36 training rows in batches of 18: two steps an epoch, so 4 epochs make 8 steps (more than 3 epochs).
    model = VAE(batch_size=18, hidden=(4,), latent_dim=1, patience=100).fit(rows, progress=False)
    assert model.stopped_because_ == "epochs" and len(model.history_) == 4


def test_a_time_budget_replaces_the_epoch_cap(monkeypatch):
    from aevb.train import loop

    monkeypatch.setattr(loop, "EPOCH_CAP", 3)
    monkeypatch.setattr(loop, "EPOCH_CAP_STEPS", 8)
    rows = np.random.default_rng(0).normal(size=(40, 2))
    model = VAE(batch_size=18, hidden=(4,), latent_dim=1, patience=10**6, max_time=0.5).fit(rows, progress=False)
    assert model.stopped_because_ == "max_time" and len(model.history_) > 4
