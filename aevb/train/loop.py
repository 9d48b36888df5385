"""The training loop of every family: minibatch Adam on the family's loss, early stopping
on the held-out bound it names, metrics, checkpoints (see :mod:`aevb.core.family`).

The data stays one tensor; each epoch indexes shuffled batches out of it,
which on a CPU is much faster than a per-row Dataset. Rows too many for memory
come as :class:`aevb.chunked.ChunkedRows` instead, read in shuffled chunks.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..config import TrainingConfig
from ..core.family import Family, Progress
from ..core.noise import SEED_STRIDE, block_of_global_draws, seeded_draws
from ..core.progress import enabled as bars_enabled
from ..data.preprocess import Preprocessor
from ..errors import TrainingDiverged, TrainingInterrupted
from ..scale.chunked import ChunkedRows
from ..scale.devices import autocast
from ..scale.distributed import SINGLE, Group
from ..store.run_folder import no_follow
from .checkpoint import Checkpoints, TrainingState
from .checkpoint_fields import RunLayout
from .schedule import fraction_done, parameter_groups, scheduled_rate, set_rate
from .signals import Caught, deferred_signals
from .threads import StepThreads

# Rows per batch of the validation pass.
VALIDATION_ROWS = 1024


def metric_fields(family: Family) -> list[str]:
    """The columns of metrics.csv for ``family``."""
    return [
        "epoch", "seconds",
        *(f"train_{name}" for name in family.metric_names),
        *(f"val_{name}" for name in family.validation_names),
    ]


def validation_bound(family: Family, row: dict) -> tuple[str, float]:
    """The name and value of the bound early stopping watches in a metrics row."""
    return family.bound_label, row[f"val_{family.bound_name}"]


@dataclass
class TrainingResult:
    history: list[dict]
    best_epoch: int
    stopped_because: str


def make_optimizer(model: torch.nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    groups = parameter_groups(model, config.learning_rate)
    # The fused kernel saves a quarter to a third of a small step on a CPU.
    try:
        return torch.optim.Adam(groups, lr=config.learning_rate, weight_decay=config.weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(groups, lr=config.learning_rate, weight_decay=config.weight_decay)


@torch.no_grad()
def mean_metrics(
    family: Family,
    model: torch.nn.Module,
    pre: Preprocessor,
    x: torch.Tensor | ChunkedRows,
    batch_size: int,
    seed: int,
    group: Group = SINGLE,
) -> dict[str, float]:
    """Means over the rows x of the family's validation metrics (:meth:`Family.validate`),
    in nats per row of the user's data (chunked rows: batches within each chunk, in file order).

    Batch i draws from ``seed + i * SEED_STRIDE`` (:func:`seeded_draws`), whoever computes
    it, and leaves torch's global generator alone: in a torchrun job rank r computes batches
    r, r + W, ... and the sums are all-reduced, to the figures of one process. NaN weights
    give NaN figures (every rank still joins the all-reduce).
    """
    names = family.validation_names
    device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    sums = torch.zeros(len(names), dtype=torch.float64, device=device)
    log_det = pre.log_abs_det_jacobian()
    parts = x.chunks() if isinstance(x, ChunkedRows) else [x]
    batches = (part[start : start + batch_size] for part in parts for start in range(0, len(part), batch_size))
    for index, rows in enumerate(batches):
        if index % group.world_size != group.rank:
            continue
        with seeded_draws(seed + index * SEED_STRIDE, device) as generator:
            y = pre.to_model(rows, generator).to(device, dtype)
            try:
                values = family.validate(model, y)
            except ValueError:  # torch.distributions rejects NaN parameters
                sums.fill_(math.nan)
                break
        sums += _row_sums(family, values, names, log_det * len(y))
    group.all_reduce(sums)
    return dict(zip(names, (sums / len(x)).tolist()))


def _row_sums(family: Family, values: dict[str, torch.Tensor], names, jacobian: float) -> torch.Tensor:
    """The sums over rows of ``values[name]`` for each name (float64), with ``jacobian`` (log p of
    the user's data = log p of the model's + log|det J| per row, summed) added to log-densities."""
    shift = {name: jacobian for name in family.log_density_names}
    return torch.stack([values[name].sum() + shift.get(name, 0.0) for name in names]).detach().double()


def _next_rows(train_x: torch.Tensor | ChunkedRows, state: TrainingState, batch_size: int) -> torch.Tensor:
    """The raw rows of the next batch of the epoch under way."""
    if isinstance(train_x, ChunkedRows):
        return train_x.batch(state.order, state.epoch, state.position, batch_size)
    return train_x[state.order[state.position : state.position + batch_size]]


def _order_length(train_x: torch.Tensor | ChunkedRows) -> int:
    """How many items an epoch's order permutes: the rows, or the chunks of chunked rows."""
    return train_x.n_chunks if isinstance(train_x, ChunkedRows) else len(train_x)


