"""p(x | z_0): how the diffusion's least noisy latent gives back the data.

With z_0 = alpha_0 x + sigma_0 eps, the rescaled latent z_0 / alpha_0 = x + exp(gamma_0 / 2) eps
is x plus a little noise, and both decoders put their mass around it:

- continuous data: N(x; z_0 / alpha_0, exp(gamma_0) I), a density in the model's units
  (the preprocessor's Jacobian turns it into the user's);
- level data (integer levels, binary): for each feature, a categorical over its grid of
  levels y_l with logits -(z_0 / alpha_0 - y_l)^2 / (2 exp(gamma_0)) (VDM's decoder),
  a probability. :class:`GridCategorical` reports it as the density of a model that
  spreads P(level) evenly over the level's cell in model space, log P(x) - sum_j log spacing_j,
  so that the preprocessor's Jacobian (which is sum_j log spacing_j) turns it back into
  log P(x) exactly: the units of every other aevb model on level data.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import (
    Categorical,
    Distribution,
    Independent,
    Normal,
    constraints,
)

# Above this many levels a discrete decoder costs too much memory (B x D x levels);
# such data is modelled as continuous after dequantization, as the VAE models it.
MAX_DISCRETE_LEVELS = 1024


def cell_index(y: torch.Tensor, first: torch.Tensor, spacing: torch.Tensor, n_levels: int) -> torch.Tensor:
    """The level whose cell holds each value; cells are centred on first + l spacing."""
    return torch.floor((y - first) / spacing + 0.5).clamp(0, n_levels - 1)


class GaussianDecoder(nn.Module):
    """N(x; z_0 / alpha_0, exp(gamma_0) I) for continuous rows."""

    def snap(self, y: torch.Tensor) -> torch.Tensor:
        """The data point the diffusion starts from: y itself."""
        return y

    def forward(self, rescaled: torch.Tensor, gamma_0: torch.Tensor) -> Distribution:
        """rescaled = z_0 / alpha_0 (B, D) -> p(x | z_0), batch (B,), event (D,)."""
        return Independent(Normal(rescaled, torch.exp(0.5 * gamma_0).expand_as(rescaled)), 1)

    def reconstruction(self, x: torch.Tensor, gamma_0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """-E_q(z_0|x) log p(x | z_0) (B,) in closed form, D (1 + log 2 pi + gamma_0) / 2: the rescaled
        latent misses x by exp(gamma_0 / 2) eps, and E |eps|^2 = D (``eps`` is not needed)."""
        return (0.5 * (1 + math.log(2 * math.pi) + gamma_0) * x.shape[-1]).expand(x.shape[:-1])


class GridCategorical(Distribution):
    """Independent categoricals over each feature's grid first_j + l spacing_j, l = 0..L-1.

    ``log_prob(y)`` takes a grid value (or any value in its cell) and returns
    sum_j [log P(level_j) - log spacing_j]; ``sample`` returns grid values.
    """

    arg_constraints = {}
    support = constraints.real_vector

    def __init__(self, logits: torch.Tensor, first: torch.Tensor, spacing: torch.Tensor):
        self.categorical = Categorical(logits=logits)  # batch (B, D), L levels
        self.first, self.spacing = first, spacing
        super().__init__(logits.shape[:-2], logits.shape[-2:-1], validate_args=False)

    def log_prob(self, y: torch.Tensor) -> torch.Tensor:
        level = cell_index(y, self.first, self.spacing, self.categorical.logits.shape[-1]).long()
        return (self.categorical.log_prob(level) - self.spacing.log()).sum(-1)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        return self.first + self.categorical.sample(sample_shape).to(self.first.dtype) * self.spacing

    @property
    def mode(self) -> torch.Tensor:
        return self.first + self.categorical.logits.argmax(-1).to(self.first.dtype) * self.spacing


class DiscreteDecoder(nn.Module):
    """VDM's categorical decoder over a grid of levels, per feature first_j + l spacing_j."""

    def __init__(self, first: torch.Tensor, spacing: torch.Tensor, n_levels: int):
        super().__init__()
        self.register_buffer("first", first)  # (D,)
        self.register_buffer("spacing", spacing)  # (D,)
        self.n_levels = n_levels

    def grid(self) -> torch.Tensor:
        """(D, L) the level values in model space."""
        steps = torch.arange(self.n_levels, dtype=self.first.dtype, device=self.first.device)
        return self.first.unsqueeze(-1) + steps * self.spacing.unsqueeze(-1)

    def snap(self, y: torch.Tensor) -> torch.Tensor:
        """The grid value of each value's cell: the centre of a dequantized level's cell."""
        return self.first + cell_index(y, self.first, self.spacing, self.n_levels) * self.spacing

    def forward(self, rescaled: torch.Tensor, gamma_0: torch.Tensor) -> GridCategorical:
        """rescaled = z_0 / alpha_0 (B, D) -> p(x | z_0) over the grid, batch (B,), event (D,)."""
        logits = -0.5 * (rescaled.unsqueeze(-1) - self.grid()) ** 2 * torch.exp(-gamma_0)  # (B, D, L)
        return GridCategorical(logits, self.first, self.spacing)

    def reconstruction(self, x: torch.Tensor, gamma_0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """-log p(x | z_0) (B,) at the draw z_0 / alpha_0 = x + exp(gamma_0 / 2) eps: one Monte-Carlo draw."""
        return -self(x + torch.exp(0.5 * gamma_0) * eps, gamma_0).log_prob(x)
