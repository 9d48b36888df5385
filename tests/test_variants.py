"""Training objectives (beta, warm-up, free bits, IWAE), the full-covariance posterior
against a known correlated posterior, cures for posterior collapse, and every
posterior/prior/objective combination through fit, evaluate, save and load."""

import itertools
import json
import math

import numpy as np
import pytest
import torch
from cli_helpers import call
from torch import nn
from torch.distributions import MultivariateNormal, kl_divergence

from aevb import VAE, AevbError, load
from aevb.config import VAEConfig
from aevb.core.distributions import GaussianFeatureScaleHead
from aevb.core.objectives import elbo, free_bits_kl, iwae, kl_weight, training_objective
from aevb.core.priors import StandardNormalPrior
from aevb.vae.model import POSTERIOR_HEADS, PRIORS, LatentVariableModel, build_vae

F64 = torch.float64


def small_model(**options) -> tuple[LatentVariableModel, VAEConfig]:
    config = VAEConfig(latent_dim=3, hidden=(8,), **options)
    return build_vae(config, 5, "gaussian").double(), config


def test_kl_weight_ramps_linearly_to_beta():
    config = VAEConfig(beta=0.5, kl_warmup=4)
    assert [kl_weight(config, epoch) for epoch in (1, 2, 3, 5, 9)] == [0.0, 0.125, 0.25, 0.5, 0.5]
    assert kl_weight(VAEConfig(beta=2.0), 1) == 2.0


def test_elbo_objective_weights_the_kl_and_applies_free_bits():
    model, config = small_model(free_bits=0.3)
    x = torch.randn(6, 5, dtype=F64)
    torch.manual_seed(1)
    objective, terms = training_objective(model, x, config, weight=0.5)
    torch.manual_seed(1)
    plain = elbo(model, x)
    torch.testing.assert_close(terms.elbo, plain.elbo)
    per_dim = plain.kl_per_dimension  # (6, 3): diagonal posterior, standard prior
    torch.testing.assert_close(per_dim.sum(-1), plain.kl)
    expected = plain.reconstruction - 0.5 * torch.maximum(per_dim, torch.tensor(0.3, dtype=F64)).sum(-1)
    torch.testing.assert_close(objective, expected)


def test_free_bits_use_one_group_where_the_kl_does_not_split():
    model, config = small_model(posterior="full")
    terms = elbo(model, torch.randn(4, 5, dtype=F64))
    assert terms.kl_per_dimension is None
    torch.testing.assert_close(free_bits_kl(terms, 0.5, 3), terms.kl.clamp(min=1.5))


@pytest.mark.parametrize("posterior", list(POSTERIOR_HEADS))
def test_iwae_objective_is_the_iwae_bound_on_the_same_draws(posterior):
    model, config = small_model(posterior=posterior, prior="mog", objective="iwae", k=7)
    x = torch.randn(6, 5, dtype=F64)
    torch.manual_seed(2)
    objective, terms = training_objective(model, x, config)
    torch.manual_seed(2)
    torch.testing.assert_close(objective, iwae(model, x, 7))
    assert (terms.elbo <= objective + 1e-12).all()  # mean of log w <= log mean of w, draw by draw


def test_iwae_training_stops_early_on_the_validation_iwae(monkeypatch, capsys, tmp_path):
    """Under --objective iwae, model selection watches the validation IWAE_k (in metrics.csv as
    val_iwae), not the ELBO: here a validation IWAE made to worsen every epoch keeps epoch 1."""
    import aevb.vae.family

    real, epochs = aevb.vae.family.iwae, []

    def worse_every_epoch(model, x, k):
        epochs.append(k)
        return real(model, x, k) - 10.0 * len(epochs)  # worse each epoch, not absurd

    rows = np.random.default_rng(0).normal(size=(120, 4))
    np.save(tmp_path / "x.npy", rows)
    plain = VAE(objective="iwae", k=3, epochs=4, hidden=(8,), latent_dim=2, patience=100).fit(rows)
    assert all(row["val_iwae"] > row["val_elbo"] for row in plain.history_)  # IWAE_3 >= ELBO
    monkeypatch.setattr(aevb.vae.family, "iwae", worse_every_epoch)
    args = ["fit", tmp_path / "x.npy", "--out", tmp_path / "run", "--objective", "iwae", "--k", 3, "--epochs", 4,
            "--hidden", 8, "--latent-dim", 2, "--patience", 100]
    assert call(args) == 0
    assert epochs == [3, 3, 3, 3]  # one validation pass per epoch, with the training k
    assert load(tmp_path / "run").best_epoch_ == 1
    assert "best validation IWAE" in capsys.readouterr().out
    header, *lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert header.endswith(",val_iwae")
    val_elbo = [float(line.split(",")[header.split(",").index("val_elbo")]) for line in lines]
    assert np.argmax(val_elbo) > 0, "the ELBO alone would have kept a later epoch"
    assert "val_iwae" not in VAE(epochs=1, hidden=(8,), latent_dim=2).fit(rows).history_[0]


