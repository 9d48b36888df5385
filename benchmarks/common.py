"""Pieces the benchmark scripts share: the hand-written baseline loop, scoring of
any density through aevb's own preprocessing, validation-chosen scikit-learn
estimators, and timing summaries.

Every likelihood here is reported like aevb reports its own: in nats per row of
the user's data, through the same :class:`aevb.data.preprocess.Preprocessor`
(standardization, and for level data the dequantization x + u, u ~ U[0, 1),
with its Jacobian), so figures from different libraries compare directly.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings

import numpy as np
import torch
from torch import nn
from torch.distributions import Independent, Normal, kl_divergence

from aevb.config import VAEConfig
from aevb.data.preprocess import Preprocessor

LN2 = math.log(2)


def bits_per_dim(nats_per_row: float, n_features: int) -> float:
    return -nats_per_row / (n_features * LN2)


def split_rows(values: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(held-out rows, remaining rows): the split ``VAE.fit`` makes for validation."""
    order = np.random.default_rng(seed).permutation(len(values))
    n_held = max(1, round(fraction * len(values)))
    return values[order[:n_held]], values[order[n_held:]]


def summary(rates: list[float]) -> str:
    return f"best {max(rates):9.0f}  median {statistics.median(rates):9.0f}"


def with_threads(threads: int, fn, *args, **kwargs):
    """fn(*args, **kwargs) on ``threads`` torch intra-op threads; the caller's count comes back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(before)


# -- the hand-written baseline -------------------------------------------------------


class PlainVAE(nn.Module):
    """An MLP VAE written out by hand: encoder and decoder nets each output (loc, log-scale)."""

    def __init__(self, n_features: int, hidden: tuple[int, ...], latent_dim: int):
        super().__init__()

        def mlp(widths):
            layers = []
            for a, b in zip(widths[:-1], widths[1:]):
                layers += [nn.Linear(a, b), nn.SiLU()]
            return layers

        self.encoder = nn.Sequential(*mlp((n_features, *hidden)), nn.Linear(hidden[-1], 2 * latent_dim))
        self.decoder = nn.Sequential(*mlp((latent_dim, *hidden[::-1])), nn.Linear(hidden[0], 2 * n_features))
        self.latent_dim = latent_dim

    def neg_mean_elbo(self, y: torch.Tensor) -> torch.Tensor:
        loc, log_scale = self.encoder(y).chunk(2, dim=-1)
        q = Independent(Normal(loc, log_scale.exp()), 1)
        z = q.rsample()
        p_z = Independent(Normal(torch.zeros_like(loc), torch.ones_like(loc)), 1)
        x_loc, x_log_scale = self.decoder(z).chunk(2, dim=-1)
        p_x = Independent(Normal(x_loc, x_log_scale.exp()), 1)
        return -(p_x.log_prob(y) - kl_divergence(q, p_z)).mean()


def run_plain(
    train_x, pre: Preprocessor, config: VAEConfig, epochs: int, seed: int, fused: bool = False, compile: bool = False
) -> float:
    """Seconds for ``epochs`` epochs of the hand-written loop: the same network, batch size,
    learning rate and per-batch dequantization as aevb, plain Adam (``fused`` on request;
    ``compile`` runs the loss through torch.compile, compiling in the first steps)."""
    torch.manual_seed(seed)
    model = PlainVAE(train_x.shape[1], config.hidden, config.latent_dim)
    loss_of = torch.compile(model.neg_mean_elbo) if compile else model.neg_mean_elbo
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, fused=fused or None)
    shift = torch.as_tensor(pre.shift, dtype=train_x.dtype)
    scale = torch.as_tensor(pre.scale, dtype=train_x.dtype)
    noise = pre.kind == "levels"
    started = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(train_x))
        for start in range(0, len(train_x), config.batch_size):
            x = train_x[order[start : start + config.batch_size]]
            y = ((x + torch.rand_like(x) if noise else x) - shift) / scale
            loss = loss_of(y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - started


# -- any density, scored through aevb's preprocessing ---------------------------------


def dequantized(pre: Preprocessor, values: np.ndarray, generator: torch.Generator) -> np.ndarray:
    """One draw of y = (x + u - shift) / scale, through aevb's own preprocessing."""
    return pre.to_model(torch.as_tensor(values, dtype=torch.float64), generator).numpy()


def held_out_nats(log_density, pre: Preprocessor, test: np.ndarray, draws: int, seed: int) -> float:
    """Mean over test rows of E_u[log p(x + u)] in the user's units (the dequantization bound;
    for continuous data one draw is exact, there being no noise)."""
    generator = torch.Generator().manual_seed(seed)
    draws = draws if pre.kind == "levels" else 1
    per_row = np.mean([log_density(dequantized(pre, test, generator)) for _ in range(draws)], axis=0)
    return float(per_row.mean() + pre.log_abs_det_jacobian())


def diag_gaussian(y: np.ndarray):
    mean, var = y.mean(axis=0), y.var(axis=0)
    return lambda t: -0.5 * (((t - mean) ** 2 / var) + np.log(2 * np.pi * var)).sum(axis=1)


def choose_on_validation(make, grid, y: np.ndarray, seed: int, budget: float | None = None):
    """Fit ``make(value)`` (a scikit-learn density with ``fit`` / ``score``) for each value of
    ``grid`` on 80% of y, keep the value with the best mean log-likelihood on the other 20%,
    refit it on all of y. Values are tried in order; once ``budget`` seconds have passed no
    new value is started. Returns (fitted estimator, chosen value)."""
    val, fit_rows = split_rows(y, 0.2, seed)
    scores, started = {}, time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for value in grid:
            if budget is not None and scores and time.perf_counter() - started > budget:
                break
            try:
                scores[value] = make(value).fit(fit_rows).score(val)
            except ValueError:  # e.g. more components than rows
                continue
        best = max(scores, key=scores.get)
        return make(best).fit(y), best


def fit_gmm(y: np.ndarray, covariance: str, components, seed: int, budget: float | None = None):
    from sklearn.mixture import GaussianMixture

    return choose_on_validation(
        lambda n: GaussianMixture(n, covariance_type=covariance, random_state=seed), components, y, seed, budget
    )
