"""The table VAE as a family: the VAE's training and scoring, on a table's encoder and heads."""

from __future__ import annotations

from ..core.family import DataDescription
from ..vae.family import VAEFamily
from ..vae.model import LatentVariableModel
from .model import build_table_vae


class TableVAEFamily(VAEFamily):
    """A :class:`VAEFamily` whose module reads values and the mask of observed cells and gives
    one distribution per column (:func:`build_table_vae`); the data description carries the schema."""

    def build(self, data: DataDescription) -> LatentVariableModel:
        return build_table_vae(self.config, data.schema)
