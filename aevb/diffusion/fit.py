"""A plain training loop for the diffusion family: minibatch Adam on the negative bound,
early stopping on the held-out bound, best weights kept, a wall-clock cap.

It stands in for the generic loop of :mod:`aevb.train.loop` (checkpoints, resume,
torchrun) until that loop takes any :class:`aevb.core.family.Family`.
"""

from __future__ import annotations

import copy
import math
import sys
import time

import torch
from tqdm.auto import tqdm

from ..core.noise import seeded_draws
from ..data.preprocess import Preprocessor
from ..errors import TrainingDiverged
from ..train.loop import TrainingResult, loop_threads, make_optimizer
from .config import DiffusionConfig
from .family import DiffusionFamily

VALIDATION_ROWS = 1024


@torch.no_grad()
def validation_metrics(family: DiffusionFamily, module, pre: Preprocessor, rows: torch.Tensor, seed: int) -> dict[str, float]:
    """Means over held-out rows of :meth:`DiffusionFamily.validate`, the bound in the user's units,
    with the same draws every epoch (common random numbers)."""
    module.eval()
    sums = dict.fromkeys(family.validation_names, 0.0)
    with seeded_draws(seed) as generator:
        for batch in rows.split(VALIDATION_ROWS):
            for name, values in family.validate(module, pre.to_model(batch, generator)).items():
                sums[name] += float(values.sum())
    return {name: total / len(rows) + (pre.log_abs_det_jacobian() if name in family.log_density_names else 0.0)
            for name, total in sums.items()}


def train(family: DiffusionFamily, module, pre: Preprocessor, train_x: torch.Tensor, val_x: torch.Tensor,
          config: DiffusionConfig, progress: bool | None = None) -> TrainingResult:
    """Fit ``module`` to the raw rows ``train_x``; returns the history (per epoch: seconds, the
    training loss terms and the validation bound, in nats per row of the model's data) and
    leaves the best validation weights in ``module``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(loop_threads(module, config.batch_size, threads))
    try:
        return _train(family, module, pre, train_x, val_x, config, progress)
    finally:
        torch.set_num_threads(threads)


def _train(family, module, pre, train_x, val_x, config, progress) -> TrainingResult:
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = make_optimizer(module, config)
    history: list[dict] = []
    best, best_epoch, best_state = -math.inf, 0, copy.deepcopy(module.state_dict())
    started = time.perf_counter()
    stopped_because = "epochs"
    show = sys.stderr.isatty() if progress is None else progress
    epochs = tqdm(range(1, config.epochs + 1), disable=not show, desc="training", unit="epoch")
    for epoch in epochs:
        module.train()
        sums: dict[str, float] = {}
        seen = 0
        out_of_time = False
        for rows in torch.randperm(len(train_x), generator=generator).split(config.batch_size):
            y = pre.to_model(train_x[rows], generator)
            loss, terms = family.loss(module, y)
            loss = loss.mean()
            if not torch.isfinite(loss):
                module.load_state_dict(best_state)
                raise TrainingDiverged(
                    f"training diverged in epoch {epoch}: the loss became NaN or infinite; kept the best "
                    f"weights so far (epoch {best_epoch}); try a smaller --learning-rate",
                    TrainingResult(history, best_epoch, "diverged"),
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)
            optimizer.step()
            seen += len(rows)
            for name, values in terms.items():
                sums[name] = sums.get(name, 0.0) + float(values.detach().sum())
            if config.max_time is not None and time.perf_counter() - started > config.max_time:
                out_of_time = True
                break
        validation = validation_metrics(family, module, pre, val_x, config.seed)
        log_det = pre.log_abs_det_jacobian()
        train_means = {name: total / max(seen, 1) + (log_det if name in family.log_density_names else 0.0)
                       for name, total in sums.items()}
        row = {"epoch": epoch, "seconds": time.perf_counter() - started,
               **{f"train_{k}": v for k, v in train_means.items()}, **{f"val_{k}": v for k, v in validation.items()}}
        val = validation[family.bound_name]
        history.append(row)
        epochs.set_postfix(val_bound=f"{val:.3f}")
        if val > best:
            best, best_epoch, best_state = val, epoch, copy.deepcopy(module.state_dict())
        if out_of_time:
            stopped_because = "max_time"
            break
        if epoch - best_epoch >= config.patience:
            stopped_because = "early stopping"
            break
    epochs.close()
    module.load_state_dict(best_state)
    module.eval()
    return TrainingResult(history, best_epoch, stopped_because)
