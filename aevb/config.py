"""The options of each model, one dataclass per family.

The same fields are the keyword arguments of :class:`aevb.VAE`, the options of
``aevb fit`` and the ``"model"`` block of a saved ``config.json``, so a choice
is declared once, here, with its meaning. :class:`TrainingConfig` holds how any
family is trained; a trained family's options dataclass extends it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal, get_args

from .errors import AevbError

Likelihood = Literal["auto", "gaussian", "bernoulli"]
DecoderScale = Literal["feature", "output"]
Decoder = Literal["mlp", "linear"]


def _require_positive_ints(config, names: list[str]) -> None:
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise AevbError(f"{name} must be a positive integer, got {value!r}")


def _require_choices(config, choices: list) -> None:
    for name, kind in choices:
        if getattr(config, name) not in get_args(kind):
            raise AevbError(f"{name} must be one of {', '.join(get_args(kind))}, got {getattr(config, name)!r}")


class Options:
    """to_dict / from_dict shared by the option dataclasses."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise AevbError(f"unknown option(s) for {cls.__name__}: {', '.join(unknown)}")
        return cls(**values)

# q(z|x): diagonal Gaussian; full-covariance Gaussian (Cholesky factor); Gaussian + inverse autoregressive flow.
Posterior = Literal["diagonal", "full", "iaf"]
# p(z): N(0, I); a learned mixture of Gaussians; the VampPrior (mixture of posteriors at learned pseudo-inputs).
Prior = Literal["standard", "mog", "vamp"]
# What training maximizes: the ELBO, or the importance-weighted bound on k draws.
Objective = Literal["elbo", "iwae"]
# Where training computes: a GPU when torch sees one (auto), the CPU, or a GPU (cuda).
Device = Literal["auto", "cpu", "cuda"]
# float32 throughout, or bf16 autocast of the networks on a GPU.
Precision = Literal["float32", "bf16"]


