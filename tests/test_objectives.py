"""The ELBO and the importance-weighted bound against a linear-Gaussian model whose
log p(x) and posterior p(z|x) are known in closed form (float64 throughout).

The model: z ~ N(0, I_2), x | z ~ N(W z + b, s^2 I_4), so
    p(x)   = N(x; b, W W^T + s^2 I)
    p(z|x) = N(S W^T (x - b) / s^2, S),  S = (I + W^T W / s^2)^-1,
and S is diagonal because W's columns are orthogonal, so a diagonal Gaussian
encoder can represent the exact posterior.
"""

import math

import pytest
import torch
from torch import nn
from torch.distributions import MultivariateNormal

from aevb.config import VAEConfig
from aevb.core.distributions import DiagonalGaussianHead, GaussianFeatureScaleHead
from aevb.core.objectives import elbo, iwae, log_importance_weights
from aevb.vae.model import LatentVariableModel, StandardNormalPrior, build_vae

D, d, NOISE = 4, 2, 0.5
F64 = torch.float64


def linear_gaussian(perturb: float = 0.0):
    """The model above, with the encoder at the exact posterior plus ``perturb`` times noise."""
    generator = torch.Generator().manual_seed(3)
    basis, _ = torch.linalg.qr(torch.randn(D, D, generator=generator, dtype=F64))
    W = basis[:, :d] * torch.tensor([2.0, 0.7], dtype=F64)
    b = torch.randn(D, generator=generator, dtype=F64)
    S = torch.linalg.inv(torch.eye(d, dtype=F64) + W.T @ W / NOISE**2)
    decoder_head = GaussianFeatureScaleHead(d, D).double()
    encoder_head = DiagonalGaussianHead(D, d).double()
    with torch.no_grad():
        decoder_head.linear.weight.copy_(W)
        decoder_head.linear.bias.copy_(b)
        decoder_head.log_scale.fill_(math.log(NOISE))
        gain = S @ W.T / NOISE**2
        encoder_head.linear.weight.zero_()
        encoder_head.linear.weight[:d] = gain
        encoder_head.linear.bias[:d] = -gain @ b
        encoder_head.linear.bias[d:] = 0.5 * torch.diagonal(S).log()
        encoder_head.linear.weight.add_(perturb * torch.randn(2 * d, D, generator=generator, dtype=F64))
    model = LatentVariableModel(nn.Sequential(encoder_head), nn.Sequential(decoder_head), StandardNormalPrior(d).double())
    exact = MultivariateNormal(b, W @ W.T + NOISE**2 * torch.eye(D, dtype=F64))
    return model, exact


def rows(n: int = 6) -> torch.Tensor:
    _, exact = linear_gaussian()
    return exact.sample((n,))


def test_exact_posterior_makes_every_importance_weight_equal_to_log_p():
    model, exact = linear_gaussian()
    x = rows()
    log_w = log_importance_weights(model, x, model.posterior(x), 50)  # (50, 6)
    torch.testing.assert_close(log_w, exact.log_prob(x).expand(50, -1), rtol=0, atol=1e-10)
    # With the analytic KL only the expectation is exact: 100k draws leave ~0.005 nats of noise.
    torch.testing.assert_close(elbo(model, x, n_samples=100_000).elbo, exact.log_prob(x), rtol=0, atol=0.03)


def test_chunked_iwae_combines_chunks_exactly():
    """With constant weights any chunking must return log p exactly (checks -log k and the last, short chunk)."""
    model, exact = linear_gaussian()
    x = rows()
    for chunk in (None, 1, 7, 1000):
        torch.testing.assert_close(iwae(model, x, 1000, chunk), exact.log_prob(x), rtol=0, atol=1e-10)


def test_log_p_equals_elbo_plus_kl_to_the_true_posterior():
    """log p(x) = ELBO(x) + KL(q(z|x) || p(z|x)) for any q; here q is off the posterior."""
    model, exact = linear_gaussian(perturb=0.3)
    x = rows(3)
    q = model.posterior(x)
    W = model.decoder[0].linear.weight
    b = model.decoder[0].linear.bias
    S = torch.linalg.inv(torch.eye(d, dtype=F64) + W.T @ W / NOISE**2)
    true_posterior = MultivariateNormal((x - b) @ (S @ W.T / NOISE**2).T, S)
    q_full = MultivariateNormal(q.base_dist.loc, torch.diag_embed(q.base_dist.scale**2))
    kl_to_posterior = torch.distributions.kl_divergence(q_full, true_posterior)
    with torch.no_grad():
        terms = elbo(model, x, n_samples=200_000)
    gap = exact.log_prob(x) - terms.elbo
    assert (kl_to_posterior > 0.05).all()  # the identity is tested away from the trivial case
    torch.testing.assert_close(gap, kl_to_posterior, rtol=0, atol=0.01)


def test_iwae_with_one_sample_is_the_elbo():
    """IWAE_1 = log p(x, z) - log q(z|x) is an unbiased estimate of the analytic-KL ELBO."""
    model, _ = linear_gaussian(perturb=0.1)
    x = rows(20)
    with torch.no_grad():
        log_w = log_importance_weights(model, x, model.posterior(x), 20_000)  # draws of IWAE_1
        analytic = elbo(model, x, n_samples=20_000).elbo
    std_error = log_w.std(0) / math.sqrt(len(log_w))
    assert ((log_w.mean(0) - analytic).abs() < 4 * std_error + 1e-3).all()


def test_bounds_are_ordered_and_tighten_with_k():
    """ELBO < IWAE_10 < IWAE_100 < IWAE_1000 <= log p(x) on average, and IWAE_1000 comes within 0.02 nats."""
    model, exact = linear_gaussian(perturb=0.1)
    x = rows(20)
    with torch.no_grad():
        elbo_mean = elbo(model, x, n_samples=20_000).elbo.mean()
        bounds = {k: torch.stack([iwae(model, x, k) for _ in range(reps)]).mean() for k, reps in [(10, 400), (100, 40), (1000, 8)]}
    log_p = exact.log_prob(x).mean()
    assert log_p - elbo_mean > 0.2  # the test is not trivial: the ELBO gap is real
    assert elbo_mean < bounds[10] < bounds[100] < bounds[1000] <= log_p + 0.005
    assert log_p - bounds[1000] < 0.02


@pytest.mark.parametrize("likelihood,scale", [("gaussian", "feature"), ("gaussian", "output"), ("bernoulli", "feature")])
def test_elbo_gradient_reaches_every_parameter(likelihood, scale):
    model = build_vae(VAEConfig(latent_dim=3, hidden=(8, 5), decoder_scale=scale), 6, likelihood).double()
    x = torch.randint(0, 2, (10, 6)).double()
    terms = elbo(model, x, n_samples=2)
    assert terms.elbo.shape == (10,)
    torch.testing.assert_close(terms.elbo, terms.reconstruction - terms.kl)
    (-terms.elbo.mean()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
