"""Saving and loading fitted models: a folder with config.json and model.safetensors.

Nothing is ever unpickled: the weights are plain tensors in safetensors and
everything else is JSON, so loading a stranger's model runs none of their code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from .atomic import replace_atomically
from .errors import AevbError
from .version import __version__

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
        "n_features": estimator.n_features_in_,
        "image_shape": list(estimator.image_shape_) if estimator.image_shape_ else None,
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


def load(folder: str | Path):
    """Read a model that :func:`save` wrote; any damage is an AevbError naming the file."""
    from .registry import BY_CLASS_NAME

    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not folder.is_dir():
        raise AevbError(f"no model folder at {folder}")
    if not config_path.is_file() or not weights_path.is_file():
        raise AevbError(f"{folder} is not an aevb model (it needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AevbError(f"{config_path} is not valid JSON ({error})") from None
    check_format(config, FORMAT, FORMAT_VERSION, config_path)
    estimator_class = BY_CLASS_NAME.get(config.get("model_type"))
    if estimator_class is None:
        raise AevbError(f"{config_path} names an unknown model type {config.get('model_type')!r}")
    try:
        state = load_tensors(weights_path.read_bytes())  # bytes: safetensors rejects non-UTF-8 paths
    except (SafetensorError, OSError, ValueError) as error:
        raise AevbError(f"cannot read the weights in {weights_path} ({error})") from None
    try:
        estimator = estimator_class(**config["model"])
        pre = estimator_class.preprocessor_class.from_dict(config["preprocessor"])
        n_features = int(config["n_features"])
        image_shape = config.get("image_shape")
        if n_features != pre.n_features or (image_shape and math.prod(image_shape) != n_features):
            raise ValueError(f"n_features {n_features}, preprocessor and image_shape {image_shape} disagree")
        # Shapes first, on the meta device: a damaged config cannot make us allocate a huge model.
        with torch.device("meta"):
            expected = estimator._make_model(n_features, pre).state_dict()
    except (KeyError, TypeError, ValueError, OverflowError, AevbError) as error:
        raise AevbError(f"{config_path} is damaged or incomplete ({type(error).__name__}: {error})") from None
    found = {name: tuple(t.shape) for name, t in state.items()}
    wanted = {name: tuple(t.shape) for name, t in expected.items()}
    if found != wanted:
        odd = sorted(set(found) ^ set(wanted)) or [n for n in wanted if found[n] != wanted[n]]
        raise AevbError(f"{weights_path} does not match {config_path}: the weights differ at {odd[0]}")
    estimator._build(n_features, pre, image_shape)
    try:
        estimator.model_.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise AevbError(f"{weights_path} does not match {config_path}: {first}") from None
    estimator.model_.eval()
    training = config.get("training") or {}
    estimator.best_epoch_ = training.get("best_epoch")
    estimator.stopped_because_ = training.get("stopped_because")
    estimator.history_ = []
    return estimator
