"""Heads return the distributions their docstrings promise (float64 throughout)."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from aevb.core.distributions import (
    BernoulliHead,
    DiagonalGaussianHead,
    GaussianFeatureScaleHead,
    GaussianOutputScaleHead,
)

HEADS = [DiagonalGaussianHead, BernoulliHead, GaussianFeatureScaleHead, GaussianOutputScaleHead]


def test_log_q_equals_change_of_variables():
    """log q(z|x) = log p(eps) - sum_i log sigma_i for z = mu + sigma * eps (seed 003, 2.33-2.40)."""
    head = DiagonalGaussianHead(5, 3).double()
    q = head(torch.randn(7, 5, dtype=torch.float64))
    eps = torch.randn(7, 3, dtype=torch.float64)
    z = q.base_dist.loc + q.base_dist.scale * eps
    log_p_eps = Normal(0.0, 1.0).log_prob(eps).sum(-1)
    change_of_variables = log_p_eps - q.base_dist.scale.log().sum(-1)
    torch.testing.assert_close(q.log_prob(z), change_of_variables, rtol=1e-12, atol=1e-12)


def test_rsample_is_mu_plus_sigma_eps():
    head = DiagonalGaussianHead(4, 2).double()
    q = head(torch.randn(3, 4, dtype=torch.float64))
    torch.manual_seed(1)
    z = q.rsample()
    torch.manual_seed(1)
    eps = torch.randn(3, 2, dtype=torch.float64)
    torch.testing.assert_close(z, q.base_dist.loc + q.base_dist.scale * eps)


def test_analytic_kl_matches_monte_carlo():
    """KL(q || N(0, I)) in closed form vs the average of log q - log p over 200k draws."""
    loc = torch.tensor([[0.3, -1.2, 2.0]], dtype=torch.float64)
    scale = torch.tensor([[0.5, 1.7, 0.1]], dtype=torch.float64)
    q = Independent(Normal(loc, scale), 1)
    p = Independent(Normal(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)), 1)
    closed = 0.5 * (scale**2 + loc**2 - 1 - 2 * scale.log()).sum(-1)
    torch.testing.assert_close(kl_divergence(q, p), closed)
    z = q.sample((200_000,))
    terms = q.log_prob(z) - p.log_prob(z)
    mc, std_error = terms.mean(0), terms.std(0) / math.sqrt(len(terms))
    assert (mc - closed).abs().item() < 4 * std_error.item()


@pytest.mark.parametrize("head_class", HEADS)
def test_shapes_and_gradients(head_class):
    head = head_class(6, 4).double()
    h = torch.randn(5, 3, 6, dtype=torch.float64)  # extra leading dims, as for k draws of z
    dist = head(h)
    assert dist.batch_shape == (5, 3) and dist.event_shape == (4,)
    value = dist.sample()
    log_prob = dist.log_prob(value)
    assert log_prob.shape == (5, 3)
    log_prob.sum().backward()
    for name, parameter in head.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_gaussian_heads_start_at_the_given_noise_level():
    for head_class in (GaussianFeatureScaleHead, GaussianOutputScaleHead):
        head = head_class(3, 2, init_log_scale=-1.5).double()
        with torch.no_grad():
            head.linear.weight.zero_()
        scale = head(torch.randn(4, 3, dtype=torch.float64)).base_dist.scale
        torch.testing.assert_close(scale, torch.full((4, 2), math.exp(-1.5), dtype=torch.float64))
