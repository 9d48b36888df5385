"""The variational bound of a diffusion model, per row, in nats (VDM, Kingma et al. 2021, eq. 11-17).

For a clean point x (model space) and the model of :mod:`.model`,

    -log p(x) <= L_prior + L_reconstruction + L_diffusion,
    L_prior          = KL(q(z_1 | x) || N(0, I)),                              closed form
    L_reconstruction = -E_q(z_0|x) log p(x | z_0),                             (:mod:`.decoder`)
    L_diffusion      = 1/2 E_{t ~ U(0,1), eps ~ N(0,I)} [gamma'(t) |eps - eps_hat(z_t, gamma_t)|^2]
                       with z_t = alpha_t x + sigma_t eps                       (continuous time, T -> oo),
    L_diffusion^T    = T/2 E_{i ~ U{1..T}, eps} [expm1(gamma(t_i) - gamma(s_i)) |eps - eps_hat(z_t_i, gamma_t_i)|^2],
                       t_i = i / T, s_i = (i - 1) / T                          (T discrete steps).

Substituting v = gamma(t) turns L_diffusion into 1/2 int_{gamma_0}^{gamma_1} E|eps - eps_hat(z_v, v)|^2 dv:
only the end points of the schedule change its expectation.

A control variate: for N(0, I) data the best denoiser is eps_hat = sigma_t z_t, and its
L_diffusion is known in closed form (:func:`standard_normal_diffusion_loss`). The estimate
used here is that closed form plus the Monte-Carlo difference between the model and it
at the same (t, eps), which has the same expectation; on standardized continuous data,
where both terms are large and nearly equal at low noise, its variance is far smaller
(models whose denoiser starts elsewhere, as on level data, turn it off: ``control_variate``).
Time draws are
antithetic (stratified): B draws t_i = (u + i / B) mod 1 share one uniform u, which
keeps each t's estimate unbiased and lowers the variance of their mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.distributions import Independent, Normal, kl_divergence
from torch.nn import functional as F

from ..core.noise import standard_normal
from .model import DiffusionModel, alpha_sigma


@dataclass
class BoundTerms:
    """Per-row terms (B,) of the bound, in nats of the model's data, each averaged over the
    Monte-Carlo draws: the losses ``diffusion`` and ``prior``, and ``reconstruction`` =
    E_q log p(x | z_0), a log-likelihood like the VAE's; ``std_error`` is the standard error
    of the bound over those draws (NaN with a single draw)."""

    diffusion: torch.Tensor
    prior: torch.Tensor
    reconstruction: torch.Tensor
    std_error: torch.Tensor

    @property
    def bound(self) -> torch.Tensor:
        """The bound on log p(x) (B,), higher is better: reconstruction - prior - diffusion."""
        return self.reconstruction - self.prior - self.diffusion


def antithetic_times(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, dim: int = 0) -> torch.Tensor:
    """Uniform times of ``shape``, stratified along ``dim``: (u + i / n) mod 1, one u per line along ``dim``."""
    n = shape[dim]
    offsets_shape = [1] * len(shape)
    offsets_shape[dim] = n
    start_shape = list(shape)
    start_shape[dim] = 1
    offsets = torch.arange(n, dtype=dtype, device=device).reshape(offsets_shape) / n
    return torch.remainder(torch.rand(start_shape, dtype=dtype, device=device) + offsets, 1.0)


def prior_loss(model: DiffusionModel, x: torch.Tensor) -> torch.Tensor:
    """KL(q(z_1 | x) || N(0, I)) per row (B,)."""
    _, gamma_1 = model.ends()
    alpha_1, sigma_1 = alpha_sigma(gamma_1)
    q = Independent(Normal(alpha_1 * x, sigma_1.expand_as(x)), 1)
    p = Independent(Normal(torch.zeros_like(x), torch.ones_like(x)), 1)
    return kl_divergence(q, p)


def reconstruction_loss(model: DiffusionModel, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | z_0) per row (B,): in closed form for continuous data, one draw of z_0 for levels."""
    gamma_0, _ = model.ends()
    return model.decoder.reconstruction(x, gamma_0, standard_normal(x.shape, x.dtype, x.device))


