"""Every posterior q(z|x) is a proper density that its own sampler draws from (float64).

Normalization and moments are integrated on a grid in 1 and 2 dimensions; the
flow's log-determinant is checked against autograd's Jacobian.
"""

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from aevb.config import VAEConfig
from aevb.core.flows import IAFHead
from aevb.vae.model import POSTERIOR_HEADS

F64 = torch.float64
FEATURES = 5
POSTERIORS = list(POSTERIOR_HEADS)


def posterior(kind: str, dim: int, seed: int = 0):
    """q(z|x) of a randomly initialized ``kind`` head at one random x: batch (1,), event (dim,).

    The flow's output layers are given random weights (they start near the identity),
    so the flow really bends the Gaussian.
    """
    torch.manual_seed(seed)
    head = POSTERIOR_HEADS[kind](FEATURES, VAEConfig(latent_dim=dim)).double()
    if isinstance(head, IAFHead):
        with torch.no_grad():
            for step in head.steps:
                step.out.weight.normal_(0.0, 0.7)
                step.out.bias.normal_(0.0, 1.0)
    return head, head(0.5 * torch.randn(1, FEATURES, dtype=F64))


def grid(dim: int, half_width: float = 9.0, points: int = 1201):
    """Grid points (N, 1, dim) covering [-half_width, half_width]^dim and the volume of one cell."""
    axis = torch.linspace(-half_width, half_width, points if dim == 1 else 401, dtype=F64)
    mesh = torch.stack(torch.meshgrid(*[axis] * dim, indexing="ij"), dim=-1).reshape(-1, dim)
    return mesh[:, None, :], float((axis[1] - axis[0]) ** dim)


@pytest.mark.parametrize("kind", POSTERIORS)
@pytest.mark.parametrize("dim", [1, 2])
def test_log_prob_integrates_to_one(kind, dim):
    _, q = posterior(kind, dim)
    z, cell = grid(dim)
    with torch.no_grad():
        mass = float(q.log_prob(z).exp().sum() * cell)
    assert abs(mass - 1) < 2e-3


@pytest.mark.parametrize("kind", POSTERIORS)
@pytest.mark.parametrize("dim", [1, 2])
def test_samples_have_the_moments_of_the_density(kind, dim):
    """Mean and covariance of 100k draws against the integrals of z and z z^T under exp(log_prob);
    5 standard errors (a failure rate ~1e-6 per moment with the fixed seed)."""
    _, q = posterior(kind, dim)
    z, cell = grid(dim)
    with torch.no_grad():
        density = q.log_prob(z).exp()[:, 0] * cell  # (N,)
        points = z[:, 0, :]
        mean = density @ points
        centred = points - mean
        covariance = (centred * density[:, None]).T @ centred
        draws = q.sample((100_000,))[:, 0, :]
    std_error = (torch.diagonal(covariance) / len(draws)).sqrt()
    assert ((draws.mean(0) - mean).abs() < 5 * std_error).all()
    sample_cov = torch.cov(draws.T).reshape(dim, dim)
    cov_error = ((torch.diagonal(covariance)[:, None] * torch.diagonal(covariance)[None, :]) * 2 / len(draws)).sqrt()
    assert ((sample_cov - covariance).abs() < 5 * cov_error).all()


@pytest.mark.parametrize("kind", POSTERIORS)
def test_rsample_is_differentiable_and_log_prob_of_own_draws_is_exact(kind):
    """Scoring the draws the flow just made (cached) equals scoring them afresh (inverted)."""
    head, q = posterior(kind, 3)
    z = q.rsample((4,))
    torch.testing.assert_close(q.log_prob(z), q.log_prob(z.detach().clone()), rtol=1e-9, atol=1e-9)
    (z.sum() + q.log_prob(z).sum()).backward()
    for name, parameter in head.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_full_covariance_log_prob_is_multivariate_normal():
    """The head's lower-triangular factor L: positive diagonal, zero above; log q = MVN(mu, L L^T)."""
    head, q = posterior("full", 4)
    L = q.scale_tril[0]
    assert (torch.diagonal(L) > 0).all() and torch.equal(L.triu(1), torch.zeros_like(L))
    reference = MultivariateNormal(q.loc, covariance_matrix=q.scale_tril @ q.scale_tril.mT)
    z = torch.randn(50, 1, 4, dtype=F64)
    torch.testing.assert_close(q.log_prob(z), reference.log_prob(z), rtol=1e-10, atol=1e-10)


def test_full_covariance_kl_to_standard_normal_is_closed_form():
    """The registered KL(N(m, S) || N(0, I)) = (tr S + m^T m - d - log det S) / 2."""
    _, q = posterior("full", 3)
    p = Independent(Normal(torch.zeros(3, dtype=F64), torch.ones(3, dtype=F64)), 1)
    S, m = q.covariance_matrix[0], q.loc[0]
    closed = 0.5 * (torch.trace(S) + m @ m - 3 - torch.logdet(S))
    torch.testing.assert_close(kl_divergence(q, p)[0], closed, rtol=1e-10, atol=1e-10)


def test_flow_log_determinant_equals_autograd_jacobian():
    """For each IAF step and for the whole flow, log|det dz'/dz| from autograd equals the
    transform's log_abs_det_jacobian, at random points; log q(z) is then the change of variables."""
    _, q = posterior("iaf", 4)
    for _ in range(5):
        z0 = 2 * torch.randn(1, 4, dtype=F64)
        z = z0
        total = torch.zeros(1, dtype=F64)
        for transform in q.transforms:
            jacobian = torch.autograd.functional.jacobian(lambda v: transform(v[None])[0], z[0])
            torch.testing.assert_close(
                transform.log_abs_det_jacobian(z, transform(z)), torch.linalg.slogdet(jacobian)[1][None],
                rtol=1e-10, atol=1e-10,
            )
            total = total + torch.linalg.slogdet(jacobian)[1]
            z = transform(z)
        torch.testing.assert_close(q.log_prob(z.clone()), q.base_dist.log_prob(z0) - total, rtol=1e-9, atol=1e-9)


def test_flow_inverse_undoes_the_forward_map():
    _, q = posterior("iaf", 5)
    z = torch.randn(20, 1, 5, dtype=F64)
    for transform in q.transforms:
        torch.testing.assert_close(transform._inverse(transform(z)), z, rtol=1e-9, atol=1e-9)


def test_flow_mean_is_deterministic_and_close_to_the_sample_mean():
    _, q = posterior("iaf", 2)
    torch.testing.assert_close(q.mean, q.mean)
    draws = q.sample((100_000,))
    assert ((q.mean - draws.mean(0)).abs() < 0.05 * draws.std(0) + 1e-6).all()
