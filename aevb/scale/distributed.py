"""The processes that ``torchrun`` starts, as one job: joining it, reducing across it,
and wrapping the training loss in DistributedDataParallel.

Every rank holds the whole model and the same random generators. Each step,
every rank cuts the same global batch of ``batch_size`` rows out of the
epoch's shuffled order, keeps its own contiguous block of it, and draws its
random numbers (dequantization noise, the z of q(z|x): see :mod:`aevb.noise`)
for the *whole* global batch before keeping its block: so the ranks stay in
step, and together compute exactly the step that one process takes on the
global batch. DistributedDataParallel averages the gradients across ranks
during the backward pass, so weights and Adam's state are the same on every
rank and equal, to float rounding, those of one process.

Outside torchrun (no ``WORLD_SIZE`` > 1 in the environment) the group is a
group of one and nothing here touches torch.distributed.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..errors import AevbError, first_line

# A collective that waits longer than this on a rank that stopped answering fails
# instead of hanging; torchrun normally ends the job much sooner, when it sees a rank exit.
TIMEOUT_SECONDS = 120


class RankFailed(AevbError):
    """Another process of the job stopped (or a collective timed out)."""


@dataclass(frozen=True)
class Group:
    """This process's place in the job: rank ``rank`` of ``world_size``."""

    rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, metrics and the model."""
        return self.rank == 0

    def block(self, rows: torch.Tensor) -> tuple[int, torch.Tensor]:
        """This rank's contiguous block of a global batch ``rows``, with its offset in it."""
        bounds = [len(rows) * r // self.world_size for r in range(self.world_size + 1)]
        start, stop = bounds[self.rank], bounds[self.rank + 1]
        return start, rows[start:stop]

    @contextlib.contextmanager
    def collective(self):
        """Around work that talks to the other ranks: a dead peer becomes a :class:`RankFailed`."""
        try:
            yield
        except (RuntimeError, dist.DistError) as error:
            if not self.active:
                raise
            raise RankFailed(
                f"rank {self.rank} of {self.world_size} lost contact with another rank of the job "
                f"(it died or timed out after {TIMEOUT_SECONDS}s: {first_line(error)}); "
                "continue from the last checkpoint with --resume"
            ) from None

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the ranks, in place."""
        if self.active:
            with self.collective():
                dist.all_reduce(tensor)
        return tensor

    def main_value(self, value: float, device: torch.device | str = "cpu") -> float:
        """Rank 0's ``value``, on every rank (reduced on ``device``: NCCL reduces GPU tensors only)."""
        if not self.active:
            return value
        mine = torch.tensor([value if self.is_main else 0.0], dtype=torch.float64, device=device)
        return float(self.all_reduce(mine)[0])

    def data_parallel(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` wrapped in DistributedDataParallel (which starts every rank from rank 0's
        weights and averages gradients over the ranks in backward), each call of it a
        :meth:`collective` (:class:`CollectiveForward`); itself in a group of one."""
        if not self.active:
            return module
        device = next(module.parameters()).device
        with self.collective():
            wrapped = DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None)
        return CollectiveForward(wrapped, self)


class CollectiveForward(torch.nn.Module):
    """A DistributedDataParallel module whose forward runs as a :meth:`Group.collective`: DDP
    talks to the other ranks there too (it broadcasts rank 0's buffers, such as the prior's
    loc and scale, before each forward), so a dead peer is a :class:`RankFailed` there as in
    the backward's gradient all-reduce, not a gloo traceback."""

    def __init__(self, module: DistributedDataParallel, group: Group):
        super().__init__()
        self.module, self.group = module, group

    def forward(self, *args, **kwargs):
        with self.group.collective():
            return self.module(*args, **kwargs)


SINGLE = Group()


def launched() -> bool:
    """Was this process started by torchrun as one of several?"""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def environment_rank() -> int:
    """This process's rank as torchrun set it (0 outside torchrun), known before joining."""
    try:
        return int(os.environ.get("RANK", "0")) if launched() else 0
    except ValueError:
        return 0


def join(device: torch.device) -> Group:
    """This process's group: the torchrun job it belongs to (gloo on CPU, NCCL on GPUs),
    or a group of one."""
    if not launched():
        return SINGLE
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=TIMEOUT_SECONDS))
        except (RuntimeError, ValueError, dist.DistError) as error:
            raise AevbError(f"cannot join the torchrun job ({first_line(error)})") from None
    return Group(dist.get_rank(), dist.get_world_size())


def current() -> Group:
    """The group this process has joined, or a group of one."""
    if not dist.is_initialized():
        return SINGLE
    return Group(dist.get_rank(), dist.get_world_size())


def leave(together: bool = False) -> None:
    """Leave the job's group; ``together``: first wait for every rank to get here, so that
    no rank tears down its connections while another still uses them."""
    if dist.is_initialized():
        if together:
            with contextlib.suppress(RuntimeError, dist.DistError):
                dist.barrier()
        dist.destroy_process_group()
