"""The VAE of a table: an encoder that reads values and the mask of observed cells,
a decoder that gives one distribution per column."""

from __future__ import annotations

from torch import nn

from ..core.nets import mlp
from ..vae.model import POSTERIOR_HEADS, PRIORS, LatentVariableModel
from .likelihood import TableEncoderInput, TableHead


def build_table_vae(config, schema) -> LatentVariableModel:
    """The VAE of a table: the encoder reads values and the mask of observed cells
    (:class:`TableEncoderInput`), the decoder gives one distribution per column (:class:`TableHead`)."""
    hidden = config.hidden
    reader = TableEncoderInput(schema)
    encoder = nn.Sequential(
        reader, mlp(reader.out_features, hidden), POSTERIOR_HEADS[config.posterior](hidden[-1], config)
    )
    decoder = nn.Sequential(mlp(config.latent_dim, hidden[::-1]), TableHead(hidden[0], schema, config.components))
    return LatentVariableModel(encoder, decoder, PRIORS[config.prior](len(schema.columns), config))
