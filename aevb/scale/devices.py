"""Where the model computes: ``--device auto | cpu | cuda`` and ``--precision``.

``auto`` takes a GPU when torch sees one. Under torchrun each rank takes the
GPU of its ``LOCAL_RANK``. Everything else in aevb works on whichever device
the model's parameters are on.
"""

from __future__ import annotations

import contextlib
import os

import torch

from ..errors import AevbError


def resolve(name: str) -> torch.device:
    """The torch device that the option ``name`` (auto, cpu, cuda) stands for here."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise AevbError("--device cuda needs a GPU that torch can see; this machine has none (use --device cpu or auto)")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "bf16" and device.type != "cuda":
        raise AevbError("--precision bf16 (autocast) is for GPUs; on the CPU use --precision float32")


def autocast(device: torch.device, precision: str):
    """bf16 autocast on a GPU where asked for; otherwise nothing changes."""
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