# Early stopping waits at least PATIENCE_EPOCHS epochs and PATIENCE_STEPS steps (when
# --patience is unset): on small data an epoch is a few steps and a small validation set
# makes its bound noisy, so 30 epochs stopped runs long before they were done (300 rows:
# 1.03 nats/row held out, 0.40 when allowed 1,000 steps; benchmarks/defaults_ab.py).
PATIENCE_EPOCHS, PATIENCE_STEPS = 30, 1000
# Training stops after EPOCH_CAP epochs or EPOCH_CAP_STEPS steps, whichever is more (when
# --epochs and --max-time are unset): on a few hundred rows 500 epochs are 1,500 steps, and
# such runs were cut while the held-out bound still improved (270 rows: 0.40 nats/row held
# out at 500 epochs, 0.19 when allowed more; benchmarks/defaults_ab.py). A --max-time budget
# replaces the cap: 500 epochs of 141 steps had cut 900 s runs still improving.
EPOCH_CAP, EPOCH_CAP_STEPS = 500, 20_000


def _steps_per_epoch(config: TrainingConfig, n_train: int) -> int:
    return max(1, math.ceil(n_train / config.batch_size))


def patience_epochs(config: TrainingConfig, n_train: int) -> int:
    """Epochs without a better validation bound before early stopping: ``config.patience``,
    or when unset, 30 epochs or as many as make 1,000 steps, whichever is more."""
    if config.patience is not None:
        return config.patience
    return max(PATIENCE_EPOCHS, math.ceil(PATIENCE_STEPS / _steps_per_epoch(config, n_train)))


def epoch_limit(config: TrainingConfig, n_train: int) -> int | None:
    """The most epochs training runs: ``config.epochs``; when unset, None (no cap) under a
    ``max_time`` budget, else 500 epochs or as many as make 20,000 steps, whichever is more."""
    if config.epochs is not None:
        return config.epochs
    if config.max_time is not None:
        return None
    return max(EPOCH_CAP, math.ceil(EPOCH_CAP_STEPS / _steps_per_epoch(config, n_train)))


def _clock(group: Group, started: float, device: torch.device) -> float:
    """Training seconds so far; in a job, rank 0's, so that every rank makes the same
    time-based choices (stopping at --max-time, the annealed learning rate)."""
    return group.main_value(time.perf_counter() - started, device)


def _stop_reason(state: TrainingState, config: TrainingConfig, family: Family, patience: int,
                 epochs: int | None) -> str | None:
    """Why training should not start another epoch, if it should not."""
    if state.epoch > 0 and state.epoch - max(state.best_epoch, family.warmup_epochs) >= patience:
        return "early stopping"
    if state.epoch > 0 and config.max_time is not None and state.seconds >= config.max_time:
        return "max_time"
    if epochs is not None and state.epoch >= epochs:
        return "epochs"
    return None


class TrainingLoss(torch.nn.Module):
    """The loss of one step: the family's per-row loss summed over ``rows`` and divided by
    the global batch's size ``total`` (more than ``len(rows)`` when ``rows`` is one rank's
    block of it); with the rows' sums of the family's metrics (float64).

    A module, so that DistributedDataParallel can wrap it: DDP hooks a module's forward.
    """

    def __init__(self, family: Family, model: torch.nn.Module, config: TrainingConfig):
        super().__init__()
        self.family, self.model, self.config = family, model, config

    def forward(self, rows: torch.Tensor, progress: Progress, total: int) -> tuple[torch.Tensor, torch.Tensor]:
        names = self.family.metric_names
        try:
            with autocast(rows.device, self.config.precision):
                loss, metrics = self.family.loss(self.model, rows, progress)
        except ValueError:  # torch.distributions rejects NaN parameters
            # A NaN loss on every weight: in a job, this rank still joins the gradient
            # all-reduce (so no rank hangs) and every rank then sees a NaN gradient.
            nan = torch.stack([p.sum() for p in self.parameters()]).sum() * math.nan
            return nan, torch.full((len(names),), math.nan, dtype=torch.float64, device=rows.device)
        sums = torch.stack([metrics[name].sum() for name in names]).detach().double()
        return loss.float().sum() / total, sums


