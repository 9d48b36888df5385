"""The scikit-learn-style facade: ``VAE(...).fit(X)``, then sample, transform, score.

:class:`Estimator` is what every family's estimator shares: options, the generic ``fit``
(split, preprocess, build the family's module, train it with :func:`aevb.train.loop.train`),
``sample``, ``score`` and ``save``. :class:`LatentModelEstimator` adds what a model with a
latent code p(z) p(x|z) and a posterior q(z|x) offers (importance sampling, ``transform``,
the ELBO's terms, ``evaluate``).
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch

from .config import TrainingConfig
from .core import evaluation, forecast, progress
from .core.family import DataDescription, Family, Progress
from .core.noise import (
    DrawStreams,
    check_seed,
    global_seed,
    kept_generators,
    seeded_draws,
)
from .data.dequantization import NOISE_VARIANCE
from .data.loaders import Dataset, validated
from .data.loaders import load as load_data
from .data.preprocess import Preprocessor
from .data.shards import is_lazy
from .errors import AevbError, TrainingDiverged, TrainingStopped
from .scale import chunked, devices, distributed, streaming
from .sklearn_api import SklearnEstimator, fitting
from .store.persistence import save as save_model
from .train.checkpoint import Checkpoints, fingerprint
from .train.loop import TrainingResult, epoch_limit, train, validation_bound
from .vae.memory import check_request
from .vae.statistics import LOG_DENSITIES, row_statistics

# Options whose cost (building the model, and each step) grows linearly with them, and the
# value a training forecast times them at (:meth:`Estimator._forecast_training`).
LINEAR_COST = ("flow_layers", "prior_components")
PROBE_SIZE = 16

# Floats held at once by the importance-sampling evaluation (rows x draws x width): ~32 MB.
EVAL_BUDGET = 2**23
EVAL_ROWS = 256


def as_rows(X, name: str = "X") -> np.ndarray:
    """Any array-like or Dataset -> a validated float64 array (n, D)."""
    if isinstance(X, Dataset):
        return validated(X, name).values
    try:
        array = np.asarray(X)
    except (ValueError, TypeError) as error:
        raise AevbError(f"{name} is not a rectangular array of numbers ({error})") from None
    if array.dtype.kind not in "biuf":
        hint = "; for a table of mixed column types use aevb.TabularVAE" if hasattr(X, "columns") else ""
        raise AevbError(f"{name} holds {array.dtype} values; aevb needs real numbers{hint}")
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise AevbError(f"{name} must be 2-D (rows, features), got shape {array.shape}")
    return validated(Dataset(array), name).values


Proposal = Literal["posterior", "prior"]


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise AevbError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_estimate(k, proposal) -> tuple[int, str]:
    """The number of draws and the proposal of an importance-sampling estimate, checked."""
    k = _check_positive_int(k, "k")
    if proposal not in get_args(Proposal):
        raise AevbError(f"proposal must be one of {', '.join(get_args(Proposal))}, got {proposal!r}")
    return k, proposal


class Estimator(SklearnEstimator):
    """What every model family's estimator offers, in scikit-learn's dialect
    (:mod:`aevb.sklearn_api`: parameters, fitted state, input checks).

    A family's estimator names its options dataclass ``config_class`` (fields of
    :class:`aevb.config.TrainingConfig` plus its own) and its ``family_class`` (a
    :class:`aevb.core.family.Family` built from those options); ``fit``, ``sample``,
    ``score`` and ``save`` then work from the fitted ``model_`` (the module the family
    built) and ``preprocessor_``.
    """

    config_class: type = TrainingConfig
    family_class: type | None = None
    preprocessor_class: type = Preprocessor
    dtype = torch.float32
    #: Trained step by step by the training loop: a run folder with metrics.csv and
    #: checkpoints, ``--resume``, and memory-mapped data read in chunks (else fitted in one go).
    trains_in_steps = True

    @property
    def family(self) -> Family:
        """The family these options describe (it holds no weights)."""
        return self.family_class(self.config)

    def _make_model(self, n_features: int, pre: Preprocessor, image_shape=None, family: Family | None = None) -> torch.nn.Module:
        description = DataDescription(
            n_features, tuple(image_shape) if image_shape else None, pre.likelihood, getattr(pre, "schema", None),
            getattr(pre, "n_levels", None),
        )
        return (family or self.family).build(description)

    def _build(self, n_features: int, pre: Preprocessor, image_shape) -> None:
        self.preprocessor_ = pre
        self.n_features_in_ = n_features
        self.image_shape_ = tuple(image_shape) if image_shape else None
        self.model_ = self._make_model(n_features, pre, image_shape).to(self.dtype)
        self.model_.eval()

    def _fit_rows(self, X) -> np.ndarray:
        """The rows to fit, checked; sets ``n_features_in_`` (and ``feature_names_in_``)."""
        return as_rows(X if isinstance(X, Dataset) else self._validated(X, reset=True, min_rows=2))

    def _rows(self, X) -> torch.Tensor:
        """The rows of X as the model's tensor (n, D), validated: done once per public call."""
        self._check_fitted()
        values = as_rows(X if isinstance(X, Dataset) else self._validated(X, reset=False))
        return self._fitting(values)

    def _fitting(self, values: np.ndarray) -> torch.Tensor:
        """Finite rows (n, D) -> the model's tensor, once they are checked to fit the model."""
        self.preprocessor_.check(values)
        return torch.as_tensor(values, dtype=torch.promote_types(self.dtype, self.preprocessor_.row_dtype))

    def checked_rows(self, values: np.ndarray, name: str, first_row: int = 0) -> torch.Tensor:
        """Raw rows (n, D) of a chunk as the model's tensor, checked once: finite numbers
        (an error names ``name``, e.g. the file and the rows, and a bad row by its index in
        the file: the chunk starts at ``first_row``) that fit the model."""
        self._check_fitted()
        return self._fitting(validated(Dataset(np.asarray(values)), name, first_row=first_row).values)

    def open_rows(self, source: str, key: str | None = None):
        """The rows of ``source`` for chunk-by-chunk scoring (:mod:`aevb.scale.streaming`):
        memory-mapped for a .npy file or folder of .npy shards, else read into memory."""
        if streaming.readable_lazily(Path(source)):
            return streaming.open_rows(Path(source))
        return self.read_data(source, key).values

    def _per_row(self, X, seed: int, compute, desc: str | None = None) -> np.ndarray:
        """compute(y) on model-space batches of the rows of X; results (..., B) joined to (..., n)."""
        return self._per_row_of(self._rows(X), seed, compute, desc)

    @torch.no_grad()
    def _per_row_of(self, x: torch.Tensor, seed: int, compute, desc: str | None = None) -> np.ndarray:
        """compute(y) on model-space batches of checked rows x (n, D), joined to (..., n).

        Dequantization noise and the family's draws come from ``seed`` (:func:`seeded_draws`),
        so a call is repeatable. With ``desc``, a long pass shows a progress bar
        (:func:`aevb.core.progress.rows`).
        """
        seed = check_seed(seed)
        parts = []
        bar = progress.rows(len(x), desc) if desc else contextlib.nullcontext()
        with seeded_draws(seed) as generator, bar as rows_done:
            for start in range(0, len(x), EVAL_ROWS):
                batch = self.preprocessor_.to_model(x[start : start + EVAL_ROWS], generator).to(self.dtype)
                parts.append(compute(batch))
                if rows_done is not None:
                    rows_done.update(len(batch))
        return torch.cat(parts, dim=-1).double().numpy()

    # -- training ------------------------------------------------------------------

    def _prepare(self, X) -> tuple[np.ndarray, Preprocessor, tuple | None]:
        """The training rows (n, D), the preprocessor fitted to them and the image shape."""
        image_shape = X.image_shape if isinstance(X, Dataset) else None
        values = self._fit_rows(X)
        return values, Preprocessor.fit(values, getattr(self.config, "likelihood", "auto")), image_shape

    @fitting
    def fit(
        self,
        X,
        y=None,
        *,
        metrics_path: str | Path | None = None,
        progress: bool | None = None,
        run_dir: str | Path | None = None,
        resume: bool = False,
    ):
        """Train on the rows of X (n, D); returns self. ``y`` is ignored.

        A ``validation_fraction`` of the rows, chosen by the seed, is held out
        for early stopping; the weights of the best validation bound (the one the
        family names: a VAE's ELBO, or IWAE_k under ``objective="iwae"``) are kept.
        With ``run_dir``, training writes ``metrics.csv`` and checkpoints
        there, and ``resume=True`` continues the run from its last checkpoint
        (same data, same options) to the same weights an uninterrupted run
        reaches. If training stops early (:class:`aevb.errors.TrainingStopped`)
        the estimator is still fitted, with the best weights so far.

        A memory-mapped X (``aevb fit data.npy``) whose float32 training rows
        would take more than ``in_memory_mib`` is not copied: training reads it
        in shuffled chunks (a block shuffle, see :mod:`aevb.chunked`).
        """
        values, pre, image_shape = self._prepare(X)
        if len(values) < 2:
            raise AevbError(f"need at least 2 rows to train (one for validation), got {len(values)}")
        self.automatic_options_, _ = self._automatic_options(len(values), _modelled_features(values, pre), image_shape)
        config = self.config
        self._check_fits(config, pre.n_features)  # before any allocation
        order = np.random.default_rng(config.seed).permutation(len(values))
        n_val = min(len(values) - 1, max(1, round(config.validation_fraction * len(values))))
        self._forecast_training(config, values, pre, image_shape, len(values) - n_val)
        val_rows, train_rows = order[:n_val], order[n_val:]
        device = devices.resolve(config.device)
        devices.check_precision(config.precision, device)
        group = distributed.join(device)
        checkpoints = None
        if run_dir is not None:
            checkpoints = Checkpoints(run_dir, config, fingerprint(values), resume, writer=group.is_main)
            metrics_path = metrics_path or Path(run_dir) / "metrics.csv"
        elif resume:
            raise AevbError("resume=True needs the run_dir of the run to continue")
        with kept_generators(device):
            torch.manual_seed(global_seed(config.seed))  # train() seeds its own generator with config.seed
            self._build(values.shape[1], pre, image_shape)
            self.model_.to(device)
            train_x, val_x = _training_rows(values, val_rows, train_rows, config, pre.row_dtype)
            del order, val_rows, train_rows  # not held through training
            try:
                result: TrainingResult = train(
                    self.family,
                    self.model_,
                    pre,
                    train_x,
                    val_x,
                    config,
                    metrics_path=Path(metrics_path) if metrics_path and group.is_main else None,
                    progress=progress,
                    checkpoints=checkpoints,
                    group=group,
                )
            except TrainingStopped as stopped:
                self.model_.cpu()
                self._set_result(stopped.result)
                raise
        self.model_.cpu()
        self._set_result(result)
        _check_plausible(self.family, result, pre, config)
        return self

    def _check_fits(self, config, n_features: int) -> None:
        """Raise an AevbError naming the option when training would not fit in memory."""

    def _automatic_options(self, n_rows: int, n_features: int, image_shape=None) -> tuple[dict, str]:
        """Values for the options left unset (None) that this family chooses from the
        data's shape, and one line saying what and why (``describe_data`` shows it)."""
        return {}, ""

    def _forecast_training(self, config, values, pre: Preprocessor, image_shape, n_train: int) -> None:
        """Warn (:mod:`aevb.core.forecast`) when training would take hours because of options
        whose cost grows linearly (``LINEAR_COST``: layers, components): build a model with
        each cut to ``PROBE_SIZE``, time the build and one step on a batch, and scale both up
        by the largest ratio, the step by the number of steps of the run as well."""
        large = {name: getattr(config, name) for name in LINEAR_COST if getattr(config, name, 0) > PROBE_SIZE}
        if not large or distributed.environment_rank() != 0:  # rank 0 of a torchrun job speaks for it
            return
        probe = self.family_class(config.from_dict({**config.to_dict(), **dict.fromkeys(large, PROBE_SIZE)}))
        rows = torch.as_tensor(np.array(values[: config.batch_size]), dtype=pre.row_dtype)  # a copy: a memory map is read-only
        built = []
        with torch.random.fork_rng(devices=[]):
            build = forecast.timed(lambda: built.append(self._make_model(values.shape[1], pre, image_shape, probe)))
            module = built[-1].to(self.dtype)
            step = forecast.timed(lambda: probe.loss(module, pre.to_model(rows).to(self.dtype), Progress(1, 0))[0].sum().backward())
        ratio = max(value / PROBE_SIZE for value in large.values())
        epochs, per_epoch = epoch_limit(config, n_train), -(-n_train // config.batch_size)
        seconds = math.inf if epochs is None else ratio * (build + per_epoch * epochs * step)
        if config.max_time is not None:
            seconds = min(seconds, config.max_time)
        run = f"at most {epochs} epochs" if epochs is not None else f"epochs for {config.max_time:g} s"
        options = ", ".join(f"--{name.replace('_', '-')} {value}" for name, value in large.items())
        forecast.warn_if_long(
            seconds, "training",
            f"{run} of {per_epoch} steps; with {PROBE_SIZE} in place of "
            f"{options}, building took {build:.3g} s and a step {step:.3g} s", f"lower {options}",
        )

    def _set_result(self, result: TrainingResult) -> None:
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.stopped_because_ = result.stopped_because

    def validation_bound(self) -> tuple[str, float]:
        """The name and value of the best validation bound of the last ``fit``."""
        self._check_fitted()
        return validation_bound(self.family, self.history_[self.best_epoch_ - 1])

    # -- using a fitted model --------------------------------------------------

    def sample(self, n: int = 1, seed: int | None = None) -> np.ndarray:
        """n new rows (n, D) in the user's units, drawn from the model: the rows of
        :meth:`sample_chunks`, joined."""
        self._check_fitted()
        n = _check_positive_int(n, "the number of samples")
        seed = None if seed is None else check_seed(seed)
        return np.concatenate(list(self.sample_chunks(n, seed)))

    def sample_chunks(self, n: int, seed: int | None = None, mean: bool = False, **options):
        """The rows of :meth:`sample` (``options`` go to it too), ``streaming.CHUNK_ROWS`` at a
        time, so that any number of rows can be written in bounded memory.

        Chunk i draws from ``streaming.chunk_seed(seed, i)``, as chunks of scored rows do (so
        up to CHUNK_ROWS rows are those one draw of ``seed`` gives); with no seed, from a seed
        drawn from torch's global generator, so that two calls give different rows and
        ``torch.manual_seed`` before them makes them repeatable."""
        self._check_fitted()
        n = _check_positive_int(n, "the number of samples")
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()))
        seed = check_seed(seed)
        for index, start in enumerate(range(0, n, streaming.CHUNK_ROWS)):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(streaming.chunk_seed(seed, index) % 2**64)
                part = self._sample_rows(min(streaming.CHUNK_ROWS, n - start), mean, **options)
            yield part

    @torch.no_grad()
    def _sample_rows(self, n: int, mean: bool) -> np.ndarray:
        """n rows (n, D) drawn from the family's model with torch's generator."""
        if mean:
            raise AevbError(f"a {type(self).__name__} model has no decoder mean to return; leave out --mean")
        return self.preprocessor_.from_model(self.family.sample(self.model_, n)).double().numpy()

    def codes(self, x: torch.Tensor) -> np.ndarray:
        """:meth:`transform` of rows that :meth:`checked_rows` returned (a family with no code says so)."""
        return self.transform(x.double().numpy())

    def score_samples(self, X, k: int = 100, seed: int = 0) -> np.ndarray:
        """Per-row log p(x) in nats, shape (n,): the family's estimate or bound with k draws."""
        k = _check_positive_int(k, "k")
        log_p = self._per_row(X, seed, lambda y: self.family.score(self.model_, y, k)[0])
        return log_p + self.preprocessor_.log_abs_det_jacobian()

    def score(self, X, y=None, k: int = 100, seed: int = 0) -> float:
        """Mean per-row log p(x), in nats (higher is better); ``y`` is ignored."""
        return float(self.score_samples(X, k, seed).mean())

    @staticmethod
    def read_data(source, key: str | None = None, memory_map: bool = False):
        """The rows in a file or built-in dataset, as this model takes them (``memory_map``:
        a .npy file or folder of shards stays on disk)."""
        return load_data(source, key, memory_map=memory_map)

    def describe_data(self, data) -> str | None:
        """A note on how the model reads ``data`` (what ``read_data`` gave), to show before
        training: the sizes it will choose for options left unset."""
        shape = data.shape if hasattr(data, "shape") else data.values.shape
        return self._automatic_options(shape[0], shape[1], getattr(data, "image_shape", None))[1] or None

    def save(self, folder: str | Path) -> Path:
        """Write config.json and model.safetensors into ``folder``; returns the folder."""
        self._check_fitted()
        return save_model(self, folder)


