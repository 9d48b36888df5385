"""The check of every field of a checkpoint before a resumed run uses it.

A checkpoint read back may have been damaged on disk or written by someone else. Its
fields reach the loop's index arithmetic (``order[position:]``), the metric sums, the
optimizer's kernels and ``load_state_dict``; unchecked, a bad one ends in an
IndexError, a loop that never ends (an ``order`` shorter than the data yields empty
batches), a segmentation fault (Adam's fused step on moments of the wrong shape) or a
run that silently goes on from NaN weights. Here each field is held to what
:meth:`aevb.train.checkpoint.Checkpoints.save` writes, given the model, the optimizer
and the data of the run being resumed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from ..store.fields import (
    DamagedField,
    listing,
    mapping,
    number,
    optional,
    tensor,
    whole,
)

PROGRESS_FIELDS = ("epoch", "position", "step", "seconds", "best_bound", "best_epoch", "history")
# Adam's state of one parameter, as torch.optim.Adam keeps it (amsgrad adds max_exp_avg_sq).
ADAM_STATE = ("step", "exp_avg", "exp_avg_sq")
ADAM_OPTIONAL = ("max_exp_avg_sq",)
_OPTIMIZER_NAME = re.compile(r"optimizer/(\d{1,9})/(\w+)")


@dataclass
class RunLayout:
    """What the resumed run expects: ``rows`` training rows, an epoch ``order`` over
    ``order_length`` items (rows, or chunks when training reads chunks), the family's
    running ``metric_names`` and the columns ``metric_fields`` of a history row."""

    rows: int
    order_length: int
    metric_names: tuple[str, ...]
    metric_fields: tuple[str, ...]


def check_checkpoint(meta: dict, tensors: dict[str, torch.Tensor], model: torch.nn.Module,
                     optimizer: torch.optim.Optimizer, generator: torch.Generator, layout: RunLayout) -> None:
    """Raise DamagedField naming the first field of the checkpoint (metadata ``meta``, entries
    ``tensors``) that the loop could not continue from."""
    progress = _check_progress(mapping(meta.get("progress"), "progress"), layout)
    _check_order(tensors.get("order"), progress["position"], layout)
    tensor(tensors.get("sums"), "sums", (len(layout.metric_names),), torch.float64)
    tensor(tensors.get("rng/torch"), "rng/torch", tuple(torch.get_rng_state().shape), torch.uint8)
    tensor(tensors.get("rng/batches"), "rng/batches", tuple(generator.get_state().shape), torch.uint8)
    expected = {"order", "sums", "rng/torch", "rng/batches"}
    for prefix in ("model/", "best/"):
        for name, reference in model.state_dict().items():
            tensor(tensors.get(prefix + name), prefix + name, tuple(reference.shape), reference.dtype)
            expected.add(prefix + name)
    expected |= _check_optimizer(tensors, meta.get("optimizer"), optimizer)
    unexpected = sorted(set(tensors) - expected)
    if unexpected:
        raise DamagedField(f"it holds an unexpected tensor {unexpected[0]}")


def _check_progress(progress: dict, layout: RunLayout) -> dict:
    _check_names(progress, PROGRESS_FIELDS, "progress")
    epoch = whole(progress["epoch"], "epoch")
    whole(progress["step"], "step", epoch)  # every epoch takes one step at least
    whole(progress["position"], "position", 0, layout.rows - 1)
    number(progress["seconds"], "seconds", 0.0)
    optional(number, progress["best_bound"], "best_bound")
    whole(progress["best_epoch"], "best_epoch", 0, epoch)
    history = listing(progress["history"], "history", epoch)  # a row per finished epoch
    for index, row in enumerate(history):
        name = f"history[{index}]"
        _check_names(mapping(row, name), layout.metric_fields, name)
        whole(row["epoch"], f"{name}.epoch", index + 1, index + 1)
        for field in layout.metric_fields:
            number(row[field], f"{name}.{field}")
    return progress


def _check_names(fields: dict, names: tuple[str, ...], name: str) -> None:
    """``fields`` has exactly the entries ``names``."""
    missing = [n for n in names if n not in fields]
    if missing:
        raise DamagedField(f"{name} lacks the field {missing[0]}")
    unknown = sorted(set(fields) - set(names))
    if unknown:
        raise DamagedField(f"{name} has an unknown field {unknown[0]!r}")


def _check_order(order, position: int, layout: RunLayout) -> None:
    """The order is a 1-D int64 tensor; mid-epoch (``position`` > 0) it must order every one of
    the ``order_length`` items once, or batches would repeat, skip or index past the data."""
    order = tensor(order, "order", dtype=torch.int64)
    if order.dim() != 1:
        raise DamagedField(f"the tensor order has shape {tuple(order.shape)}, not one dimension")
    if position == 0:
        return  # the next epoch draws a new order
    n = layout.order_length
    if len(order) != n or not torch.equal(order.sort().values, torch.arange(n)):
        raise DamagedField(f"the tensor order is not an ordering of the {n} items of an epoch (0..{n - 1}, each once)")


def _check_optimizer(tensors: dict, plain, optimizer: torch.optim.Optimizer) -> set[str]:
    """Adam's moments of each parameter have its shape, dtype and finite values (the second
    moment no negative one); return the names of the optimizer's tensors."""
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    names, keys = set(), {}
    for name in tensors:
        match = _OPTIMIZER_NAME.fullmatch(name)
        if match and int(match[1]) < len(parameters) and match[2] in ADAM_STATE + ADAM_OPTIONAL:
            keys.setdefault(int(match[1]), set()).add(match[2])
            names.add(name)
    for index, present in keys.items():
        lacking = [key for key in ADAM_STATE if key not in present]
        if lacking:
            raise DamagedField(f"the optimizer state of parameter {index} lacks {lacking[0]}")
        parameter = parameters[index]
        for key in present:
            name = f"optimizer/{index}/{key}"
            if key == "step":
                step = tensor(tensors[name], name, ())
                if not step.is_floating_point() or step.item() < 0 or step.item() != round(step.item()):
                    raise DamagedField(f"the tensor {name} is {step.item()!r}, not a count of steps")
                continue
            moment = tensor(tensors[name], name, tuple(parameter.shape), parameter.dtype)
            if key != "exp_avg" and (moment < 0).any():
                raise DamagedField(f"the tensor {name} holds negative values")
    for index, entries in mapping(plain, "optimizer").items():
        if not index.isdigit() or int(index) >= len(parameters):
            raise DamagedField(f"optimizer names a parameter {index!r} that the model does not have")
        for key, value in mapping(entries, f"optimizer[{index}]").items():
            number(value, f"optimizer[{index}].{key}")
    return names
