"""scikit-learn's estimator contract, once for every aevb estimator.

- **Parameters.** An estimator's keyword parameters are the fields of its options
  dataclass (``config_class``): the generated ``__init__`` has one keyword per field,
  with the field's default, and stores the values untouched, so ``get_params``,
  ``set_params``, ``clone`` and ``GridSearchCV`` see plain attributes. They are
  validated when used: :attr:`SklearnEstimator.config` builds (and so checks) the
  dataclass from the current parameters, and ``fit`` reads it first.
- **Fitted state** is the attributes whose names end in ``_``. A ``fit`` starts from
  none, and a ``fit`` that fails leaves none (an early stop keeps the best weights, as
  :class:`aevb.errors.TrainingStopped` promises); before that every method raises
  :class:`NotFitted`, which is scikit-learn's ``NotFittedError`` and an ``AevbError``.
- **Inputs** that are not aevb :class:`~aevb.data.loaders.Dataset` objects are checked as
  scikit-learn checks them (``validate_data``): 2-D, numeric, ``n_features_in_`` and
  ``feature_names_in_`` set by ``fit`` and compared afterwards; its complaints become
  one-line ``AevbError`` messages.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    DensityMixin,
    TransformerMixin,
)
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import validate_data

from .data.columns import ColumnFormat
from .errors import AevbError, TrainingStopped


class NotFitted(AevbError, NotFittedError):
    """A method that needs a fitted model was called before ``fit`` (or after a failed one)."""


class InputTypeError(AevbError, TypeError):
    """Input of a type no estimator takes (scikit-learn raises a TypeError for it)."""


def options_signature(config_class) -> inspect.Signature:
    """``(self, *, field=default, ...)`` for the fields of the dataclass ``config_class``."""
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for f in dataclasses.fields(config_class):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        parameters.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default))
    return inspect.Signature(parameters)


def _options_init(config_class):
    """An ``__init__`` taking the fields of ``config_class`` as keywords and storing them as they are."""
    signature = options_signature(config_class)
    defaults = {name: p.default for name, p in signature.parameters.items() if name != "self"}

    def __init__(self, **params):
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise AevbError(f"unknown option(s) for {type(self).__name__}: {', '.join(unknown)}")
        for name, default in defaults.items():
            setattr(self, name, params.get(name, default))

    __init__.__signature__ = signature  # what sklearn's get_params and inspect read
    __init__.__doc__ = f"Keyword arguments: the fields of :class:`{config_class.__module__}.{config_class.__name__}`."
    return __init__


def fitting(fit):
    """Decorates a ``fit``: it starts unfitted, and leaves the estimator unfitted if it fails
    (an early stop, :class:`TrainingStopped`, keeps the best weights: still fitted). A fitted
    estimator keeps ``columns_``, the names and whole-number columns of X
    (:class:`~aevb.data.columns.ColumnFormat`), with which rows are written back."""

    @functools.wraps(fit)
    def fit_contract(self, X, *args, **kwargs):
        self._forget_fit()
        try:
            fitted = fit(self, X, *args, **kwargs)
        except TrainingStopped:
            self._keep_columns(X)
            raise
        except BaseException:
            self._forget_fit()
            raise
        self._keep_columns(X)
        return fitted

    return fit_contract


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


class SklearnEstimator(ClassNamePrefixFeaturesOutMixin, TransformerMixin, DensityMixin, BaseEstimator):
    """The scikit-learn side of an aevb estimator: a density (``score``, ``score_samples``)
    and a transformer (``transform`` to latent means, ``fit_transform``,
    ``get_feature_names_out``). A subclass names its ``config_class``."""

    config_class: type

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            cls.__init__ = _options_init(cls.config_class)

    @property
    def config(self):
        """The parameters as the options dataclass (after ``fit``, with the values it chose
        for options left unset: ``automatic_options_``): an AevbError names a bad one."""
        return self.config_class.from_dict({**self.get_params(deep=False), **vars(self).get("automatic_options_", {})})

    def __sklearn_is_fitted__(self) -> bool:
        return "model_" in vars(self)

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFitted(f"this {type(self).__name__} is not fitted yet; call fit(X) first")

    @property
    def _n_features_out(self) -> int:
        """Width of ``transform``'s output (get_feature_names_out: ``<class>0``, ``<class>1``, ...)."""
        self._check_fitted()
        return self.model_.latent_dim

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        self._check_fitted()
        return super().get_feature_names_out(input_features)

    def _keep_columns(self, X) -> None:
        if "n_features_in_" in vars(self):
            self.columns_ = ColumnFormat.of(X, self.n_features_in_)

    def _forget_fit(self) -> None:
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("_")]:
            delattr(self, name)

    def _validated(self, X, reset: bool, min_rows: int = 1, **check):
        """X checked by scikit-learn's ``validate_data`` (width, feature names, and unless
        ``check`` says ``skip_check_array=True``, a finite numeric 2-D array)."""
        shape = getattr(X, "shape", ())
        if not reset and len(shape) == 2 and "n_features_in_" in vars(self) and shape[1] != self.n_features_in_:
            raise AevbError(
                f"X has {shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_} "
                f"features as input: the data has {shape[1]} columns, the model was trained on {self.n_features_in_}"
            )
        if isinstance(X, np.memmap):
            check = {"skip_check_array": True}  # read a chunk at a time later, never copied here
        elif not check.get("skip_check_array"):
            # aevb's own check names the first NaN or infinite cell
            check = {"dtype": "numeric", "ensure_all_finite": False, "ensure_min_samples": min_rows, **check}
        try:
            return validate_data(self, X, reset=reset, **check)
        except AevbError:
            raise
        except (ValueError, TypeError) as error:
            hint = "; for a table of mixed column types use aevb.TabularVAE" if hasattr(X, "columns") else ""
            kind = InputTypeError if isinstance(error, TypeError) else AevbError
            raise kind(f"{_one_line(error)}{hint}") from None
