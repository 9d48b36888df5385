"""p(x|z) for a table: one torch distribution per column, joined over the observed cells.

    log p(x_obs | z) = sum_{j observed} log p_j(x_j | z)

with p_j a Gaussian (or a mixture of Gaussians) for continuous and integer
columns, a categorical softmax for categories and a Bernoulli for booleans
(MIWAE, Mattei & Frellsen 2019: the holes are left out of the likelihood).
Continuous parameters come out of the network standardized and are mapped
to the user's units here, so log-densities are per unit of the user's data.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Bernoulli, Categorical, Distribution, MixtureSameFamily, Normal, constraints

from ..core.distributions import bounded_scale
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
        filled = torch.where(observed, cell, torch.zeros((), dtype=cell.dtype))
        part = self.parts[j]
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
        per row. Continuous cells get the mixture's mean, categorical and boolean
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
    """features h (..., H) -> TableDistribution: one linear layer gives every column's parameters.

    Continuous and integer columns get ``components`` Gaussians (a mixture when more than
    one): mixture logits, standardized means and log-scales, mapped to the user's units by
    the column's shift and scale.
    """

    def __init__(self, in_features: int, schema: TableSchema, components: int = 1):
        super().__init__()
        self.kinds = [c.kind for c in schema.columns]
        self.components = components
        sizes = []
        for c in schema.columns:
            if c.kind == "categorical":
                sizes.append(len(c.categories))
            elif c.kind == "boolean":
                sizes.append(1)
            else:
                sizes.append(3 * components if components > 1 else 2)
        self.sizes = sizes
        self.linear = nn.Linear(in_features, sum(sizes))
        self.register_buffer("shift", torch.tensor([c.shift for c in schema.columns]))
        self.register_buffer("scale", torch.tensor([c.scale for c in schema.columns]))

    def forward(self, h: torch.Tensor) -> TableDistribution:
        parts = []
        for j, (kind, out) in enumerate(zip(self.kinds, self.linear(h).split(self.sizes, dim=-1))):
            if kind == "categorical":
                parts.append(Categorical(logits=out))
            elif kind == "boolean":
                parts.append(Bernoulli(logits=out[..., 0]))
            else:
                logits, loc, log_scale = out.chunk(3, dim=-1) if self.components > 1 else (None, out[..., 0], out[..., 1])
                gaussian = Normal(loc * self.scale[j] + self.shift[j], bounded_scale(log_scale) * self.scale[j])
                parts.append(gaussian if logits is None else MixtureSameFamily(Categorical(logits=logits), gaussian))
        return TableDistribution(parts)


class TableEncoderInput(nn.Module):
    """Rows with holes (B, C) -> the encoder's input (B, sum of widths + C):
    standardized numbers, one-hot categories and centred booleans, zero where a cell is
    missing, followed by the mask of observed cells (the encoder sees what is missing)."""

    def __init__(self, schema: TableSchema):
        super().__init__()
        self.kinds = [c.kind for c in schema.columns]
        self.widths = [c.width for c in schema.columns]
        self.register_buffer("shift", torch.tensor([c.shift for c in schema.columns]))
        self.register_buffer("scale", torch.tensor([c.scale for c in schema.columns]))

    @property
    def out_features(self) -> int:
        return sum(self.widths) + len(self.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        observed = ~torch.isnan(x)
        filled = torch.where(observed, x, torch.zeros((), dtype=x.dtype))
        standardized = (filled - self.shift.to(x.dtype)) / self.scale.to(x.dtype) * observed
        pieces = []
        for j, (kind, width) in enumerate(zip(self.kinds, self.widths)):
            if kind == "categorical":
                one_hot = nn.functional.one_hot(filled[..., j].long().clamp(0, width - 1), width).to(x.dtype)
                pieces.append(one_hot * observed[..., j : j + 1])
            elif kind == "boolean":
                pieces.append(((2 * filled[..., j] - 1) * observed[..., j]).unsqueeze(-1))
            else:
                pieces.append(standardized[..., j : j + 1])
        return torch.cat([*pieces, observed.to(x.dtype)], dim=-1)
