"""Noise schedules gamma(t): the log noise-to-signal ratio of the diffusion at time t in [0, 1].

The forward process is variance preserving (Kingma et al. 2021, "Variational
Diffusion Models", VDM):

    q(z_t | x) = N(alpha_t x, sigma_t^2 I),  sigma_t^2 = sigmoid(gamma(t)),  alpha_t^2 = sigmoid(-gamma(t)),

so SNR(t) = alpha_t^2 / sigma_t^2 = exp(-gamma(t)), and gamma increases from
gamma(0) (almost clean data) to gamma(1) (almost pure noise). A schedule returns
gamma(t) and its derivative gamma'(t), which weights the continuous-time
diffusion loss. In that loss only the end points gamma(0) and gamma(1) change
the expected value (the integral is over gamma); the shape in between changes
only its variance.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# VDM's initial end points: sigma_0 ~ 1e-3 (finer than any level spacing of standardized
# pixels) and alpha_1^2 ~ 7e-3 (z_1 almost N(0, I)).
GAMMA_MIN, GAMMA_MAX = -13.3, 5.0
SHAPE_RATE_SCALE = 10.0


class LinearSchedule(nn.Module):
    """gamma(t) = gamma_0 + (gamma_1 - gamma_0) t with fixed end points (no parameters)."""

    def __init__(self, gamma_0: float = GAMMA_MIN, gamma_1: float = GAMMA_MAX):
        super().__init__()
        if not gamma_1 > gamma_0:
            raise ValueError(f"gamma_1 must exceed gamma_0, got {gamma_0} and {gamma_1}")
        self.register_buffer("end_points", torch.tensor([gamma_0, gamma_1]))

    def ends(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.end_points[0], self.end_points[1]

    def forward(self, t: torch.Tensor, variance: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(gamma(t), gamma'(t)), each shaped like t."""
        gamma_0, gamma_1 = self.end_points.to(t.dtype)
        return gamma_0 + (gamma_1 - gamma_0) * t, (gamma_1 - gamma_0).expand_as(t)


class MonotoneSchedule(nn.Module):
    """A learned increasing gamma(t) = gamma_0 + (gamma_1 - gamma_0) h(t), with h(0) = 0, h(1) = 1.

    The end points are parameters (gamma_1 = gamma_0 + softplus(w) > gamma_0); the
    shape h is VDM's monotone network normalized to [0, 1]:

        g(t) = |a| t + mean_k |c_k| (2 sigmoid(|b_k| (2t - 1) + d_k) - 1),   h(t) = (g(t) - g(0)) / (g(1) - g(0)),

    increasing in t because every weight on the path from t enters through an
    absolute value and sigmoid is increasing. Its derivative is written out, so the
    loss needs no second backward pass.

    Training pushes the end points by the bound, and the shape by the *variance* of
    the diffusion loss (VDM section 5.2): the bound does not depend on h in
    expectation, so its gradient with respect to h is pure noise; the loss
    replaces it by the gradient of E[L^2] (``variance`` in :meth:`forward`).
    """

    # The shape learns at this multiple of the training rate (aevb.train.schedule.parameter_groups):
    # at the rate of the network it had barely moved from its start after thousands of steps,
    # while the variance it should lower fell 60% within 1,500 steps at ten times that rate.
    learning_rate_scales = dict.fromkeys(("a", "b", "c", "d"), SHAPE_RATE_SCALE)

    def __init__(self, gamma_0: float = GAMMA_MIN, gamma_1: float = GAMMA_MAX, width: int = 256):
        super().__init__()
        self.gamma_0 = nn.Parameter(torch.tensor(float(gamma_0)))
        # softplus^-1(gamma_1 - gamma_0)
        self.log_width = nn.Parameter(torch.tensor(gamma_1 - gamma_0).expm1().log())
        self.a = nn.Parameter(torch.tensor(1.0))
        self.b = nn.Parameter(torch.randn(width))
        self.c = nn.Parameter(torch.randn(width))
        self.d = nn.Parameter(torch.zeros(width))

    def ends(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(gamma(0), gamma(1)), scalars."""
        return self.gamma_0, self.gamma_0 + F.softplus(self.log_width)

    def _shape(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(g(t), g'(t)) of the unnormalized monotone network."""
        b, c = self.b.abs(), self.c.abs()
        s = torch.sigmoid(b * (2 * t.unsqueeze(-1) - 1) + self.d)  # (..., width)
        g = self.a.abs() * t + (c * (2 * s - 1)).mean(-1)
        dg = self.a.abs() + (c * 4 * s * (1 - s) * b).mean(-1)
        return g, dg

    def forward(self, t: torch.Tensor, variance: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(gamma(t), gamma'(t)), each shaped like t.

        With a dict ``variance``, the gradient reaching the shape h from row i is
        multiplied by 2 L_i once the caller has put the per-row losses L (detached)
        under ``variance["loss"]``: the gradient of sum_i L_i^2 instead of sum_i L_i.
        """
        g, dg = self._shape(t)
        g_ends, _ = self._shape(torch.tensor([0.0, 1.0], dtype=t.dtype, device=t.device))
        span = g_ends[1] - g_ends[0]
        h, dh = (g - g_ends[0]) / span, dg / span
        if variance is not None and torch.is_grad_enabled():
            h, dh = _VarianceGradient.apply(h, variance), _VarianceGradient.apply(dh, variance)
        gamma_0, gamma_1 = self.ends()
        width = gamma_1 - gamma_0
        return gamma_0 + width * h, width * dh


class _VarianceGradient(torch.autograd.Function):
    """Identity forward; backward multiplies each row's gradient by 2 L_i, read from a dict
    filled after the forward pass, turning d sum L into d sum L^2 for what it wraps."""

    @staticmethod
    def forward(ctx, h, variance):
        ctx.variance = variance
        return h.view_as(h)

    @staticmethod
    def backward(ctx, grad):
        loss = ctx.variance.get("loss")
        if loss is None:  # nothing recorded: the ordinary gradient
            return grad, None
        return grad * 2 * loss.reshape(grad.shape).to(grad.dtype), None
