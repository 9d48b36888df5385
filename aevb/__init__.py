"""aevb: learn the distribution p(x) of a dataset with variational autoencoders."""

from . import data as datasets
from .config import VAEConfig
from .errors import AevbError
from .estimator import VAE
from .linear_estimators import PPCA, FactorAnalysis
from .persistence import load
from .table_estimator import TabularVAE
from .version import __version__

__all__ = ["VAE", "TabularVAE", "PPCA", "FactorAnalysis", "VAEConfig", "AevbError", "load", "datasets", "__version__"]