def _gradient_step(
    step: torch.nn.Module,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: torch.Tensor,
    config: TrainingConfig,
    progress: Progress,
    group: Group,
):
    """One Adam step on the family's loss of the global ``batch``, of which this rank
    computes its block; returns the batch's sums of the family's metrics, or the name of
    what became non-finite (then the weights are left untouched). ``step`` is the
    :class:`TrainingLoss`, in a job wrapped in DDP."""
    offset, block = group.block(batch)
    share = 1.0
    if len(block) == 0:
        # Fewer rows than ranks (a short last batch): compute the whole batch, which draws
        # the same noise the other ranks draw, and count none of it.
        offset, block, share = 0, batch, 0.0
    optimizer.zero_grad(set_to_none=True)
    with block_of_global_draws(offset, len(block), len(batch)):
        loss, sums = step(block, progress, len(batch))
    if not group.active and not torch.isfinite(loss):
        return "loss"
    with group.collective():
        # DDP averages the ranks' gradients; each rank's loss is its share of the batch's sum.
        (loss * (share * group.world_size)).backward()
        # On the model's device: NCCL reduces GPU tensors only.
        reduced = group.all_reduce(share * torch.cat([sums, loss.detach().double().reshape(1)])).cpu()
    if not torch.isfinite(reduced[-1]):
        return "loss"
    return _apply_gradient(model, optimizer, config) or reduced[:-1]


def _apply_gradient(model: torch.nn.Module, optimizer: torch.optim.Optimizer, config: TrainingConfig) -> str | None:
    """Clip and take the Adam step; the name of what became non-finite instead, if anything did."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    if not torch.isfinite(norm):
        return "gradient"
    if config.grad_clip is not None:
        torch.nn.utils.clip_grads_with_norm_(model.parameters(), config.grad_clip, norm)
    optimizer.step()
    return None


def _metrics_row(family: Family, state: TrainingState, val: dict[str, float], n_train: int, log_det: float) -> dict:
    """The metrics.csv row of the epoch just finished, in nats per row of the user's data."""
    train = dict(zip(family.metric_names, (state.sums / n_train).tolist()))
    return {
        "epoch": state.epoch,
        "seconds": round(state.seconds, 3),
        **{f"train_{name}": value + (log_det if name in family.log_density_names else 0.0) for name, value in train.items()},
        **{f"val_{name}": val[name] for name in family.validation_names},
    }


def _open_metrics(path: Path | None, history: list[dict], fields: list[str]):
    """metrics.csv rewritten from ``history`` (so a resumed run repeats no row); None without a path."""
    if path is None:
        return None, None
    handle = open(path, "w", newline="", opener=no_follow)  # never through a planted link
    writer = csv.DictWriter(handle, fieldnames=fields)
    writer.writeheader()
    writer.writerows(history)
    handle.flush()
    return handle, writer


