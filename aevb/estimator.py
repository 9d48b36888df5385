"""The scikit-learn-style facade: ``VAE(...).fit(X)``, then sample, transform, score."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .config import VAEConfig
from .data import Dataset, validated
from .errors import AevbError
from .model import LatentVariableModel, build_vae
from .objectives import elbo, iwae
from .preprocess import Preprocessor
from .train import TrainingResult, train

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
        raise AevbError(f"{name} holds {array.dtype} values; aevb needs real numbers")
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise AevbError(f"{name} must be 2-D (rows, features), got shape {array.shape}")
    return validated(Dataset(array), name).values


class VAE:
    """A variational autoencoder that learns p(x) of the rows of a numeric array.

    Keyword arguments are the fields of :class:`aevb.config.VAEConfig`
    (``latent_dim``, ``hidden``, ``likelihood``, ``epochs``, ...).

    Fitted attributes: ``model_`` (the torch module), ``preprocessor_``,
    ``n_features_in_``, ``image_shape_``, ``history_`` (per-epoch metrics),
    ``best_epoch_``.

    >>> from aevb import VAE, datasets
    >>> X = datasets.load("digits").values
    >>> model = VAE(latent_dim=8, epochs=2).fit(X)
    >>> model.sample(3).shape
    (3, 64)
    """

    dtype = torch.float32

    def __init__(self, **options):
        self.config = VAEConfig(**options)

    def get_params(self, deep: bool = True) -> dict:
        return self.config.to_dict()

    def __repr__(self) -> str:
        defaults = VAEConfig().to_dict()
        changed = {k: v for k, v in self.config.to_dict().items() if v != defaults[k]}
        return f"VAE({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    # -- fitting ---------------------------------------------------------------

    def _build(self, n_features: int, pre: Preprocessor, image_shape) -> None:
        self.preprocessor_ = pre
        self.n_features_in_ = n_features
        self.image_shape_ = tuple(image_shape) if image_shape else None
        self.model_: LatentVariableModel = build_vae(self.config, n_features, pre.likelihood).to(self.dtype)

    def fit(self, X, metrics_path: str | Path | None = None, progress: bool | None = None) -> "VAE":
        """Train on the rows of X (n, D); returns self.

        A ``validation_fraction`` of the rows, chosen by the seed, is held out
        for early stopping; the weights of the best validation ELBO are kept.
        """
        image_shape = X.image_shape if isinstance(X, Dataset) else None
        values = as_rows(X)
        if len(values) < 2:
            raise AevbError(f"need at least 2 rows to train (one for validation), got {len(values)}")
        config = self.config
        pre = Preprocessor.fit(values, config.likelihood)
        order = np.random.default_rng(config.seed).permutation(len(values))
        n_val = min(len(values) - 1, max(1, round(config.validation_fraction * len(values))))
        val_rows, train_rows = order[:n_val], order[n_val:]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self._build(values.shape[1], pre, image_shape)
            result: TrainingResult = train(
                self.model_,
                pre,
                torch.as_tensor(values[train_rows], dtype=self.dtype),
                torch.as_tensor(values[val_rows], dtype=self.dtype),
                config,
                metrics_path=Path(metrics_path) if metrics_path else None,
                progress=progress,
            )
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.stopped_because_ = result.stopped_because
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise AevbError("this VAE is not fitted yet; call fit(X) first")

    def _rows(self, X) -> torch.Tensor:
        self._check_fitted()
        values = as_rows(X)
        self.preprocessor_.check(values)
        return torch.as_tensor(values, dtype=self.dtype)

    # -- using a fitted model --------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int = 1, seed: int | None = None, mean: bool = False) -> np.ndarray:
        """n new rows (n, D) in the user's units, drawn from p(z) p(x|z).

        ``mean=True`` returns the decoder's mean E[x|z] instead of a draw of x:
        smoother pictures, but not samples of p(x).
        """
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise AevbError(f"the number of samples must be a positive integer, got {n!r}")
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            decoded = self.model_.likelihood(self.model_.sample_latents(int(n)))
            y = decoded.mean if mean else decoded.sample()
        return self.preprocessor_.from_model(y, mean=mean).double().numpy()

    @torch.no_grad()
    def transform(self, X) -> np.ndarray:
        """Posterior means E_q[z|x], shape (n, latent_dim).

        For level data the posterior is taken at the centre of each cell, x + 1/2.
        """
        x = self._rows(X)
        codes = [
            self.model_.posterior(self.preprocessor_.to_model(x[s : s + EVAL_ROWS], center=True)).mean
            for s in range(0, len(x), EVAL_ROWS)
        ]
        return torch.cat(codes).double().numpy()

    def _chunk_size(self) -> int:
        width = max(self.n_features_in_, *self.config.hidden)
        return max(1, EVAL_BUDGET // (EVAL_ROWS * width))

    @torch.no_grad()
    def score_samples(self, X, k: int = 100, seed: int = 0) -> np.ndarray:
        """Per-row estimate of log p(x) in nats, shape (n,): the importance-weighted bound
        with k draws from q(z|x). For level data, a bound on log P(x) of the discrete values."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise AevbError(f"k must be a positive integer, got {k!r}")
        x = self._rows(X)
        generator = torch.Generator().manual_seed(seed)
        chunk = self._chunk_size()
        scores = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for s in range(0, len(x), EVAL_ROWS):
                y = self.preprocessor_.to_model(x[s : s + EVAL_ROWS], generator)
                scores.append(iwae(self.model_, y, int(k), chunk))
        return torch.cat(scores).double().numpy() + self.preprocessor_.log_abs_det_jacobian()

    def score(self, X, k: int = 100, seed: int = 0) -> float:
        """Mean per-row log p(x) estimate, in nats (higher is better)."""
        return float(self.score_samples(X, k, seed).mean())

    @torch.no_grad()
    def elbo_samples(self, X, seed: int = 0) -> dict[str, np.ndarray]:
        """Per-row ``elbo``, ``reconstruction`` and ``kl`` in nats, each of shape (n,)."""
        x = self._rows(X)
        generator = torch.Generator().manual_seed(seed)
        parts = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for s in range(0, len(x), EVAL_ROWS):
                terms = elbo(self.model_, self.preprocessor_.to_model(x[s : s + EVAL_ROWS], generator))
                parts.append(torch.stack([terms.elbo, terms.reconstruction, terms.kl]))
        elbo_, rec, kl = torch.cat(parts, dim=1).double().numpy()
        log_det = self.preprocessor_.log_abs_det_jacobian()
        return {"elbo": elbo_ + log_det, "reconstruction": rec + log_det, "kl": kl}

    def evaluate(self, X, k: int = 1000, seed: int = 0) -> dict:
        """Means over rows of the ELBO, its two terms and the k-sample log p(x) estimate,
        in nats per row, with bits per dimension and the estimate's standard error."""
        terms = self.elbo_samples(X, seed)
        log_likelihood = self.score_samples(X, k, seed)
        n_rows, n_features = len(log_likelihood), self.n_features_in_
        # One row has no spread to estimate: null in JSON rather than a NaN.
        std_error = float(log_likelihood.std(ddof=1) / math.sqrt(n_rows)) if n_rows > 1 else None
        return {
            "elbo": float(terms["elbo"].mean()),
            "reconstruction": float(terms["reconstruction"].mean()),
            "kl": float(terms["kl"].mean()),
            "log_likelihood": float(log_likelihood.mean()),
            "log_likelihood_std_error": std_error,
            "bits_per_dim": float(-log_likelihood.mean() / (n_features * math.log(2))),
            "elbo_bits_per_dim": float(-terms["elbo"].mean() / (n_features * math.log(2))),
            "k": int(k),
            "n_rows": n_rows,
            "n_features": n_features,
            "data": self.preprocessor_.kind,
        }

    # -- persistence -------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write config.json and model.safetensors into ``folder``; returns the folder."""
        from .persistence import save

        self._check_fitted()
        return save(self, folder)
