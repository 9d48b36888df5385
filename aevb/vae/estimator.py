"""VAE: the estimator of the single-latent variational autoencoder."""

from __future__ import annotations

from ..config import VAEConfig
from ..estimator import LatentModelEstimator
from .family import VAEFamily


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
