"""The options of each model, one dataclass per family.

The same fields are the keyword arguments of the estimators (:class:`aevb.VAE`, ...),
the options of ``aevb fit`` and the ``"model"`` block of a saved ``config.json``, so a
choice is declared once, here, with its meaning and its constraints: a ``Literal`` type
lists the choices, :func:`option` gives the help, the check of the value
(:class:`Constraint`) and whether it may change when a run is resumed. The
estimators, the command line and the resume check all read them from here.
:class:`TrainingConfig` holds how any family is trained; a trained family's options
dataclass extends it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, get_args, get_origin, get_type_hints

from .core.noise import check_seed
from .errors import AevbError

Likelihood = Literal["auto", "gaussian", "bernoulli", "categorical", "logistic-mixture"]
DecoderScale = Literal["feature", "output"]
Decoder = Literal["mlp", "linear"]
# Encoder and decoder networks: residual convolutions for images and MLPs otherwise (auto), or either.
Net = Literal["auto", "mlp", "conv"]


@dataclass(frozen=True)
class Constraint:
    """What an option's value must be: ``holds(value)``, and ``wanted`` for the message
    "NAME must be WANTED, got VALUE"."""

    holds: Callable[[Any], bool]
    wanted: str

    def check(self, name: str, value) -> None:
        try:
            good = bool(self.holds(value))
        except TypeError:  # a value of the wrong type: "abc" > 0
            good = False
        if not good:
            raise AevbError(f"{name} must be {self.wanted}, got {value!r}")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


POSITIVE_INT = Constraint(lambda v: _is_int(v) and v > 0, "a positive integer")
POSITIVE_INTS = Constraint(lambda v: len(v) > 0 and all(_is_int(h) and h > 0 for h in v), "one or more positive integers")
POSITIVE = Constraint(lambda v: v > 0 and math.isfinite(v), "a positive number")
AT_LEAST_ZERO = Constraint(lambda v: v >= 0 and math.isfinite(v), "a number >= 0")
FRACTION = Constraint(lambda v: 0 < v < 1, "a number strictly between 0 and 1")
# Durations may be infinite (no limit), never NaN.
POSITIVE_SECONDS = Constraint(lambda v: v > 0, "a positive number of seconds")
MIB = Constraint(lambda v: v >= 0, "a number of MiB >= 0")


def option(default, help: str, check: Constraint | None = None, *, may_change_on_resume: bool = False):
    """A field of an option dataclass: its default, its help line, the check of its value
    and whether ``--resume`` may change it (options that steer the rest of a run, not
    what was built). A ``Literal`` type is checked against its choices; a type that
    admits None lets None pass."""
    return field(default=default, metadata={"help": help, "check": check, "may_change_on_resume": may_change_on_resume})


class Options:
    """to_dict / from_dict and the declared checks, shared by the option dataclasses."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check_options(self) -> None:
        """Raise an AevbError naming the first option whose value breaks its declared constraint."""
        hints = get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), hints[f.name]
            if value is None and type(None) in get_args(kind):
                continue
            if get_origin(kind) is Literal and value not in get_args(kind):
                raise AevbError(f"{f.name} must be one of {', '.join(get_args(kind))}, got {value!r}")
            if f.metadata.get("check") is not None:
                f.metadata["check"].check(f.name, value)
            if _is_int(value) and not isinstance(value, int):
                setattr(self, f.name, int(value))  # numpy's integers too (a grid from np.arange)

    @classmethod
    def may_change_on_resume(cls) -> tuple[str, ...]:
        """The options that may differ when a run is resumed."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("may_change_on_resume"))

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
# The learning rate over a run: constant, or annealed to zero along a half cosine (aevb.train.schedule).
LearningRateSchedule = Literal["constant", "cosine"]
# Where training computes: a GPU when torch sees one (auto), the CPU, or a GPU (cuda).
Device = Literal["auto", "cpu", "cuda"]
# float32 throughout, or bf16 autocast of the networks on a GPU.
Precision = Literal["float32", "bf16"]


@dataclass
class TrainingConfig(Options):
    """How any family is trained by the generic loop (:mod:`aevb.train.loop`): the fields every
    family's options dataclass inherits, whatever the model."""

    epochs: int | None = option(
        None,
        "Maximum number of passes over the data (default: none under --max-time; else 500, or as many as "
        "make 20,000 steps when epochs are short).",
        POSITIVE_INT, may_change_on_resume=True,
    )
    batch_size: int = option(128, "Rows per gradient step.", POSITIVE_INT)
    learning_rate: float = option(1e-3, "Adam step size.", POSITIVE, may_change_on_resume=True)
    learning_rate_schedule: LearningRateSchedule = option(
        "constant",
        "constant, or cosine: annealed to zero at the run's end (its --max-time budget or its last epoch, "
        "whichever comes first).",
        may_change_on_resume=True,
    )
    weight_decay: float = option(0.0, "Adam's L2 penalty on weights.", AT_LEAST_ZERO)
    validation_fraction: float = option(0.1, "Share of rows held out for early stopping.", FRACTION)
    patience: int | None = option(
        None,
        "Stop after this many epochs without a better validation bound (the model's: a VAE's ELBO, "
        "IWAE under --objective iwae); default: 30 epochs, or as many as make 1,000 steps when epochs are short.",
        POSITIVE_INT, may_change_on_resume=True,
    )
    max_time: float | None = option(
        None,
        "Wall-clock cap on training, in seconds.",
        POSITIVE_SECONDS, may_change_on_resume=True,
    )
    grad_clip: float | None = option(
        None,
        "Rescale each gradient to at most this total norm (off by default); tames divergence.",
        POSITIVE, may_change_on_resume=True,
    )
    checkpoint_every: float = option(
        60.0,
        "Seconds between checkpoints in the run folder (one is also written before the "
        "first step, when training stops and on Ctrl-C or SIGTERM); a hard kill loses at most this much.",
        POSITIVE_SECONDS, may_change_on_resume=True,
    )
    in_memory_mib: float = option(
        512.0,
        "Largest float32 copy of the training rows, in MiB, held in memory; above it a "
        "memory-mapped .npy is read in shuffled chunks (a block shuffle).",
        MIB,
    )
    seed: int = option(0, "Seed: the same seed, data and --threads give the same model.")
    threads: int | None = option(
        None,
        "Intra-op threads of the training steps (default: timed, one or all cores, whichever "
        "steps faster now). Pin it for bit-for-bit repeatable runs.",
        POSITIVE_INT, may_change_on_resume=True,
    )
    device: Device = option(
        "auto",
        "Where training computes: auto (a GPU when present), cpu, or cuda. "
        "Under torchrun each rank takes the GPU of its LOCAL_RANK.",
        may_change_on_resume=True,
    )
    precision: Precision = option(
        "float32",
        "float32, or bf16 autocast of the networks (GPUs only).",
        may_change_on_resume=True,
    )


    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        self.check_options()
        check_seed(self.seed)


