"""The Bayesian GP-LVM: its bound against the exact GP marginal, its psi statistics against
quadrature, holes, held-out estimates, and the estimator's surface (float64 throughout)."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal

from aevb import PPCA, VAE, AevbError, load
from aevb.gplvm.estimator import GPLVM
from aevb.gplvm.heldout import fit_posteriors, holes, importance_weighted
from aevb.gplvm.kernels import KERNELS, Kernel
from aevb.gplvm.model import SparseGPDecoder

D64 = torch.float64


def _decoder(kernel: str, n_features=3, n_inducing=12, latent_dim=2) -> SparseGPDecoder:
    decoder = SparseGPDecoder(latent_dim, n_features, n_inducing, kernel).to(D64)
    with torch.no_grad():
        for p in decoder.kernel.parameters():
            p.add_(0.3 * torch.randn_like(p))
        decoder.raw_noise.copy_(torch.linspace(-2.0, -1.0, n_features, dtype=D64))
    return decoder


@pytest.mark.parametrize("kernel", ["rbf", "matern52"])
def test_bound_at_collapsed_q_and_inducing_at_the_latents_is_the_exact_gp_marginal(kernel):
    N, D = 12, 3
    decoder = _decoder(kernel, D, N)
    z, x = torch.randn(N, 2, dtype=D64), torch.randn(N, D, dtype=D64)
    with torch.no_grad():
        decoder.inducing.copy_(z)
    per_feature = decoder.bound(x, torch.ones_like(x), z, torch.zeros_like(z), jitter=1e-12).per_feature
    K = decoder.kernel(z, z)
    for d in range(D):
        exact = MultivariateNormal(torch.zeros(N, dtype=D64), K + decoder.noise[d] * torch.eye(N, dtype=D64))
        assert per_feature[d].item() == pytest.approx(exact.log_prob(x[:, d]).item(), abs=1e-6)


def test_bound_is_below_the_exact_marginal_with_fewer_inducing_points_or_spread_q():
    N = 12
    decoder = _decoder("rbf", 2, 5)
    z, x = torch.randn(N, 2, dtype=D64), torch.randn(N, 2, dtype=D64)
    with torch.no_grad():
        decoder.inducing.copy_(z[:5])
    sparse = decoder.bound(x, torch.ones_like(x), z, torch.zeros_like(z)).per_feature
    K = decoder.kernel(z, z)
    for d in range(2):
        exact = MultivariateNormal(torch.zeros(N, dtype=D64), K + decoder.noise[d] * torch.eye(N, dtype=D64))
        assert sparse[d] < exact.log_prob(x[:, d]) - 1e-3


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_closed_form_psi_statistics_equal_quadrature(kernel):
    decoder = _decoder(kernel, latent_dim=2)
    mean, variance = torch.randn(6, 2, dtype=D64), torch.rand(6, 2, dtype=D64) * 0.5
    Z = torch.randn(5, 2, dtype=D64)
    closed = decoder.kernel.psi(mean, variance, Z)
    quadrature = Kernel.psi(decoder.kernel, mean, variance, Z)  # the generic product rule
    for a, b in zip(closed, quadrature):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_matern_psi_by_quadrature_agrees_with_monte_carlo():
    kernel = KERNELS["matern52"](2).to(D64)
    mean, variance, Z = torch.randn(3, 2, dtype=D64), torch.full((3, 2), 0.2, dtype=D64), torch.randn(4, 2, dtype=D64)
    _, psi1, psi2 = kernel.psi(mean, variance, Z)
    z = mean + variance.sqrt() * torch.randn(200_000, 1, 2, dtype=D64)  # (S, N, Q)
    k = kernel(z, Z)  # (S, N, M)
    # 200k draws: Monte Carlo standard error ~1e-3 of values of order 1
    torch.testing.assert_close(psi1, k.mean(0), atol=5e-3, rtol=0)
    torch.testing.assert_close(psi2, torch.einsum("snm,snl->nml", k, k) / len(z), atol=5e-3, rtol=0)


def test_a_hole_drops_its_row_out_of_that_features_bound_exactly():
    decoder = _decoder("rbf", 3, 6)
    mean, variance = torch.randn(10, 2, dtype=D64), torch.rand(10, 2, dtype=D64) * 0.3
    x = torch.randn(10, 3, dtype=D64)
    observed = torch.ones_like(x)
    observed[[1, 4, 7], 1] = 0
    x_holed = x.clone()
    x_holed[[1, 4, 7], 1] = 123.0  # whatever sits in a hole must not matter
    holed = decoder.bound(x_holed, observed, mean, variance).per_feature
    keep = torch.tensor([i not in (1, 4, 7) for i in range(10)])
    alone = decoder.bound(x[keep], torch.ones(int(keep.sum()), 3, dtype=D64), mean[keep], variance[keep]).per_feature
    full = decoder.bound(x, torch.ones_like(x), mean, variance).per_feature
    assert holed[1].item() == pytest.approx(alone[1].item(), abs=1e-9)
    torch.testing.assert_close(holed[[0, 2]], full[[0, 2]])


def _holed(N: int, D: int):
    """Rows (N, D) with holes in different rows of different features (several patterns)."""
    x = torch.randn(N, D, dtype=D64)
    observed = torch.ones_like(x)
    observed[[0, 5], 0] = 0
    observed[[2, 3, 9], 1] = 0
    observed[[5], 2] = 0
    return torch.where(observed.bool(), x, torch.full_like(x, 77.0)), observed


@pytest.mark.parametrize("kernel", ["rbf", "matern52"])
def test_with_holes_the_tight_bound_is_the_exact_gp_marginal_of_each_features_observed_rows(kernel):
    N, D = 12, 4
    decoder = _decoder(kernel, D, N)
    z = torch.randn(N, 2, dtype=D64)
    x, observed = _holed(N, D)
    with torch.no_grad():
        decoder.inducing.copy_(z)
    per_feature = decoder.bound(x, observed, z, torch.zeros_like(z), jitter=1e-12).per_feature
    K = decoder.kernel(z, z)
    for d in range(D):
        rows = observed[:, d].bool()
        exact = MultivariateNormal(
            torch.zeros(int(rows.sum()), dtype=D64), K[rows][:, rows] + decoder.noise[d] * torch.eye(int(rows.sum()), dtype=D64)
        )
        assert per_feature[d].item() == pytest.approx(exact.log_prob(x[rows, d]).item(), abs=1e-6)


def test_with_holes_the_predictive_is_each_features_exact_gp_posterior():
    """Z at the latents, q(z) collapsed: q(u) is the exact posterior, so the predictive at new
    points is the exact GP's, conditioned on each feature's observed rows only."""
    N, D = 10, 3
    decoder = _decoder("rbf", D, N)
    z, new = torch.randn(N, 2, dtype=D64), torch.randn(7, 2, dtype=D64)
    x, observed = _holed(N, D)
    with torch.no_grad():
        decoder.inducing.copy_(z)
        decoder.condition(decoder.bound(x, observed, z, torch.zeros_like(z)))
        mean, variance = decoder.predictive(new)
    for d in range(D):
        rows = observed[:, d].bool()
        K = decoder.kernel(z[rows], z[rows]) + decoder.noise[d] * torch.eye(int(rows.sum()), dtype=D64)
        cross = decoder.kernel(new, z[rows])
        exact_mean = cross @ torch.linalg.solve(K, x[rows, d])
        exact_variance = decoder.kernel.diagonal(new) - (cross * torch.linalg.solve(K, cross.T).T).sum(-1)
        torch.testing.assert_close(mean[:, d], exact_mean, rtol=0, atol=1e-5)
        torch.testing.assert_close(variance[:, d], exact_variance + decoder.noise[d], rtol=0, atol=1e-5)


def curve(n: int, rng) -> np.ndarray:
    """Rows near a closed 1-D curve in 5-D, noise sd 0.05."""
    t = rng.uniform(0, 2 * np.pi, n)
    X = np.stack([np.cos(t), np.sin(t), np.cos(2 * t), 0.5 * np.sin(2 * t), t / 3], 1)
    return X + 0.05 * rng.normal(size=X.shape)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    train, test = curve(100, rng), curve(60, rng)
    return GPLVM(latent_dim=1, inducing=16, epochs=500, inference_steps=200).fit(train, progress=False), train, test


def test_held_out_estimate_is_above_its_elbo_and_tightens_with_k(fitted):
    model, _, test = fitted
    per_row = {k: [] for k in (1, 10, 100)}
    elbos = []
    for seed in range(3):
        for k in per_row:
            figures = model.held_out(test, k=k, seed=seed)
            per_row[k].append(figures.log_marginal.numpy())
            if k == 100:
                elbos.append(figures.elbo.numpy())
    single = np.concatenate(per_row[1])
    elbo = np.mean(elbos)
    m1, m10, m100 = (np.mean(per_row[k]) for k in (1, 10, 100))
    # IWAE_1 is an unbiased estimate of the ELBO: within 4 standard errors (fails ~1 in 15,000)
    assert abs(m1 - elbo) < 4 * single.std() / math.sqrt(len(single))
    assert m100 > m10 > m1
    assert m100 >= elbo


def test_scores_do_not_depend_on_the_order_or_batching_of_rows(fitted):
    model, _, test = fitted
    whole = model.score_samples(test, k=20)
    order = np.random.default_rng(1).permutation(len(test))
    shuffled = GPLVM.score_samples(model, test[order], k=20)
    parts = np.concatenate([model.score_samples(test[:25], k=20), model.score_samples(test[25:], k=20)])
    np.testing.assert_allclose(shuffled, whole[order], rtol=0, atol=1e-7)
    np.testing.assert_allclose(parts, whole, rtol=0, atol=1e-7)


def test_a_missing_feature_drops_out_of_the_score_exactly(fitted):
    model, _, test = fitted
    rows = test[:5].copy()
    rows[:, 2] = np.nan
    decoder, y = model.model_, torch.as_tensor((rows - model.preprocessor_.shift) / model.preprocessor_.scale)
    x0, observed = holes(y)
    q = fit_posteriors(decoder, x0, observed, 50, 8)
    with_hole = importance_weighted(decoder, x0, observed, q, 10).log_marginal
    # the same rows with the feature removed from the model: its GP and noise dropped
    keep = [0, 1, 3, 4]
    reduced = SparseGPDecoder(1, 4, 16, "rbf").to(D64)  # no encoder: q is given
    state = {n: t for n, t in decoder.state_dict().items() if not n.startswith("encoder.")}
    state["raw_noise"], state["chol_b"], state["mean_weights"] = (state[n][keep] for n in ("raw_noise", "chol_b", "mean_weights"))
    reduced.load_state_dict(state)
    without = importance_weighted(reduced, y[:, keep], torch.ones(5, 4, dtype=D64), q, 10).log_marginal
    torch.testing.assert_close(with_hole, without)
    scored = model.score_samples(rows, k=10)
    assert np.isfinite(scored).all()


def test_gplvm_beats_ppca_and_the_default_vae_on_a_curve_at_100_rows(fitted):
    model, train, test = fitted
    gplvm = model.score(test, k=50)
    assert gplvm > PPCA(latent_dim=1).fit(train).score(test) + 1.0
    assert gplvm > VAE().fit(train, progress=False).score(test) + 1.0


def test_an_encoder_is_trained_by_the_generic_loop_on_the_gplvm_bound(fitted):
    model, train, _ = fitted
    assert model.stopped_because_ in ("epochs", "converged") and model.training_latents_.shape == (100, 1)
    encoded = GPLVM(latent_dim=1, inducing=8, epochs=60, patience=60, inference_steps=20, hidden=(16,))
    encoded.fit(train, progress=False)
    history = encoded.history_
    assert set(history[0]) >= {"train_bound", "train_kl", "val_elbo"} and len(history) == 60
    assert history[-1]["train_bound"] > history[0]["train_bound"] + 1.0  # the bound climbs


def test_save_load_round_trip_and_surface(fitted, tmp_path):
    model, _, test = fitted
    model.save(tmp_path / "gp")
    again = load(tmp_path / "gp")
    assert isinstance(again, GPLVM)
    np.testing.assert_allclose(again.score_samples(test[:10], k=10), model.score_samples(test[:10], k=10), atol=1e-9)
    assert model.sample(7, seed=0).shape == (7, 5)
    np.testing.assert_array_equal(model.sample(3, seed=4), again.sample(3, seed=4))
    assert model.transform(test[:4]).shape == (4, 1)
    figures = model.evaluate(test[:20], k=20)
    assert figures["log_likelihood"] >= figures["elbo"] - 0.5 and figures["n_rows"] == 20


def test_bad_input_is_an_aevb_error(fitted):
    model, _, test = fitted
    with pytest.raises(AevbError, match="columns"):
        model.score_samples(test[:, :3])
    bad = test[:3].copy()
    bad[0, 0] = np.inf
    with pytest.raises(AevbError, match="infinite"):
        model.score_samples(bad)
    with pytest.raises(AevbError, match="kernel"):
        GPLVM(kernel="cubic").fit(test)
    with pytest.raises(AevbError, match="not fitted"):
        GPLVM().score_samples(test)


def test_command_line_fit_score_evaluate_sample_encode(tmp_path):
    from cli_helpers import call

    rows = curve(40, np.random.default_rng(3))
    np.save(tmp_path / "rows.npy", rows)
    run = tmp_path / "gp"
    small = ["--inducing", 8, "--epochs", 60, "--inference-steps", 40, "--hidden", 16]  # the generic loop
    assert call(["fit", tmp_path / "rows.npy", "--model", "gplvm", "--latent-dim", 1, "--out", run, "-q", *small]) == 0
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "train_bound" in header and "val_elbo" in header
    assert call(["score", run, tmp_path / "rows.npy", "--out", tmp_path / "s.csv", "--k", 10]) == 0
    scores = np.genfromtxt(tmp_path / "s.csv", delimiter=",", names=True)
    np.testing.assert_allclose(scores["log_likelihood"], load(run).score_samples(rows, k=10), atol=1e-6)
    assert call(["evaluate", run, tmp_path / "rows.npy", "--k", 10, "--json", tmp_path / "e.json"]) == 0
    assert call(["sample", run, "-n", 5, "--out", tmp_path / "x.npy"]) == 0
    assert np.load(tmp_path / "x.npy").shape == (5, 5)
    assert call(["encode", run, tmp_path / "rows.npy", "--out", tmp_path / "z.npy"]) == 0
    assert np.load(tmp_path / "z.npy").shape == (40, 1)
    assert call(["fit", tmp_path / "rows.npy", "--model", "gplvm", "--out", run, "--kernel", "cubic"]) == 2


def test_command_line_takes_nan_in_a_npy_file_as_holes(tmp_path):
    from cli_helpers import call

    rows = curve(30, np.random.default_rng(4))
    rows[[2, 5], 1] = np.nan
    rows[9, [0, 3]] = np.nan
    np.save(tmp_path / "rows.npy", rows)
    run = tmp_path / "gp"
    small = ["--inducing", 8, "--epochs", 40, "--inference-steps", 30]  # free q(z), all rows at once
    assert call(["fit", tmp_path / "rows.npy", "--model", "gplvm", "--latent-dim", 1, "--out", run, "-q", *small]) == 0
    assert call(["score", run, tmp_path / "rows.npy", "--out", tmp_path / "s.csv", "--k", 10]) == 0
    scores = np.genfromtxt(tmp_path / "s.csv", delimiter=",", names=True)["log_likelihood"]
    model = load(run)
    np.testing.assert_allclose(scores, model.score_samples(rows, k=10), atol=1e-6)
    assert np.isfinite(scores).all()
    python = GPLVM(latent_dim=1, inducing=8, epochs=40, inference_steps=30).fit(rows, progress=False)
    np.testing.assert_allclose(python.score_samples(rows, k=10), scores, atol=1e-6)  # the same fit
    rows[0, 0] = np.inf
    np.save(tmp_path / "bad.npy", rows)
    assert call(["score", run, tmp_path / "bad.npy", "--out", tmp_path / "b.csv"]) == 2
