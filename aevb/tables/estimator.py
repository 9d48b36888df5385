"""TabularVAE: the VAE of a table with mixed column types and missing values."""

from __future__ import annotations

import numpy as np
import torch

from ..config import TableConfig
from ..estimator import _check_positive_int
from ..vae.estimator import VAE
from .family import TableVAEFamily
from .impute import conditional_column_scores, impute
from .io import read_table
from .preprocess import TablePreprocessor
from .schema import TableSchema


class TabularVAE(VAE):
    """A VAE that learns p(x) of a pandas DataFrame (or a .csv/.parquet file): continuous,
    integer, categorical and boolean columns, with holes (NaN, NA, empty cells) modelled
    as missing: the ELBO covers the observed cells only and the encoder sees the mask.

    Keyword arguments are the fields of :class:`aevb.config.TableConfig`. Everything a
    VAE offers works on tables (``score_samples`` is log p(x_obs) of each row's observed
    cells); ``sample`` returns a DataFrame; ``impute`` fills holes. Fitted attributes
    add ``schema_`` (:class:`~aevb.table_schema.TableSchema`).

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"size": [1.0, 2.5, None, 3.1], "colour": ["red", "blue", "red", None]})
    >>> model = TabularVAE(latent_dim=2, hidden=(8,), epochs=2).fit(frame)
    >>> list(model.sample(3).columns)
    ['size', 'colour']
    """

    config_class = TableConfig
    family_class = TableVAEFamily
    preprocessor_class = TablePreprocessor

    @property
    def schema_(self) -> TableSchema:
        self._check_fitted()
        return self.preprocessor_.schema

    def infer_schema(self, X) -> TableSchema:
        """The schema ``fit`` would use for the table X (to show before training)."""
        c = self.config
        return TableSchema.infer(read_table(X), c.categorical, c.continuous, c.boolean, c.ignore, c.max_categories)

    def _prepare(self, X):
        schema = self.infer_schema(X)
        return schema.encode(read_table(X)), TablePreprocessor(schema), None

    def _rows(self, X) -> torch.Tensor:
        self._check_fitted()
        return torch.as_tensor(self.schema_.encode(read_table(X)), dtype=self.dtype)

    def _evaluation_chunks(self, X, seed: int):
        yield X, seed  # a table is evaluated in memory, in one piece

    @staticmethod
    def read_data(source, key=None):
        return read_table(source)

    def sample(self, n: int = 1, seed: int | None = None, mean: bool = False):
        """n synthetic rows as a DataFrame with the training table's columns, dtypes and labels
        (``mean=True``: each cell's typical value given z instead of a draw)."""
        return self.schema_.decode(super().sample(n, seed, mean))

    @torch.no_grad()
    def impute(self, X, k: int = 100, multiple: int | None = None, seed: int = 0):
        """Fill the holes of table X by importance-weighted posterior prediction with k draws
        of z per row: a DataFrame of best guesses, or with ``multiple=M`` a list of M
        DataFrames of draws. Observed cells and ignored columns are returned unchanged."""
        k = _check_positive_int(k, "k")
        if multiple is not None:
            multiple = _check_positive_int(multiple, "multiple")
        frame = read_table(X)

        def compute(y):
            filled = impute(self.model_, y, k, multiple)  # (B, C) or (M, B, C)
            return self.preprocessor_.from_model(filled, mean=multiple is None).movedim(-2, -1)

        filled = self._per_row(frame, seed, compute)  # (C, n) or (M, C, n)
        tables = [self._fill(frame, rows.T) for rows in (filled[None] if multiple is None else filled)]
        return tables[0] if multiple is None else tables

    def _fill(self, frame, rows: np.ndarray):
        decoded = self.schema_.decode(rows)
        out = frame.copy()
        by_name = {str(c): c for c in frame.columns}
        for column in self.schema_.columns:
            original = frame[by_name[column.name]]
            holes = original.isna().to_numpy()
            if not holes.any():
                continue
            series = original.astype(object).where(~holes, decoded[column.name].astype(object))
            try:
                series = series.astype(column.dtype)
            except (TypeError, ValueError):
                series = series.infer_objects()
            out[by_name[column.name]] = series
        return out

    def row_scores(self, X, k: int = 100, seed: int = 0, proposal="posterior") -> dict[str, np.ndarray]:
        """The scores of every model, plus ``n_observed`` cells per row and, per column, the
        cell's log-likelihood given the row's other cells, log p(x_j | x_-j), estimated with
        k importance-weighted draws (``<column>_log_likelihood``, empty for a hole). The
        lowest marks the cell that makes a row unusual."""
        scores = super().row_scores(X, k, seed, proposal)
        holes = torch.isnan(self._rows(X))
        scores["n_observed"] = (~holes).sum(-1).double().numpy()
        per_column = self._per_row(X, seed, lambda y: conditional_column_scores(self.model_, y, k).T)  # (C, n)
        holes = holes.T.numpy()  # (C, n)
        for column, values, missing in zip(self.schema_.columns, per_column, holes):
            scores[f"{column.name}_log_likelihood"] = np.where(missing, np.nan, values)
        return scores
