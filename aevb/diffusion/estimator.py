"""``aevb.Diffusion``: a variational diffusion model behind the same facade as the VAE."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..core.family import DataDescription
from ..data.preprocess import Preprocessor
from ..errors import AevbError
from ..estimator import Estimator, _check_positive_int
from ..vae.memory import check_request
from .bound import negative_bound
from .config import DiffusionConfig
from .family import DiffusionFamily, resolved_net
from .model import DiffusionModel

LN2 = math.log(2)

# Rows per step when --batch-size is unset. An MLP step on rows costs about the same for
# 128 rows as for 512 (per-step overhead dominates), so larger batches train on more rows
# a second: on compare.py's 16-D manifold, 300 s, 13.42 nats/row at 128 and 13.24 at 512.
# A U-Net step costs in proportion to its rows, and more, smaller steps won: digits,
# 120 s, 1.94 bits/dim at 128 and 2.08 at 512.
BATCH_SIZES = {"mlp": 512, "unet": 128}


class Diffusion(Estimator):
    """A continuous-time variational diffusion model (Kingma et al. 2021) of the rows of a numeric array.

    Keyword arguments are the fields of :class:`aevb.diffusion.config.DiffusionConfig`; it
    trains in the generic loop (checkpoints, resume, early stopping on the held-out bound,
    torchrun, ``max_time``). Its scores are a variational bound on log p(x) in nats per row
    of the user's data, with the same preprocessing and Jacobian as the VAE's (for level
    data, a bound on the log-probability of the discrete values), so the two compare directly.

    >>> from aevb import Diffusion, datasets
    >>> X = datasets.load("digits").values
    >>> model = Diffusion(epochs=1, hidden=(32,)).fit(X)
    >>> model.sample(2, steps=8).shape
    (2, 64)
    """

    config_class = DiffusionConfig
    family_class = DiffusionFamily
    #: Draws of t per row in score, score_samples and evaluate unless told otherwise.
    DEFAULT_T_SAMPLES = 16

    @property
    def family(self) -> DiffusionFamily:
        """The family of these options for the fitted data: its decoder depends on the levels."""
        self._check_fitted()
        return DiffusionFamily(self.config, self.preprocessor_)

    def _automatic_options(self, n_rows: int, n_features: int, image_shape=None) -> tuple[dict, str]:
        """The batch size, when unset, from the epsilon network (:data:`BATCH_SIZES`)."""
        if self.get_params(deep=False).get("batch_size") is not None:
            return {}, ""
        net = resolved_net(self.config, image_shape)
        size = BATCH_SIZES[net]
        return {"batch_size": size}, f"batch size {size} for the {net} (set --batch-size to choose)"

    def _make_model(self, n_features: int, pre: Preprocessor, image_shape=None) -> DiffusionModel:
        description = DataDescription(n_features, tuple(image_shape) if image_shape else None, pre.likelihood)
        return DiffusionFamily(self.config, pre).build(description)

    # -- using a fitted model --------------------------------------------------

    def sample(self, n: int = 1, seed: int | None = None, mean: bool = False, steps: int | None = None,
               progress: bool = False) -> np.ndarray:
        """n new rows (n, D) in the user's units by ancestral sampling with ``steps`` steps
        (default ``sample_steps``). ``mean=True`` ends with the decoder's most likely x given z_0.
        The rows are those of :meth:`sample_chunks` (``streaming.CHUNK_ROWS`` at a time), joined."""
        self._check_fitted()
        n = _check_positive_int(n, "the number of samples")
        steps = _check_positive_int(steps if steps is not None else self.config.sample_steps, "steps")
        check_request(8 * n * 4 * self.n_features_in_, f"sampling {n} rows")  # z, eps_hat, the draw, its float64 copy
        return np.concatenate(list(self.sample_chunks(n, seed, mean, steps=steps, progress=progress)))

    @torch.no_grad()
    def _sample_rows(self, n: int, mean: bool, steps: int | None = None, progress: bool = False) -> np.ndarray:
        """n rows (n, D) by ancestral sampling with torch's generator (:meth:`sample`)."""
        y = self.family.sample(self.model_, n, steps, progress, mean=mean)
        return self.preprocessor_.from_model(y, mean=False).double().numpy()  # grid values or draws: no mean to take

    def bound_samples(self, X, t_samples: int = DEFAULT_T_SAMPLES, seed: int = 0) -> dict[str, np.ndarray]:
        """Per row (n,): the ``bound`` on log p(x) in nats of the user's data, its Monte-Carlo
        ``std_error`` over the ``t_samples`` draws of t, and its terms: the losses ``diffusion`` and
        ``prior``, and ``reconstruction`` E_q log p(x | z_0) (in the user's units, like the bound):
        bound = reconstruction - prior - diffusion."""
        t_samples = _check_positive_int(t_samples, "t_samples")

        def compute(y):
            terms = negative_bound(self.model_, y, t_samples)
            return torch.stack([terms.bound, terms.std_error, terms.diffusion, terms.prior, terms.reconstruction])

        bound, std_error, diffusion, prior, reconstruction = self._per_row(X, seed, compute)
        log_det = self.preprocessor_.log_abs_det_jacobian()
        return {"bound": bound + log_det, "std_error": std_error, "diffusion": diffusion, "prior": prior,
                "reconstruction": reconstruction + log_det}

    def score_samples(self, X, t_samples: int = DEFAULT_T_SAMPLES, seed: int = 0) -> np.ndarray:
        """Per-row bound on log p(x) in nats, shape (n,), averaged over ``t_samples`` draws of t."""
        return self.bound_samples(X, t_samples, seed)["bound"]

    def score(self, X, y=None, t_samples: int = DEFAULT_T_SAMPLES, seed: int = 0) -> float:
        """Mean per-row bound on log p(x), in nats (higher is better); ``y`` is ignored."""
        return float(self.score_samples(X, t_samples, seed).mean())

    def row_scores(self, X, k: int = DEFAULT_T_SAMPLES, seed: int = 0, proposal: str = "posterior") -> dict[str, np.ndarray]:
        """Per row: ``log_likelihood`` (the bound, k draws of t), its ``std_error``, ``bits_per_dim`` and
        the bound's terms; ``proposal`` does not apply (there is no importance sampling)."""
        terms = self.bound_samples(X, k, seed)
        return {
            "log_likelihood": terms["bound"],
            "std_error": terms["std_error"],
            "bits_per_dim": -terms["bound"] / (self.n_features_in_ * LN2),
            "diffusion": terms["diffusion"],
            "prior": terms["prior"],
            "reconstruction": terms["reconstruction"],
        }

    def scores(self, x: torch.Tensor, k: int, seed: int, proposal: str = "posterior") -> dict[str, np.ndarray]:
        """:meth:`row_scores` of a chunk of rows that :meth:`checked_rows` returned (``aevb score``)."""
        return self.row_scores(x.double().numpy(), k, seed)

    def evaluate(self, X, k: int = DEFAULT_T_SAMPLES, seed: int = 0, proposal: str = "posterior") -> dict:
        """Means over rows of the bound and its terms (nats per row, bits/dim), the standard error of
        the mean over rows, and the mean Monte-Carlo standard error of a row's bound at k draws of t."""
        self._check_fitted()
        terms = self.bound_samples(X, k, seed)
        n = len(terms["bound"])
        return {
            "n_rows": n, "n_features": self.n_features_in_, "data": self.preprocessor_.kind, "t_samples": k,
            **{name: float(values.mean()) for name, values in terms.items() if name != "std_error"},
            "bits_per_dim": float(-terms["bound"].mean() / (self.n_features_in_ * LN2)),
            "std_error_over_rows": float(terms["bound"].std(ddof=1) / math.sqrt(n)) if n > 1 else None,
            "monte_carlo_std_error": float(np.sqrt(np.mean(terms["std_error"] ** 2) / n)) if k > 1 else None,
        }

    def transform(self, X) -> np.ndarray:
        raise AevbError("a diffusion model has no latent code to encode; use a VAE for aevb encode")

    @property
    def has_exact_likelihood(self) -> bool:
        return False


