"""Filling holes by importance-weighted posterior prediction (MIWAE, Mattei & Frellsen 2019).

For a row with observed cells x_o, draws z_k ~ q(z|x_o) with self-normalized weights

    w_k ∝ p(x_o|z_k) p(z_k) / q(z_k|x_o),    sum_k w_k = 1

make sum_k w_k p(x_m|z_k) an estimate of p(x_m|x_o). The single best guess is
its mean for continuous cells and its most probable value for categories and
booleans; multiple imputations are draws from it (sampling importance
resampling: pick k with probability w_k, then draw x_m ~ p(x_m|z_k), afresh for each
imputation).
Observed cells are returned unchanged. The same prediction, of a cell that is there
from the row's other cells, scores how unusual each cell is.
"""

from __future__ import annotations

import torch
from torch.distributions import Categorical

from ..vae.model import LatentVariableModel


def posterior_weights(model: LatentVariableModel, x: torch.Tensor, k: int):
    """p(x|z) for k draws z ~ q(z|x), and their normalized importance weights (k, B)."""
    q = model.posterior(x)
    z = q.sample((k,))
    likelihood = model.likelihood(z)
    log_w = likelihood.log_prob(x) + model.prior_distribution().log_prob(z) - q.log_prob(z)  # (k, B)
    return likelihood, torch.softmax(log_w, dim=0)


def impute(model: LatentVariableModel, x: torch.Tensor, k: int = 100, multiple: int | None = None) -> torch.Tensor:
    """Rows x (B, C) with NaN holes -> filled rows (B, C), or (multiple, B, C) draws."""
    likelihood, weights = posterior_weights(model, x, k)
    holes = torch.isnan(x)
    if multiple is None:
        return torch.where(holes, likelihood.point_prediction(weights), x)
    picks = Categorical(probs=weights.T).sample((multiple,))  # (M, B)
    rows = torch.arange(x.shape[0])
    # A fresh x for every imputation (one (k, B, C) draw at a time, to bound memory): two
    # imputations that pick the same z_k, likely where one weight dominates, still differ.
    chosen = torch.stack([likelihood.sample()[pick, rows] for pick in picks])  # (M, B, C)
    return torch.where(holes, chosen, x)


def conditional_column_scores(model: LatentVariableModel, x: torch.Tensor, k: int = 100) -> torch.Tensor:
    """log p(x_j | the row's other observed cells) per observed cell, shape (B, C), 0 for holes.

    Each column j in turn is hidden and predicted from the rest, as a hole would be:
    log sum_k w_k p(x_j|z_k), with z_k ~ q(z|x_-j) and w_k the normalized weights given
    x_-j. Conditioning on the others only, a cell far from what they predict scores low
    itself instead of pulling z towards it and making its neighbours look odd.
    """
    scores = torch.zeros_like(x)
    for j in range(x.shape[-1]):
        others = x.clone()
        others[:, j] = float("nan")
        likelihood, weights = posterior_weights(model, others, k)
        cell = likelihood.cell_log_prob(x, j)  # (k, B)
        scores[:, j] = torch.logsumexp(weights.log() + cell, dim=0)
    return torch.where(torch.isnan(x), torch.zeros((), dtype=x.dtype), scores)
