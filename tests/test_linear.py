"""Linear-Gaussian models: exact log p(x) against scikit-learn, and the oracle that checks
the ELBO and the importance-sampling estimators (float64 throughout)."""

import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.decomposition import FactorAnalysis as SklearnFactorAnalysis
from torch.distributions import kl_divergence

from aevb import PPCA, VAE, AevbError, FactorAnalysis, load
from aevb.core.distributions import DiagonalGaussianHead
from aevb.core.objectives import log_importance_weights
from aevb.linear.estimators import linear_gaussian_model

F64 = torch.float64


def ppca_data(n=2000, d=3, D=8, noise=0.4, seed=0):
    """Rows from a known PPCA model: x = W z + b + N(0, noise^2 I)."""
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(D, d)), rng.normal(size=D)
    return rng.normal(size=(n, d)) @ W.T + b + noise * rng.normal(size=(n, D))


def fa_data(n=1000, seed=1):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(8, 3))
    return rng.normal(size=(n, 3)) @ W.T + rng.normal(size=(n, 8)) * rng.uniform(0.2, 2.0, size=8)


def test_ppca_log_likelihood_equals_scikit_learn():
    X = fa_data()
    ours = PPCA(latent_dim=3).fit(X)
    theirs = PCA(3).fit(X)
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-6)
    # scikit-learn normalizes its covariance by n - 1, we by n (the maximum-likelihood choice).
    n = len(X)
    ours_covariance = ours.components_ @ ours.components_.T + np.diag(ours.noise_variance_)
    np.testing.assert_allclose(ours_covariance, theirs.get_covariance() * (n - 1) / n, rtol=1e-8, atol=1e-10)


def test_factor_analysis_agrees_with_scikit_learn_at_convergence():
    X = fa_data()
    ours = FactorAnalysis(latent_dim=3).fit(X)
    theirs = SklearnFactorAnalysis(3, tol=1e-6, max_iter=20_000).fit(X)
    # This data has a near-zero noise variance (a Heywood case) where both fits creep
    # towards the maximum; they stop within 1e-5 relative of each other.
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-5)
    assert ours.score(X) > PPCA(latent_dim=3).fit(X).score(X)  # free noise variances fit this data better


def test_log_p_equals_elbo_plus_kl_to_exact_posterior_for_any_q():
    """log p(x) = ELBO(q) + KL(q || p(z|x)), with every term in closed form."""
    torch.manual_seed(0)
    model = linear_gaussian_model(torch.randn(5, 3, dtype=F64), torch.randn(5, dtype=F64), torch.rand(5, dtype=F64) + 0.2)
    decoder = model.decoder
    x = decoder.marginal().sample((20,))
    head = DiagonalGaussianHead(5, 3).double()
    with torch.no_grad():
        head.linear.weight.mul_(0.3)  # an arbitrary diagonal q(z|x) of moderate spread
    q = head(x)
    elbo = decoder.expected_log_likelihood(x, q) - kl_divergence(q, model.prior().expand((20,)))
    kl_to_posterior = kl_divergence(
        torch.distributions.MultivariateNormal(q.mean, torch.diag_embed(q.variance)), decoder.exact_posterior(x)
    )
    assert (kl_to_posterior > 0.01).all()
    torch.testing.assert_close(elbo + kl_to_posterior, decoder.marginal().log_prob(x), rtol=0, atol=1e-10)
    # The Monte-Carlo reconstruction term agrees with the closed form.
    log_likelihoods = decoder(q.rsample((100_000,))).log_prob(x)
    std_error = log_likelihoods.std(0) / math.sqrt(len(log_likelihoods))
    assert ((log_likelihoods.mean(0) - decoder.expected_log_likelihood(x, q)).abs() < 4 * std_error).all()


