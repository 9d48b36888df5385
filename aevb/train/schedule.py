"""The learning rate over a run: constant, or annealed along a half cosine to zero at the
run's end, so that a run cut by its budget ends on small, careful steps rather than
mid-climb at the full rate.

The run's end is whichever comes first of its epoch limit (counted in steps) and its
``--max-time`` budget (counted in training seconds), so the fraction done is the larger
of the two fractions. Without a time budget the rate depends on the step alone and
training repeats bit for bit; with one, on the clock as well (a resumed run continues
from the seconds its checkpoint recorded).
"""

from __future__ import annotations

import math

import torch

from ..config import TrainingConfig


def fraction_done(config: TrainingConfig, step: int, seconds: float, total_steps: int | None) -> float:
    """How far through its run training is, in [0, 1]: the larger of ``step / total_steps``
    and ``seconds / max_time``, for whichever of the two limits exists."""
    done = 0.0
    if total_steps is not None:
        done = step / max(total_steps, 1)
    if config.max_time is not None:
        done = max(done, seconds / config.max_time)
    return min(done, 1.0)


def scheduled_rate(config: TrainingConfig, done: float) -> float:
    """The learning rate at ``done`` (see :func:`fraction_done`) through the run."""
    if config.learning_rate_schedule == "cosine":
        return config.learning_rate * 0.5 * (1 + math.cos(math.pi * done))
    return config.learning_rate


def parameter_groups(model: torch.nn.Module, rate: float) -> list[dict]:
    """The model's parameters as optimizer groups by learning-rate scale: a module may name some
    of its own parameters in a dict ``learning_rate_scales`` (name -> multiple of the rate)."""
    scales = {}
    for module in model.modules():
        for name, scale in getattr(module, "learning_rate_scales", {}).items():
            scales[id(getattr(module, name))] = scale
    groups: dict[float, list] = {}
    for parameter in model.parameters():
        groups.setdefault(scales.get(id(parameter), 1.0), []).append(parameter)
    return [{"params": params, "lr": rate * scale, "scale": scale} for scale, params in groups.items()]


def set_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    """Set each group's rate to ``rate`` times its scale."""
    for group in optimizer.param_groups:
        group["lr"] = rate * group.get("scale", 1.0)