def test_training_objective_gradient_reaches_every_parameter():
    for posterior, prior in itertools.product(POSTERIOR_HEADS, PRIORS):
        model, config = small_model(posterior=posterior, prior=prior, prior_components=2, objective="iwae", k=2)
        objective, _ = training_objective(model, torch.randn(4, 5, dtype=F64), config)
        objective.mean().backward()
        for name, parameter in model.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, (posterior, prior, name)


def test_full_covariance_posterior_closes_the_gap_that_a_diagonal_one_cannot():
    """Linear-Gaussian model z ~ N(0, I_2), x|z ~ N(W z + b, s^2 I_4), decoder fixed at the truth.
    Its posterior N(S W^T (x - b) / s^2, S) has correlated S, so for a diagonal q the gap
    log p(x) - ELBO = KL(q || p(z|x)) is at least (1/2) log(P_11 P_22 / det P), P = S^-1
    (0.463 nats here). After the same training a linear full-covariance encoder gets the gap
    under 0.02 nats; the diagonal one stays within 0.03 of its floor."""
    D, d, noise = 4, 2, 0.5
    W = 0.5 * torch.tensor([[1.0, 0.6], [1.0, 1.2], [1.0, 0.9], [1.0, 1.3]], dtype=F64)
    b = torch.tensor([0.3, -1.0, 0.5, 2.0], dtype=F64)
    S = torch.linalg.inv(torch.eye(d, dtype=F64) + W.T @ W / noise**2)
    P = torch.linalg.inv(S)
    floor = 0.5 * math.log(P[0, 0] * P[1, 1] / torch.det(P))
    exact = MultivariateNormal(b, W @ W.T + noise**2 * torch.eye(D, dtype=F64))
    x = exact.sample((256,))
    gaps = {}
    for kind in ("diagonal", "full"):
        torch.manual_seed(0)
        decoder = GaussianFeatureScaleHead(d, D).double()
        with torch.no_grad():
            decoder.linear.weight.copy_(W)
            decoder.linear.bias.copy_(b)
            decoder.log_scale.fill_(math.log(noise))
        decoder.requires_grad_(False)
        head = POSTERIOR_HEADS[kind](D, VAEConfig(latent_dim=d)).double()
        model = LatentVariableModel(nn.Sequential(head), nn.Sequential(decoder), StandardNormalPrior(d).double())
        optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
        for _ in range(300):
            loss = -elbo(model, x, 4).elbo.mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            q = model.posterior(x)
            q_full = MultivariateNormal(q.mean, q.covariance_matrix if kind == "full" else torch.diag_embed(q.variance))
            true_posterior = MultivariateNormal((x - b) @ (S @ W.T / noise**2).T, S)
            gaps[kind] = float(kl_divergence(q_full, true_posterior).mean())
            monte_carlo_gap = float((exact.log_prob(x) - elbo(model, x, 4000).elbo).mean())
        assert abs(monte_carlo_gap - gaps[kind]) < 0.01  # the ELBO really is log p(x) - KL(q || p(z|x))
    assert floor > 0.4
    assert gaps["full"] < 0.02
    assert floor - 1e-6 <= gaps["diagonal"] < floor + 0.03


