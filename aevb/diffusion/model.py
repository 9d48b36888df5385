"""The variational diffusion model: a noise schedule, an epsilon network and a decoder at t = 0.

A deep latent-variable model with latents z_t, t in [0, 1]:

    p(z_1) = N(0, I),   p(z_s | z_t) = q(z_s | z_t, x = x_hat(z_t)),   p(x | z_0) (:mod:`.decoder`),
    x_hat(z_t) = (z_t - sigma_t eps_hat(z_t, gamma_t)) / alpha_t,

trained and scored on the variational bound of :mod:`.bound`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution

from .average import WeightAverage


def alpha_sigma(gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha, sigma) of the variance-preserving process: alpha^2 = sigmoid(-gamma), sigma^2 = sigmoid(gamma)."""
    return torch.sigmoid(-gamma).sqrt(), torch.sigmoid(gamma).sqrt()


class DiffusionModel(nn.Module):
    """schedule: t -> (gamma, gamma'); denoiser: (z, gamma) -> eps_hat; decoder: p(x | z_0)."""

    def __init__(self, schedule: nn.Module, denoiser: nn.Module, decoder: nn.Module, n_features: int,
                 control_variate: bool = True, average_decay: float = 0.0):
        super().__init__()
        self.n_features = n_features
        # Estimate the diffusion loss against the N(0, I) denoiser's closed form (see :mod:`.bound`):
        # worth it where eps_hat stays near sigma z, as for continuous standardized data.
        self.control_variate = control_variate
        self.schedule = schedule
        self.denoiser = denoiser
        self.decoder = decoder
        # Out of training (validation, scores, samples) the denoiser runs on its averaged weights.
        self.average = WeightAverage(denoiser, average_decay) if average_decay > 0 else None

    def data(self, y: torch.Tensor) -> torch.Tensor:
        """The clean point x (B, D) the diffusion starts from for model-space rows y: y itself,
        or for level data the centre of y's level."""
        return self.decoder.snap(y)

    def ends(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(gamma(0), gamma(1))."""
        return self.schedule.ends()

    def likelihood(self, z_0: torch.Tensor) -> Distribution:
        """p(x | z_0) for z_0 (B, D); batch (B,), event (D,)."""
        gamma_0, _ = self.ends()
        alpha_0, _ = alpha_sigma(gamma_0)
        return self.decoder(z_0 / alpha_0, gamma_0)

    def epsilon(self, z: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """eps_hat(z_t, gamma_t) for z (B, D), gamma (B,): the live weights in training, else
        their running average where there is one."""
        if self.average is None or self.training:
            return self.denoiser(z, gamma)
        return self.average.call(self.denoiser, z, gamma)
