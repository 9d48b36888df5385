"""Probabilistic PCA and factor analysis, with the same surface as the VAE and an exact log p(x)."""

from __future__ import annotations

import numpy as np
import torch

from ..config import LinearConfig
from ..data.dequantization import dequantization_moments
from ..data.loaders import Dataset
from ..data.preprocess import Preprocessor
from ..errors import AevbError
from ..estimator import LatentModelEstimator
from ..sklearn_api import fitting
from ..vae.model import LinearGaussianModel
from .decoder import LinearGaussianDecoder
from .fit import fit_factor_analysis, fit_ppca


def linear_gaussian_model(W: torch.Tensor, b: torch.Tensor, psi: torch.Tensor) -> LinearGaussianModel:
    """z ~ N(0, I), x | z ~ N(W z + b, diag psi), in the parameters' dtype."""
    n_features, latent_dim = W.shape
    model = LinearGaussianModel(LinearGaussianDecoder(latent_dim, n_features)).to(W.dtype)
    model.decoder.set_parameters(W, b, psi)
    return model


class LinearGaussianEstimator(LatentModelEstimator):
    """Fits x = W z + b + noise by maximum likelihood from the data's mean and covariance.

    The columns keep the user's scale (PPCA is not invariant to rescaling
    them). Integer level data is dequantized as for the VAE; its mean and
    covariance are then those of x + u, u ~ U[0, 1): mean + 1/2, covariance + I/12.
    ``score_samples`` is the exact log p(x) (a bound on log P(x) for level data).
    """

    config_class = LinearConfig
    trains_in_steps = False
    dtype = torch.float64

    def _solve(self, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _make_model(self, n_features: int, pre: Preprocessor, image_shape=None) -> LinearGaussianModel:
        return LinearGaussianModel(LinearGaussianDecoder(self.config.latent_dim, n_features))

    @fitting
    def fit(self, X, y=None, **_training) -> "LinearGaussianEstimator":
        """Fit to the rows of X (n, D) in one go; returns self. ``y`` and the options of a
        stepwise fit (``progress``, ``run_dir``, ``resume``) are ignored."""
        image_shape = X.image_shape if isinstance(X, Dataset) else None
        values = self._fit_rows(X)
        if len(values) < 2:
            raise AevbError(f"need at least 2 rows to fit, got {len(values)}")
        pre = Preprocessor.fit(values, "gaussian", standardize=False)
        mean, covariance = values.mean(axis=0), np.cov(values, rowvar=False, bias=True).reshape(len(values[0]), -1)
        if pre.kind == "levels":
            mean, covariance = dequantization_moments(mean, covariance)
        W, psi = self._solve(covariance)
        self._build(values.shape[1], pre, image_shape)
        self.model_.decoder.set_parameters(W, mean, psi)
        self.components_, self.noise_variance_, self.mean_ = W, psi, mean
        return self

    def score_samples(self, X, k: int = 100, seed: int = 0) -> np.ndarray:
        """Per-row exact log p(x) in nats, shape (n,); ``k`` is unused."""
        return self.exact_score_samples(X, seed)


class PPCA(LinearGaussianEstimator):
    """Probabilistic PCA: x = W z + b + N(0, sigma^2 I), fitted in closed form (Tipping & Bishop, 1999).

    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(100, 5))
    >>> PPCA(latent_dim=2).fit(X).score_samples(X).shape
    (100,)
    """

    def _solve(self, covariance):
        return fit_ppca(covariance, self.config.latent_dim)


class FactorAnalysis(LinearGaussianEstimator):
    """Factor analysis: x = W z + b + N(0, diag psi), fitted by EM."""

    def _solve(self, covariance):
        W, psi, self.n_iter_ = fit_factor_analysis(covariance, self.config.latent_dim, self.config.max_iter, self.config.tol)
        return W, psi
