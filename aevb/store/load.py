"""Read a model folder back into the estimator class its config.json names."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors

from ..data.columns import ColumnFormat
from ..errors import AevbError, first_line
from ..registry import BY_CLASS_NAME
from .persistence import CONFIG_FILE, FORMAT, FORMAT_VERSION, WEIGHTS_FILE, check_format


def load(folder: str | Path):
    """Read a model that :func:`save` wrote; any damage is an AevbError naming the file."""
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
    model_type = config.get("model_type")
    estimator_class = BY_CLASS_NAME.get(model_type) if isinstance(model_type, str) else None
    if estimator_class is None:
        raise AevbError(f"{config_path}: its field 'model_type' names an unknown model type {model_type!r}")
    try:
        state = load_tensors(weights_path.read_bytes())  # bytes: safetensors rejects non-UTF-8 paths
    except (SafetensorError, OSError, ValueError) as error:
        raise AevbError(f"cannot read the weights in {weights_path} ({error})") from None
    try:
        # through the options dataclass: checked, and in its types (hidden a tuple, not a JSON list)
        estimator = estimator_class(**estimator_class.config_class.from_dict(config["model"]).to_dict())
        pre = estimator_class.preprocessor_class.from_dict(config["preprocessor"])
        n_features = int(config["n_features"])
        image_shape = config.get("image_shape")
        if n_features != pre.n_features or (image_shape and math.prod(image_shape) != n_features):
            raise ValueError(f"n_features {n_features}, preprocessor and image_shape {image_shape} disagree")
        # Shapes first, on the meta device: a damaged config cannot make us allocate a huge model.
        with torch.device("meta"):
            expected = estimator._make_model(n_features, pre, image_shape).state_dict()
    except (KeyError, TypeError, ValueError, OverflowError, AevbError) as error:
        raise AevbError(f"{config_path} is damaged or incomplete ({type(error).__name__}: {error})") from None
    found = {name: tuple(t.shape) for name, t in state.items()}
    wanted = {name: tuple(t.shape) for name, t in expected.items()}
    if found != wanted:
        odd = sorted(set(found) ^ set(wanted)) or [n for n in wanted if found[n] != wanted[n]]
        raise AevbError(f"{weights_path} does not match {config_path}: the weights differ at {odd[0]}")
    bad = next((name for name, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all()), None)
    if bad is not None:
        raise AevbError(f"{weights_path} is damaged: the weights {bad} hold NaN or infinite values")
    estimator._build(n_features, pre, image_shape)
    try:
        estimator.model_.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise AevbError(f"{weights_path} does not match {config_path}: {first_line(error)}") from None
    estimator.model_.eval()
    if config.get("columns") is not None:  # absent from models saved before it was kept
        try:
            estimator.columns_ = ColumnFormat.from_dict(config["columns"], estimator.n_features_in_)
        except AevbError as error:
            raise AevbError(f"{config_path} is damaged: {error}") from None
    training = config.get("training") or {}
    if not isinstance(training, dict) or not (
        training.get("best_epoch") is None or type(training.get("best_epoch")) is int
    ) or not isinstance(training.get("stopped_because"), (str, type(None))):
        raise AevbError(f"{config_path} is damaged: its field 'training' is not what save() writes")
    estimator.best_epoch_ = training.get("best_epoch")
    estimator.stopped_because_ = training.get("stopped_because")
    estimator.history_ = []
    return estimator