def test_with_the_exact_posterior_the_weights_are_constant():
    X = ppca_data()
    model = PPCA(latent_dim=3).fit(X)
    figures = model.evaluate(X[:200], k=50)
    assert figures["effective_sample_size"] == pytest.approx(50.0, rel=1e-9)
    # The ELBO's KL is in closed form (MultivariateNormal vs N(0, I)), so only its reconstruction
    # term is Monte Carlo (one draw per row): exact up to that noise, here 4 standard errors.
    difference = model.elbo_samples(X[:200])["elbo"] - model.exact_score_samples(X[:200])
    assert figures["elbo"] == pytest.approx(figures["exact_log_likelihood"] + difference.mean(), abs=1e-9)
    assert abs(difference.mean()) < 4 * difference.std(ddof=1) / np.sqrt(200)
    assert figures["log_likelihood"] == pytest.approx(figures["exact_log_likelihood"], abs=1e-9)
    y = torch.as_tensor(X[:10])
    log_w = log_importance_weights(model.model_, y, model.model_.posterior(y), 30)
    torch.testing.assert_close(log_w, log_w[:1].expand_as(log_w), rtol=0, atol=1e-10)


@pytest.fixture(scope="module")
def linear_vae():
    """A VAE with a linear decoder, trained by the ELBO on rows of a known PPCA model."""
    X = ppca_data()
    return X, VAE(latent_dim=3, hidden=(32,), decoder="linear", epochs=150, patience=150, learning_rate=3e-3).fit(X)


def test_importance_estimate_approaches_exact_and_prior_sampling_does_not(linear_vae):
    X, model = linear_vae
    rows = X[:300]
    exact = model.exact_score_samples(rows, average_noise=False)
    errors = {}
    for proposal in ("posterior", "prior"):
        for k in (1, 1000):
            estimate = model.importance_samples(rows, k=k, seed=1, proposal=proposal)
            errors[proposal, k] = float((exact - estimate["log_likelihood"]).mean())
    assert errors["posterior", 1] > 0.01  # the diagonal q is not exact: there is a gap to close
    assert abs(errors["posterior", 1000]) < 0.01
    assert errors["posterior", 1000] < errors["posterior", 1] / 10
    assert errors["prior", 1000] > 10 * abs(errors["posterior", 1000]) + 0.05


def test_linear_vae_reaches_maximum_likelihood(linear_vae):
    """Trained by the ELBO, the linear VAE's exact log p(x) comes within 0.05 nats/row of the PPCA
    maximum, and cannot exceed the factor-analysis maximum (its own model family)."""
    X, model = linear_vae
    vae_log_p = model.exact_score_samples(X).mean()
    assert vae_log_p > PPCA(latent_dim=3).fit(X).score(X) - 0.05
    assert vae_log_p < FactorAnalysis(latent_dim=3).fit(X).score(X) + 1e-6


def test_level_data_exact_score_is_the_expectation_over_dequantization():
    rng = np.random.default_rng(0)
    X = np.clip(np.round(ppca_data(n=500, noise=1.0) * 2 + 8), 0, 16)
    model = PPCA(latent_dim=2).fit(X)
    expected = model.exact_score_samples(X[:5])
    draws = model.exact_score_samples(np.repeat(X[:5], 4000, axis=0), average_noise=False).reshape(5, 4000)
    std_error = draws.std(1) / np.sqrt(4000)
    assert (np.abs(draws.mean(1) - expected) < 4 * std_error).all()
    assert (std_error < 0.05).all()


def test_save_load_and_options(tmp_path):
    X = fa_data(n=400)
    for cls in (PPCA, FactorAnalysis):
        model = cls(latent_dim=2).fit(X)
        model.save(tmp_path / cls.__name__)
        again = load(tmp_path / cls.__name__)
        assert type(again) is cls
        np.testing.assert_array_equal(again.score_samples(X), model.score_samples(X))
        np.testing.assert_array_equal(again.transform(X), model.transform(X))
    with pytest.raises(AevbError, match="latent_dim 8 is too large"):
        PPCA(latent_dim=8).fit(X)
    with pytest.raises(AevbError, match="unknown option"):
        PPCA(epochs=3)
