"""Inverse autoregressive flow posteriors (Kingma et al., 2016).

    z_0 = mu(x) + sigma(x) * eps,                  eps ~ N(0, I)
    z_t = s_t * z_{t-1} + (1 - s_t) * m_t,         (m_t, s_t) = MADE_t(z_{t-1}, h(x)),  s_t in (0, 1)
    log q(z_T|x) = log N(z_0; mu, sigma^2) - sum_t sum_i log s_t,i

Each MADE is autoregressive (output i depends on inputs before i in its
order), so the Jacobian of every step is triangular with diagonal s_t and the
log-determinant is exact. Sampling is one pass per step; the inverse, needed
only to score a z that the flow did not draw itself, takes ``dim`` passes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import (
    Distribution,
    Transform,
    TransformedDistribution,
    constraints,
)

from .distributions import diagonal_normal

# Draws that define the posterior mean of a flow (no closed form): fixed, so encoding is deterministic.
MEAN_DRAWS = 256
MEAN_SEED = 0


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (out, in)."""

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.to(self.weight.dtype), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class ContextMADE(nn.Module):
    """(m, s_logit) = MADE(z, h): output i depends on z at positions earlier than i in
    ``order`` (a permutation of 0..dim-1) and on the context h (..., context_features)."""

    def __init__(self, dim: int, context_features: int, hidden: int, order: torch.Tensor):
        super().__init__()
        rank = torch.empty(dim, dtype=torch.long)
        rank[order] = torch.arange(dim)  # rank[i]: position of z_i in the order
        # A hidden unit of rank r sees z at ranks <= r; rank -1 units see the context only,
        # so the first output (and, for dim = 1, every output) still depends on x.
        hidden_rank = torch.arange(hidden) % dim - 1
        self.inp = MaskedLinear(dim, hidden, (hidden_rank[:, None] >= rank[None, :]).float())
        self.context = nn.Linear(context_features, hidden)
        out_mask = (rank[:, None] > hidden_rank[None, :]).float()
        self.out = MaskedLinear(hidden, 2 * dim, torch.cat([out_mask, out_mask]))
        # Start near the identity map: s = sigmoid(2) ~ 0.88, m = 0 (Kingma et al.'s advice).
        with torch.no_grad():
            self.out.weight.mul_(0.01)
            self.out.bias.zero_()
            self.out.bias[dim:] = 2.0

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = F.silu(self.inp(z) + self.context(h))
        return self.out(hidden).chunk(2, dim=-1)


class InverseAutoregressiveTransform(Transform):
    """z -> s * z + (1 - s) * m with (m, logit s) = made(z, context); one IAF step."""

    domain = constraints.independent(constraints.real, 1)
    codomain = constraints.independent(constraints.real, 1)
    bijective = True

    def __init__(self, made: ContextMADE, context: torch.Tensor):
        super().__init__(cache_size=1)
        self.made = made
        self.context = context
        self._last = None  # (z, logit s) of the latest forward pass, for its log-determinant

    def __eq__(self, other):
        return self is other

    def _call(self, z: torch.Tensor) -> torch.Tensor:
        m, s_logit = self.made(z, self.context)
        self._last = (z, s_logit)
        s = torch.sigmoid(s_logit)
        return s * z + (1 - s) * m

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        # After pass j the first j coordinates in the MADE's order are exact.
        shape = torch.broadcast_shapes(y.shape[:-1], self.context.shape[:-1]) + y.shape[-1:]
        z = y.new_zeros(shape)
        for _ in range(y.shape[-1]):
            m, s_logit = self.made(z, self.context)
            s = torch.sigmoid(s_logit)
            z = (y - (1 - s) * m) / s
        return z

    def log_abs_det_jacobian(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # Scoring a z the flow just drew needs no second MADE pass.
        if self._last is not None and self._last[0] is z:
            s_logit = self._last[1]
        else:
            _, s_logit = self.made(z, self.context)
        return F.logsigmoid(s_logit).sum(-1)


class FlowPosterior(TransformedDistribution):
    """A Gaussian pushed through IAF steps. ``mean`` has no closed form: it is the average
    of the flow over a fixed set of MEAN_DRAWS draws, the same on every call."""

    arg_constraints: dict = {}

    @property
    def mean(self) -> torch.Tensor:
        base = self.base_dist.base_dist
        generator = torch.Generator().manual_seed(MEAN_SEED)
        eps = torch.randn((MEAN_DRAWS, *base.loc.shape), generator=generator, dtype=base.loc.dtype)
        z = base.loc + base.scale * eps
        for transform in self.transforms:
            z = transform(z)
        return z.mean(0)


class IAFHead(nn.Module):
    """q(z|x): a diagonal Gaussian N(mu(h), sigma(h)^2) followed by ``layers`` IAF steps,
    each a MADE conditioned on the encoder features h; consecutive steps use reversed
    orders so every coordinate can depend on every other."""

    def __init__(self, in_features: int, dim: int, layers: int = 2, hidden: int | None = None):
        super().__init__()
        self.linear = nn.Linear(in_features, 2 * dim)
        hidden = hidden or max(32, 4 * dim)
        order = torch.arange(dim)
        self.steps = nn.ModuleList(
            ContextMADE(dim, in_features, hidden, order if t % 2 == 0 else order.flip(0)) for t in range(layers)
        )

    def forward(self, h: torch.Tensor) -> Distribution:
        loc, log_scale = self.linear(h).chunk(2, dim=-1)
        transforms = [InverseAutoregressiveTransform(made, h) for made in self.steps]
        return FlowPosterior(diagonal_normal(loc, log_scale), transforms)
