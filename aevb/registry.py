"""Every estimator, by the name `aevb fit --model` takes; config.json records the class name.

:func:`estimator_for` picks the estimator of `aevb fit`: by ``--model``, or TabularVAE when
the data is a table (a rule of the tables layer, :func:`aevb.tables.io.is_table_file`).
"""

from __future__ import annotations

import dataclasses

from .config import TableConfig, VAEConfig
from .diffusion.estimator import Diffusion
from .errors import AevbError
from .gplvm.estimator import GPLVM
from .linear.estimators import PPCA, FactorAnalysis
from .tables.estimator import TabularVAE
from .tables.io import is_table_file
from .vae.estimator import VAE

ESTIMATORS = {"vae": VAE, "ppca": PPCA, "fa": FactorAnalysis, "gplvm": GPLVM, "diffusion": Diffusion}
BY_CLASS_NAME = {cls.__name__: cls for cls in (*ESTIMATORS.values(), TabularVAE)}
# The option dataclasses of every estimator, each once, in this order.
OPTION_CLASSES = tuple(dict.fromkeys(cls.config_class for cls in BY_CLASS_NAME.values()))
# Options only a table model takes: setting one says the data is a table.
TABLE_ONLY_OPTIONS = frozenset(f.name for f in dataclasses.fields(TableConfig)) - {
    f.name for f in dataclasses.fields(VAEConfig)
}


def estimator_for(model: str, source: str, table: bool = False, options=()) -> tuple[type, str]:
    """The estimator class that `aevb fit --model MODEL SOURCE` trains, and how to name it in
    a message: the table VAE when ``table`` is asked for, one of ``options`` (names) is a
    table option, or SOURCE is a table file (a .parquet, a .csv with holes or words);
    else ``ESTIMATORS[model]``."""
    if not (table or TABLE_ONLY_OPTIONS & set(options) or is_table_file(source)):
        return ESTIMATORS[model], f"--model {model}"
    if ESTIMATORS[model] is not VAE:
        raise AevbError(f"--model {model} takes numeric arrays only; tables are modelled by the vae")
    return TabularVAE, "tables"
