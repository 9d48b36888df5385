"""The VAE as a :class:`~aevb.core.family.Family`: what the generic loop trains and scores.

Training minimizes minus the training objective (:func:`aevb.core.objectives.training_objective`:
the ELBO, or IWAE_k under ``objective="iwae"``, with the KL weighted by beta, ramped up over
``kl_warmup`` epochs, and free bits); metrics.csv gets the plain ELBO and its two terms,

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))  =  reconstruction - kl,

and early stopping watches the held-out bound that training maximizes: the ELBO, or IWAE_k.
A hierarchy of N layers adds ``kl_1`` ... ``kl_N``, each layer's KL given the layers above
(nearest x first; NaN in training under objective iwae, whose KL does not split).
"""

from __future__ import annotations

import torch

from ..config import VAEConfig
from ..core.family import DataDescription, Family, Progress
from ..core.objectives import ElboTerms, elbo, iwae, kl_weight, training_objective
from .model import LatentVariableModel, build_vae


class VAEFamily(Family):
    """A prior p(z), an amortized posterior q(z|x) and a decoder p(x|z) (:mod:`aevb.vae.model`)."""

    metric_names = ("elbo", "reconstruction", "kl")
    log_density_names = frozenset({"elbo", "reconstruction", "iwae"})

    def __init__(self, config: VAEConfig):
        self.config = config
        self.bound_name = "iwae" if config.objective == "iwae" else "elbo"
        layers = config.latent_layers
        self.metric_names = VAEFamily.metric_names + (tuple(f"kl_{l}" for l in range(1, layers + 1)) if layers > 1 else ())
        self.validation_names = self.metric_names + (("iwae",) if self.bound_name == "iwae" else ())
        self.warmup_epochs = config.kl_warmup

    @property
    def bound_label(self) -> str:
        return self.bound_name.upper()

    def build(self, data: DataDescription) -> LatentVariableModel:
        return build_vae(self.config, data.n_features, data.likelihood, data.n_levels, data.image_shape)

    def loss(self, module: LatentVariableModel, x: torch.Tensor, progress: Progress):
        objective, terms = training_objective(module, x, self.config, kl_weight(self.config, progress.epoch))
        return -objective, self._metrics(terms)

    def _metrics(self, terms: ElboTerms) -> dict[str, torch.Tensor]:
        values = {"elbo": terms.elbo, "reconstruction": terms.reconstruction, "kl": terms.kl}
        if self.config.latent_layers > 1:
            sizes = [self.config.latent_dim] * self.config.latent_layers
            if terms.kl_per_dimension is None:
                layers = [torch.full_like(terms.kl, float("nan"))] * len(sizes)
            else:
                layers = [kl.sum(-1) for kl in terms.kl_per_dimension.split(sizes, dim=-1)]
            values.update({f"kl_{l}": kl for l, kl in enumerate(layers, start=1)})
        return values

    def validate(self, module: LatentVariableModel, x: torch.Tensor) -> dict[str, torch.Tensor]:
        values = self._metrics(elbo(module, x))
        if self.bound_name == "iwae":
            values["iwae"] = iwae(module, x, self.config.k)
        return values

    def score(self, module: LatentVariableModel, x: torch.Tensor, k: int) -> tuple[torch.Tensor, str]:
        return iwae(module, x, k), f"IWAE_{k}"

    def sample(self, module: LatentVariableModel, n: int) -> torch.Tensor:
        return module.likelihood(module.sample_latents(n)).sample()

    def encode(self, module: LatentVariableModel, x: torch.Tensor) -> torch.Tensor:
        return module.posterior(x).mean
