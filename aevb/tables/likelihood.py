"""p(x|z) for a table: one torch distribution per column, joined over the observed cells.

    log p(x_obs | z) = sum_{j observed} log p_j(x_j | z)

with p_j given by the column's kind (:mod:`aevb.tables.kinds`): a Gaussian (or a
mixture) on the standardized value for numbers, a log-normal for positive skewed
columns, a categorical softmax for categories and a Bernoulli for booleans
(MIWAE, Mattei & Frellsen 2019: the holes are left out of the likelihood).
Numeric parameters come out of the network standardized and are mapped to the
user's units by an affine transform, so log-densities are per unit of the user's data.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import (
    Bernoulli,
    Categorical,
    Distribution,
    TransformedDistribution,
    constraints,
)

from .kinds import KINDS
from .schema import TableSchema


class TableDistribution(Distribution):
    """Independent columns given z. Batch shape (...,), event shape (C,); a value is a
    row of the schema's encoding (category indices as floats) with NaN for holes."""

    arg_constraints: dict = {}
    support = constraints.real
    has_rsample = False

    def __init__(self, parts: list[Distribution], validate_args=None):
        self.parts = parts
        super().__init__(parts[0].batch_shape, torch.Size([len(parts)]), validate_args=False)

    def cell_log_prob(self, value: torch.Tensor, j: int) -> torch.Tensor:
        """log p_j(x_j | z) of column j of the rows ``value`` (..., C), shape (...); 0 for a hole."""
        cell = value[..., j]
        observed = ~torch.isnan(cell)
        part = self.parts[j]
        # A hole is filled with a value every kind can score (1 is inside a log-normal's support).
        fill = 1.0 if isinstance(part, TransformedDistribution) else 0.0
        filled = torch.where(observed, cell, torch.full((), fill, dtype=cell.dtype))
        return part.log_prob(filled.long() if isinstance(part, Categorical) else filled) * observed

    def column_log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """log p_j(x_j | z) per column, shape (..., C); 0 where x_j is a hole."""
        return torch.stack([self.cell_log_prob(value, j) for j in range(len(self.parts))], dim=-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return self.column_log_prob(value).sum(-1)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        return torch.stack([part.sample(sample_shape).to(self._dtype) for part in self.parts], dim=-1)

    @property
    def _dtype(self) -> torch.dtype:
        first = self.parts[0]
        return (first.logits if hasattr(first, "logits") else first.mean).dtype

    @property
    def mean(self) -> torch.Tensor:
        """Each cell's typical value (B, C): the mean of numeric cells, the most probable
        category or truth value (a category has no mean)."""
        return self.point_prediction()

    def point_prediction(self, weights: torch.Tensor | None = None) -> torch.Tensor:
        """One best guess per cell, shape (B, C), under the mixture sum_k w_k p(x|z_k).

        ``weights`` (k, B) sum to 1 over k for a batch shape (k, B); None means one z
        per row. Numeric cells get the mixture's mean, categorical and boolean
        cells its most probable value.
        """
        columns = []
        for part in self.parts:
            if isinstance(part, Categorical):
                stat = part.probs  # (k, B, K)
            elif isinstance(part, Bernoulli):
                stat = part.probs
            else:
                stat = part.mean
            if weights is not None:
                w = weights if stat.dim() == weights.dim() else weights.unsqueeze(-1)
                stat = (w * stat).sum(0)
            if isinstance(part, Categorical):
                stat = stat.argmax(-1).to(self._dtype)
            elif isinstance(part, Bernoulli):
                stat = (stat > 0.5).to(self._dtype)
            columns.append(stat)
        return torch.stack(columns, dim=-1)


class TableHead(nn.Module):
    """features h (..., H) -> TableDistribution: one linear layer gives every column's parameters,
    as many as the column's kind asks for (``components`` Gaussians for a number: a mixture
    when more than one), mapped to the user's units by the column's shift and scale."""

    def __init__(self, in_features: int, schema: TableSchema, components: int = 1):
        super().__init__()
        self.kinds = [KINDS[c.kind] for c in schema.columns]
        self.components = components
        self.sizes = [c.kind_class.head_size(c, components) for c in schema.columns]
        self.linear = nn.Linear(in_features, sum(self.sizes))
        self.register_buffer("shift", torch.tensor([c.shift for c in schema.columns]))
        self.register_buffer("scale", torch.tensor([c.scale for c in schema.columns]))

    def forward(self, h: torch.Tensor) -> TableDistribution:
        outputs = self.linear(h).split(self.sizes, dim=-1)
        return TableDistribution([
            kind.distribution(out, self.shift[j], self.scale[j], self.components)
            for j, (kind, out) in enumerate(zip(self.kinds, outputs))
        ])


class TableEncoderInput(nn.Module):
    """Rows with holes (B, C) -> the encoder's input (B, sum of widths + C): each column as its
    kind reads it (standardized numbers, one-hot categories, centred booleans), zero where a
    cell is missing, followed by the mask of observed cells (the encoder sees what is missing)."""

    def __init__(self, schema: TableSchema):
        super().__init__()
        self.kinds = [KINDS[c.kind] for c in schema.columns]
        self.widths = [c.width for c in schema.columns]
        self.register_buffer("shift", torch.tensor([c.shift for c in schema.columns]))
        self.register_buffer("scale", torch.tensor([c.scale for c in schema.columns]))

    @property
    def out_features(self) -> int:
        return sum(self.widths) + len(self.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        observed = ~torch.isnan(x)
        filled = torch.where(observed, x, torch.zeros((), dtype=x.dtype))
        shift, scale = self.shift.to(x.dtype), self.scale.to(x.dtype)
        pieces = [
            kind.encoder_piece(filled[..., j], observed[..., j], shift[j], scale[j], width)
            for j, (kind, width) in enumerate(zip(self.kinds, self.widths))
        ]
        return torch.cat([*pieces, observed.to(x.dtype)], dim=-1)
