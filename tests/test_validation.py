"""The validation pass behind early stopping: each batch draws from its own seed, so the
batches can be shared out over the ranks of a torchrun job and summed to the figures of
one process; and it leaves the training's random numbers alone."""

import numpy as np
import pytest
import torch

import aevb
from aevb.config import VAEConfig
from aevb.scale.distributed import SINGLE, Group
from aevb.train.loop import mean_metrics
from aevb.vae.family import VAEFamily


def mean_elbo_terms(model, pre, rows, batch_size, seed, k=None, group=SINGLE):
    """The VAE's validation metrics: the ELBO and its terms, and IWAE_k with k."""
    family = VAEFamily(VAEConfig(objective="iwae", k=k) if k else VAEConfig())
    return mean_metrics(family, model, pre, rows, batch_size, seed, group)


@pytest.fixture(scope="module")
def fitted():
    rows = np.random.default_rng(0).integers(0, 9, size=(60, 5)).astype(float)  # levels: dequantization noise too
    return aevb.VAE(epochs=2, hidden=(8,), latent_dim=2).fit(rows), torch.as_tensor(rows, dtype=torch.float32)


def test_ranks_sharing_the_batches_sum_to_the_figures_of_one_process(fitted, monkeypatch):
    estimator, rows = fitted
    model, pre = estimator.model_, estimator.preprocessor_
    whole = mean_elbo_terms(model, pre, rows, 7, seed=3, k=3)  # 9 batches
    monkeypatch.setattr(Group, "all_reduce", lambda self, tensor: tensor)  # each rank's own share
    shares = [mean_elbo_terms(model, pre, rows, 7, seed=3, k=3, group=Group(rank, 4)) for rank in range(4)]
    for name in ("elbo", "reconstruction", "kl", "iwae"):
        assert sum(share[name] for share in shares) == pytest.approx(whole[name], rel=1e-9), name
        assert all(share[name] != whole[name] for share in shares)
    assert whole["iwae"] > whole["elbo"]
    assert mean_elbo_terms(model, pre, rows, 7, seed=4)["elbo"] != whole["elbo"]  # the seed matters


def test_validation_leaves_the_global_generator_alone(fitted):
    estimator, rows = fitted
    torch.manual_seed(11)
    before = torch.get_rng_state()
    mean_elbo_terms(estimator.model_, estimator.preprocessor_, rows, 7, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
