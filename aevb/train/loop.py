"""The training loop: minibatch Adam on the training objective (the ELBO unless the
config says otherwise), early stopping on the validation bound that training maximizes
(the ELBO, or IWAE_k under ``objective="iwae"``), metrics, checkpoints.

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

from ..config import VAEConfig
from ..core.noise import SEED_STRIDE, block_of_global_draws, seeded_draws
from ..core.objectives import elbo, iwae, kl_weight, training_objective
from ..core.progress import enabled as bars_enabled
from ..data.preprocess import Preprocessor
from ..errors import TrainingDiverged, TrainingInterrupted
from ..scale.chunked import ChunkedRows
from ..scale.devices import autocast
from ..scale.distributed import SINGLE, Group
from ..store.run_folder import no_follow
from ..vae.model import LatentVariableModel
from .checkpoint import Checkpoints, TrainingState
from .signals import Caught, deferred_signals

METRIC_FIELDS = [
    "epoch", "seconds", "train_elbo", "train_reconstruction", "train_kl",
    "val_elbo", "val_reconstruction", "val_kl",
]
# Rows per batch of the validation pass.
VALIDATION_ROWS = 1024
# Under objective iwae, metrics.csv also has the validation IWAE_k, which early stopping watches.
IWAE_FIELD = "val_iwae"


def metric_fields(config: VAEConfig) -> list[str]:
    return METRIC_FIELDS + ([IWAE_FIELD] if config.objective == "iwae" else [])


def validation_bound(row: dict) -> tuple[str, float]:
    """The name and value of the bound early stopping watches in a metrics row."""
    return ("IWAE", row[IWAE_FIELD]) if IWAE_FIELD in row else ("ELBO", row["val_elbo"])


@dataclass
class TrainingResult:
    history: list[dict]
    best_epoch: int
    stopped_because: str


def make_optimizer(model: torch.nn.Module, config: VAEConfig) -> torch.optim.Optimizer:
    # The fused kernel saves a quarter to a third of a small step on a CPU.
    try:
        return torch.optim.Adam(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, fused=True
        )
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)


# A training step whose largest matmul has fewer multiply-adds than this runs on one
# thread: on a busy 2-core CPU two threads made a batch-128 step of the default
# digits network 5-8x slower (threads spin at every tiny parallel region), while a
# batch-512 step of a 784-512-256 network still ran 1.75x faster on two.
ONE_THREAD_MACS = 2**26


def loop_threads(model: torch.nn.Module, batch_size: int, available: int) -> int:
    """Intra-op threads for the training loop: 1 for small steps, else ``available``."""
    largest = max((p.shape[0] * p.shape[1] for p in model.parameters() if p.dim() == 2), default=0)
    return 1 if batch_size * largest < ONE_THREAD_MACS else available


@torch.no_grad()
def mean_elbo_terms(
    model: LatentVariableModel,
    pre: Preprocessor,
    x: torch.Tensor | ChunkedRows,
    batch_size: int,
    seed: int,
    k: int | None = None,
    group: Group = SINGLE,
) -> dict[str, float]:
    """Mean ELBO, reconstruction and KL over the rows x, in nats per row of the user's data
    (chunked rows: batches within each chunk, in file order); with ``k``, IWAE_k too.

    Batch i draws from ``seed + i * SEED_STRIDE`` (:func:`seeded_draws`), whoever computes
    it, and leaves torch's global generator alone: in a torchrun job rank r computes batches
    r, r + W, ... and the sums are all-reduced, to the figures of one process. NaN weights
    give NaN figures (every rank still joins the all-reduce).
    """
    names = ["elbo", "reconstruction", "kl", *(["iwae"] if k else [])]
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
                terms = elbo(model, y)
                bound = iwae(model, y, k) if k else None
            except ValueError:  # torch.distributions rejects NaN parameters
                sums.fill_(math.nan)
                break
        jacobian = log_det * len(y)  # log p of the user's data = log p of the model's + this, per row
        values = [terms.elbo.sum() + jacobian, terms.reconstruction.sum() + jacobian, terms.kl.sum()]
        if k:
            values.append(bound.sum() + jacobian)
        sums += torch.stack(values).double()
    group.all_reduce(sums)
    return dict(zip(names, (sums / len(x)).tolist()))


def _next_rows(train_x: torch.Tensor | ChunkedRows, state: TrainingState, batch_size: int) -> torch.Tensor:
    """The raw rows of the next batch of the epoch under way."""
    if isinstance(train_x, ChunkedRows):
        return train_x.batch(state.order, state.epoch, state.position, batch_size)
    return train_x[state.order[state.position : state.position + batch_size]]


def _stop_reason(state: TrainingState, config: VAEConfig) -> str | None:
    """Why training should not start another epoch, if it should not."""
    if state.epoch > 0 and state.epoch - max(state.best_epoch, config.kl_warmup) >= config.patience:
        return "early stopping"
    if state.epoch > 0 and config.max_time is not None and state.seconds >= config.max_time:
        return "max_time"
    if state.epoch >= config.epochs:
        return "epochs"
    return None


class TrainingLoss(torch.nn.Module):
    """The loss of one step: minus the training objective summed over ``rows`` and divided by
    the global batch's size ``total`` (more than ``len(rows)`` when ``rows`` is one rank's
    block of it); with the rows' (elbo, reconstruction, kl) sums (float64).

    A module, so that DistributedDataParallel can wrap it: DDP hooks a module's forward.
    """

    def __init__(self, model: LatentVariableModel, config: VAEConfig):
        super().__init__()
        self.model, self.config = model, config

    def forward(self, rows: torch.Tensor, weight: float, total: int) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            with autocast(rows.device, self.config.precision):
                objective, terms = training_objective(self.model, rows, self.config, weight)
        except ValueError:  # torch.distributions rejects NaN parameters
            # A NaN loss on every weight: in a job, this rank still joins the gradient
            # all-reduce (so no rank hangs) and every rank then sees a NaN gradient.
            nan = torch.stack([p.sum() for p in self.parameters()]).sum() * math.nan
            return nan, torch.full((3,), math.nan, dtype=torch.float64, device=rows.device)
        sums = torch.stack([terms.elbo.sum(), terms.reconstruction.sum(), terms.kl.sum()]).detach().double()
        return -objective.float().sum() / total, sums


def _gradient_step(
    step: torch.nn.Module,
    model: LatentVariableModel,
    optimizer: torch.optim.Optimizer,
    batch: torch.Tensor,
    config: VAEConfig,
    weight: float,
    group: Group,
):
    """One Adam step on the training objective of the global ``batch`` (KL weighted by
    ``weight``), of which this rank computes its block; returns the batch's (elbo,
    reconstruction, kl) sums, or the name of what became non-finite (then the weights are
    left untouched). ``step`` is the :class:`TrainingLoss`, in a job wrapped in DDP."""
    offset, block = group.block(batch)
    share = 1.0
    if len(block) == 0:
        # Fewer rows than ranks (a short last batch): compute the whole batch, which draws
        # the same noise the other ranks draw, and count none of it.
        offset, block, share = 0, batch, 0.0
    optimizer.zero_grad(set_to_none=True)
    with block_of_global_draws(offset, len(block), len(batch)):
        loss, sums = step(block, weight, len(batch))
    if not group.active and not torch.isfinite(loss):
        return "loss"
    with group.collective():
        # DDP averages the ranks' gradients; each rank's loss is its share of the batch's sum.
        (loss * (share * group.world_size)).backward()
        # On the model's device: NCCL reduces GPU tensors only.
        reduced = group.all_reduce(share * torch.cat([sums, loss.detach().double().reshape(1)])).cpu()
    if not torch.isfinite(reduced[3]):
        return "loss"
    return _apply_gradient(model, optimizer, config) or reduced[:3]


def _apply_gradient(model: LatentVariableModel, optimizer: torch.optim.Optimizer, config: VAEConfig) -> str | None:
    """Clip and take the Adam step; the name of what became non-finite instead, if anything did."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    if not torch.isfinite(norm):
        return "gradient"
    if config.grad_clip is not None:
        torch.nn.utils.clip_grads_with_norm_(model.parameters(), config.grad_clip, norm)
    optimizer.step()
    return None