def _modelled_features(values: np.ndarray, pre: Preprocessor) -> int:
    """Columns the model reads: a table's modelled columns, else the row width."""
    schema = getattr(pre, "schema", None)
    return len(schema.columns) if schema is not None else values.shape[1]


class LatentModelEstimator(Estimator):
    """What every fitted latent-variable model offers, in scikit-learn's dialect.

    Everything here works from the fitted ``model_`` (a
    :class:`~aevb.vae.model.LatentVariableModel`) and ``preprocessor_``.
    """

    # -- using a fitted model --------------------------------------------------

    def sample(self, n: int = 1, seed: int | None = None, mean: bool = False) -> np.ndarray:
        """n new rows (n, D) in the user's units, drawn from p(z) p(x|z).

        ``mean=True`` returns the decoder's mean E[x|z] instead of a draw of x:
        smoother pictures, but not samples of p(x). The rows are those of
        :meth:`sample_chunks`, joined.
        """
        self._check_fitted()
        n = _check_positive_int(n, "the number of samples")
        seed = None if seed is None else check_seed(seed)
        # z, the decoder's mean and scale, the draw and its float64 copy
        check_request(8 * n * (self.model_.latent_dim + 4 * self.n_features_in_), f"sampling {n} rows")
        return np.concatenate(list(self.sample_chunks(n, seed, mean)))

    @torch.no_grad()
    def _sample_rows(self, n: int, mean: bool) -> np.ndarray:
        """n rows (n, D) drawn from p(z) p(x|z) with torch's generator (decoder means with ``mean``)."""
        decoded = self.model_.likelihood(self.model_.sample_latents(n))
        y = decoded.mean if mean else decoded.sample()
        return self.preprocessor_.from_model(y, mean=mean).double().numpy()

    def _centered_batches_of(self, x: torch.Tensor):
        """Model-space batches of checked rows x with no noise drawn: level data at the centre
        of each cell, x + 1/2."""
        for start in range(0, len(x), EVAL_ROWS):
            yield self.preprocessor_.to_model(x[start : start + EVAL_ROWS], center=True).to(self.dtype)

    def transform(self, X) -> np.ndarray:
        """Posterior means E_q[z|x], shape (n, latent_dim).

        For level data the posterior is taken at the centre of each cell, x + 1/2.
        """
        return self.codes(self._rows(X))

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> np.ndarray:
        """:meth:`transform` of rows that :meth:`checked_rows` (or ``_rows``) returned."""
        codes = [self.model_.posterior(y).mean for y in self._centered_batches_of(x)]
        return torch.cat(codes).double().numpy()

    @torch.no_grad()
    def reconstruct(self, X) -> np.ndarray:
        """E[x|z] at z = E_q[z|x], each row's posterior mean, in the user's units (n, D)."""
        self._check_fitted()
        decoded = [self.model_.likelihood(self.model_.posterior(y).mean).mean for y in self._centered_batches_of(self._rows(X))]
        return self.preprocessor_.from_model(torch.cat(decoded), mean=True).double().numpy()

    def _chunk_size(self) -> int:
        width = max([self.preprocessor_.n_features, *getattr(self.config, "hidden", ())])
        return max(1, EVAL_BUDGET // (EVAL_ROWS * width))

    @torch.no_grad()
    def _statistics(
        self, x: torch.Tensor, seed: int, k: int | None = None, proposal: Proposal = "posterior", codes: bool = False
    ) -> dict[str, np.ndarray]:
        """:func:`aevb.vae.statistics.row_statistics` of checked rows x (n, D), each (n,) or
        (n, latent_dim), with log-densities in the user's units (plus the log-Jacobian).

        One pass: each batch of ``EVAL_ROWS`` rows is dequantized once and q(z|x)
        computed once for the ELBO, the k-sample estimate and (``codes``) the latent
        means, which for level data are taken at the centre of each cell, x + 1/2, as
        :meth:`transform` gives them. The ELBO's and the estimate's z come from streams
        of their own seeded by ``seed`` (:class:`aevb.core.noise.DrawStreams`), so each
        figure is the one a pass computing it alone draws.
        """
        seed = check_seed(seed)
        pre, chunk = self.preprocessor_, self._chunk_size()
        parts = []
        with seeded_draws(seed) as generator, progress.rows(len(x), "scoring") as rows_done:
            streams = DrawStreams()
            for start in range(0, len(x), EVAL_ROWS):
                rows = x[start : start + EVAL_ROWS]
                y = pre.to_model(rows, generator).to(self.dtype)
                at = None
                if codes:
                    centre = pre.to_model(rows, center=True).to(self.dtype)
                    at = y if torch.allclose(centre, y, rtol=0, atol=0, equal_nan=True) else centre
                parts.append(row_statistics(
                    self.model_, y, k, encode_at=at, proposal=proposal, streams=streams, chunk_size=chunk
                ))
                rows_done.update(len(rows))
        log_det = pre.log_abs_det_jacobian()
        joined = {name: torch.cat([part[name] for part in parts]).double().numpy() for name in parts[0]}
        return {name: values + log_det if name in LOG_DENSITIES else values for name, values in joined.items()}

    def importance_samples(
        self, X, k: int = 100, seed: int = 0, proposal: Proposal = "posterior"
    ) -> dict[str, np.ndarray]:
        """Per-row importance-sampling estimate of log p(x) in nats and the effective sample
        size of its k weights, each of shape (n,).

        ``proposal="posterior"`` draws z from q(z|x) (the importance-weighted
        bound); ``"prior"`` draws from p(z), the naive estimator.
        """
        k, proposal = _check_estimate(k, proposal)
        rows = self._statistics(self._rows(X), seed, k, proposal)
        return {name: rows[name] for name in ("log_likelihood", "effective_sample_size")}

    def score_samples(self, X, k: int = 100, seed: int = 0) -> np.ndarray:
        """Per-row estimate of log p(x) in nats, shape (n,): the importance-weighted bound
        with k draws from q(z|x). For level data, a bound on log P(x) of the discrete values."""
        return self.importance_samples(X, k, seed)["log_likelihood"]

    def elbo_samples(self, X, seed: int = 0) -> dict[str, np.ndarray]:
        """Per-row ``elbo``, ``reconstruction`` and ``kl`` in nats, each of shape (n,); and
        ``kl_per_dimension``, KL(q(z_i|x) || p(z_i)) of each latent dimension (n, latent_dim),
        where posterior and prior both factorize over the dimensions (else None)."""
        rows = self._statistics(self._rows(X), seed)
        terms = {name: rows[name] for name in ("elbo", "reconstruction", "kl")}
        return {**terms, "kl_per_dimension": rows.get("kl_per_dimension")}

    def row_scores(self, X, k: int = 100, seed: int = 0, proposal: Proposal = "posterior") -> dict[str, np.ndarray]:
        """Per row: the k-sample ``log_likelihood`` estimate, ``elbo``, ``reconstruction``, ``kl``,
        ``bits_per_dim``, ``effective_sample_size`` and, where the model has it, ``exact_log_likelihood``."""
        k, proposal = _check_estimate(k, proposal)
        return self.scores(self._rows(X), k, seed, proposal)

    def scores(self, x: torch.Tensor, k: int, seed: int, proposal: Proposal) -> dict[str, np.ndarray]:
        """:meth:`row_scores` of rows that :meth:`checked_rows` (or ``_rows``) returned."""
        rows = self._statistics(x, seed, k, proposal)
        names = ("log_likelihood", "elbo", "reconstruction", "kl", "bits_per_dim", "effective_sample_size")
        rows["bits_per_dim"] = evaluation.bits_per_dim(rows["log_likelihood"], self.n_features_in_)
        columns = {name: rows[name] for name in names}
        if "exact_log_likelihood" in rows:
            columns["exact_log_likelihood"] = self._exact(x, seed, average_noise=True)
        return columns

    @property
    def has_exact_likelihood(self) -> bool:
        self._check_fitted()
        return self.model_.exact_marginal() is not None

    def exact_score_samples(self, X, seed: int = 0, average_noise: bool = True) -> np.ndarray:
        """Per-row exact log p(x) in nats, for linear-Gaussian models; an AevbError otherwise.

        For level data, ``average_noise=True`` gives the exact expectation over the
        dequantization noise, E_u log N(y) = log N(E y) - tr(C^-1 Cov y) / 2 with
        Cov y = diag(1 / (12 scale^2)); ``False`` draws the noise from ``seed`` as
        the estimators do, so that their error can be read row by row.
        """
        if not self.has_exact_likelihood:
            raise AevbError("this model has no closed-form log p(x); use score_samples for an estimate")
        return self._exact(self._rows(X), seed, average_noise)

    def _exact(self, x: torch.Tensor, seed: int, average_noise: bool) -> np.ndarray:
        """:meth:`exact_score_samples` of checked rows x (n, D)."""
        marginal = self.model_.exact_marginal()
        pre = self.preprocessor_
        if pre.kind != "levels" or not average_noise:
            log_p = self._per_row_of(x, seed, marginal.log_prob)
        else:
            centered = torch.cat(list(self._centered_batches_of(x)))
            noise_variance = NOISE_VARIANCE / torch.as_tensor(pre.scale, dtype=self.dtype) ** 2
            precision_diagonal = torch.diagonal(torch.cholesky_inverse(marginal.scale_tril))
            log_p = marginal.log_prob(centered) - 0.5 * (precision_diagonal * noise_variance).sum()
            log_p = log_p.detach().double().numpy()
        return log_p + pre.log_abs_det_jacobian()

    def _evaluation_chunks(self, x: torch.Tensor, seed: int):
        """(rows, seed) of each chunk of rows x, seeded by its index as ``aevb score`` seeds a file's chunks."""
        for index, start in enumerate(range(0, len(x), streaming.CHUNK_ROWS)):
            yield x[start : start + streaming.CHUNK_ROWS], streaming.chunk_seed(seed, index)

    def evaluate(self, X, k: int = 1000, seed: int = 0, proposal: Proposal = "posterior") -> dict:
        """Means over rows of the ELBO, its two terms and the k-sample log p(x) estimate,
        in nats per row, with bits per dimension, the estimate's standard error and
        effective sample size, and the exact log p(x) where the model has one. Diagnostics
        of the latent code: ``elbo_gap`` (log p(x) estimate - ELBO: how far q(z|x) is from
        p(z|x), at most), ``active_units`` (dimensions with Cov_x(E_q[z_i|x]) > 0.01),
        ``latent_activity`` (those covariances) and ``kl_per_dimension`` (the mean KL of
        each dimension, or None where it does not split).

        Rows are taken ``streaming.CHUNK_ROWS`` at a time, chunk i drawing its random
        numbers from ``streaming.chunk_seed(seed, i)``, and summarised by running sums
        (:mod:`aevb.core.evaluation`): the figures of a memory-mapped file read chunk by chunk,
        by one process or several."""
        self._check_fitted()
        k, proposal = _check_estimate(k, proposal)
        x = self._rows(X)
        parts = [self.chunk_statistics(rows, k, s, proposal) for rows, s in self._evaluation_chunks(x, seed)]
        return self.evaluation_figures(np.stack(parts), k, proposal)

    def chunk_statistics(self, x: torch.Tensor, k: int, seed: int, proposal: Proposal) -> np.ndarray:
        """The statistics vector (:func:`aevb.core.evaluation.chunk_statistics`) of one chunk of
        checked rows x, drawing from ``seed``: one pass over its rows."""
        rows = self._statistics(x, seed, k, proposal, codes=True)
        return evaluation.chunk_statistics(rows, self.model_.latent_dim)

    def evaluation_figures(self, statistics: np.ndarray, k: int, proposal: Proposal) -> dict:
        """The figures of :meth:`evaluate` from the statistics of its chunks, in row order."""
        return evaluation.combine(
            statistics, self.model_.latent_dim, k=k, proposal=proposal,
            n_features=self.preprocessor_.n_features, data=self.preprocessor_.kind,
        )


def _gathered(values: np.ndarray, rows: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """values[rows] as ``dtype``, gathered a chunk of rows at a time (no float64 copy of them all
    when float32 will do)."""
    out = np.empty((len(rows), values.shape[1]), dtype=np.float64 if dtype == torch.float64 else np.float32)
    for start in range(0, len(rows), streaming.CHUNK_ROWS):
        out[start : start + streaming.CHUNK_ROWS] = values[rows[start : start + streaming.CHUNK_ROWS]]
    return torch.from_numpy(out)


def _training_rows(
    values: np.ndarray, val_rows: np.ndarray, train_rows: np.ndarray, config: TrainingConfig, dtype: torch.dtype
):
    """The training and validation rows for :func:`aevb.train.train`: tensors of ``dtype`` (the
    preprocessor's row_dtype), or, for a memory map whose training rows exceed
    ``config.in_memory_mib``, :class:`aevb.chunked.ChunkedRows` read from it a chunk at a time."""
    bytes_per_value = torch.finfo(dtype).bits // 8
    if not (
        is_lazy(values)
        and chunked.too_large(len(train_rows), values.shape[1], config.in_memory_mib, bytes_per_value)
    ):
        return _gathered(values, train_rows, dtype), _gathered(values, val_rows, dtype)
    held_out = np.zeros(len(values), dtype=bool)
    held_out[val_rows] = True
    size = chunked.chunk_rows(values.shape[1], config.batch_size)
    return (
        chunked.ChunkedRows(values, ~held_out, size, config.seed, dtype),
        chunked.ChunkedRows(values, held_out, size, config.seed, dtype),
    )


# A best bound this many nats per feature (plus ABSURD_NATS) below that of a standard normal
# on the standardized data means training failed (a learning rate far too large), not a model.
ABSURD_NATS_PER_FEATURE = 10.0
ABSURD_NATS = 100.0


def _check_plausible(family: Family, result: TrainingResult, pre: Preprocessor, config: TrainingConfig) -> None:
    """Raise :class:`TrainingDiverged` (the model keeps its best weights) when the best
    validation bound is absurd: far below the log-likelihood of the simplest model, independent
    standard normals on the standardized rows (Bernoulli(1/2) for binary data)."""
    if not result.history or not isinstance(pre, Preprocessor):
        return  # a table's columns have their own likelihoods, not standardized normals
    n_features = pre.n_features
    if pre.kind == "binary":
        baseline = -n_features * math.log(2.0)
    else:
        baseline = -0.5 * n_features * math.log(2 * math.pi * math.e) + pre.log_abs_det_jacobian()
    name, bound = validation_bound(family, result.history[result.best_epoch - 1])
    if bound < baseline - ABSURD_NATS_PER_FEATURE * n_features - ABSURD_NATS:
        raise TrainingDiverged(
            f"training failed: the best validation {name}, {bound:.4g} nats/row (epoch {result.best_epoch}), "
            f"is far below the {baseline:.4g} of independent normals on the standardized data; "
            f"try a smaller --learning-rate (now {config.learning_rate:g})",
            result,
        )
