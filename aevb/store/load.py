"""Read a model folder back into the estimator class its config.json names."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors

from ..data.columns import ColumnFormat
from ..errors import AevbError, first_line
from ..registry import BY_CLASS_NAME
from .fields import DamagedField, listing, mapping, optional, parse_json, text, whole
from .persistence import CONFIG_FILE, FORMAT, FORMAT_VERSION, WEIGHTS_FILE, check_format

# An image row is (height, width) or (height, width, channels) with 1, 3 or 4 channels.
IMAGE_CHANNELS = (1, 3, 4)


def load(folder: str | Path):
    """Read a model that :func:`save` wrote; any damage is an AevbError naming the file."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not folder.is_dir():
        raise AevbError(f"no model folder at {folder}")
    if not config_path.is_file() or not weights_path.is_file():
        raise AevbError(f"{folder} is not an aevb model (it needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        config = parse_json(config_path.read_bytes())
        check_format(config, FORMAT, FORMAT_VERSION, config_path)
        check_config(config)
    except DamagedField as error:
        raise AevbError(f"{config_path} is damaged: {error}") from None
    except OSError as error:
        raise AevbError(f"cannot read {config_path}: {error.strerror or error}") from None
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
        n_features, image_shape = config["n_features"], config.get("image_shape")
        if n_features != pre.n_features:
            raise DamagedField(f"n_features {n_features} differs from the preprocessor's {pre.n_features} columns")
        if config["likelihood"] != pre.likelihood:
            raise DamagedField(f"likelihood {config['likelihood']!r} differs from the preprocessor's {pre.likelihood!r}")
        # Sizes beyond this machine's memory (1e18 layers) would take forever even to build.
        estimator._check_fits(estimator.config, n_features)
        # Shapes first, on the meta device: a damaged config cannot make us allocate a huge model.
        with torch.device("meta"):
            expected = estimator._make_model(n_features, pre, image_shape).state_dict()
    except DamagedField as error:
        raise AevbError(f"{config_path} is damaged: {error}") from None
    except (KeyError, TypeError, ValueError, OverflowError, AevbError) as error:
        raise AevbError(f"{config_path} is damaged or incomplete ({type(error).__name__}: {first_line(error)})") from None
    found = {name: tuple(t.shape) for name, t in state.items()}
    wanted = {name: tuple(t.shape) for name, t in expected.items()}
    if found != wanted:
        odd = sorted(set(found) ^ set(wanted)) or [n for n in wanted if found[n] != wanted[n]]
        raise AevbError(f"{weights_path} does not match {config_path}: the weights differ at {odd[0]}")
    bad = next((name for name, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all()), None)
    if bad is not None:
        raise AevbError(f"{weights_path} is damaged: the weights {bad} hold NaN or infinite values")
    estimator._build(n_features, pre, image_shape)
    built = estimator.model_.state_dict()
    odd = next((name for name, t in state.items() if t.dtype != built[name].dtype), None)
    if odd is not None:
        raise AevbError(f"{weights_path} is damaged: the weights {odd} hold {state[odd].dtype}, not {built[odd].dtype}")
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
    estimator.best_epoch_ = training.get("best_epoch")
    estimator.stopped_because_ = training.get("stopped_because")
    estimator.history_ = []
    return estimator


def check_config(config: dict) -> None:
    """Raise DamagedField naming the first top-level field of a model's config.json that
    :func:`aevb.store.persistence.save` cannot have written (the options and the
    preprocessor are checked by their own ``from_dict``)."""
    text(config.get("aevb_version"), "aevb_version")
    text(config.get("model_type"), "model_type")
    mapping(config.get("model"), "model")
    text(config.get("likelihood"), "likelihood")
    mapping(config.get("preprocessor"), "preprocessor")
    n_features = whole(config.get("n_features"), "n_features", 1)
    shape = config.get("image_shape")
    if shape is not None:
        if len(listing(shape, "image_shape")) not in (2, 3):
            raise DamagedField(f"image_shape {shape} is not (height, width) or (height, width, channels)")
        for axis, side in enumerate(shape):
            whole(side, f"image_shape[{axis}]", 1, n_features)
        if len(shape) == 3 and shape[2] not in IMAGE_CHANNELS:
            raise DamagedField(f"image_shape {shape} has {shape[2]} channels, not 1, 3 or 4")
        if shape[0] * shape[1] * (shape[2] if len(shape) == 3 else 1) != n_features:
            raise DamagedField(f"image_shape {shape} does not hold n_features {n_features} values")
    training = config.get("training")
    if training is not None:
        mapping(training, "training")
        optional(whole, training.get("best_epoch"), "training.best_epoch")
        optional(whole, training.get("epochs_run"), "training.epochs_run")
        optional(text, training.get("stopped_because"), "training.stopped_because")