@dataclass
class VAEConfig(TrainingConfig):
    """A VAE's options: the model and its training objective, plus the training fields."""

    latent_dim: int | None = option(
        None,
        "Size of the latent code z (default: from the data, half the features, at most 16; 20 from 256 features).",
        POSITIVE_INT,
    )
    hidden: tuple[int, ...] | None = option(
        None,
        "Hidden layer widths of encoder and decoder MLPs, e.g. 256,256 (default: 256,256, "
        "or 512,512 from 256 features on).",
        POSITIVE_INTS,
    )
    likelihood: Likelihood = option(
        "auto",
        "p(x|z): bernoulli for {0,1} data, gaussian otherwise (auto picks); for "
        "integer levels 0..L-1 (pixels, L <= 256) also categorical (a softmax over the levels of "
        "each value) or logistic-mixture (a discretized mixture of logistics), which score "
        "log P(x) of the discrete values themselves.",
    )
    net: Net = option(
        "auto",
        "Encoder/decoder networks: conv (residual convolutions; images only), mlp, or "
        "auto (conv for images of 16x16 pixels or more, mlp otherwise).",
    )
    conv_width: int = option(32, "Channels of the conv networks' layers.", POSITIVE_INT)
    mixture_components: int = option(5, "Logistics per pixel of the logistic-mixture likelihood.", POSITIVE_INT)
    latent_layers: int = option(
        1,
        "Stochastic layers of latent_dim each, in a top-down hierarchy (ladder VAE); "
        "1 is the plain VAE. Training has a KL per layer (free bits per layer).",
        POSITIVE_INT,
    )
    decoder: Decoder = option(
        "mlp",
        "mlp: a neural net f(z); linear: x = Wz + b + noise with one learned "
        "noise scale per feature (factor analysis trained by the ELBO; exact log p(x) known).",
    )
    # "output" is the default: on held-out digits it scored 2.29 bits/dim against
    # 2.55 for a learned per-feature sigma (same net, same epochs; see README).
    decoder_scale: DecoderScale = option(
        "output",
        "Gaussian decoder's sigma: an output of the decoder net for each row "
        "(output), or one learned value per feature (feature).",
    )
    posterior: Posterior = option(
        "diagonal",
        "q(z|x): diagonal Gaussian, full-covariance Gaussian (full), or a Gaussian "
        "followed by an inverse autoregressive flow (iaf).",
    )
    flow_layers: int = option(2, "Masked autoregressive layers of the iaf posterior.", POSITIVE_INT)
    prior: Prior = option(
        "standard",
        "p(z): N(0, I) (standard), a learned mixture of Gaussians (mog), or the "
        "VampPrior, a mixture of posteriors at learned pseudo-inputs (vamp).",
    )
    prior_components: int = option(
        16,
        "Mixture components of the mog prior, pseudo-inputs of the vamp prior.",
        POSITIVE_INT,
    )
    objective: Objective = option(
        "elbo",
        "Training objective: the ELBO, or the importance-weighted bound on --k draws (iwae). "
        "Evaluation always reports both the ELBO and the log p(x) estimate.",
    )
    k: int = option(5, "Importance samples per row in the training bound of objective iwae.", POSITIVE_INT)
    beta: float = option(1.0, "Weight of the KL term in training (1 is the ELBO; beta-VAE otherwise).", POSITIVE)
    kl_warmup: float = option(
        0.0,
        "Epochs over which the KL weight rises linearly from 0 to --beta; "
        "early stopping waits until it ends.",
        AT_LEAST_ZERO,
    )
    free_bits: float = option(
        0.0,
        "Nats per latent dimension that cost nothing in training: each row's KL is "
        "sum_i max(KL_i, free_bits), per dimension where the KL splits so, else for the whole "
        "latent vector (objective elbo only).",
        AT_LEAST_ZERO,
    )
    mc_samples: int = option(1, "Monte-Carlo samples L of z per row in the training ELBO.", POSITIVE_INT)

    def __post_init__(self) -> None:
        if self.hidden is not None:
            self.hidden = tuple(self.hidden) if isinstance(self.hidden, (list, tuple)) else (self.hidden,)
        self.validate()

    def validate(self) -> None:
        super().validate()
        if self.hidden is not None:
            self.hidden = tuple(int(h) for h in self.hidden)
        if self.free_bits > 0 and self.objective != "elbo":
            raise AevbError("free_bits works with objective elbo only; use kl_warmup or beta with iwae")
        if self.latent_layers > 1 and (self.posterior != "diagonal" or self.prior != "standard" or self.decoder != "mlp"):
            raise AevbError("latent_layers > 1 takes the diagonal posterior, the standard prior and the mlp decoder")
        if self.decoder == "linear" and (self.net == "conv" or self.likelihood in ("categorical", "logistic-mixture")):
            raise AevbError("--decoder linear is a linear-Gaussian model; it takes neither --net conv nor a discrete likelihood")


