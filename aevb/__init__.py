"""aevb: learn the distribution p(x) of a dataset with variational autoencoders."""

from .config import VAEConfig
from .data import loaders as datasets
from .diffusion.estimator import Diffusion
from .errors import AevbError, AevbWarning
from .gplvm.estimator import GPLVM
from .linear.estimators import PPCA, FactorAnalysis
from .store.load import load
from .tables.estimator import TabularVAE
from .vae.estimator import VAE
from .version import __version__

__all__ = [
    "VAE", "Diffusion", "GPLVM", "TabularVAE", "PPCA", "FactorAnalysis", "VAEConfig", "AevbError", "AevbWarning",
    "load", "datasets", "__version__",
]