def standard_normal_diffusion_loss(x: torch.Tensor, gamma_0: torch.Tensor, gamma_1: torch.Tensor) -> torch.Tensor:
    """L_diffusion (B,) of rows x (B, D) for the denoiser eps_hat = sigma z, in closed form.

    With z = alpha x + sigma eps, E|eps - sigma z|^2 = alpha^4 D + alpha^2 sigma^2 |x|^2, and over
    gamma, alpha^4 = sigmoid(-gamma)^2 integrates to sigmoid(-gamma) + log sigmoid(gamma) and
    alpha^2 sigma^2 to sigmoid(gamma).
    """

    def integral(gamma):
        return x.shape[-1] * (torch.sigmoid(-gamma) + F.logsigmoid(gamma)) + (x**2).sum(-1) * torch.sigmoid(gamma)

    return 0.5 * (integral(gamma_1) - integral(gamma_0))


def diffusion_loss(model: DiffusionModel, x: torch.Tensor, t: torch.Tensor, steps: int | None = None,
                   variance: dict | None = None) -> torch.Tensor:
    """One-draw estimate per row (B,) of L_diffusion (``steps=None``) or L_diffusion^T (``steps=T``)
    at the times t (B,), with a fresh eps.

    ``variance``: a dict passed to the schedule (see :class:`.schedule.MonotoneSchedule`), in
    which this function leaves the detached losses for the schedule's backward pass.
    """
    if steps is not None:
        t = torch.clamp(torch.ceil(t * steps), min=1) / steps
    gamma_t, dgamma_t = model.schedule(t, variance)
    alpha_t, sigma_t = alpha_sigma(gamma_t)
    eps = standard_normal(x.shape, x.dtype, x.device)
    z_t = alpha_t.unsqueeze(-1) * x + sigma_t.unsqueeze(-1) * eps
    error = ((eps - model.epsilon(z_t, gamma_t)) ** 2).sum(-1)  # (B,)
    control_variate = steps is None and model.control_variate
    if control_variate:
        baseline = ((eps - sigma_t.unsqueeze(-1) * z_t) ** 2).sum(-1)  # the N(0, I) denoiser's error
        loss = 0.5 * dgamma_t * (error - baseline)
    elif steps is None:
        loss = 0.5 * dgamma_t * error
    else:
        gamma_s, _ = model.schedule(t - 1.0 / steps, variance)
        loss = 0.5 * steps * torch.expm1(gamma_t - gamma_s) * error
    if variance is not None:
        variance["loss"] = loss.detach()
    return loss + standard_normal_diffusion_loss(x, *model.ends()) if control_variate else loss


def negative_bound(model: DiffusionModel, y: torch.Tensor, t_samples: int = 1, steps: int | None = None) -> BoundTerms:
    """The terms of -log p(y) <= L for model-space rows y (B, D), each the mean of ``t_samples``
    antithetic draws of t (and of eps, and of z_0 for level data) per row.

    Level rows are first moved to the centre of their level (:meth:`DiffusionModel.data`).
    """
    x = model.data(y)
    times = antithetic_times((t_samples, len(x)), x.dtype, x.device, dim=0)  # (K, B)
    diffusion = torch.stack([diffusion_loss(model, x, t, steps) for t in times])  # (K, B)
    reconstruction = torch.stack([reconstruction_loss(model, x) for _ in times])  # (K, B)
    draws = diffusion + reconstruction
    std_error = draws.std(0) / math.sqrt(t_samples) if t_samples > 1 else torch.full_like(draws[0], math.nan)
    return BoundTerms(diffusion.mean(0), prior_loss(model, x), -reconstruction.mean(0), std_error)
