"""``aevb.GPLVM``: the Bayesian GP-LVM with the surface of the other estimators."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from ..core.noise import seeded_draws
from ..data.loaders import Dataset, validated
from ..data.loaders import load as load_data
from ..data.preprocess import Preprocessor
from ..errors import AevbError
from ..estimator import EVAL_ROWS, LatentModelEstimator, Proposal, _check_estimate
from ..sklearn_api import fitting
from .config import GPLVMConfig
from .family import GPLVMFamily, training_bound
from .fit import fit_gplvm
from .heldout import HeldOut, fit_posteriors, holes, importance_weighted


def rows_with_holes(X, name: str = "X") -> np.ndarray:
    """Any array-like -> float64 (n, D); NaN marks a hole (a missing value), infinities are errors."""
    values = X.values if isinstance(X, Dataset) else X
    try:
        array = np.array(values, dtype=np.float64)
    except (ValueError, TypeError) as error:
        raise AevbError(f"{name} is not a rectangular array of numbers ({error})") from None
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.size == 0:
        raise AevbError(f"{name} must be a non-empty 2-D array (rows, features), got shape {array.shape}")
    if np.isinf(array).any():
        row, column = np.argwhere(np.isinf(array))[0]
        raise AevbError(f"{name} holds an infinite value at row {row}, column {column}")
    if np.isnan(array).all(axis=1).any():
        raise AevbError(f"{name} has a row with no observed value (row {int(np.isnan(array).all(axis=1).argmax())})")
    return array


class GPLVM(LatentModelEstimator):
    """Bayesian Gaussian-process latent variable model (Titsias & Lawrence, 2010).

    z_n ~ N(0, I_Q); each feature is a GP over z with a shared ARD kernel; x_nd = f_d(z_n) +
    N(0, noise_d). Trained on the collapsed variational bound with M inducing points and
    q(z_n) = N(m_n, diag s_n^2), all rows at once: the model for tens to a few thousand rows.
    New rows get q(z*) fitted with the GP frozen; ``score_samples`` is the importance-weighted
    estimate of log p(x*) with q(z*) as proposal and the GP's predictive p(x*|z*). NaN in X
    marks a hole: it drops out of the bound (training) and of log p(x) (scoring) exactly.

    Keyword arguments are the fields of :class:`aevb.gplvm.config.GPLVMConfig`.

    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(30, 3))
    >>> GPLVM(latent_dim=1, inducing=8, epochs=20, inference_steps=20).fit(X).score_samples(X[:2]).shape
    (2,)
    """

    config_class = GPLVMConfig
    family_class = GPLVMFamily
    dtype = torch.float64

    def _prepare(self, X) -> tuple[np.ndarray, Preprocessor, tuple | None]:
        """The training rows (n, D) with NaN at the holes, the preprocessor and the image shape.
        With holes the columns are standardized by their observed values."""
        image_shape = X.image_shape if isinstance(X, Dataset) else None
        values = rows_with_holes(X)
        if not np.isnan(values).any():
            return values, Preprocessor.fit(values, "gaussian"), image_shape
        std = np.nanstd(values, axis=0)
        std = np.where(std > 0, std, 1.0)
        return values, Preprocessor("continuous", None, np.nanmean(values, axis=0).tolist(), std.tolist()), image_shape

    @fitting
    def fit(self, X, y=None, *, metrics_path=None, progress=None, run_dir=None, resume: bool = False) -> "GPLVM":
        """Train on the rows of X (n, D), holes as NaN; returns self.

        With an encoder (``hidden``) the generic loop trains it (validation split, early
        stopping, ``run_dir`` with metrics.csv and checkpoints, ``resume``); q(u) is then
        conditioned on all the rows of X, the validation rows included. Free q(z_n)
        (``hidden=()``) train on all rows at once by :func:`aevb.gplvm.fit.fit_gplvm`,
        without a run folder.
        """
        self._fitted_posteriors = {}
        if self.config.hidden:
            super().fit(X, metrics_path=metrics_path, progress=progress, run_dir=run_dir, resume=resume)
            values = self._prepare(X)[0]
            with seeded_draws(self.config.seed) as generator, torch.no_grad():
                y = self.preprocessor_.to_model(torch.as_tensor(values, dtype=self.dtype), generator)
                training_bound(self.model_, y)
                self.training_latents_ = self.model_.encode(y).mean.numpy()
            return self
        if resume:
            raise AevbError("resume continues a GP-LVM with an encoder (hidden=...); free q(z) fit in one go")
        values, pre, image_shape = self._prepare(X)
        if len(values) < 2:
            raise AevbError(f"need at least 2 rows to fit, got {len(values)}")
        self._build(values.shape[1], pre, image_shape)
        with seeded_draws(self.config.seed) as generator, torch.random.fork_rng(devices=[]):
            y = pre.to_model(torch.as_tensor(values, dtype=self.dtype), generator)
            decoder, history, stopped = fit_gplvm(y, self.config)
        self.model_.load_state_dict(decoder.state_dict())
        self.model_.eval()
        self.training_latents_ = decoder.training_means.numpy()
        self.history_, self.best_epoch_, self.stopped_because_ = history, len(history), stopped
        return self

    # -- new rows ------------------------------------------------------------------

    def _rows(self, X) -> torch.Tensor:
        self._check_fitted()
        values = rows_with_holes(X)
        if values.shape[1] != self.n_features_in_:
            raise AevbError(f"the data has {values.shape[1]} columns but the model was trained on {self.n_features_in_}")
        return torch.as_tensor(values, dtype=self.dtype)

    @staticmethod
    def read_data(source, key: str | None = None, memory_map: bool = False):
        """The rows of a file or built-in dataset; NaN marks a hole (``aevb fit/score --model gplvm``)."""
        return load_data(source, key, memory_map=memory_map, holes=True)

    def checked_rows(self, values: np.ndarray, name: str, first_row: int = 0) -> torch.Tensor:
        """A chunk of raw rows (``aevb score``, ``evaluate``) as the model's tensor, holes as NaN."""
        self._check_fitted()
        return self._rows(validated(Dataset(np.asarray(values)), name, first_row=first_row, holes=True))

    def _model_rows(self, X, seed: int) -> torch.Tensor:
        x = self._rows(X)
        with seeded_draws(seed) as generator:
            return self.preprocessor_.to_model(x, generator)

    def _posterior(self, y: torch.Tensor):
        """q(z*) of the model-space rows y, fitted once per distinct set of rows (kept for reuse)."""
        key = hashlib.sha1(y.numpy().tobytes()).hexdigest()
        cache = self.__dict__.setdefault("_fitted_posteriors", {})
        if key not in cache:
            x0, observed = holes(y)
            c = self.config
            parts = [
                fit_posteriors(
                    self.model_, x0[s : s + EVAL_ROWS], observed[s : s + EVAL_ROWS], c.inference_steps, c.inference_draws, c.seed,
                    threads=c.threads,
                )
                for s in range(0, len(y), EVAL_ROWS)
            ]
            cache.clear()  # one set of rows at a time: score, then evaluate, of the same rows
            cache[key] = (torch.cat([q.mean for q in parts]), torch.cat([q.stddev for q in parts]))
        mean, scale = cache[key]
        return torch.distributions.Independent(torch.distributions.Normal(mean, scale), 1)

    def held_out(self, X, k: int = 100, seed: int = 0, proposal: Proposal = "posterior") -> HeldOut:
        """Per-row figures of new rows (model units, no Jacobian) with q(z*) (or p(z)) as proposal."""
        k, proposal = _check_estimate(k, proposal)
        y = self._model_rows(X, seed)
        q = self._posterior(y) if proposal == "posterior" else self.model_.prior((len(y),))
        x0, observed = holes(y)
        return importance_weighted(self.model_, x0, observed, q, k, seed, threads=self.config.threads)

    def _log_det(self, X) -> np.ndarray:
        """Per-row log |dy/dx| over the observed features: -sum_d observed_d log scale_d."""
        observed = ~np.isnan(rows_with_holes(X))
        return -(observed * np.log(np.asarray(self.preprocessor_.scale))).sum(axis=1)

    def importance_samples(self, X, k: int = 100, seed: int = 0, proposal: Proposal = "posterior") -> dict[str, np.ndarray]:
        figures = self.held_out(X, k, seed, proposal)
        return {
            "log_likelihood": figures.log_marginal.numpy() + self._log_det(X),
            "effective_sample_size": figures.effective_sample_size.numpy(),
        }

    def elbo_samples(self, X, seed: int = 0) -> dict[str, np.ndarray]:
        figures = self.held_out(X, 100, seed)
        log_det = self._log_det(X)
        return {
            "elbo": figures.elbo.numpy() + log_det,
            "reconstruction": figures.reconstruction.numpy() + log_det,
            "kl": figures.kl.numpy(),
            "kl_per_dimension": figures.kl_per_dimension.numpy(),
        }

    def _statistics(self, x: torch.Tensor, seed: int, k: int | None = None, proposal: Proposal = "posterior",
                    codes: bool = False) -> dict[str, np.ndarray]:
        """The per-row figures that score and evaluate aggregate (as for the VAE: ELBO terms, the
        k-sample estimate and its effective sample size, the latent means), from one fit of q(z*)."""
        X = x.double().numpy()
        figures = self.held_out(X, k or 1, seed, proposal)
        log_det = self._log_det(X)
        rows = {
            "elbo": figures.elbo.numpy() + log_det,
            "reconstruction": figures.reconstruction.numpy() + log_det,
            "kl": figures.kl.numpy(),
            "kl_per_dimension": figures.kl_per_dimension.numpy(),
        }
        if k:
            rows["log_likelihood"] = figures.log_marginal.numpy() + log_det
            rows["effective_sample_size"] = figures.effective_sample_size.numpy()
        if codes:
            rows["code"] = self._posterior(self._model_rows(X, 0)).mean.numpy()
        return rows

    def transform(self, X) -> np.ndarray:
        """Means of q(z*) of the rows of X, (n, latent_dim)."""
        return self._posterior(self._model_rows(X, 0)).mean.numpy()

    def codes(self, x: torch.Tensor) -> np.ndarray:
        return self.transform(x.double().numpy())

    @property
    def has_exact_likelihood(self) -> bool:
        self._check_fitted()
        return False
