"""VAE: the estimator of the single-latent variational autoencoder."""

from __future__ import annotations

import numpy as np
import torch

from ..config import VAEConfig
from ..estimator import (
    EVAL_BUDGET,
    EVAL_ROWS,
    LatentModelEstimator,
    Proposal,
    _check_positive_int,
)
from ..images.decoders import outputs_per_pixel, pixel_log_prob
from ..images.hierarchy import layer_figures
from ..images.pixels import DISCRETE_LIKELIHOODS
from . import sizes
from .family import VAEFamily
from .memory import check_fits
from .model import resolved_net


class VAE(LatentModelEstimator):
    """A variational autoencoder that learns p(x) of the rows of a numeric array.

    Keyword arguments are the fields of :class:`aevb.config.VAEConfig`
    (``latent_dim``, ``hidden``, ``likelihood``, ``epochs``, ...).

    Fitted attributes: ``model_`` (the torch module), ``preprocessor_``,
    ``n_features_in_``, ``image_shape_``, ``history_`` (per-epoch metrics),
    ``best_epoch_``.

    >>> from aevb import VAE, datasets
    >>> X = datasets.load("digits").values
    >>> model = VAE(latent_dim=8, epochs=2).fit(X)
    >>> model.sample(3).shape
    (3, 64)
    """

    config_class = VAEConfig
    family_class = VAEFamily

    def _check_fits(self, config: VAEConfig, n_features: int) -> None:
        check_fits(config, n_features)

    def _automatic_options(self, n_rows: int, n_features: int, image_shape=None) -> tuple[dict, str]:
        return sizes.automatic(self.get_params(deep=False), n_rows, n_features)

    @torch.no_grad()
    def reconstruct(self, X) -> np.ndarray:
        """E[x | z = E_q[z|x]] per row (n, D), in the user's units: each row as the model
        sees it through its code."""
        parts = [self.model_.likelihood(self.model_.posterior(y).mean).mean for y in self._centered_batches_of(self._rows(X))]
        return self.preprocessor_.from_model(torch.cat(parts), mean=True).double().numpy()

    def pixel_log_likelihood(self, X, k: int = 100, seed: int = 0) -> np.ndarray:
        """Where in each row the model is surprised: sum_k w_k log p(x_j | z_k) per value j,
        shape (n, D), with z_k ~ q(z|x) and w_k the normalized importance weights
        p(x, z_k) / q(z_k|x) of k draws (the posterior's view of log p(x_j | z)). In nats,
        in the user's units (log-Jacobian of each value included)."""
        k = _check_positive_int(k, "k")
        model, chunk = self.model_, self._chunk_size()

        def compute(y):
            q = model.posterior(y)
            log_w, per_value = [], []
            for start in range(0, k, chunk):  # draws a chunk at a time, as importance_samples takes them
                z = q.rsample((min(chunk, k - start),))  # (c, B, d)
                decoded = model.likelihood(z)
                log_w.append(decoded.log_prob(y) + model.prior_distribution().log_prob(z) - q.log_prob(z))
                per_value.append(pixel_log_prob(decoded, y))  # (c, B, D)
            weights = torch.softmax(torch.cat(log_w), dim=0).unsqueeze(-1)  # (k, B, 1)
            return (weights * torch.cat(per_value)).sum(0).T  # (D, B)

        per_value = self._per_row(X, seed, compute).T  # (n, D)
        return per_value - np.log(np.asarray(self.preprocessor_.scale))

    def _chunk_size(self) -> int:
        # Conv activations and per-level outputs take more memory per draw than an MLP's widths.
        net = resolved_net(self.config, self.image_shape_)
        pre = self.preprocessor_
        likelihood = getattr(pre, "likelihood", None)  # a table's preprocessor has none
        per_draw = 1
        if likelihood in DISCRETE_LIKELIHOODS:
            per_draw = outputs_per_pixel(likelihood, pre.n_levels, self.config.mixture_components)
        width = self.n_features_in_ * max(per_draw, self.config.conv_width if net == "conv" else 1)
        return max(1, EVAL_BUDGET // (EVAL_ROWS * max(width, *self.config.hidden)))

    def evaluation_figures(self, statistics: np.ndarray, k: int, proposal: Proposal) -> dict:
        """:meth:`LatentModelEstimator.evaluation_figures`, and for a hierarchy ``layers``: the KL
        and active units of each stochastic layer, bottom (nearest x) first."""
        figures = super().evaluation_figures(statistics, k, proposal)
        if getattr(self.model_, "layer_sizes", None):
            figures["layers"] = layer_figures(figures, self.model_.layer_sizes)
        return figures