def format_evaluation(figures: dict) -> str:
    """The figures of :meth:`Diffusion.evaluate` as the lines ``aevb evaluate`` prints."""
    per_dim = figures["n_features"] * LN2
    bound = " (bound on the discrete log-probability)" if figures["data"] in ("levels", "binary") else ""
    lines = [
        f"rows: {figures['n_rows']}, features: {figures['n_features']}, data: {figures['data']}{bound}",
        f"{'':32}{'nats/row':>12}{'bits/dim':>10}",
        f"{'variational bound on log p(x)':32}{figures['bound']:12.3f}{-figures['bound'] / per_dim:10.4f}",
    ]
    for label, key, sign in [("  reconstruction log p(x|z_0)", "reconstruction", -1),
                             ("  prior KL(q(z_1|x) || p(z_1))", "prior", 1), ("  diffusion loss", "diffusion", 1)]:
        lines.append(f"{label:32}{figures[key]:12.3f}{sign * figures[key] / per_dim:10.4f}")
    lines.append(f"draws of t per row: {figures['t_samples']}")
    if figures["monte_carlo_std_error"] is not None:
        lines.append(f"Monte-Carlo standard error of the mean bound: {figures['monte_carlo_std_error']:.3f} nats/row")
    if figures["std_error_over_rows"] is not None:
        lines.append(f"standard error of the mean over rows: {figures['std_error_over_rows']:.3f} nats/row")
    return "\n".join(lines)
