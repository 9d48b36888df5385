"""The diffusion bound against closed forms: Gaussian data, whose best denoiser is linear.

For x ~ N(mu, Sigma) and z = alpha x + sigma eps, z ~ N(alpha mu, alpha^2 Sigma + sigma^2 I) and the
best epsilon prediction is E[eps | z] = sigma (alpha^2 Sigma + sigma^2 I)^-1 (z - alpha mu). With it
plugged in, the only slack in the continuous-time bound is at the ends (the decoder at t = 0, the
prior at t = 1), so the bound tends to log N(x; mu, Sigma) as the end points widen.

Random tests: every draw follows from the seed the conftest fixture sets; tolerances are 4-5
standard errors (a false failure rate below 1e-4 per comparison if the estimators were Gaussian).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import MultivariateNormal

from aevb.diffusion.bound import (
    antithetic_times,
    diffusion_loss,
    negative_bound,
    standard_normal_diffusion_loss,
)
from aevb.diffusion.decoder import DiscreteDecoder, GaussianDecoder
from aevb.diffusion.model import DiffusionModel, alpha_sigma
from aevb.diffusion.network import EpsilonMLP
from aevb.diffusion.schedule import LinearSchedule, MonotoneSchedule

D = 3


@pytest.fixture(autouse=True)
def _float64():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


class OptimalDenoiser(nn.Module):
    """E[eps | z_t] for x ~ N(mu, Sigma), as a function of (z, gamma)."""

    def __init__(self, mu: torch.Tensor, covariance: torch.Tensor):
        super().__init__()
        self.mu = mu
        self.eigenvalues, self.eigenvectors = torch.linalg.eigh(covariance)

    def forward(self, z: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        alpha, sigma = alpha_sigma(gamma)
        # (alpha^2 Sigma + sigma^2 I)^-1 = U diag(1 / (alpha^2 lambda + sigma^2)) U^T
        inverse = 1 / (alpha[:, None] ** 2 * self.eigenvalues + sigma[:, None] ** 2)  # (B, D)
        rotated = (z - alpha[:, None] * self.mu) @ self.eigenvectors
        return sigma[:, None] * (rotated * inverse) @ self.eigenvectors.T


def gaussian():
    generator = torch.Generator().manual_seed(7)
    mu = torch.randn(D, generator=generator)
    factor = torch.randn(D, D, generator=generator) / math.sqrt(D)
    covariance = factor @ factor.T + 0.3 * torch.eye(D)
    return MultivariateNormal(mu, covariance)


def optimal_model(schedule: nn.Module, data: MultivariateNormal) -> DiffusionModel:
    return DiffusionModel(schedule, OptimalDenoiser(data.loc, data.covariance_matrix), GaussianDecoder(), D)


def test_optimal_denoiser_bound_tends_to_the_exact_log_density_and_never_exceeds_it():
    """On average over x ~ N(mu, Sigma): a row's bound is a bound on the *model's* log p(x), which
    may exceed the true density at some x, but never on average (Gibbs' inequality)."""
    data = gaussian()
    x = data.sample((256,))
    exact = data.log_prob(x)
    gaps = []
    for ends in [(-1.5, 1.5), (-3.5, 3.5), (-12.0, 12.0)]:
        terms = negative_bound(optimal_model(LinearSchedule(*ends), data), x, t_samples=512)
        gap = exact - terms.bound  # (rows,): the row's slack plus its Monte-Carlo error
        gaps.append((float(gap.mean()), float(gap.std() / math.sqrt(len(x)))))
    for gap, se in gaps:
        assert gap > -4 * se  # never above log p(x) beyond Monte-Carlo error
    (narrow_gap, narrow_se), (middle_gap, middle_se), (wide_gap, wide_se) = gaps
    assert narrow_gap > middle_gap + 4 * math.hypot(narrow_se, middle_se)  # widening helps...
    assert middle_gap > wide_gap + 4 * math.hypot(middle_se, wide_se)
    assert abs(wide_gap) < 4 * wide_se + 1e-3  # ...until the bound is the exact log-density


def test_the_standard_normal_control_variate_is_its_monte_carlo_mean():
    x = torch.randn(4, D) * 2
    gamma_0, gamma_1 = torch.tensor(-7.0), torch.tensor(4.0)
    schedule = LinearSchedule(-7.0, 4.0)
    t = torch.rand(200_000)
    gamma, dgamma = schedule(t)
    alpha, sigma = alpha_sigma(gamma)
    totals = []
    for row in x:
        eps = torch.randn(len(t), D)
        z = alpha[:, None] * row + sigma[:, None] * eps
        draws = 0.5 * dgamma * ((eps - sigma[:, None] * z) ** 2).sum(-1)
        totals.append((draws.mean(), draws.std() / math.sqrt(len(t))))
    closed = standard_normal_diffusion_loss(x, gamma_0, gamma_1)
    for value, (mean, se) in zip(closed, totals):
        assert abs(value - mean) < 5 * se


def test_the_continuous_bound_depends_on_the_schedule_only_through_its_end_points():
    data = gaussian()
    curved = MonotoneSchedule(-3.0, 3.0, width=8)
    with torch.no_grad():
        curved.b.mul_(4)  # a strongly non-linear shape between the same end points
    x = data.sample((64,))

    def expected_bound(schedule):
        with torch.no_grad():
            terms = negative_bound(optimal_model(schedule, data), x, t_samples=500)
        return float(terms.bound.mean()), float(torch.sqrt((terms.std_error**2).mean() / len(x)))

    straight, straight_se = expected_bound(LinearSchedule(-3.0, 3.0))
    shaped, shaped_se = expected_bound(curved)
    moved, moved_se = expected_bound(LinearSchedule(-2.0, 2.0))
    assert abs(straight - shaped) < 4 * math.hypot(straight_se, shaped_se)
    assert abs(straight - moved) > 4 * math.hypot(straight_se, moved_se)  # the test can tell end points apart


def test_the_discrete_time_bound_converges_to_the_continuous_one():
    data = gaussian()
    model = optimal_model(LinearSchedule(-6.0, 6.0), data)
    x = data.sample((16,))
    k = 1500

    def mean_loss(steps):
        """Mean over rows and draws, and its Monte-Carlo standard error (the rows are shared by all)."""
        with torch.no_grad():
            draws = torch.stack([diffusion_loss(model, x, t, steps) for t in antithetic_times((k, len(x)), x.dtype, x.device)])
        return float(draws.mean()), float(torch.sqrt(draws.var(0).mean() / draws.numel()))

    continuous, continuous_se = mean_loss(None)
    (coarse, coarse_se), (middle, middle_se), (fine, fine_se) = [mean_loss(steps) for steps in (2, 8, 1024)]
    # more steps, a tighter bound, converging to the continuous-time one
    assert coarse - middle > 4 * math.hypot(coarse_se, middle_se)
    assert middle - continuous > 4 * math.hypot(middle_se, continuous_se)
    assert abs(fine - continuous) < 4 * math.hypot(fine_se, continuous_se)


def test_monotone_schedule_increases_from_its_end_points_and_its_derivative_is_exact():
    schedule = MonotoneSchedule(-9.0, 3.0, width=16).double()
    t = torch.linspace(0, 1, 101, requires_grad=True)
    gamma, dgamma = schedule(t)
    assert torch.allclose(gamma[[0, -1]], torch.tensor([-9.0, 3.0]))
    assert torch.all(gamma.diff() > 0)
    (autograd,) = torch.autograd.grad(gamma.sum(), t)
    assert torch.allclose(dgamma, autograd)


def test_the_schedule_shape_learns_from_the_variance_and_the_end_points_from_the_bound():
    torch.manual_seed(1)
    net = EpsilonMLP(D, (8,), torch.ones(D), 0)
    nn.init.normal_(net.out.weight, std=0.3)
    schedule = MonotoneSchedule(-6.0, 4.0, width=8)
    model = DiffusionModel(schedule, net, GaussianDecoder(), D)
    x, t = torch.randn(5, D), torch.rand(5)
    state = torch.get_rng_state()
    variance: dict = {}
    diffusion_loss(model, x, t, variance=variance).sum().backward()
    shaped = {name: p.grad.clone() for name, p in schedule.named_parameters()}
    schedule.zero_grad()
    torch.set_rng_state(state)
    plain = diffusion_loss(model, x, t)
    mc = plain - standard_normal_diffusion_loss(x, *schedule.ends())
    grads_square = torch.autograd.grad((mc**2).sum(), [schedule.a, schedule.b], retain_graph=True)
    grads_plain = torch.autograd.grad(plain.sum(), [schedule.gamma_0, schedule.log_width])
    assert torch.allclose(shaped["a"], grads_square[0]) and torch.allclose(shaped["b"], grads_square[1])
    assert torch.allclose(shaped["gamma_0"], grads_plain[0]) and torch.allclose(shaped["log_width"], grads_plain[1])


def test_the_discrete_decoder_is_a_distribution_over_the_level_grid():
    first, spacing = torch.tensor([-1.0, 0.5]), torch.tensor([0.5, 0.25])
    decoder = DiscreteDecoder(first, spacing, 4)
    grid = decoder.grid()
    levels = torch.cartesian_prod(grid[0], grid[1])  # all 16 rows of levels
    rescaled = torch.tensor([[-0.3, 0.9]]).expand(len(levels), 2)
    p = decoder(rescaled, torch.tensor(-2.0))
    # log_prob is log P - sum log spacing: times the cell volume, the masses sum to one.
    total = (p.log_prob(levels) + spacing.log().sum()).exp().sum()
    assert torch.isclose(total, torch.tensor(1.0))
    # any value inside a level's cell snaps to that level
    jitter = (torch.rand(len(levels), 2) - 0.5) * spacing * 0.999
    assert torch.allclose(decoder.snap(levels + jitter), levels)
    assert torch.allclose(p.log_prob(levels + jitter), p.log_prob(levels))
