"""What a VAE of a given configuration would take in memory, estimated before anything
is allocated, so that ``--latent-dim 1e8`` or ``--hidden 1e9`` ends in one line naming
the option instead of an allocator's traceback.

The estimate counts float32 values: the weights of the encoder and decoder MLPs
(D -> hidden -> 2L and L -> hidden -> 2D), of the flows (one MADE of L -> h -> 2L per
layer, plus its masks) and of the prior (components x 2L, or x D pseudo-inputs), each
weight held ~5 times in training (itself, its gradient, Adam's two moments, the best
weights so far); and the activations of one batch, batch x draws x (widths + the
prior's components), kept for the backward pass. It is within a small factor of the
truth, which is all a refusal of impossible requests needs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..config import VAEConfig
from ..errors import AevbError
from .sizes import automatic

BYTES = 4
COPIES = 5  # weight, gradient, two Adam moments, best weights
# The options an oversized request comes from, and what each is called on the command line.
SIZE_OPTIONS = ("latent_dim", "hidden", "latent_layers", "flow_layers", "prior_components", "mc_samples", "k", "batch_size")


def _mlp(widths: list[int]) -> int:
    return sum(a * b + b for a, b in zip(widths, widths[1:]))


def training_bytes(config: VAEConfig, n_features: int) -> int:
    """Estimated bytes to build and train a VAE of ``config`` on rows of ``n_features``."""
    L, D, hidden = config.latent_dim, n_features, list(config.hidden)
    weights = _mlp([D, *hidden, 2 * L]) + _mlp([L, *hidden[::-1], 2 * D])
    if config.posterior == "full":
        weights += _mlp([hidden[-1], L * (L + 1) // 2])
    if config.posterior == "iaf":
        weights += 2 * config.flow_layers * _mlp([L, hidden[0], 2 * L])  # weights and masks
    if config.latent_layers > 1:  # per extra layer: an up and a down block, two heads (aevb.images.hierarchy)
        width = hidden[-1]
        weights += (config.latent_layers - 1) * (
            _mlp([width, width]) + _mlp([2 * width, 2 * L]) + _mlp([L, width]) + _mlp([width, 2 * L])
        )
    components = config.prior_components if config.prior in ("mog", "vamp") else 0
    weights += components * (D if config.prior == "vamp" else 2 * L)
    draws = config.mc_samples * (config.k if config.objective == "iwae" else 1)
    width = 2 * sum(hidden) + 4 * L + 2 * D + (config.flow_layers * 3 * L if config.posterior == "iaf" else 0)
    activations = 3 * config.batch_size * draws * (width + components * L)
    if config.prior == "vamp":
        activations += 3 * components * (D + sum(hidden) + 2 * L)
    return BYTES * (COPIES * weights + activations)


def memory_bytes() -> int:
    """This machine's physical memory."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**62  # unknown: refuse nothing


def check_fits(config: VAEConfig, n_features: int) -> None:
    """Raise AevbError, naming the option most to blame, when training would need more
    memory than the machine has."""
    need, have = training_bytes(config, n_features), memory_bytes()
    if need <= have:
        return
    # The defaults for these rows, sizes included.
    defaults = {**VAEConfig().to_dict(), **automatic({"latent_dim": None, "hidden": None}, 0, n_features)[0]}

    def without(name: str) -> int:
        return training_bytes(config.__class__(**{**config.to_dict(), name: defaults[name]}), n_features)

    culprit = min(SIZE_OPTIONS, key=without)
    value = ",".join(map(str, config.hidden)) if culprit == "hidden" else getattr(config, culprit)
    raise AevbError(
        f"this model would need about {_size(need)} of memory to train but the machine has {_size(have)}; "
        f"lower --{culprit.replace('_', '-')} (now {value})"
    )


def check_request(need: int, option: str) -> None:
    """Raise AevbError naming ``option`` when a request needs ``need`` bytes the machine lacks."""
    have = memory_bytes()
    if need > have:
        raise AevbError(
            f"{option} asks for about {_size(need)} of memory but the machine has {_size(have)}; ask for less"
        )


def check_disk(path: Path, need: int, what: str) -> None:
    """Raise AevbError naming ``what`` when writing ``need`` bytes to ``path`` would not fit in the
    free space of its file system (streamed outputs need disk, not memory)."""
    try:
        have = shutil.disk_usage(Path(path).parent).free
    except OSError:
        return  # a folder that cannot be inspected: the write itself reports what is wrong
    if need > have:
        raise AevbError(
            f"{what} asks for about {_size(need)} of disk for {path} but it has {_size(have)} free; ask for less"
        )


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000:
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.0f} EB"
