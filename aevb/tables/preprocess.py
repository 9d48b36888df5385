"""Integer columns of a table are dequantized, as the array path does for levels.

The model sees y_j = x_j + u_j with u_j ~ U[0, 1) for integer columns, and x_j
unchanged for every other kind (continuous columns are standardized inside
the model, so its log-densities stay in the user's units and no Jacobian is
added here). For integer columns the reported log-likelihood is then a lower
bound on the log-probability of the integer values (Jensen's inequality over u).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .schema import TableSchema


@dataclass
class TablePreprocessor:
    """The array path's Preprocessor interface, for rows encoded by a :class:`TableSchema`."""

    schema: TableSchema
    kind = "table"
    likelihood = "table"
    row_dtype = torch.float32  # encoded cells; continuous columns are standardized inside the model

    def __post_init__(self):
        # Built once: to_model runs on every training batch.
        self._integer = torch.tensor([c.kind == "integer" for c in self.schema.columns])

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
        noise = torch.full_like(x, 0.5) if center else torch.rand(x.shape, generator=generator, dtype=x.dtype)
        return x + noise * integer

    def from_model(self, y: torch.Tensor, mean: bool = False) -> torch.Tensor:
        """Model rows -> rows: integer columns floored onto their grid (a mean loses the 1/2 offset)."""
        integer = self._integer_columns(y)
        back = (y - 0.5) if mean else torch.floor(y)
        return torch.where(integer, back, y)

    def to_dict(self) -> dict:
        return self.schema.to_dict()

    @classmethod
    def from_dict(cls, values: dict) -> "TablePreprocessor":
        return cls(TableSchema.from_dict(values))
