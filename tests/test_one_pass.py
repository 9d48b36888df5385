"""Scoring and evaluation take one encoder pass per batch and validate the rows once per call,
and give the figures that computing each of them alone gives."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
import torch
from torch import nn

import aevb
from aevb.core import evaluation
from aevb.core.noise import DrawStreams, seeded_draws
from aevb.core.objectives import elbo, importance_sampling
from aevb.data import dequantization
from aevb.data import loaders
from aevb.estimator import EVAL_ROWS
from aevb.vae.statistics import row_statistics


class CountingEncoder(nn.Module):
    """The encoder, counting its calls and the rows they saw."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder, self.calls, self.rows = encoder, 0, 0

    def forward(self, x):
        self.calls += 1
        self.rows += len(x)
        return self.encoder(x)


def _fitted(X, **options) -> aevb.VAE:
    return aevb.VAE(latent_dim=2, hidden=(8,), epochs=2, batch_size=32, **options).fit(X)


@pytest.fixture(scope="module")
def continuous():
    X = np.random.default_rng(1).normal(size=(2 * EVAL_ROWS + 10, 4))  # three batches, the last short
    return X, _fitted(X)


@pytest.fixture(scope="module")
def levels():
    X = np.random.default_rng(2).integers(0, 6, size=(EVAL_ROWS + 5, 3)).astype(float)
    return X, _fitted(X)


@contextlib.contextmanager
def _counting_encoder(model: aevb.VAE):
    original = model.model_.encoder
    model.model_.encoder = counter = CountingEncoder(original)
    try:
        yield counter
    finally:
        model.model_.encoder = original


@pytest.mark.parametrize("method", ["evaluate", "row_scores", "score_samples", "elbo_samples"])
def test_one_encoder_pass_per_batch(continuous, method):
    X, model = continuous
    with _counting_encoder(model) as counter:
        getattr(model, method)(X, **({} if method == "elbo_samples" else {"k": 7}))
    assert counter.calls == math.ceil(len(X) / EVAL_ROWS)  # 3: the ELBO, the estimate and the codes share q(z|x)
    assert counter.rows == len(X)


def test_level_data_takes_a_second_pass_for_the_codes_at_the_cell_centres(levels):
    X, model = levels
    with _counting_encoder(model) as counter:
        model.evaluate(X, k=5)
    assert counter.calls == 2 * math.ceil(len(X) / EVAL_ROWS)  # q at x + u, and at x + 1/2 for the codes
    assert counter.rows == 2 * len(X)


@pytest.mark.parametrize("method", ["evaluate", "row_scores", "score_samples", "elbo_samples", "transform"])
def test_rows_are_validated_once_per_call(continuous, monkeypatch, method):
    X, model = continuous
    calls = []
    original = loaders.validated

    def counting(data, name):
        calls.append(name)
        return original(data, name)

    monkeypatch.setattr(aevb.estimator, "validated", counting)
    getattr(model, method)(X, **({"k": 3} if method in ("evaluate", "row_scores", "score_samples") else {}))
    assert len(calls) == 1


def test_the_statistics_are_those_of_each_objective_computed_alone(continuous):
    """row_statistics of a batch against elbo(), importance_sampling() and the posterior mean,
    each run on its own from the same seed: equal to the last bit."""
    X, model = continuous
    module = model.model_
    y = torch.as_tensor(X[:50], dtype=torch.float32)
    y = model.preprocessor_.to_model(y)
    with seeded_draws(3):
        stats = row_statistics(module, y, 9, encode_at=y, streams=DrawStreams())
    with seeded_draws(3):
        terms = elbo(module, y)
    with seeded_draws(3):
        estimate = importance_sampling(module, y, 9, module.posterior(y))
    for name, alone in [("elbo", terms.elbo), ("reconstruction", terms.reconstruction), ("kl", terms.kl),
                        ("kl_per_dimension", terms.kl_per_dimension), ("log_likelihood", estimate.log_marginal),
                        ("effective_sample_size", estimate.effective_sample_size),
                        ("code", module.posterior(y).mean)]:
        assert torch.equal(stats[name], alone), name
    assert "exact_log_likelihood" not in stats  # an MLP decoder has no closed form
    # The ELBO does not depend on how many draws the estimate takes (its z has a stream of its own).
    with seeded_draws(3):
        other = row_statistics(module, y, 40, streams=DrawStreams())
    assert torch.equal(other["elbo"], stats["elbo"]) and not torch.equal(other["log_likelihood"], stats["log_likelihood"])


