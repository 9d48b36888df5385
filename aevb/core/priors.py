"""Priors p(z): modules whose forward(encoder) returns a torch.distributions object
with event shape (latent_dim,).

Every prior receives the model's encoder (x -> q(z|x)); only the VampPrior
uses it, which keeps the encoder a single module, saved once.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import (
    Categorical,
    Distribution,
    Independent,
    MixtureSameFamily,
    Normal,
)

from .distributions import diagonal_normal


class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I) over ``dim`` latent dimensions."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("loc", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def forward(self, encoder: nn.Module | None = None) -> Independent:
        return Independent(Normal(self.loc, self.scale), 1)


class MixturePrior(nn.Module):
    """p(z) = sum_c pi_c N(z; mu_c, diag sigma_c^2), all learned; ``components`` = C.

    The means start as draws from N(0, I) and the scales at 1, so the initial
    prior is a blurred standard normal.
    """

    def __init__(self, dim: int, components: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(components))
        self.loc = nn.Parameter(torch.randn(components, dim))
        self.log_scale = nn.Parameter(torch.zeros(components, dim))

    def forward(self, encoder: nn.Module | None = None) -> MixtureSameFamily:
        return MixtureSameFamily(Categorical(logits=self.logits), diagonal_normal(self.loc, self.log_scale))


class VampPrior(nn.Module):
    """p(z) = (1/C) sum_c q(z | u_c): the encoder's posteriors at C learned pseudo-inputs
    u_c (Tomczak & Welling, 2018), in the model's (preprocessed) data space.

    With one pseudo-input it is the single posterior q(z|u_1).
    """

    def __init__(self, n_features: int, components: int):
        super().__init__()
        self.pseudo_inputs = nn.Parameter(torch.randn(components, n_features))

    def forward(self, encoder: nn.Module) -> Distribution:
        posteriors = encoder(self.pseudo_inputs)  # batch (C,), event (latent_dim,)
        weights = Categorical(logits=self.pseudo_inputs.new_zeros(len(self.pseudo_inputs)))
        return MixtureSameFamily(weights, posteriors)
