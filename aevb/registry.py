"""Every estimator, by the name `aevb fit --model` takes; config.json records the class name."""

from .estimator import VAE
from .linear_estimators import PPCA, FactorAnalysis

ESTIMATORS = {"vae": VAE, "ppca": PPCA, "fa": FactorAnalysis}
BY_CLASS_NAME = {cls.__name__: cls for cls in ESTIMATORS.values()}
