"""Network bodies: the part of an encoder or decoder before its distribution head."""

from __future__ import annotations

from torch import nn


def mlp(in_features: int, hidden: tuple[int, ...]) -> nn.Sequential:
    """Linear -> SiLU blocks of the given widths; outputs (..., hidden[-1]), or the input if none."""
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.SiLU()]
        width = size
    return nn.Sequential(*layers)
