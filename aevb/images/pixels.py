"""Discrete pixel likelihoods: distributions over images whose values are integer levels 0..L-1.

Each is a torch Distribution with event shape (D,), the flattened image, and
``log_prob`` = log P(x | z) of the discrete image itself, summed over pixels; so
a score is log P(x) of the data as stored, with no dequantization bound and no
Jacobian. ``pixel_log_prob`` gives the same per pixel (..., D).

Categorical: an unrestricted softmax over the L levels of every pixel,

    P(x_j = k | z) = softmax(logits_j)_k.

Discretized mixture of logistics (Salimans et al., 2017, PixelCNN++; as in VDVAE):
level k maps to v_k = 2k / (L-1) - 1 in [-1, 1], its bin is [v_k - h, v_k + h]
with h = 1/(L-1), except that the lowest bin reaches down to -inf and the highest up
to +inf, so the L bins cover the line and their probabilities sum to one:

    P(x_j = k | z) = sum_m pi_m [F_m(v_k + h) - F_m(v_k - h)],
    F_m(v) = sigmoid((v - mu_m) / s_m),   F_m(-inf) = 0,  F_m(+inf) = 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Distribution, constraints

# Guard rail on the logistics' log-scales (as in PixelCNN++): exp(-7) is far below a bin.
MIN_LOG_SCALE = -7.0


class PixelCategorical(Distribution):
    """prod_j Categorical(x_j; softmax(logits_j)) over D pixels; logits (..., D, L)."""

    arg_constraints = {"logits": constraints.real}
    has_rsample = False

    def __init__(self, logits: torch.Tensor, validate_args: bool | None = None):
        self.logits = logits.log_softmax(-1)  # (..., D, L), normalized
        self.n_levels = logits.shape[-1]
        super().__init__(logits.shape[:-2], logits.shape[-2:-1], validate_args=False)

    @property
    def support(self):
        return constraints.independent(constraints.integer_interval(0, self.n_levels - 1), 1)

    def pixel_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log P(x_j | z) per pixel, (..., D), for levels x (..., D) (floats holding integers)."""
        shape = torch.broadcast_shapes(x.shape, self.logits.shape[:-1])
        index = x.round().long().clamp(0, self.n_levels - 1).expand(shape)
        return self.logits.expand(*shape, self.n_levels).gather(-1, index.unsqueeze(-1)).squeeze(-1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.pixel_log_prob(x).sum(-1)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            probs = self.logits.exp().expand(*sample_shape, *self.logits.shape)
            draws = torch.multinomial(probs.reshape(-1, self.n_levels), 1)
            return draws.reshape(probs.shape[:-1]).to(self.logits.dtype)

    @property
    def mean(self) -> torch.Tensor:
        levels = torch.arange(self.n_levels, dtype=self.logits.dtype, device=self.logits.device)
        return self.logits.exp() @ levels


def _log_sigmoid_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(a) - sigmoid(b)) for a > b, without cancellation:
    sigmoid(a) - sigmoid(b) = sigmoid(a) sigmoid(-b) (1 - exp(b - a))."""
    return F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(b - a))


class DiscretizedLogisticMixture(Distribution):
    """A mixture of M logistics per pixel, discretized onto L levels (see the module docstring).

    ``logit_weights``, ``loc``, ``log_scale``: (..., D, M); loc lives on [-1, 1] where
    level k sits at 2k/(L-1) - 1.
    """

    arg_constraints = {}
    has_rsample = False

    def __init__(self, logit_weights: torch.Tensor, loc: torch.Tensor, log_scale: torch.Tensor, n_levels: int):
        if n_levels < 2:
            raise ValueError("a discretized logistic needs at least 2 levels")
        self.log_weights = logit_weights.log_softmax(-1)
        self.loc = loc
        self.log_scale = log_scale.clamp(min=MIN_LOG_SCALE)
        self.n_levels = n_levels
        super().__init__(loc.shape[:-2], loc.shape[-2:-1], validate_args=False)

    @property
    def support(self):
        return constraints.independent(constraints.integer_interval(0, self.n_levels - 1), 1)

    def _component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log P_m(x_j) for each component, (..., D, M)."""
        half_bin = 1.0 / (self.n_levels - 1)
        level = x.round().clamp(0, self.n_levels - 1).unsqueeze(-1)  # (..., D, 1)
        v = 2.0 * half_bin * level - 1.0
        inverse_scale = torch.exp(-self.log_scale)
        upper = inverse_scale * (v - self.loc + half_bin)  # logit of F(v + h)
        lower = inverse_scale * (v - self.loc - half_bin)  # logit of F(v - h)
        middle = _log_sigmoid_difference(upper, lower)
        lowest = F.logsigmoid(upper)  # F(v + h) - 0
        highest = F.logsigmoid(-lower)  # 1 - F(v - h)
        return torch.where(level <= 0, lowest, torch.where(level >= self.n_levels - 1, highest, middle))

    def pixel_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log P(x_j | z) per pixel, (..., D), for levels x (..., D)."""
        return torch.logsumexp(self.log_weights + self._component_log_prob(x), dim=-1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.pixel_log_prob(x).sum(-1)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        """Pick a component, draw a logistic v = mu + s log(u / (1 - u)), and take its bin."""
        with torch.no_grad():
            shape = torch.Size(sample_shape) + self.loc.shape
            weights = self.log_weights.exp().expand(shape)
            component = torch.multinomial(weights.reshape(-1, shape[-1]), 1).reshape(*shape[:-1], 1)
            loc = self.loc.expand(shape).gather(-1, component).squeeze(-1)
            scale = self.log_scale.exp().expand(shape).gather(-1, component).squeeze(-1)
            u = torch.rand(loc.shape, dtype=loc.dtype, device=loc.device).clamp(1e-6, 1 - 1e-6)
            v = loc + scale * (torch.log(u) - torch.log1p(-u))
            return ((v + 1.0) * (self.n_levels - 1) / 2.0).round().clamp(0, self.n_levels - 1)

    @property
    def mean(self) -> torch.Tensor:
        """E[x_j] = sum_k k P(x_j = k), one level at a time (memory of one level's probabilities)."""
        total = torch.zeros(self.batch_shape + self.event_shape, dtype=self.loc.dtype, device=self.loc.device)
        for k in range(1, self.n_levels):
            total = total + k * self.pixel_log_prob(torch.full_like(total, float(k))).exp()
        return total


def logistic_mixture_outputs(components: int) -> int:
    """Numbers a network outputs per pixel for a mixture of ``components`` logistics."""
    return 3 * components


def pixel_outputs(likelihood: str, n_levels: int, components: int) -> int:
    """Numbers a network outputs per pixel for a discrete likelihood."""
    return n_levels if likelihood == "categorical" else logistic_mixture_outputs(components)


def pixel_distribution(likelihood: str, params: torch.Tensor, n_levels: int) -> Distribution:
    """The discrete likelihood from per-pixel network outputs ``params`` (..., D, P),
    P = :func:`pixel_outputs`."""
    if likelihood == "categorical":
        return PixelCategorical(params)
    logit_weights, loc, log_scale = params.chunk(3, dim=-1)
    return DiscretizedLogisticMixture(logit_weights, torch.tanh(loc), log_scale, n_levels)


DISCRETE_LIKELIHOODS = ("categorical", "logistic-mixture")