def _metrics_row(state: TrainingState, val: dict[str, float], n_train: int, log_det: float) -> dict:
    """The metrics.csv row of the epoch just finished, in nats per row of the user's data."""
    train_elbo, train_rec, train_kl = (state.sums / n_train).tolist()
    return {
        "epoch": state.epoch,
        "seconds": round(state.seconds, 3),
        "train_elbo": train_elbo + log_det,
        "train_reconstruction": train_rec + log_det,
        "train_kl": train_kl,
        "val_elbo": val["elbo"],
        "val_reconstruction": val["reconstruction"],
        "val_kl": val["kl"],
        **({IWAE_FIELD: val["iwae"]} if "iwae" in val else {}),
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
    model: LatentVariableModel,
    pre: Preprocessor,
    train_x: torch.Tensor | ChunkedRows,
    val_x: torch.Tensor | ChunkedRows,
    config: VAEConfig,
    metrics_path: Path | None = None,
    progress: bool | None = None,
    checkpoints: Checkpoints | None = None,
    group: Group = SINGLE,
) -> TrainingResult:
    """Fit ``model`` to raw rows ``train_x`` by minibatch Adam; keep the weights of the best
    validation bound (:func:`validation_bound`) and load them back at the end.

    Randomness comes from torch's global generator (draws of z) and a generator
    seeded from ``config.seed`` (batch order, dequantization); callers seed the
    former, with :func:`aevb.noise.global_seed` of ``config.seed``. ``progress=None`` shows a bar where someone can see it (:mod:`aevb.core.progress`).

    With ``checkpoints``, a checkpoint is written before the first step, after
    every epoch, every ``checkpoint_every`` seconds and on SIGINT/SIGTERM (then
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
        state = checkpoints.restore(model, optimizer, generator)
    step = group.data_parallel(TrainingLoss(model, config))
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

    metrics_file, writer = _open_metrics(metrics_path, state.history, metric_fields(config))
    threads = torch.get_num_threads()
    torch.set_num_threads(loop_threads(model, config.batch_size, threads))
    bar = tqdm(total=config.epochs, initial=state.epoch, desc="training", unit="epoch", disable=not show)
    signals = deferred_signals() if checkpoints is not None else contextlib.nullcontext(Caught())
    try:
        with signals as caught:
            if checkpoints is not None:
                save_checkpoint()  # also proves, before any work, that the run folder takes one
            while state.position > 0 or (stopped_because := _stop_reason(state, config)) is None:
                if state.position == 0:
                    count = train_x.n_chunks if isinstance(train_x, ChunkedRows) else len(train_x)
                    state.order = torch.randperm(count, generator=generator)
                    state.sums = torch.zeros(3, dtype=torch.float64)
                model.train()
                while state.position < len(train_x):
                    rows = _next_rows(train_x, state, config.batch_size)
                    batch = pre.to_model(rows, generator).to(device, dtype, non_blocking=True)
                    weight = kl_weight(config, state.epoch + 1)
                    sums = _gradient_step(step, model, optimizer, batch, config, weight, group)
                    if isinstance(sums, str):
                        diverged(sums)
                    state.sums += sums
                    state.position += len(rows)
                    state.step += 1
                    if caught.signum is not None:
                        interrupted(caught)
                    if checkpoints is not None and state.position < len(train_x) and checkpoints.due():
                        save_checkpoint()
                model.eval()
                k = config.k if config.objective == "iwae" else None
                val = mean_elbo_terms(model, pre, val_x, VALIDATION_ROWS, config.seed + 1, k, group)
                if not all(map(math.isfinite, val.values())):
                    diverged("validation " + ("IWAE" if "iwae" in val else "ELBO"))
                state.position = 0
                state.epoch += 1
                state.seconds = time.perf_counter() - started
                row = _metrics_row(state, val, len(train_x), log_det)
                _, bound = validation_bound(row)
                state.history.append(row)
                if writer is not None:
                    writer.writerow(row)
                    metrics_file.flush()
                if state.best_elbo is None or bound > state.best_elbo:
                    state.best_elbo, state.best_epoch = bound, state.epoch
                    state.best_state = copy.deepcopy(model.state_dict())
                bar.update(1)
                bar.set_postfix(val=f"{bound:.2f}", best=f"{state.best_elbo:.2f}@{state.best_epoch}")
                if checkpoints is not None:
                    save_checkpoint()
    finally:
        torch.set_num_threads(threads)
        bar.close()
        if metrics_file is not None:
            metrics_file.close()
    return finish(stopped_because)
