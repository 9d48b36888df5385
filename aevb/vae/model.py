"""The latent-variable model: a prior p(z), an encoder q(z|x) and a decoder p(x|z).

Each part is a module that returns a torch.distributions object, so the
objectives in :mod:`aevb.objectives` are written once for any choice of them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution, MultivariateNormal

from ..config import VAEConfig
from ..core.distributions import (
    BernoulliHead,
    DiagonalGaussianHead,
    FullCovarianceGaussianHead,
    GaussianFeatureScaleHead,
    GaussianOutputScaleHead,
)
from ..core.flows import IAFHead
from ..core.nets import mlp
from ..core.priors import MixturePrior, StandardNormalPrior, VampPrior
from ..errors import AevbError
from ..images.decoders import FlatOutputs, LevelsToUnit, PixelDecoder, outputs_per_pixel
from ..images.hierarchy import LadderVAE
from ..images.nets import ConvDecoderBody, ConvEncoderBody
from ..images.pixels import DISCRETE_LIKELIHOODS
from ..linear.decoder import LinearGaussianDecoder


class LatentVariableModel(nn.Module):
    """p(x, z) = p(z) p(x|z), with an amortized posterior q(z|x)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, prior: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior

    @property
    def latent_dim(self) -> int:
        return self.prior_distribution().event_shape[0]

    def prior_distribution(self) -> Distribution:
        """p(z), event shape (latent_dim,). The prior module gets the encoder (the VampPrior needs it)."""
        return self.prior(self.encoder)

    def posterior(self, x: torch.Tensor) -> Distribution:
        """q(z|x) for rows x (B, D); batch shape (B,), event shape (latent_dim,)."""
        return self.encoder(x)

    def likelihood(self, z: torch.Tensor) -> Distribution:
        """p(x|z) for latents z (..., latent_dim); batch shape (...), event shape (D,)."""
        return self.decoder(z)

    def sample_latents(self, n: int) -> torch.Tensor:
        """n draws from the prior, shape (n, latent_dim)."""
        return self.prior_distribution().sample((n,))

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


# Each maker takes (features in, config) and returns the module for that choice.
POSTERIOR_HEADS = {
    "diagonal": lambda in_features, config: DiagonalGaussianHead(in_features, config.latent_dim),
    "full": lambda in_features, config: FullCovarianceGaussianHead(in_features, config.latent_dim),
    "iaf": lambda in_features, config: IAFHead(in_features, config.latent_dim, config.flow_layers),
}

LIKELIHOOD_HEADS = {
    ("bernoulli", "feature"): BernoulliHead,
    ("bernoulli", "output"): BernoulliHead,
    ("gaussian", "feature"): GaussianFeatureScaleHead,
    ("gaussian", "output"): GaussianOutputScaleHead,
}


PRIORS = {
    "standard": lambda n_features, config: StandardNormalPrior(config.latent_dim),
    "mog": lambda n_features, config: MixturePrior(config.latent_dim, config.prior_components),
    "vamp": lambda n_features, config: VampPrior(n_features, config.prior_components),
}


# auto picks conv nets for images at least this many pixels on their shorter side: on 8x8 digits an
# MLP trains several times faster per epoch and scores better at an equal budget (benchmarks/images.py).
CONV_MIN_SIDE = 16


def resolved_net(config: VAEConfig, image_shape: tuple[int, ...] | None) -> str:
    """"conv" or "mlp": what ``config.net`` means for data of this image shape (None: plain rows)."""
    if config.net == "conv" and not image_shape:
        raise AevbError("--net conv needs images (a folder of images, an (N, H, W[, C]) array or digits)")
    if config.net == "auto":
        large = bool(image_shape) and min(image_shape[:2]) >= CONV_MIN_SIDE
        return "conv" if large and config.decoder == "mlp" else "mlp"
    return config.net


def build_pixel_vae(
    config: VAEConfig, n_features: int, likelihood: str, n_levels: int | None, image_shape: tuple[int, ...] | None
) -> nn.Module:
    """A VAE whose decoder gives a distribution per pixel (:mod:`aevb.images.decoders`), with MLP or
    residual conv networks and ``config.latent_layers`` stochastic layers."""
    net, width = resolved_net(config, image_shape), config.hidden[-1]
    if net == "conv":
        body = ConvEncoderBody(image_shape, config.conv_width, width)
    else:
        body = mlp(n_features, config.hidden)
    if likelihood in DISCRETE_LIKELIHOODS:
        body = nn.Sequential(LevelsToUnit(n_levels), body)
    outputs = outputs_per_pixel(likelihood, n_levels, config.mixture_components)
    if net == "conv":
        decoder_body = ConvDecoderBody(config.latent_dim, image_shape, config.conv_width, outputs)
    else:
        decoder_body = nn.Sequential(mlp(config.latent_dim, config.hidden[::-1]), FlatOutputs(config.hidden[0], n_features, outputs))
    decoder = PixelDecoder(decoder_body, likelihood, n_levels)
    if config.latent_layers > 1:
        return LadderVAE(body, width, decoder, config.latent_dim, config.latent_layers)
    encoder = nn.Sequential(body, POSTERIOR_HEADS[config.posterior](width, config))
    return LatentVariableModel(encoder, decoder, PRIORS[config.prior](n_features, config))


def build_vae(
    config: VAEConfig,
    n_features: int,
    likelihood: str,
    n_levels: int | None = None,
    image_shape: tuple[int, ...] | None = None,
) -> LatentVariableModel:
    """The VAE that ``config`` describes, for rows of ``n_features`` values (flattened images
    of ``image_shape``, if not None).

    ``likelihood`` is the resolved family, never "auto"; ``n_levels`` the number of levels a
    discrete likelihood spreads over. Conv nets, discrete likelihoods and hierarchies are built
    by :func:`build_pixel_vae`; the MLP VAE with a Gaussian or Bernoulli decoder here.
    """
    if config.latent_layers > 1 or likelihood in DISCRETE_LIKELIHOODS or resolved_net(config, image_shape) == "conv":
        return build_pixel_vae(config, n_features, likelihood, n_levels, image_shape)
    hidden = config.hidden
    encoder = nn.Sequential(mlp(n_features, hidden), POSTERIOR_HEADS[config.posterior](hidden[-1], config))
    if config.decoder == "linear":
        # A linear Gaussian decoder has one noise scale per feature, whatever decoder_scale says:
        # that keeps p(x) = N(b, W W^T + Psi) in closed form.
        decoder_class = LinearGaussianDecoder if likelihood == "gaussian" else BernoulliHead
        decoder = decoder_class(config.latent_dim, n_features)
    else:
        head = LIKELIHOOD_HEADS[(likelihood, config.decoder_scale)](hidden[0], n_features)
        decoder = nn.Sequential(mlp(config.latent_dim, hidden[::-1]), head)
    return LatentVariableModel(encoder, decoder, PRIORS[config.prior](n_features, config))
