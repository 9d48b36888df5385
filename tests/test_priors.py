"""Priors p(z) are normalized densities that their samplers draw from (float64)."""

import pytest
import torch
from torch import nn

from aevb.config import VAEConfig
from aevb.core.priors import MixturePrior, VampPrior
from aevb.vae.model import POSTERIOR_HEADS, PRIORS, build_vae

F64 = torch.float64
FEATURES = 3


def encoder(kind: str, dim: int) -> nn.Module:
    return POSTERIOR_HEADS[kind](FEATURES, VAEConfig(latent_dim=dim)).double()


def prior_distribution(name: str, dim: int, posterior: str = "diagonal", components: int = 3):
    config = VAEConfig(latent_dim=dim, prior=name, posterior=posterior, prior_components=components)
    enc = encoder(posterior, dim)
    prior = PRIORS[name](FEATURES, config).double()
    if isinstance(prior, MixturePrior):
        with torch.no_grad():
            prior.logits.normal_()
            prior.log_scale.uniform_(-1.0, 0.5)
    return prior(enc)


def integrate(log_prob, dim: int):
    """(integral of exp(log_prob), integral of z exp(log_prob)) over a grid in 1 or 2 dimensions."""
    half_width, points = (25.0, 5001) if dim == 1 else (12.0, 481)
    axis = torch.linspace(-half_width, half_width, points, dtype=F64)
    z = torch.stack(torch.meshgrid(*[axis] * dim, indexing="ij"), dim=-1).reshape(-1, dim)
    with torch.no_grad():
        weights = log_prob(z).exp() * (axis[1] - axis[0]) ** dim
    return float(weights.sum()), weights @ z


CASES = [("standard", "diagonal"), ("mog", "diagonal"), ("vamp", "diagonal"), ("vamp", "full"), ("vamp", "iaf")]


@pytest.mark.parametrize("name,posterior", CASES)
@pytest.mark.parametrize("dim", [1, 2])
def test_prior_normalizes_and_sampling_matches_its_mean(name, posterior, dim):
    p = prior_distribution(name, dim, posterior)
    mass, mean = integrate(p.log_prob, dim)
    assert abs(mass - 1) < 2e-3
    draws = p.sample((50_000,))
    std_error = draws.std(0) / 50_000**0.5
    assert ((draws.mean(0) - mean).abs() < 5 * std_error).all()


def test_mixture_prior_density_is_the_weighted_sum_of_its_gaussians():
    prior = MixturePrior(2, 3).double()
    with torch.no_grad():
        prior.logits.normal_()
    p = prior()
    z = torch.randn(10, 2, dtype=F64)
    weights = prior.logits.softmax(0)
    scale = prior.log_scale.exp()
    parts = [torch.distributions.Normal(prior.loc[c], scale[c]).log_prob(z).sum(-1).exp() * weights[c] for c in range(3)]
    torch.testing.assert_close(p.log_prob(z), torch.stack(parts).sum(0).log())


@pytest.mark.parametrize("posterior", list(POSTERIOR_HEADS))
def test_vamp_prior_with_one_pseudo_input_is_that_posterior(posterior):
    enc = encoder(posterior, 3)
    prior = VampPrior(FEATURES, 1).double()
    z = torch.randn(7, 3, dtype=F64)
    single = enc(prior.pseudo_inputs[0])
    torch.testing.assert_close(prior(enc).log_prob(z), single.log_prob(z), rtol=1e-10, atol=1e-10)


def test_vamp_prior_gradient_reaches_pseudo_inputs_and_encoder_is_saved_once():
    model = build_vae(VAEConfig(latent_dim=2, hidden=(4,), prior="vamp", prior_components=2), FEATURES, "gaussian")
    model.prior_distribution().log_prob(torch.randn(5, 2)).sum().backward()
    assert model.prior.pseudo_inputs.grad.abs().sum() > 0
    assert not any(name.startswith("prior.") and "encoder" in name for name in model.state_dict())
