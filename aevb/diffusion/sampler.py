"""Ancestral sampling: z_1 ~ N(0, I), then T steps of p(z_s | z_t), then x ~ p(x | z_0).

Each step draws from q(z_s | z_t, x) with x replaced by the model's guess
x_hat = (z_t - sigma_t eps_hat) / alpha_t. With c = -expm1(gamma_s - gamma_t) = 1 - SNR(t) / SNR(s),

    z_s = (alpha_s / alpha_t) (z_t - sigma_t c eps_hat(z_t, gamma_t)) + sigma_s sqrt(c) eps.

More steps follow the continuous-time model more closely (the bound of
:mod:`.bound` is the T -> oo limit); a few hundred usually suffice.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..core.noise import standard_normal
from .model import DiffusionModel, alpha_sigma


@torch.no_grad()
def sample(model: DiffusionModel, n: int, steps: int, progress: bool = False, mean: bool = False) -> torch.Tensor:
    """n draws (n, D) in the model's space, from torch's global generator.

    ``mean=True`` ends with the decoder's most likely x given z_0 instead of a draw of it.
    """
    gamma_0, _ = model.ends()
    dtype, device = gamma_0.dtype, gamma_0.device
    z = standard_normal((n, model.n_features), dtype, device)
    times = torch.linspace(1.0, 0.0, steps + 1, dtype=dtype, device=device)
    for t, s in tqdm(zip(times[:-1], times[1:]), total=steps, disable=not progress, desc="sampling", unit="step",
                    leave=False):
        gamma_t, _ = model.schedule(t.expand(n))
        gamma_s, _ = model.schedule(s.expand(n))
        (alpha_t, sigma_t), (alpha_s, sigma_s) = alpha_sigma(gamma_t), alpha_sigma(gamma_s)
        c = -torch.expm1(gamma_s - gamma_t)
        eps_hat = model.epsilon(z, gamma_t)
        z = (alpha_s / alpha_t).unsqueeze(-1) * (z - (sigma_t * c).unsqueeze(-1) * eps_hat)
        z = z + (sigma_s * c.sqrt()).unsqueeze(-1) * standard_normal(z.shape, dtype, device)
    decoded = model.likelihood(z)
    return decoded.mode if mean else decoded.sample()