def test_bounds_hold_per_row_and_exact_likelihood_is_the_closed_form():
    """A linear-Gaussian VAE: on average the ELBO and IWAE_200 stay below the exact log p(x),
    the estimate close to it; and exact_log_likelihood is log N(x; b, WW^T + Psi) in the user's units."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 2)) @ rng.normal(size=(2, 5)) + 0.3 * rng.normal(size=(300, 5))
    model = aevb.VAE(decoder="linear", latent_dim=2, hidden=(16,), epochs=30, batch_size=32).fit(X)
    rows = model.row_scores(X, k=200, seed=1)
    elbo_mean, estimate, exact = (rows[name].mean() for name in ("elbo", "log_likelihood", "exact_log_likelihood"))
    assert max(elbo_mean, estimate) < exact + 0.01 and abs(exact - estimate) < 0.05
    marginal = model.model_.exact_marginal()
    y = model.preprocessor_.to_model(torch.as_tensor(X, dtype=torch.float32))
    closed_form = marginal.log_prob(y).detach().double().numpy() + model.preprocessor_.log_abs_det_jacobian()
    np.testing.assert_allclose(rows["exact_log_likelihood"], closed_form, rtol=1e-6)
    np.testing.assert_allclose(rows["bits_per_dim"], -rows["log_likelihood"] / (5 * np.log(2)), rtol=1e-12)


def test_chunk_statistics_aggregate_to_numpy_figures():
    """evaluation.chunk_statistics + combine over uneven chunks equal numpy's means, standard
    error and variances of the joined rows."""
    rng = np.random.default_rng(0)
    n, d = 103, 3
    rows = {name: rng.normal(size=n) for name in ("elbo", "reconstruction", "kl", "log_likelihood")}
    rows["effective_sample_size"] = rng.uniform(1, 5, size=n)
    rows["code"], rows["kl_per_dimension"] = rng.normal(size=(n, d)), rng.uniform(size=(n, d))
    cuts = [0, 10, 11, 60, n]
    table = np.stack([
        evaluation.chunk_statistics({k: v[a:b] for k, v in rows.items()}, d) for a, b in zip(cuts, cuts[1:])
    ])
    figures = evaluation.combine(table, d, k=1, proposal="posterior", n_features=7, data="continuous")
    ll = rows["log_likelihood"]
    assert figures["log_likelihood"] == pytest.approx(ll.mean(), rel=1e-12)
    assert figures["log_likelihood_std_error"] == pytest.approx(ll.std(ddof=1) / np.sqrt(n), rel=1e-10)
    assert figures["bits_per_dim"] == pytest.approx(-ll.mean() / (7 * np.log(2)), rel=1e-12)
    np.testing.assert_allclose(figures["latent_activity"], rows["code"].var(axis=0), rtol=1e-10)
    np.testing.assert_allclose(figures["kl_per_dimension"], rows["kl_per_dimension"].mean(0), rtol=1e-12)
    assert figures["exact_log_likelihood"] is None and figures["n_rows"] == n


def test_draw_streams_continue_independently():
    torch.manual_seed(11)
    streams = DrawStreams()
    with streams("a"):
        a1 = torch.randn(3)
    with streams("b"):
        b1 = torch.randn(3)
    with streams("a"):
        a2 = torch.randn(3)
    torch.manual_seed(11)
    expected = torch.randn(6)
    assert torch.equal(a1, expected[:3]) and torch.equal(b1, expected[:3]) and torch.equal(a2, expected[3:])


def test_dequantization_moments_are_those_of_uniform_noise():
    """E[x + u] and Var[x + u] against a large Monte-Carlo sample of u ~ U[0, 1)."""
    x = torch.arange(5, dtype=torch.float64).repeat(40_000)
    y = x + dequantization.noise(x, torch.Generator().manual_seed(0))
    mean, variance = dequantization.dequantization_moments(x.mean().item(), x.var(correction=0).item())
    assert y.mean().item() == pytest.approx(mean, abs=0.01)
    assert y.var(correction=0).item() == pytest.approx(variance, abs=0.01)
    cov = np.cov(np.stack([x.numpy(), x.numpy() * 0]), bias=True)
    _, dequantized = dequantization.dequantization_moments(np.zeros(2), cov)
    np.testing.assert_allclose(dequantized, cov + np.eye(2) / 12)
    assert torch.equal(dequantization.quantized(y), x)
    assert torch.equal(dequantization.quantized(x + dequantization.noise(x, center=True), mean=True), x)
