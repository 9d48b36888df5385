"""Saving and loading fitted models: a folder with config.json and model.safetensors.

Nothing is ever unpickled: the weights are plain tensors in safetensors and
everything else is JSON, so loading a stranger's model runs none of their code.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save as save_tensors

from ..errors import AevbError
from ..version import __version__
from .atomic import replace_atomically

FORMAT = "aevb-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def save(estimator, folder: str | Path) -> Path:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise AevbError(f"cannot create the model folder {folder}: {error.strerror}") from None
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "aevb_version": __version__,
        "model_type": type(estimator).__name__,
        "model": estimator.config.to_dict(),
        "likelihood": estimator.preprocessor_.likelihood,
        "preprocessor": estimator.preprocessor_.to_dict(),
        "n_features": estimator.preprocessor_.n_features,
        "image_shape": list(estimator.image_shape_) if estimator.image_shape_ else None,
        "columns": estimator.columns_.to_dict() if getattr(estimator, "columns_", None) else None,
        "training": {
            "best_epoch": getattr(estimator, "best_epoch_", None),
            "epochs_run": len(getattr(estimator, "history_", [])),
            "stopped_because": getattr(estimator, "stopped_because_", None),
        },
    }
    state = {name: t.detach().contiguous() for name, t in estimator.model_.state_dict().items()}
    try:
        blob = save_tensors(state)
        replace_atomically(folder / WEIGHTS_FILE, lambda p: Path(p).write_bytes(blob))
        replace_atomically(
            folder / CONFIG_FILE, lambda p: Path(p).write_text(json.dumps(config, indent=2) + "\n")
        )
    except OSError as error:
        raise AevbError(f"cannot write the model into {folder}: {error.strerror or error}") from None
    return folder


def check_format(header, name: str, version: int, path: Path) -> None:
    """Raise unless ``header`` (parsed JSON) says it is format ``name`` of ``version``."""
    if not isinstance(header, dict) or header.get("format") != name:
        raise AevbError(f"{path} is not an {name} file")
    if header.get("format_version") != version:
        raise AevbError(
            f"{path} was written in {name} format {header.get('format_version')!r} "
            f"(aevb {header.get('aevb_version')}); this aevb {__version__} reads format {version}"
        )
