"""TabularVAE: the VAE of a table with mixed column types and missing values."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch

from ..config import TableConfig
from ..core import forecast, progress
from ..errors import TrainingStopped
from ..scale import streaming
from ..estimator import _check_positive_int
from ..store.fields import DamagedField
from ..vae.estimator import VAE
from .family import TableVAEFamily
from .impute import conditional_column_scores, impute
from .io import read_table
from .preprocess import TablePreprocessor, aggregate_posterior_moments
from .schema import TableSchema


class TabularVAE(VAE):
    """A VAE that learns p(x) of a pandas DataFrame (or a .csv/.parquet file, or a 2-D array):
    continuous, positive, integer, date, categorical and boolean columns, with holes (NaN, NA, empty cells) modelled
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
        return TableSchema.infer(read_table(X), c.categorical, c.continuous, c.boolean, c.ignore, c.max_categories, c.bounds)

    def _build(self, n_features: int, pre: TablePreprocessor, image_shape) -> None:
        super()._build(n_features, pre, image_shape)
        self.n_features_in_ = len(pre.schema.columns) + len(pre.schema.ignored)  # as given, ignored ones too

    def _make_model(self, n_features: int, pre: TablePreprocessor, image_shape=None) -> torch.nn.Module:
        # Moments read back from config.json must be those of this model's latent space.
        if pre.latent is not None and len(pre.latent["mean"]) != self.config.latent_dim:
            raise DamagedField(f"preprocessor.latent has {len(pre.latent['mean'])} dimensions, not latent_dim {self.config.latent_dim}")
        return super()._make_model(n_features, pre, image_shape)

    def _table(self, X, reset: bool):
        """X as a DataFrame: a file is read, an array's columns are named 0, 1, ...; fit
        (``reset``) records ``n_features_in_`` and ``feature_names_in_``, later calls
        compare an array's width (a DataFrame's columns are matched by name, an array's by
        position, taking the names seen in fit)."""
        if isinstance(X, (str, os.PathLike)):
            return read_table(X)
        if hasattr(X, "columns"):
            if reset:
                self._validated(X, reset=True, skip_check_array=True)
            return read_table(X)
        # any dtype (words, categories), holes allowed; not infinities
        rows = self._validated(X, reset, min_rows=2 if reset else 1, dtype=None, ensure_all_finite="allow-nan")
        return pd.DataFrame(rows, columns=getattr(self, "feature_names_in_", None))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = tags.input_tags.string = tags.input_tags.categorical = True
        return tags

    def _prepare(self, X):
        frame = self._table(X, reset=True)
        schema = self.infer_schema(frame)
        return schema.encode(frame), TablePreprocessor(schema), None

    def _rows(self, X) -> torch.Tensor:
        self._check_fitted()
        return torch.as_tensor(self.schema_.encode(self._table(X, reset=False)), dtype=self.dtype)

    def checked_rows(self, values: np.ndarray, name: str, first_row: int = 0) -> torch.Tensor:
        """Rows of :meth:`open_rows` (the schema checked them as it encoded them) as the model's tensor."""
        self._check_fitted()
        return torch.as_tensor(values, dtype=self.dtype)

    def open_rows(self, source: str, key: str | None = None) -> np.ndarray:
        """The table in ``source``, encoded by the schema (n, C), holes as NaN."""
        self._check_fitted()
        return self.schema_.encode(read_table(source))

    @staticmethod
    def read_data(source, key=None, memory_map: bool = False):
        return read_table(source)

    def describe_data(self, data) -> str:
        """The schema ``fit`` infers (one line per column), and the sizes chosen for options left unset."""
        schema = self.infer_schema(data)
        sizes = self._automatic_options(len(data), len(schema.columns))[1]
        return schema.summary() + (f"\n{sizes}" if sizes else "")

    def fit(self, X, y=None, **kwargs) -> "TabularVAE":
        """Train on the table X (see :meth:`aevb.VAE.fit`; y is ignored), then keep the moments
        of the training rows' aggregate posterior, from which :meth:`sample` draws z."""
        try:
            super().fit(X, y, **kwargs)
        except TrainingStopped:
            self._keep_latent_moments(self._table(X, reset=False))
            raise
        self._keep_latent_moments(self._table(X, reset=False))
        return self

    @torch.no_grad()
    def _keep_latent_moments(self, frame, draws: int = 8) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            z = torch.cat([self.model_.posterior(y).sample((draws,)) for y in self._centered_batches_of(self._rows(frame))], dim=1)
        self.preprocessor_.latent = aggregate_posterior_moments(z)

    @torch.no_grad()
    def sample(self, n: int = 1, seed: int | None = None, mean: bool = False, from_prior: bool = False):
        """n synthetic rows as a DataFrame with the training table's columns, dtypes and labels
        (``mean=True``: each cell's typical value given z instead of a draw).

        z is drawn from a Gaussian with the mean and covariance of the training rows' codes
        (the aggregate posterior, :func:`~aevb.tables.preprocess.aggregate_posterior_moments`),
        or from the prior with ``from_prior=True`` (and for a model saved without them)."""
        return pd.concat(list(self.sample_chunks(n, seed, mean, from_prior=from_prior)), ignore_index=True)

    @torch.no_grad()
    def _sample_rows(self, n: int, mean: bool, from_prior: bool = False):
        latent = None if from_prior else self.preprocessor_.latent_distribution()
        z = self.model_.sample_latents(n) if latent is None else latent.sample((n,)).to(self.dtype)
        decoded = self.model_.likelihood(z)
        y = decoded.mean if mean else decoded.sample()
        return self.schema_.decode(self.preprocessor_.from_model(y, mean=mean).double().numpy())

    def reconstruct(self, X):
        """Each row's typical cells given z = E_q[z|x] (holes filled too), as a DataFrame."""
        return self.schema_.decode(super().reconstruct(X))

    @torch.no_grad()
    def impute(self, X, k: int = 100, multiple: int | None = None, seed: int = 0):
        """Fill the holes of table X by importance-weighted posterior prediction with k draws
        of z per row: a DataFrame of best guesses, or with ``multiple=M`` a list of M
        DataFrames of draws. Observed cells and ignored columns are returned unchanged."""
        k = _check_positive_int(k, "k")
        if multiple is not None:
            multiple = _check_positive_int(multiple, "multiple")
        self._check_fitted()
        frame = self._table(X, reset=False)
        self._forecast_imputation(frame, k, multiple, seed)

        def compute(y):
            filled = impute(self.model_, y, k, multiple)  # (B, C) or (M, B, C)
            return self.preprocessor_.from_model(filled, mean=multiple is None).movedim(-2, -1)

        filled = self._per_row(frame, seed, compute, desc="imputing")  # (C, n) or (M, C, n)
        tables = [self._fill(frame, rows.T) for rows in (filled[None] if multiple is None else filled)]
        return tables[0] if multiple is None else tables

    def _forecast_imputation(self, frame, k: int, multiple: int | None, seed: int) -> None:
        """Warn (:mod:`aevb.core.forecast`) when imputing would take hours: time a few rows with
        fewer draws and scale by rows x draws (k of z, and ``multiple`` of each hole)."""
        draws = k + (multiple or 0)
        if len(frame) * draws <= streaming.PROBE_WORK:
            return
        rows, k_probe = min(len(frame), streaming.PROBE_ROWS), min(k, streaming.PROBE_DRAWS)
        multiple_probe = None if multiple is None else min(multiple, streaming.PROBE_DRAWS)
        with progress.showing(False):
            seconds = forecast.timed(lambda: self.impute(frame.iloc[:rows], k_probe, multiple_probe, seed))
        scale = len(frame) / rows * draws / (k_probe + (multiple_probe or 0))
        option = f"--multiple (now {multiple})" if (multiple or 0) > k else f"--k (now {k})"
        forecast.warn_if_long(
            seconds * scale, f"imputing {len(frame)} rows",
            f"{rows} rows with --k {k_probe}" + (f" --multiple {multiple_probe}" if multiple else "") + f" took {seconds:.3g} s",
            f"lower {option}",
        )

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

    def scores(self, x: torch.Tensor, k: int, seed: int, proposal="posterior") -> dict[str, np.ndarray]:
        """The scores of every model (:meth:`row_scores`), plus ``n_observed`` cells per row and,
        per column, the cell's log-likelihood given the row's other cells, log p(x_j | x_-j),
        estimated with k importance-weighted draws (``<column>_log_likelihood``, empty for a
        hole). The lowest marks the cell that makes a row unusual."""
        scores = super().scores(x, k, seed, proposal)
        holes = torch.isnan(x)
        scores["n_observed"] = (~holes).sum(-1).double().numpy()
        per_column = self._per_row_of(  # (C, n)
            x, seed, lambda y: conditional_column_scores(self.model_, y, k).T, desc="scoring each column"
        )
        holes = holes.T.numpy()  # (C, n)
        for column, values, missing in zip(self.schema_.columns, per_column, holes):
            scores[f"{column.name}_log_likelihood"] = np.where(missing, np.nan, values)
        return scores
