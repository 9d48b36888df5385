"""The scikit-learn-style facade: ``VAE(...).fit(X)``, then sample, transform, score.

:class:`Estimator` is what every family's estimator shares: options, the generic ``fit``
(split, preprocess, build the family's module, train it with :func:`aevb.train.loop.train`),
``sample``, ``score`` and ``save``. :class:`LatentModelEstimator` adds what a model with a
latent code p(z) p(x|z) and a posterior q(z|x) offers (importance sampling, ``transform``,
the ELBO's terms, ``evaluate``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch

from .config import TrainingConfig
from .core import evaluation
from .core.family import DataDescription, Family
from .core.noise import global_seed, kept_generators, seeded_draws
from .core.objectives import elbo, importance_sampling
from .data.loaders import Dataset, validated
from .data.loaders import load as load_data
from .data.preprocess import Preprocessor
from .data.shards import is_lazy
from .errors import AevbError, TrainingStopped
from .scale import chunked, devices, distributed, streaming
from .store.persistence import save as save_model
from .train.checkpoint import Checkpoints, fingerprint
from .train.loop import TrainingResult, train, validation_bound

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


class Estimator:
    """What every model family's estimator offers, in scikit-learn's dialect.

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

    def __init__(self, **options):
        self.config = self.config_class.from_dict(options)

    def get_params(self, deep: bool = True) -> dict:
        return self.config.to_dict()

    def __repr__(self) -> str:
        defaults = self.config_class().to_dict()
        changed = {k: v for k, v in self.config.to_dict().items() if v != defaults[k]}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    @property
    def family(self) -> Family:
        """The family these options describe (it holds no weights)."""
        return self.family_class(self.config)

    def _make_model(self, n_features: int, pre: Preprocessor, image_shape=None) -> torch.nn.Module:
        description = DataDescription(
            n_features, tuple(image_shape) if image_shape else None, pre.likelihood, getattr(pre, "schema", None)
        )
        return self.family.build(description)

    def _build(self, n_features: int, pre: Preprocessor, image_shape) -> None:
        self.preprocessor_ = pre
        self.n_features_in_ = n_features
        self.image_shape_ = tuple(image_shape) if image_shape else None
        self.model_ = self._make_model(n_features, pre, image_shape).to(self.dtype)
        self.model_.eval()

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise AevbError(f"this {type(self).__name__} is not fitted yet; call fit(X) first")

    def _rows(self, X) -> torch.Tensor:
        self._check_fitted()
        values = as_rows(X)
        self.preprocessor_.check(values)
        return torch.as_tensor(values, dtype=self.dtype)

    @torch.no_grad()
    def _per_row(self, X, seed: int, compute) -> np.ndarray:
        """compute(y) on model-space batches of the rows of X; results (..., B) joined to (..., n).

        Dequantization noise and the family's draws come from ``seed`` (:func:`seeded_draws`),
        so a call is repeatable.
        """
        x = self._rows(X)
        parts = []
        with seeded_draws(seed) as generator:
            for start in range(0, len(x), EVAL_ROWS):
                parts.append(compute(self.preprocessor_.to_model(x[start : start + EVAL_ROWS], generator)))
        return torch.cat(parts, dim=-1).double().numpy()

    # -- training ------------------------------------------------------------------

    def _prepare(self, X) -> tuple[np.ndarray, Preprocessor, tuple | None]:
        """The training rows (n, D), the preprocessor fitted to them and the image shape."""
        image_shape = X.image_shape if isinstance(X, Dataset) else None
        values = as_rows(X)
        return values, Preprocessor.fit(values, getattr(self.config, "likelihood", "auto")), image_shape

    def fit(
        self,
        X,
        metrics_path: str | Path | None = None,
        progress: bool | None = None,
        run_dir: str | Path | None = None,
        resume: bool = False,
    ):
        """Train on the rows of X (n, D); returns self.

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
        config = self.config
        order = np.random.default_rng(config.seed).permutation(len(values))
        n_val = min(len(values) - 1, max(1, round(config.validation_fraction * len(values))))
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
            train_x, val_x = _training_rows(values, val_rows, train_rows, config)
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
        return self

    def _set_result(self, result: TrainingResult) -> None:
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.stopped_because_ = result.stopped_because

    def validation_bound(self) -> tuple[str, float]:
        """The name and value of the best validation bound of the last ``fit``."""
        self._check_fitted()
        return validation_bound(self.family, self.history_[self.best_epoch_ - 1])

    # -- using a fitted model --------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int = 1, seed: int | None = None) -> np.ndarray:
        """n new rows (n, D) in the user's units, drawn from the model."""
        self._check_fitted()
        n = _check_positive_int(n, "the number of samples")
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            y = self.family.sample(self.model_, n)
        return self.preprocessor_.from_model(y).double().numpy()

    def score_samples(self, X, k: int = 100, seed: int = 0) -> np.ndarray:
        """Per-row log p(x) in nats, shape (n,): the family's estimate or bound with k draws."""
        k = _check_positive_int(k, "k")
        log_p = self._per_row(X, seed, lambda y: self.family.score(self.model_, y, k)[0])
        return log_p + self.preprocessor_.log_abs_det_jacobian()

    def score(self, X, k: int = 100, seed: int = 0) -> float:
        """Mean per-row log p(x), in nats (higher is better)."""
        return float(self.score_samples(X, k, seed).mean())

    @staticmethod
    def read_data(source, key: str | None = None):
        """The rows in a file or built-in dataset, as this model takes them."""
        return load_data(source, key)

    def save(self, folder: str | Path) -> Path:
        """Write config.json and model.safetensors into ``folder``; returns the folder."""
        self._check_fitted()
        return save_model(self, folder)