@dataclass
class LinearConfig(Options):
    """Options of the linear-Gaussian models (PPCA, factor analysis), fitted in closed form or by EM."""

    latent_dim: int = option(16, "Size of the latent code z.", POSITIVE_INT)
    max_iter: int = option(10_000, "Factor analysis: most EM iterations.", POSITIVE_INT)
    tol: float = option(1e-8, "Factor analysis: stop when log-likelihood per row gains less.", POSITIVE)

    def __post_init__(self) -> None:
        self.check_options()


@dataclass
class TableConfig(VAEConfig):
    """A VAE's options plus how the columns of a table are read and modelled."""

    categorical: tuple[str, ...] = option((), "Columns to model as categories, e.g. zip,grade (overrides inference).")
    continuous: tuple[str, ...] = option((), "Columns to model as continuous numbers (overrides inference).")
    boolean: tuple[str, ...] = option((), "Columns to model as yes/no (overrides inference).")
    ignore: tuple[str, ...] = option((), "Columns to leave out, e.g. an id.")
    max_categories: int = option(
        10,
        "Integer columns with at most this many distinct values are modelled as categories.",
        POSITIVE_INT,
    )
    components: int = option(
        1,
        "Gaussians per continuous column in p(x|z): 1, or a mixture for multi-modal columns.",
        POSITIVE_INT,
    )
    bounds: Literal["sign", "range", "none"] = option(
        "sign",
        "Where synthetic and imputed numbers are kept: sign (a column never below 0 "
        "stays at or above its smallest value), range (within the observed min and max), or none.",
    )

    def validate(self) -> None:
        for name in ("categorical", "continuous", "boolean", "ignore"):
            setattr(self, name, tuple(str(v) for v in getattr(self, name)))
        super().validate()
        if self.prior == "vamp":
            raise AevbError("the vamp prior is not available for tables; use --prior standard or mog")
        if self.decoder == "linear":
            raise AevbError("--decoder linear is not available for tables; use the mlp decoder")
        if self.net == "conv" or self.latent_layers > 1 or self.likelihood in ("categorical", "logistic-mixture"):
            raise AevbError("tables take the mlp net, one latent layer and their own column likelihoods")
