"""Integer columns of a table are dequantized, as the array path does for levels.

The model sees y_j = x_j + u_j with u_j ~ U[0, 1) for dequantized (integer) columns,
and x_j unchanged for every other kind (continuous columns are standardized inside
the model, so its log-densities stay in the user's units and no Jacobian is
added here). For integer columns the reported log-likelihood is then a lower
bound on the log-probability of the integer values (Jensen's inequality over u).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.distributions import MultivariateNormal

from ..data.dequantization import noise, quantized
from ..store.fields import DamagedField
from .schema import TableSchema


@dataclass
class TablePreprocessor:
    """The array path's Preprocessor interface, for rows encoded by a :class:`TableSchema`.

    ``latent`` holds the moments of the aggregate posterior of the training rows
    (:func:`aggregate_posterior_moments`), from which synthetic rows are drawn; None
    (a model saved before) draws from the prior."""

    schema: TableSchema
    latent: dict | None = None
    kind = "table"
    likelihood = "table"
    row_dtype = torch.float32  # encoded cells; continuous columns are standardized inside the model

    def __post_init__(self):
        # Built once: to_model runs on every training batch.
        self._integer = torch.tensor([c.kind_class.dequantized for c in self.schema.columns])

    def _integer_columns(self, y: torch.Tensor) -> torch.Tensor:
        return self._integer.to(y.device)

    @property
    def n_features(self) -> int:
        return len(self.schema.columns)

    def log_abs_det_jacobian(self) -> float:
        return 0.0

    def to_model(
        self, x: torch.Tensor, generator: torch.Generator | None = None, center: bool = False
    ) -> torch.Tensor:
        """Rows (n, C) -> model rows: integer columns get uniform noise u (u = 1/2 with ``center``)."""
        integer = self._integer_columns(x)
        if not integer.any():
            return x
        return x + noise(x, generator, center) * integer

    def from_model(self, y: torch.Tensor, mean: bool = False) -> torch.Tensor:
        """Model rows -> rows: integer columns floored onto their grid (a mean loses the 1/2 offset)."""
        integer = self._integer_columns(y)
        return torch.where(integer, quantized(y, mean), y)

    def latent_distribution(self) -> MultivariateNormal | None:
        """N(mean, covariance) of the aggregate posterior, or None."""
        if self.latent is None:
            return None
        mean = torch.tensor(self.latent["mean"], dtype=torch.float64)
        return MultivariateNormal(mean, torch.tensor(self.latent["covariance"], dtype=torch.float64))

    def to_dict(self) -> dict:
        values = self.schema.to_dict()
        if self.latent is not None:
            values["latent"] = self.latent
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "TablePreprocessor":
        """The inverse of to_dict, refusing (DamagedField) a schema or latent moments that
        to_dict cannot have written."""
        pre = cls(TableSchema.from_dict(values), values.get("latent"))
        if pre.latent is not None:
            try:
                distribution = pre.latent_distribution()
                finite = bool(torch.isfinite(distribution.covariance_matrix).all() and torch.isfinite(distribution.mean).all())
            except (KeyError, TypeError, ValueError, RuntimeError):
                finite = False
            if not finite or distribution.mean.dim() != 1:
                raise DamagedField("preprocessor.latent is not a finite mean and positive-definite covariance")
        return pre


def aggregate_posterior_moments(z: torch.Tensor) -> dict:
    """Mean and covariance of q(z) = (1/N) sum_n q(z|x_n), the codes of the training rows,
    estimated from draws z (S, N, latent_dim) of every row's posterior (any posterior family):

        E[z] = mean_n E[z|x_n],    Cov[z] = Cov_n(E[z|x_n]) + mean_n Cov[z|x_n].

    The prior N(0, I) is only what the KL term pulls q(z) towards; on a small table the
    active latent directions end wider than it (std 1.3 on wine), so rows drawn from the
    prior cover the middle of the data and miss its spread (sampled stds 0.6-0.8 of the
    real ones). Drawing z from this moment-matched Gaussian restores the spread."""
    z = z.double().reshape(-1, z.shape[-1])
    covariance = torch.cov(z.T, correction=0).reshape(z.shape[1], z.shape[1])
    return {"mean": z.mean(0).tolist(), "covariance": covariance.tolist()}
