"""Every estimator, by the name `aevb fit --model` takes; config.json records the class name.

Tables are modelled by TabularVAE, which `aevb fit` picks by the data (see aevb.table_io), not by --model."""

from .diffusion.estimator import Diffusion
from .linear.estimators import PPCA, FactorAnalysis
from .tables.estimator import TabularVAE
from .vae.estimator import VAE

ESTIMATORS = {"vae": VAE, "ppca": PPCA, "fa": FactorAnalysis, "diffusion": Diffusion}
BY_CLASS_NAME = {cls.__name__: cls for cls in (*ESTIMATORS.values(), TabularVAE)}
