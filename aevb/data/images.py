"""Writing rows that are flattened images as one PNG grid."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import AevbError

MIN_TILE_PIXELS = 64  # small images (8x8 digits) are enlarged so a grid is readable


def save_grid(rows: np.ndarray, image_shape: tuple[int, ...], path: str | Path, value_range: tuple[float, float]) -> None:
    """Tile rows (n, prod(image_shape)) as images into a near-square grid PNG at ``path``
    (a file name or a binary file object).

    Values are mapped linearly from ``value_range`` to 0..255.
    """
    low, high = value_range
    images = (np.clip((rows - low) / max(high - low, 1e-12), 0, 1) * 255).round().astype(np.uint8)
    images = images.reshape(len(rows), *image_shape)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    height, width = images.shape[1:3]
    zoom = max(1, math.ceil(MIN_TILE_PIXELS / max(height, width)))
    columns = math.ceil(math.sqrt(len(images)))
    grid_rows = math.ceil(len(images) / columns)
    pad = 2
    canvas_shape = (grid_rows * (height * zoom + pad) + pad, columns * (width * zoom + pad) + pad, *images.shape[3:])
    canvas = np.full(canvas_shape, 255, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        tile = image.repeat(zoom, axis=0).repeat(zoom, axis=1)
        top, left = pad + r * (height * zoom + pad), pad + c * (width * zoom + pad)
        canvas[top : top + height * zoom, left : left + width * zoom] = tile
    try:
        Image.fromarray(canvas).save(path, format="PNG")
    except (OSError, ValueError) as error:
        raise AevbError(f"cannot write the image grid {path}: {error}") from None
