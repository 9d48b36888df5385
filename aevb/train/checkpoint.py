"""Checkpoints: everything the training loop needs to continue exactly where it stopped.

One file, ``checkpoint.safetensors`` in the run folder, replaced atomically:
the tensors (current and best weights, Adam's moments, the random generators'
states, the epoch's row order) are safetensors entries and the rest is JSON in
the file's metadata, so nothing is ever unpickled. A resumed run draws the
same numbers in the same order as an uninterrupted one and ends with the same
weights, bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from ..config import TrainingConfig
from ..data.chunks import CHUNK_ROWS
from ..errors import AevbError, first_line
from ..store.atomic import remove_stale_temporaries, replace_atomically
from ..store.fields import DamagedField, parse_json, text
from ..store.persistence import CONFIG_FILE, WEIGHTS_FILE, check_format
from ..store.run_folder import check_regular_files
from ..version import __version__
from .checkpoint_fields import RunLayout, check_checkpoint

CHECKPOINT_FILE = "checkpoint.safetensors"
FORMAT = "aevb-checkpoint"
# 2: the best validation bound is "best_bound" (it was "best_elbo" in 1, whatever the bound was).
FORMAT_VERSION = 2


@dataclass
class TrainingState:
    """Where the loop stands. ``position`` rows of epoch ``epoch + 1`` have been
    stepped on, in the order ``order`` (of rows; of chunks when training reads
    chunks, where ``position`` then names a chunk and an offset in it); ``sums``
    are that epoch's running totals of the family's metrics (``Family.metric_names``)."""

    best_state: dict[str, torch.Tensor]
    epoch: int = 0
    position: int = 0
    step: int = 0
    seconds: float = 0.0
    order: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    sums: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.float64))
    best_bound: float | None = None  # the best validation bound, the one the family names
    best_epoch: int = 0
    history: list[dict] = field(default_factory=list)


# What aevb writes into a run folder: each must be absent or a regular file, never a link.
RUN_FILES = (CONFIG_FILE, WEIGHTS_FILE, CHECKPOINT_FILE, "metrics.csv", ".aevb-write-check")


def prepare_folder(folder: Path) -> None:
    """Create the run folder and prove it takes a file, so that a folder that cannot
    be written fails now rather than after training; refuse one where a file aevb
    writes is a link or not a file."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        check_regular_files(folder, RUN_FILES)
        probe = folder / ".aevb-write-check"
        probe.write_bytes(b"\0" * 4096)
        probe.unlink()
    except OSError as error:
        raise AevbError(f"cannot write into the run folder {folder}: {error.strerror or error}") from None


def fingerprint(values: np.ndarray) -> str:
    """A digest of the training rows, so that a run is resumed only on the same data."""
    digest = hashlib.sha256(str(values.shape).encode())
    for start in range(0, len(values), CHUNK_ROWS):  # the digest of all the bytes, without a copy of them all
        digest.update(np.ascontiguousarray(values[start : start + CHUNK_ROWS], dtype=np.float64).tobytes())
    return digest.hexdigest()


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Adam's per-parameter state as named tensors plus JSON for any plain values."""
    tensors, plain = {}, {}
    for index, entries in optimizer.state_dict()["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{key}"] = value
            else:
                plain.setdefault(str(index), {})[key] = value
    return tensors, plain


def _unflatten_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, plain: dict) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        index, key = name.split("/", 1)
        state.setdefault(int(index), {})[key] = value
    for index, entries in plain.items():
        state.setdefault(int(index), {}).update(entries)
    # The hyperparameters come from the (possibly changed) config, not the file.
    groups = optimizer.state_dict()["param_groups"]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


