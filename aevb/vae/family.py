"""The VAE as a :class:`~aevb.core.family.Family`: what the generic loop trains and scores.

Training minimizes minus the training objective (:func:`aevb.core.objectives.training_objective`:
the ELBO, or IWAE_k under ``objective="iwae"``, with the KL weighted by beta, ramped up over
``kl_warmup`` epochs, and free bits); metrics.csv gets the plain ELBO and its two terms,

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))  =  reconstruction - kl,

and early stopping watches the held-out bound that training maximizes: the ELBO, or IWAE_k.
"""

from __future__ import annotations

import torch

from ..config import VAEConfig
from ..core.family import DataDescription, Family, Progress
from ..core.objectives import elbo, iwae, kl_weight, training_objective
from .model import LatentVariableModel, build_vae


class VAEFamily(Family):
    """A prior p(z), an amortized posterior q(z|x) and a decoder p(x|z) (:mod:`aevb.vae.model`)."""

    metric_names = ("elbo", "reconstruction", "kl")
    log_density_names = frozenset({"elbo", "reconstruction", "iwae"})

    def __init__(self, config: VAEConfig):
        self.config = config
        self.bound_name = "iwae" if config.objective == "iwae" else "elbo"
        self.validation_names = self.metric_names + (("iwae",) if self.bound_name == "iwae" else ())
        self.warmup_epochs = config.kl_warmup

    @property
    def bound_label(self) -> str:
        return self.bound_name.upper()

    def build(self, data: DataDescription) -> LatentVariableModel:
        return build_vae(self.config, data.n_features, data.likelihood)

    def loss(self, module: LatentVariableModel, x: torch.Tensor, progress: Progress):
        objective, terms = training_objective(module, x, self.config, kl_weight(self.config, progress.epoch))
        return -objective, {"elbo": terms.elbo, "reconstruction": terms.reconstruction, "kl": terms.kl}

    def validate(self, module: LatentVariableModel, x: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = elbo(module, x)
        values = {"elbo": terms.elbo, "reconstruction": terms.reconstruction, "kl": terms.kl}
        if self.bound_name == "iwae":
            values["iwae"] = iwae(module, x, self.config.k)
        return values

    def score(self, module: LatentVariableModel, x: torch.Tensor, k: int) -> tuple[torch.Tensor, str]:
        return iwae(module, x, k), f"IWAE_{k}"

    def sample(self, module: LatentVariableModel, n: int) -> torch.Tensor:
        return module.likelihood(module.sample_latents(n)).sample()

    def encode(self, module: LatentVariableModel, x: torch.Tensor) -> torch.Tensor:
        return module.posterior(x).mean
