"""The latent-variable model: a prior p(z), an encoder q(z|x) and a decoder p(x|z).

Each part is a module that returns a torch.distributions object, so the
objectives in :mod:`aevb.objectives` are written once for any choice of them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal

from .config import VAEConfig
from .distributions import (
    BernoulliHead,
    DiagonalGaussianHead,
    GaussianFeatureScaleHead,
    GaussianOutputScaleHead,
)
from .linear import LinearGaussianDecoder
from .nets import mlp


class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I) over ``dim`` latent dimensions."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("loc", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def forward(self) -> Independent:
        return Independent(Normal(self.loc, self.scale), 1)


class LatentVariableModel(nn.Module):
    """p(x, z) = p(z) p(x|z), with an amortized posterior q(z|x)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, prior: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior

    @property
    def latent_dim(self) -> int:
        return self.prior().event_shape[0]

    def posterior(self, x: torch.Tensor) -> Distribution:
        """q(z|x) for rows x (B, D); batch shape (B,), event shape (latent_dim,)."""
        return self.encoder(x)

    def likelihood(self, z: torch.Tensor) -> Distribution:
        """p(x|z) for latents z (..., latent_dim); batch shape (...), event shape (D,)."""
        return self.decoder(z)

    def sample_latents(self, n: int) -> torch.Tensor:
        """n draws from the prior, shape (n, latent_dim)."""
        return self.prior().sample((n,))

    def exact_marginal(self) -> Distribution | None:
        """p(x) in closed form where the decoder gives one under this prior (linear-Gaussian), else None."""
        marginal = getattr(self.decoder, "marginal", None)
        return marginal() if marginal is not None and isinstance(self.prior, StandardNormalPrior) else None


class LinearGaussianModel(LatentVariableModel):
    """z ~ N(0, I), x | z ~ N(Wz + b, diag psi), with the exact posterior p(z|x) in place of an encoder."""

    def __init__(self, decoder: LinearGaussianDecoder):
        super().__init__(None, decoder, StandardNormalPrior(decoder.linear.in_features))

    def posterior(self, x: torch.Tensor) -> MultivariateNormal:
        return self.decoder.exact_posterior(x)


LIKELIHOOD_HEADS = {
    ("bernoulli", "feature"): BernoulliHead,
    ("bernoulli", "output"): BernoulliHead,
    ("gaussian", "feature"): GaussianFeatureScaleHead,
    ("gaussian", "output"): GaussianOutputScaleHead,
}


def build_vae(config: VAEConfig, n_features: int, likelihood: str) -> LatentVariableModel:
    """The MLP VAE that ``config`` describes, for rows of ``n_features`` values.

    ``likelihood`` is the resolved family ("gaussian" or "bernoulli"), never "auto".
    """
    hidden = config.hidden
    encoder = nn.Sequential(mlp(n_features, hidden), DiagonalGaussianHead(hidden[-1], config.latent_dim))
    if config.decoder == "linear":
        # A linear Gaussian decoder has one noise scale per feature, whatever decoder_scale says:
        # that keeps p(x) = N(b, W W^T + Psi) in closed form.
        decoder_class = LinearGaussianDecoder if likelihood == "gaussian" else BernoulliHead
        decoder = decoder_class(config.latent_dim, n_features)
    else:
        head = LIKELIHOOD_HEADS[(likelihood, config.decoder_scale)](hidden[0], n_features)
        decoder = nn.Sequential(mlp(config.latent_dim, hidden[::-1]), head)
    return LatentVariableModel(encoder, decoder, StandardNormalPrior(config.latent_dim))