class LatentModelEstimator(Estimator):
    """What every fitted latent-variable model offers, in scikit-learn's dialect.

    Everything here works from the fitted ``model_`` (a
    :class:`~aevb.vae.model.LatentVariableModel`) and ``preprocessor_``.
    """

    # -- using a fitted model --------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int = 1, seed: int | None = None, mean: bool = False) -> np.ndarray:
        """n new rows (n, D) in the user's units, drawn from p(z) p(x|z).

        ``mean=True`` returns the decoder's mean E[x|z] instead of a draw of x:
        smoother pictures, but not samples of p(x).
        """
        self._check_fitted()
        n = _check_positive_int(n, "the number of samples")
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            decoded = self.model_.likelihood(self.model_.sample_latents(n))
            y = decoded.mean if mean else decoded.sample()
        return self.preprocessor_.from_model(y, mean=mean).double().numpy()

    def _centered_batches(self, X):
        """Model-space batches of the rows of X with no noise drawn: level data at the centre
        of each cell, x + 1/2."""
        x = self._rows(X)
        for start in range(0, len(x), EVAL_ROWS):
            yield self.preprocessor_.to_model(x[start : start + EVAL_ROWS], center=True)

    @torch.no_grad()
    def transform(self, X) -> np.ndarray:
        """Posterior means E_q[z|x], shape (n, latent_dim).

        For level data the posterior is taken at the centre of each cell, x + 1/2.
        """
        codes = [self.model_.posterior(y).mean for y in self._centered_batches(X)]
        return torch.cat(codes).double().numpy()

    def _chunk_size(self) -> int:
        width = max([self.n_features_in_, *getattr(self.config, "hidden", ())])
        return max(1, EVAL_BUDGET // (EVAL_ROWS * width))

    def importance_samples(
        self, X, k: int = 100, seed: int = 0, proposal: Proposal = "posterior"
    ) -> dict[str, np.ndarray]:
        """Per-row importance-sampling estimate of log p(x) in nats and the effective sample
        size of its k weights, each of shape (n,).

        ``proposal="posterior"`` draws z from q(z|x) (the importance-weighted
        bound); ``"prior"`` draws from p(z), the naive estimator.
        """
        k = _check_positive_int(k, "k")
        if proposal not in ("posterior", "prior"):
            raise AevbError(f"proposal must be 'posterior' or 'prior', got {proposal!r}")
        chunk = self._chunk_size()

        def compute(y):
            r = self.model_.posterior(y) if proposal == "posterior" else self.model_.prior_distribution().expand((len(y),))
            estimate = importance_sampling(self.model_, y, k, r, chunk)
            return torch.stack([estimate.log_marginal, estimate.effective_sample_size])

        log_marginal, ess = self._per_row(X, seed, compute)
        return {"log_likelihood": log_marginal + self.preprocessor_.log_abs_det_jacobian(), "effective_sample_size": ess}

    def score_samples(self, X, k: int = 100, seed: int = 0) -> np.ndarray:
        """Per-row estimate of log p(x) in nats, shape (n,): the importance-weighted bound
        with k draws from q(z|x). For level data, a bound on log P(x) of the discrete values."""
        return self.importance_samples(X, k, seed)["log_likelihood"]

    def elbo_samples(self, X, seed: int = 0) -> dict[str, np.ndarray]:
        """Per-row ``elbo``, ``reconstruction`` and ``kl`` in nats, each of shape (n,); and
        ``kl_per_dimension``, KL(q(z_i|x) || p(z_i)) of each latent dimension (n, latent_dim),
        where posterior and prior both factorize over the dimensions (else None)."""

        def compute(y):
            terms = elbo(self.model_, y)
            rows = [terms.elbo, terms.reconstruction, terms.kl]
            if terms.kl_per_dimension is not None:
                rows.extend(terms.kl_per_dimension.T)
            return torch.stack(rows)

        elbo_, rec, kl, *per_dimension = self._per_row(X, seed, compute)
        log_det = self.preprocessor_.log_abs_det_jacobian()
        return {
            "elbo": elbo_ + log_det,
            "reconstruction": rec + log_det,
            "kl": kl,
            "kl_per_dimension": np.stack(per_dimension, axis=1) if per_dimension else None,
        }

    def row_scores(self, X, k: int = 100, seed: int = 0, proposal: Proposal = "posterior") -> dict[str, np.ndarray]:
        """Per row: the k-sample ``log_likelihood`` estimate, ``elbo``, ``reconstruction``, ``kl``,
        ``bits_per_dim``, ``effective_sample_size`` and, where the model has it, ``exact_log_likelihood``."""
        estimate = self.importance_samples(X, k=k, seed=seed, proposal=proposal)
        terms = self.elbo_samples(X, seed=seed)
        columns = {
            "log_likelihood": estimate["log_likelihood"],
            "elbo": terms["elbo"],
            "reconstruction": terms["reconstruction"],
            "kl": terms["kl"],
            "bits_per_dim": -estimate["log_likelihood"] / (self.n_features_in_ * np.log(2)),
            "effective_sample_size": estimate["effective_sample_size"],
        }
        if self.has_exact_likelihood:
            columns["exact_log_likelihood"] = self.exact_score_samples(X, seed=seed)
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
        marginal = self.model_.exact_marginal()
        pre = self.preprocessor_
        if pre.kind != "levels" or not average_noise:
            log_p = self._per_row(X, seed, marginal.log_prob)
        else:
            centered = torch.cat(list(self._centered_batches(X)))
            noise_variance = 1.0 / (12.0 * torch.as_tensor(pre.scale, dtype=self.dtype) ** 2)
            precision_diagonal = torch.diagonal(torch.cholesky_inverse(marginal.scale_tril))
            log_p = marginal.log_prob(centered) - 0.5 * (precision_diagonal * noise_variance).sum()
            log_p = log_p.detach().double().numpy()
        return log_p + pre.log_abs_det_jacobian()

    def _evaluation_chunks(self, X, seed: int):
        """(rows, seed) of each chunk of X, seeded by its index as ``aevb score`` seeds a file's chunks."""
        rows = as_rows(X)
        for index, start in enumerate(range(0, len(rows), streaming.CHUNK_ROWS)):
            yield rows[start : start + streaming.CHUNK_ROWS], streaming.chunk_seed(seed, index)

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
        (:mod:`aevb.evaluation`): the figures of a memory-mapped file read chunk by chunk,
        by one process or several."""
        self._check_fitted()
        parts = [evaluation.chunk_statistics(self, rows, k, s, proposal) for rows, s in self._evaluation_chunks(X, seed)]
        return self.evaluation_figures(np.stack(parts), k, proposal)

    def evaluation_figures(self, statistics: np.ndarray, k: int, proposal: Proposal) -> dict:
        """The figures of :meth:`evaluate` from the statistics of its chunks, in row order."""
        return evaluation.combine(
            statistics, self.model_.latent_dim, k=k, proposal=proposal,
            n_features=self.n_features_in_, data=self.preprocessor_.kind,
        )


def _gathered(values: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    """values[rows] as float32, gathered a chunk of rows at a time (no float64 copy of them all)."""
    out = np.empty((len(rows), values.shape[1]), dtype=np.float32)
    for start in range(0, len(rows), streaming.CHUNK_ROWS):
        out[start : start + streaming.CHUNK_ROWS] = values[rows[start : start + streaming.CHUNK_ROWS]]
    return torch.from_numpy(out)


def _training_rows(values: np.ndarray, val_rows: np.ndarray, train_rows: np.ndarray, config: TrainingConfig):
    """The training and validation rows for :func:`aevb.train.train`: float32 tensors, or,
    for a memory map whose float32 training rows exceed ``config.in_memory_mib``,
    :class:`aevb.chunked.ChunkedRows` read from it a chunk at a time."""
    if not (is_lazy(values) and chunked.too_large(len(train_rows), values.shape[1], config.in_memory_mib)):
        return _gathered(values, train_rows), _gathered(values, val_rows)
    held_out = np.zeros(len(values), dtype=bool)
    held_out[val_rows] = True
    size = chunked.chunk_rows(values.shape[1], config.batch_size)
    return (
        chunked.ChunkedRows(values, ~held_out, size, config.seed),
        chunked.ChunkedRows(values, held_out, size, config.seed),
    )
