"""Where aevb's random numbers come from: the noise eps behind every reparameterized draw
z = mu + L eps of q(z|x), and the seeds of repeatable passes over rows.

aevb's Gaussians draw eps through :func:`standard_normal` (torch's own Normal
and MultivariateNormal draw it inside torch.distributions, out of reach). One
process draws exactly what torch would. A rank of a data-parallel job, inside
:func:`block_of_global_draws`, draws eps for the *whole* global batch from the
generator all ranks share and keeps its own rows: so the ranks together use
the numbers one process would have used for that batch, and stay in step.

Scoring and validation draw each part of their rows from a seed of its own
(:func:`seeded_draws`), so that any process can compute any part.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch.distributions import MultivariateNormal, Normal

from ..errors import AevbError

# (offset, rows, total) while a rank computes its block of a global batch, else None.
_block: tuple[int, int, int] | None = None


def standard_normal(shape: torch.Size, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """N(0, 1) draws of ``shape`` from torch's global generator (the same numbers
    torch.distributions draws); inside :func:`block_of_global_draws`, a draw whose rows
    (second-to-last dimension) are the block's is cut from one over the global batch."""
    shape = tuple(shape)
    if _block is not None and len(shape) >= 2 and shape[-2] == _block[1]:
        offset, rows, total = _block
        full = torch.empty((*shape[:-2], total, shape[-1]), dtype=dtype, device=device).normal_()
        return full[..., offset : offset + rows, :]
    return torch.empty(shape, dtype=dtype, device=device).normal_()


@contextlib.contextmanager
def block_of_global_draws(offset: int, rows: int, total: int):
    """Draws inside take the noise of rows [offset, offset + rows) of a global batch of ``total``."""
    global _block
    previous, _block = _block, (None if rows == total else (offset, rows, total))
    try:
        yield
    finally:
        _block = previous


# Part i of a pass seeded with s (a chunk of rows to score, a validation batch) draws from
# s + i * SEED_STRIDE, whichever process computes it.
SEED_STRIDE = 1_000_003
# Seeds a user may give: numpy's and torch's generators take any of these.
MAX_SEED = 2**63 - 1


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as an int, or AevbError unless it is a whole number in 0..2^63-1."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise AevbError(f"{name} must be a whole number from 0 to 2^63-1, got {seed!r}")
    return int(seed)


def global_seed(seed: int) -> int:
    """The seed of torch's global generator (weights at the start, z of q(z|x)) in work whose
    own generator (batch order, dequantization noise) is seeded with ``seed``: one seed for
    both would draw the same numbers twice, tying dequantization noise to the z of rows."""
    return (seed + 1) % 2**64  # torch takes seeds below 2^64


def kept_generators(device: torch.device):
    """A context after which torch's global generators (the CPU's, and ``device``'s if it
    is a GPU) are as they were before it."""
    return torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else [])


@contextlib.contextmanager
def seeded_draws(seed: int, device: torch.device = torch.device("cpu")):
    """Inside, every draw follows from ``seed`` alone, and torch's global generator is left as
    it was. Yields the generator of the dequantization noise, seeded with ``seed``; z comes
    from torch's global generator, seeded with :func:`global_seed`."""
    with kept_generators(device):
        torch.manual_seed(global_seed(seed))
        yield torch.Generator().manual_seed(seed % 2**64)  # a chunk's seed + i * SEED_STRIDE may pass it


class ReparameterizedNormal(Normal):
    """torch's Normal, with its reparameterized draws' noise from :func:`standard_normal`."""

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        eps = standard_normal(self._extended_shape(sample_shape), self.loc.dtype, self.loc.device)
        return self.loc + eps * self.scale


class ReparameterizedMultivariateNormal(MultivariateNormal):
    """torch's MultivariateNormal, with its reparameterized draws' noise from :func:`standard_normal`."""

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        eps = standard_normal(self._extended_shape(sample_shape), self.loc.dtype, self.loc.device)
        return self.loc + (self.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)


class DrawStreams:
    """Named streams of torch's global generator that each start where it stands now.

    ``with streams("elbo"):`` draws continue that stream where it last stopped, and the
    global generator moves on no other stream. One pass over rows can then draw the ELBO's
    z and the k-sample estimate's z as separate passes would (each from the same seed), so
    a figure does not depend on what else the pass computes (the ELBO not on k).
    """

    def __init__(self):
        self._start = torch.get_rng_state()
        self._states: dict[str, torch.Tensor] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        torch.set_rng_state(self._states.get(name, self._start))
        try:
            yield
        finally:
            self._states[name] = torch.get_rng_state()