class Checkpoints:
    """Writes and reads the checkpoint of one run folder for one configuration and dataset."""

    def __init__(
        self, folder: str | Path, config: TrainingConfig, data_fingerprint: str, resume: bool = False, writer: bool = True
    ):
        """With ``resume``, read the checkpoint now and check that it belongs to this
        configuration and data, so that any mismatch shows before training. Only a
        ``writer`` (rank 0 of a torchrun job) prepares the folder and saves."""
        folder = Path(folder)
        self.path = folder / CHECKPOINT_FILE
        self.config = config
        self.fingerprint = data_fingerprint
        self.resumed = read(folder) if resume else None
        if self.resumed is not None:
            check_resumable(self.resumed[0]["config"], config, self.path)
            if self.resumed[0].get("data_fingerprint") != data_fingerprint:
                raise AevbError(
                    f"the data differs from the data the run in {folder} was trained on; "
                    "resume with the same data, or start a new run"
                )
        if writer:
            prepare_folder(folder)
            remove_stale_temporaries(self.path)
        self.last_saved = time.monotonic()

    def due(self) -> bool:
        """Has ``checkpoint_every`` passed since the last save?"""
        return time.monotonic() - self.last_saved >= self.config.checkpoint_every

    def save(
        self,
        state: TrainingState,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
    ) -> None:
        optimizer_tensors, optimizer_plain = _flatten_optimizer(optimizer)
        tensors = {
            **{f"model/{name}": t for name, t in model.state_dict().items()},
            **{f"best/{name}": t for name, t in state.best_state.items()},
            **optimizer_tensors,
            "rng/torch": torch.get_rng_state(),
            "rng/batches": generator.get_state(),
            "order": state.order,
            "sums": state.sums,
        }
        tensors = {name: t.detach().cpu().contiguous().clone() for name, t in tensors.items()}
        progress = {
            name: getattr(state, name)
            for name in ("epoch", "position", "step", "seconds", "best_bound", "best_epoch", "history")
        }
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "aevb_version": __version__,
            "config": self.config.to_dict(),
            "data_fingerprint": self.fingerprint,
            "progress": progress,
            "optimizer": optimizer_plain,
        }
        try:
            blob = save_tensors(tensors, metadata={"aevb": json.dumps(meta)})
            replace_atomically(self.path, lambda p: Path(p).write_bytes(blob))
        except OSError as error:
            raise AevbError(f"cannot write the checkpoint {self.path}: {error.strerror or error}") from None
        self.last_saved = time.monotonic()

    def restore(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator, layout: RunLayout
    ) -> TrainingState:
        """Load the checkpoint read at construction into the model, optimizer and
        generators, once every field has been checked against them and the run's
        ``layout``; return the loop's state."""
        meta, tensors = self.resumed
        try:
            check_checkpoint(meta, tensors, model, optimizer, generator, layout)
        except DamagedField as error:
            raise AevbError(f"the checkpoint {self.path} is damaged: {error}") from None
        part = lambda prefix: {n[len(prefix):]: t for n, t in tensors.items() if n.startswith(prefix)}  # noqa: E731
        try:
            _unflatten_optimizer(optimizer, part("optimizer/"), meta["optimizer"])
            torch.set_rng_state(tensors["rng/torch"])
            generator.set_state(tensors["rng/batches"])
            progress = meta["progress"]
            state = TrainingState(
                best_state=part("best/"),
                order=tensors["order"],
                sums=tensors["sums"],
                **progress,
            )
            model.load_state_dict(state.best_state, strict=True)  # checks the best weights fit too
            model.load_state_dict(part("model/"), strict=True)
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise AevbError(f"the checkpoint {self.path} is damaged or incomplete ({first_line(error)})") from None
        return state


def read(folder: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The metadata and tensors of the checkpoint in run folder ``folder``."""
    path = Path(folder) / CHECKPOINT_FILE
    if not path.is_file():
        raise AevbError(f"no checkpoint to resume in {folder} (no {CHECKPOINT_FILE}); start the run without --resume")
    try:
        # Bytes, not a path: safetensors cannot open paths that are not valid UTF-8.
        blob = path.read_bytes()
        tensors = load_tensors(blob)
        header = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])
        metadata = (header.get("__metadata__") or {}).get("aevb", "null")
    except (SafetensorError, OSError, ValueError, UnicodeDecodeError, AttributeError) as error:
        raise AevbError(f"cannot read the checkpoint {path} ({first_line(error)})") from None
    try:
        meta = parse_json(text(metadata, "its metadata"))
        check_format(_migrated(meta), FORMAT, FORMAT_VERSION, path)
        if not isinstance(meta.get("config"), dict):
            raise DamagedField("it holds no configuration")
        text(meta.get("data_fingerprint"), "data_fingerprint")
    except DamagedField as error:
        raise AevbError(f"the checkpoint {path} is damaged: {error}") from None
    return meta, tensors


def _migrated(meta):
    """The metadata of an older checkpoint format in today's (in place); others unchanged."""
    if isinstance(meta, dict) and meta.get("format") == FORMAT and meta.get("format_version") == 1:
        progress = meta.get("progress")
        if isinstance(progress, dict) and "best_elbo" in progress:
            progress["best_bound"] = progress.pop("best_elbo")
        meta["format_version"] = 2
    return meta


def unfinished_run(folder: str | Path) -> bool:
    """Does ``folder`` hold the checkpoint of a run that did not finish: no model saved
    beside it, a model saved on an interrupt, or a checkpoint newer than the model
    (a run killed after an earlier one had finished)?"""
    folder = Path(folder)
    path, model, config = folder / CHECKPOINT_FILE, folder / WEIGHTS_FILE, folder / CONFIG_FILE
    if not path.is_file():
        return False
    if not config.is_file():
        return True  # no model saved beside it (a FIFO there would block the read forever)
    try:
        stopped = parse_json(config.read_bytes()).get("training", {}).get("stopped_because")
        return stopped == "interrupted" or path.stat().st_mtime > model.stat().st_mtime
    except (OSError, ValueError, AttributeError):  # DamagedField is a ValueError
        return True


def saved_config(folder: str | Path) -> dict:
    """The options of the run whose checkpoint is in ``folder``."""
    return read(folder)[0]["config"]


def check_resumable(saved: dict, config: TrainingConfig, path: Path) -> None:
    """Raise unless ``config`` differs from the saved options only in those declared to
    change on resume (:meth:`aevb.config.Options.may_change_on_resume`)."""
    try:
        saved_config_ = type(config).from_dict(saved).to_dict()
    except (TypeError, AevbError) as error:
        raise AevbError(f"the checkpoint {path} holds an unusable configuration ({error})") from None
    wanted, may_change = config.to_dict(), type(config).may_change_on_resume()
    for name, value in saved_config_.items():
        if name not in may_change and wanted[name] != value:
            option = "--" + name.replace("_", "-")
            raise AevbError(
                f"{option} is {wanted[name]!r} but the run in {path.parent} used {value!r}; "
                f"only {', '.join(may_change)} may change on resume"
            )