@dataclass
class TrainingConfig(Options):
    """How any family is trained by the generic loop (:mod:`aevb.train.loop`): the fields every
    family's options dataclass inherits, whatever the model."""

    epochs: int = field(default=500, metadata={"help": "Maximum number of passes over the data."})
    batch_size: int = field(default=128, metadata={"help": "Rows per gradient step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam step size."})
    weight_decay: float = field(default=0.0, metadata={"help": "Adam's L2 penalty on weights."})
    validation_fraction: float = field(
        default=0.1, metadata={"help": "Share of rows held out for early stopping."}
    )
    patience: int = field(
        default=30,
        metadata={"help": "Stop after this many epochs without a better validation bound (the model's: "
                  "a VAE's ELBO, IWAE under --objective iwae)."},
    )
    max_time: float | None = field(
        default=None, metadata={"help": "Wall-clock cap on training, in seconds."}
    )
    grad_clip: float | None = field(
        default=None,
        metadata={"help": "Rescale each gradient to at most this total norm (off by default); tames divergence."},
    )
    checkpoint_every: float = field(
        default=300.0,
        metadata={
            "help": "Seconds between mid-epoch checkpoints in the run folder "
            "(one is also written after every epoch)."
        },
    )
    in_memory_mib: float = field(
        default=512.0,
        metadata={
            "help": "Largest float32 copy of the training rows, in MiB, held in memory; above it a "
            "memory-mapped .npy is read in shuffled chunks (a block shuffle)."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed: the same seed and data give the same model."})
    device: Device = field(
        default="auto",
        metadata={"help": "Where training computes: auto (a GPU when present), cpu, or cuda. "
                  "Under torchrun each rank takes the GPU of its LOCAL_RANK."},
    )
    precision: Precision = field(
        default="float32", metadata={"help": "float32, or bf16 autocast of the networks (GPUs only)."}
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _require_positive_ints(self, ["epochs", "batch_size", "patience"])
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise AevbError(f"learning_rate must be a positive number, got {self.learning_rate!r}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise AevbError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 < self.validation_fraction < 1:
            raise AevbError(
                f"validation_fraction must lie strictly between 0 and 1, got {self.validation_fraction!r}"
            )
        if self.grad_clip is not None and not (self.grad_clip > 0 and math.isfinite(self.grad_clip)):
            raise AevbError(f"grad_clip must be a positive number, got {self.grad_clip!r}")
        if not (self.checkpoint_every > 0 and not math.isnan(self.checkpoint_every)):
            raise AevbError(f"checkpoint_every must be a positive number of seconds, got {self.checkpoint_every!r}")
        if not (self.in_memory_mib >= 0 and not math.isnan(self.in_memory_mib)):
            raise AevbError(f"in_memory_mib must be a number of MiB >= 0, got {self.in_memory_mib!r}")
        if self.max_time is not None and not self.max_time > 0:
            raise AevbError(f"max_time must be a positive number of seconds, got {self.max_time!r}")
        _require_choices(self, [("device", Device), ("precision", Precision)])


@dataclass
class VAEConfig(TrainingConfig):
    """A VAE's options: the model and its training objective, plus the training fields."""

    latent_dim: int = field(default=16, metadata={"help": "Size of the latent code z."})
    hidden: tuple[int, ...] = field(
        default=(256, 256),
        metadata={"help": "Hidden layer widths of encoder and decoder MLPs, e.g. 256,256."},
    )
    likelihood: Likelihood = field(
        default="auto",
        metadata={"help": "p(x|z): bernoulli for {0,1} data, gaussian otherwise (auto picks)."},
    )
    decoder: Decoder = field(
        default="mlp",
        metadata={
            "help": "mlp: a neural net f(z); linear: x = Wz + b + noise with one learned "
            "noise scale per feature (factor analysis trained by the ELBO; exact log p(x) known)."
        },
    )
    # "output" is the default: on held-out digits it scored 2.29 bits/dim against
    # 2.55 for a learned per-feature sigma (same net, same epochs; see README).
    decoder_scale: DecoderScale = field(
        default="output",
        metadata={
            "help": "Gaussian decoder's sigma: an output of the decoder net for each row "
            "(output), or one learned value per feature (feature)."
        },
    )
    posterior: Posterior = field(
        default="diagonal",
        metadata={"help": "q(z|x): diagonal Gaussian, full-covariance Gaussian (full), or a Gaussian "
                  "followed by an inverse autoregressive flow (iaf)."},
    )
    flow_layers: int = field(default=2, metadata={"help": "Masked autoregressive layers of the iaf posterior."})
    prior: Prior = field(
        default="standard",
        metadata={"help": "p(z): N(0, I) (standard), a learned mixture of Gaussians (mog), or the "
                  "VampPrior, a mixture of posteriors at learned pseudo-inputs (vamp)."},
    )
    prior_components: int = field(
        default=16, metadata={"help": "Mixture components of the mog prior, pseudo-inputs of the vamp prior."}
    )
    objective: Objective = field(
        default="elbo",
        metadata={"help": "Training objective: the ELBO, or the importance-weighted bound on --k draws (iwae). "
                  "Evaluation always reports both the ELBO and the log p(x) estimate."},
    )
    k: int = field(default=5, metadata={"help": "Importance samples per row in the training bound of objective iwae."})
    beta: float = field(
        default=1.0, metadata={"help": "Weight of the KL term in training (1 is the ELBO; beta-VAE otherwise)."}
    )
    kl_warmup: float = field(
        default=0.0,
        metadata={"help": "Epochs over which the KL weight rises linearly from 0 to --beta; "
                  "early stopping waits until it ends."},
    )
    free_bits: float = field(
        default=0.0,
        metadata={"help": "Nats per latent dimension that cost nothing in training: each row's KL is "
                  "sum_i max(KL_i, free_bits), per dimension where the KL splits so, else for the whole "
                  "latent vector (objective elbo only)."},
    )
    mc_samples: int = field(
        default=1, metadata={"help": "Monte-Carlo samples L of z per row in the training ELBO."}
    )

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        self.validate()

    def validate(self) -> None:
        super().validate()
        _require_positive_ints(self, ["latent_dim", "mc_samples", "flow_layers", "prior_components", "k"])
        if not self.hidden or any(isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in self.hidden):
            raise AevbError(f"hidden must be one or more positive integers, got {self.hidden!r}")
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise AevbError(f"beta must be a positive number, got {self.beta!r}")
        for name in ("kl_warmup", "free_bits"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise AevbError(f"{name} must be a number >= 0, got {getattr(self, name)!r}")
        _require_choices(self, [
            ("likelihood", Likelihood), ("decoder_scale", DecoderScale), ("decoder", Decoder),
            ("posterior", Posterior), ("prior", Prior), ("objective", Objective),
        ])
        if self.free_bits > 0 and self.objective != "elbo":
            raise AevbError("free_bits works with objective elbo only; use kl_warmup or beta with iwae")



@dataclass
class LinearConfig(Options):
    """Options of the linear-Gaussian models (PPCA, factor analysis), fitted in closed form or by EM."""

    latent_dim: int = field(default=16, metadata={"help": "Size of the latent code z."})
    max_iter: int = field(default=10_000, metadata={"help": "Factor analysis: most EM iterations."})
    tol: float = field(
        default=1e-8, metadata={"help": "Factor analysis: stop when log-likelihood per row gains less."}
    )

    def __post_init__(self) -> None:
        _require_positive_ints(self, ["latent_dim", "max_iter"])
        if not (self.tol > 0 and math.isfinite(self.tol)):
            raise AevbError(f"tol must be a positive number, got {self.tol!r}")


@dataclass
class TableConfig(VAEConfig):
    """A VAE's options plus how the columns of a table are read and modelled."""

    categorical: tuple[str, ...] = field(
        default=(), metadata={"help": "Columns to model as categories, e.g. zip,grade (overrides inference)."}
    )
    continuous: tuple[str, ...] = field(
        default=(), metadata={"help": "Columns to model as continuous numbers (overrides inference)."}
    )
    boolean: tuple[str, ...] = field(
        default=(), metadata={"help": "Columns to model as yes/no (overrides inference)."}
    )
    ignore: tuple[str, ...] = field(default=(), metadata={"help": "Columns to leave out, e.g. an id."})
    max_categories: int = field(
        default=10,
        metadata={"help": "Integer columns with at most this many distinct values are modelled as categories."},
    )
    components: int = field(
        default=1,
        metadata={"help": "Gaussians per continuous column in p(x|z): 1, or a mixture for multi-modal columns."},
    )

    def validate(self) -> None:
        for name in ("categorical", "continuous", "boolean", "ignore"):
            setattr(self, name, tuple(str(v) for v in getattr(self, name)))
        super().validate()
        _require_positive_ints(self, ["max_categories", "components"])
        if self.prior == "vamp":
            raise AevbError("the vamp prior is not available for tables; use --prior standard or mog")
        if self.decoder == "linear":
            raise AevbError("--decoder linear is not available for tables; use the mlp decoder")