def train(
    family: Family,
    model: torch.nn.Module,
    pre: Preprocessor,
    train_x: torch.Tensor | ChunkedRows,
    val_x: torch.Tensor | ChunkedRows,
    config: TrainingConfig,
    metrics_path: Path | None = None,
    progress: bool | None = None,
    checkpoints: Checkpoints | None = None,
    group: Group = SINGLE,
) -> TrainingResult:
    """Fit ``model``, a module ``family`` built, to raw rows ``train_x`` by minibatch Adam on
    the family's loss; keep the weights of the best validation bound (:func:`validation_bound`)
    and load them back at the end.

    Randomness comes from torch's global generator (the family's draws) and a generator
    seeded from ``config.seed`` (batch order, dequantization); callers seed the
    former, with :func:`aevb.noise.global_seed` of ``config.seed``. ``progress=None`` shows a bar where someone can see it (:mod:`aevb.core.progress`).

    With ``checkpoints``, a checkpoint is written before the first step, whenever
    ``checkpoint_every`` seconds have passed since the last one (checked after each
    step), when training stops and on SIGINT/SIGTERM (then
    :class:`TrainingInterrupted` is raised); if they were opened to resume,
    the loop first restores the last one. A non-finite loss or gradient
    raises :class:`TrainingDiverged` without touching the checkpoint. Either
    way the model holds the best weights so far and the exception's
    ``result`` describes them.

    Rows given as :class:`ChunkedRows` are read a chunk at a time: each epoch's
    ``order`` is then a permutation of the chunks (see :mod:`aevb.chunked`).

    The model may live on any device; the rows stay where they are and each batch
    moves to the model. In a torchrun job (``group``), every rank runs this loop
    over the same order and computes its block of each batch (see
    :mod:`aevb.distributed`); only rank 0 writes checkpoints (and should be the
    only one given a ``metrics_path``).
    """
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = make_optimizer(model, config)
    state = TrainingState(best_state=copy.deepcopy(model.state_dict()))
    if checkpoints is not None and checkpoints.resumed is not None:
        layout = RunLayout(
            rows=len(train_x), order_length=_order_length(train_x),
            metric_names=tuple(family.metric_names), metric_fields=tuple(metric_fields(family)),
        )
        state = checkpoints.restore(model, optimizer, generator, layout)
    step = group.data_parallel(TrainingLoss(family, model, config))
    log_det = pre.log_abs_det_jacobian()
    device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    show = group.is_main and (bars_enabled() if progress is None else progress)
    started = time.perf_counter() - state.seconds

    def finish(stopped_because: str) -> TrainingResult:
        model.load_state_dict(state.best_state)
        model.eval()
        return TrainingResult(state.history, state.best_epoch, stopped_because)

    def diverged(what: str) -> None:
        raise TrainingDiverged(
            f"training diverged in epoch {state.epoch + 1} after {state.step} steps: the {what} "
            f"became NaN or infinite; kept the best weights so far (epoch {state.best_epoch}) "
            f"and the last good checkpoint; try a smaller --learning-rate "
            f"(now {config.learning_rate:g}) or --grad-clip 1.0",
            finish("diverged"),
        )

    def interrupted(caught: Caught) -> None:
        save_checkpoint()
        raise TrainingInterrupted(
            f"interrupted by {caught.name} in epoch {state.epoch + 1} after {state.step} steps; "
            f"saved a checkpoint to {checkpoints.path}",
            finish("interrupted"),
            caught.signum,
        )

    def save_checkpoint() -> None:
        state.seconds = time.perf_counter() - started
        if group.is_main:
            checkpoints.save(state, model, optimizer, generator)

    metrics_file, writer = _open_metrics(metrics_path, state.history, metric_fields(family))
    threads = torch.get_num_threads()
    step_threads = StepThreads(model, config.batch_size, threads, config.threads)
    patience, epochs = patience_epochs(config, len(train_x)), epoch_limit(config, len(train_x))
    total_steps = None if epochs is None else epochs * _steps_per_epoch(config, len(train_x))
    annealed = config.learning_rate_schedule != "constant"
    bar = tqdm(total=epochs, initial=state.epoch, desc="training", unit="epoch", disable=not show)
    signals = deferred_signals() if checkpoints is not None else contextlib.nullcontext(Caught())
    try:
        with signals as caught:
            if checkpoints is not None:
                save_checkpoint()  # also proves, before any work, that the run folder takes one
            while state.position > 0 or (stopped_because := _stop_reason(state, config, family, patience, epochs)) is None:
                if state.position == 0:
                    state.order = torch.randperm(_order_length(train_x), generator=generator)
                    state.sums = torch.zeros(len(family.metric_names), dtype=torch.float64)
                model.train()
                while state.position < len(train_x):
                    rows = _next_rows(train_x, state, config.batch_size)
                    batch = pre.to_model(rows, generator).to(device, dtype, non_blocking=True)
                    now = Progress(epoch=state.epoch + 1, step=state.step)
                    if annealed:
                        seconds = _clock(group, started, device) if config.max_time is not None else 0.0
                        set_rate(optimizer, scheduled_rate(config, fraction_done(config, state.step, seconds, total_steps)))
                    step_threads.before_step()
                    sums = _gradient_step(step, model, optimizer, batch, config, now, group)
                    step_threads.after_step()
                    if isinstance(sums, str):
                        diverged(sums)
                    family.after_step(model)
                    state.sums += sums
                    state.position += len(rows)
                    state.step += 1
                    if caught.signum is not None:
                        interrupted(caught)
                    if checkpoints is not None and state.position < len(train_x) and checkpoints.due():
                        save_checkpoint()
                model.eval()
                val = mean_metrics(family, model, pre, val_x, VALIDATION_ROWS, config.seed + 1, group)
                if not all(map(math.isfinite, val.values())):
                    diverged(f"validation {family.bound_label}")
                state.position = 0
                state.epoch += 1
                state.seconds = _clock(group, started, device)
                row = _metrics_row(family, state, val, len(train_x), log_det)
                _, bound = validation_bound(family, row)
                state.history.append(row)
                if writer is not None:
                    writer.writerow(row)
                    metrics_file.flush()
                if state.best_bound is None or bound > state.best_bound:
                    state.best_bound, state.best_epoch = bound, state.epoch
                    state.best_state = copy.deepcopy(model.state_dict())
                bar.update(1)
                bar.set_postfix(val=f"{bound:.2f}", best=f"{state.best_bound:.2f}@{state.best_epoch}")
                if checkpoints is not None and checkpoints.due():
                    save_checkpoint()
            if checkpoints is not None:
                save_checkpoint()  # where it stopped, so that --resume can extend a finished run
    finally:
        torch.set_num_threads(threads)
        bar.close()
        if metrics_file is not None:
            metrics_file.close()
    return finish(stopped_because)