def test_warm_up_and_free_bits_keep_units_active_where_the_elbo_collapses():
    """4,000 rows of 4 standard normals, whitened so that their sample covariance is exactly
    the identity: no latent structure is worth its KL (probabilistic PCA keeps no component),
    so plain ELBO training collapses the code: after 12 epochs no unit has
    Cov_x(E_q[z_i|x]) above 0.1 (still falling: near Burda's 0.01). KL warm-up over 10 of
    the 12 epochs, or 0.5 free bits per dimension, keep all 4 units active with Cov > 0.5.
    (Deterministic: fixed seeds; measured 0.011-0.018 plain against 0.80-1.05 with the cures.)"""
    Z = np.random.default_rng(0).normal(size=(4000, 4))
    Z -= Z.mean(0)
    X = Z @ np.linalg.inv(np.linalg.cholesky(np.cov(Z.T, bias=True))).T  # sample covariance exactly I
    common = dict(latent_dim=4, hidden=(32,), epochs=12, batch_size=100, learning_rate=3e-3, patience=100)
    activity = {}
    for name, options in [("plain", {}), ("warm-up", {"kl_warmup": 10}), ("free bits", {"free_bits": 0.5})]:
        model = VAE(**common, **options).fit(X)
        figures = model.evaluate(X[:1000], k=2)
        activity[name] = np.array(figures["latent_activity"])
        assert figures["active_units"] == int((activity[name] > 0.01).sum())
    assert activity["plain"].max() < 0.1, activity
    assert (activity["warm-up"] > 0.5).all() and (activity["free bits"] > 0.5).all(), activity


COMBINATIONS = [
    (posterior, prior, objective)
    for (posterior, prior), objective in zip(itertools.product(POSTERIOR_HEADS, PRIORS), itertools.cycle(["elbo", "iwae"]))
]


@pytest.mark.parametrize("posterior,prior,objective", COMBINATIONS)
def test_every_combination_fits_evaluates_and_round_trips(tmp_path, posterior, prior, objective):
    X = np.random.default_rng(1).normal(size=(40, 5))
    options = dict(posterior=posterior, prior=prior, objective=objective, k=3, prior_components=3)
    model = VAE(latent_dim=2, hidden=(8,), epochs=2, kl_warmup=1, **options).fit(X)
    figures = model.evaluate(X, k=20)
    assert figures["elbo"] <= figures["log_likelihood"] + 1.0
    torch.testing.assert_close(figures["elbo_gap"], figures["log_likelihood"] - figures["elbo"])
    assert (figures["kl_per_dimension"] is not None) == (posterior == "diagonal" and prior == "standard")
    loaded = load(model.save(tmp_path / "m"))
    assert {k: loaded.config.to_dict()[k] for k in options} == options
    np.testing.assert_array_equal(loaded.score_samples(X, k=5), model.score_samples(X, k=5))
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    np.testing.assert_array_equal(loaded.sample(3, seed=1), model.sample(3, seed=1))


def test_cli_fit_options_are_saved_and_evaluate_prints_diagnostics(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(2).normal(size=(60, 4)))
    args = ["--posterior", "iaf", "--prior", "vamp", "--objective", "iwae", "--k", "3", "--beta", "0.5",
            "--kl-warmup", "2", "--latent-dim", "2", "--hidden", "8", "--epochs", "2", "--quiet"]
    assert call(["fit", tmp_path / "x.npy", "--out", tmp_path / "m", *args]) == 0
    saved = json.loads((tmp_path / "m" / "config.json").read_text())["model"]
    assert (saved["posterior"], saved["prior"], saved["objective"], saved["k"], saved["beta"], saved["kl_warmup"]) == (
        "iaf", "vamp", "iwae", 3, 0.5, 2.0)
    capsys.readouterr()
    assert call(["evaluate", tmp_path / "m", tmp_path / "x.npy", "--k", "10"]) == 0
    out = capsys.readouterr().out
    assert "active units:" in out and "of 2" in out and "log p(x) estimate - ELBO" in out
    assert "KL per latent dimension" not in out  # undefined for a flow posterior


@pytest.mark.parametrize(
    "options,message",
    [
        ({"posterior": "flow"}, "posterior must be one of diagonal, full, iaf"),
        ({"prior": "gmm"}, "prior must be one of standard, mog, vamp"),
        ({"objective": "iwae", "free_bits": 1.0}, "free_bits works with objective elbo only"),
        ({"beta": 0}, "beta must be a positive number"),
        ({"kl_warmup": -1}, "kl_warmup must be a number >= 0"),
        ({"k": 0}, "k must be a positive integer"),
    ],
)
def test_bad_variant_options_are_one_line_errors(options, message):
    model = VAE(**options)  # stored as given (scikit-learn's contract), checked by fit
    with pytest.raises(AevbError, match=message):
        model.fit(np.ones((4, 2)))
