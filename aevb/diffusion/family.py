"""The diffusion model as a model family (:class:`aevb.core.family.Family`): build, loss, bound,
score, sample; it has no latent code to encode."""

from __future__ import annotations

import math

import torch

from ..core.family import DataDescription, Family, Progress
from ..data.preprocess import Preprocessor
from ..errors import AevbError
from .bound import (
    antithetic_times,
    diffusion_loss,
    negative_bound,
    prior_loss,
    reconstruction_loss,
)
from .config import UNET_MIN_SIDE, DiffusionConfig
from .decoder import MAX_DISCRETE_LEVELS, DiscreteDecoder, GaussianDecoder
from .model import DiffusionModel
from .network import EpsilonMLP, IndependentLevels
from .sampler import sample
from .schedule import GAMMA_MIN, MonotoneSchedule
from .unet import EpsilonUNet


def level_grid(pre: Preprocessor) -> tuple[torch.Tensor, torch.Tensor, int] | None:
    """(first, spacing, levels) of the level grid in model space, or None for continuous data
    (and for levels too many for a categorical decoder, which are dequantized instead)."""
    scale = torch.as_tensor(pre.scale, dtype=torch.float32)
    shift = torch.as_tensor(pre.shift, dtype=torch.float32)
    if pre.kind == "binary":
        return (0 - shift) / scale, 1 / scale, 2
    if pre.kind == "levels" and pre.n_levels <= MAX_DISCRETE_LEVELS:
        return (0.5 - shift) / scale, 1 / scale, pre.n_levels  # the centre of each level's unit cell
    return None


def resolved_net(config: DiffusionConfig, image_shape: tuple[int, ...] | None) -> str:
    """"unet" or "mlp": what ``config.net`` means for data of this image shape (None: plain rows)."""
    if config.net == "unet" and not image_shape:
        raise AevbError("--net unet needs images (a folder of images, an (N, H, W[, C]) array or digits); "
                        "use --net mlp for rows")
    if config.net == "auto":
        return "unet" if image_shape and min(image_shape[:2]) >= UNET_MIN_SIDE else "mlp"
    return config.net


class DiffusionFamily(Family):
    """A continuous-time variational diffusion model on rows (VDM), for the generic machinery.

    Metrics (training and validation), per row: ``bound`` on log p(x) = ``reconstruction``
    (E_q log p(x | z_0)) - ``prior`` (KL(q(z_1 | x) || p(z_1))) - ``diffusion`` (the diffusion
    loss); the bound and the reconstruction are log-densities of x (the machinery adds the
    preprocessor's log-Jacobian), the other two are in nats of the model's data.
    """

    metric_names = ("bound", "diffusion", "prior", "reconstruction")
    validation_names = metric_names
    bound_name = "bound"
    log_density_names = frozenset({"bound", "reconstruction"})

    def __init__(self, config: DiffusionConfig, preprocessor: Preprocessor):
        self.config = config
        self.preprocessor = preprocessor

    def build(self, data: DataDescription) -> DiffusionModel:
        grid = level_grid(self.preprocessor)
        config = self.config
        if grid is None:
            decoder, spacing, octaves, base = GaussianDecoder(), torch.ones(data.n_features), 0, None
            gamma_0 = GAMMA_MIN
        else:
            first, spacing, n_levels = grid
            decoder, octaves = DiscreteDecoder(first, spacing, n_levels), config.fourier_octaves
            base = IndependentLevels(first, spacing, n_levels)
            # sigma_0 well inside a level's cell: the decoder then reads the level off z_0 almost surely,
            # and the diffusion need not start at a lower noise level than that.
            gamma_0 = 2 * math.log(1 / max(self.preprocessor.scale) / 6)  # (python floats: building may be on the meta device)
        gamma_0 = gamma_0 if config.gamma_min is None else config.gamma_min
        if not gamma_0 < config.gamma_max:
            raise AevbError(f"gamma_max ({config.gamma_max}) must exceed gamma(0) at the start ({gamma_0:.2f})")
        schedule = MonotoneSchedule(gamma_0, config.gamma_max)
        if resolved_net(config, data.image_shape) == "unet":
            denoiser = EpsilonUNet(data.image_shape, config.conv_width, spacing, octaves, base=base)
        else:
            denoiser = EpsilonMLP(data.n_features, config.hidden, spacing, octaves, base=base,
                                  dropout=config.dropout)
        # The N(0, I) control variate pays only where the base denoiser is the N(0, I) one.
        return DiffusionModel(schedule, denoiser, decoder, data.n_features, control_variate=base is None,
                              average_decay=config.weight_average)

    def loss(self, module: DiffusionModel, x: torch.Tensor, progress: Progress):
        """The negative bound per row, one antithetic t per row across the batch; the schedule's
        shape learns from the variance of the diffusion term instead (:class:`MonotoneSchedule`)."""
        clean = module.data(x)
        variance: dict = {}
        t = antithetic_times((len(clean),), clean.dtype, clean.device)
        diffusion = diffusion_loss(module, clean, t, variance=variance)
        prior, reconstruction = prior_loss(module, clean), reconstruction_loss(module, clean)
        loss = diffusion + prior + reconstruction
        return loss, {"bound": -loss, "diffusion": diffusion, "prior": prior, "reconstruction": -reconstruction}

    def validate(self, module: DiffusionModel, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The bound and its terms on held-out rows, each the mean of ``t_samples`` draws of t."""
        terms = negative_bound(module, x, self.config.t_samples)
        return {"bound": terms.bound, "diffusion": terms.diffusion, "prior": terms.prior,
                "reconstruction": terms.reconstruction}

    def score(self, module: DiffusionModel, x: torch.Tensor, k: int) -> tuple[torch.Tensor, str]:
        return negative_bound(module, x, k).bound, f"bound (t_samples={k})"

    def after_step(self, module: DiffusionModel) -> None:
        if module.average is not None:
            module.average.update(module.denoiser)

    def sample(self, module: DiffusionModel, n: int, steps: int | None = None, progress: bool = False,
               mean: bool = False) -> torch.Tensor:
        return sample(module, n, steps or self.config.sample_steps, progress, mean)

