"""Filling holes by importance-weighted posterior prediction (MIWAE, Mattei & Frellsen 2019).

For a row with observed cells x_o, draws z_k ~ q(z|x_o) with self-normalized weights

    w_k ∝ p(x_o|z_k) p(z_k) / q(z_k|x_o),    sum_k w_k = 1

make sum_k w_k p(x_m|z_k) an estimate of p(x_m|x_o). The single best guess is
its mean for continuous cells and its most probable value for categories and
booleans; multiple imputations are draws from it (sampling importance
resampling: pick k with probability w_k, then draw x_m ~ p(x_m|z_k), afresh for each
imputation).
Observed cells are returned unchanged.
"""

from __future__ import annotations

import torch
from torch.distributions import Categorical

from .model import LatentVariableModel


def posterior_weights(model: LatentVariableModel, x: torch.Tensor, k: int):
    """Draws z (k, B, d), p(x|z) for them, and the normalized importance weights (k, B)."""
    q = model.posterior(x)
    z = q.sample((k,))
    likelihood = model.likelihood(z)
    log_w = likelihood.log_prob(x) + model.prior_distribution().log_prob(z) - q.log_prob(z)  # (k, B)
    return z, likelihood, torch.softmax(log_w, dim=0)


def impute(model: LatentVariableModel, x: torch.Tensor, k: int = 100, multiple: int | None = None) -> torch.Tensor:
    """Rows x (B, C) with NaN holes -> filled rows (B, C), or (multiple, B, C) draws."""
    _, likelihood, weights = posterior_weights(model, x, k)
    holes = torch.isnan(x)
    if multiple is None:
        return torch.where(holes, likelihood.point_prediction(weights), x)
    # A fresh x for every imputation: two imputations that pick the same z_k (likely where
    # one weight dominates) must still differ by a draw of p(x_m|z_k).
    draws = likelihood.sample((multiple,))  # (M, k, B, C)
    picks = Categorical(probs=weights.T).sample((multiple,))  # (M, B)
    chosen = draws[torch.arange(multiple)[:, None], picks, torch.arange(x.shape[0])]  # (M, B, C)
    return torch.where(holes, chosen, x)


def column_contributions(model: LatentVariableModel, x: torch.Tensor, k: int = 100) -> torch.Tensor:
    """sum_k w_k log p(x_j|z_k) per observed cell, shape (B, C), 0 for holes: each
    column's expected log-likelihood under the (importance-weighted) posterior, which
    says which cell of a row the model finds unlikely."""
    _, likelihood, weights = posterior_weights(model, x, k)
    return (weights.unsqueeze(-1) * likelihood.column_log_prob(x)).sum(0)
