"""Reading back a file aevb wrote: JSON that cannot exhaust the parser, and checks of its fields.

A damaged or hostile config.json or checkpoint may hold anything where aevb wrote a
number: a string, a list, NaN, an integer of 5,000 digits, a list nested 100,000
levels deep. Python's ``json`` recurses once per level (RecursionError) and refuses
integers past 4,300 digits (ValueError); and a field of the wrong type or range fails
much later, in deep code, as a traceback or as silent garbage. So each reader checks
every field where it reads it, with these helpers, each of which raises
:class:`DamagedField` naming the field; the reader turns that into one AevbError line
naming the file ("the checkpoint R/checkpoint.safetensors is damaged: position -3 is
outside 0..1800").
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import torch

# Deeper than anything aevb writes (a table's column categories sit 4 levels down).
MAX_DEPTH = 32
# More digits than any integer aevb writes (64-bit seeds and offsets have at most 20).
MAX_DIGITS = 400
INT64_MAX = 2**63 - 1
# A JSON string, escapes included; removed before brackets are counted.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


class DamagedField(ValueError):
    """A field read back from a file is not what aevb writes there; the message names the field
    and the reader names the file."""


def _shown(value) -> str:
    """A value as a message quotes it: short, on one line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def nesting_depth(data: bytes) -> int:
    """How deeply the JSON document ``data`` nests arrays and objects (brackets inside
    strings do not count)."""
    skeleton = np.frombuffer(_STRING.sub(b"", data), dtype=np.uint8)
    steps = np.isin(skeleton, (ord("["), ord("{"))).astype(np.int64) - np.isin(skeleton, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))


def parse_json(data: str | bytes):
    """The JSON document ``data``; DamagedField if it is not JSON, nests deeper than
    MAX_DEPTH or holds an integer longer than MAX_DIGITS."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    depth = nesting_depth(raw)
    if depth > MAX_DEPTH:
        raise DamagedField(f"it nests {depth} levels deep (aevb writes at most {MAX_DEPTH})")

    def whole_number(text: str) -> int:
        digits = len(text.lstrip("-"))
        if digits > MAX_DIGITS:
            raise DamagedField(f"it holds an integer of {digits} digits (aevb writes at most {MAX_DIGITS})")
        return int(text)

    try:
        return json.loads(data, parse_int=whole_number)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DamagedField(f"it is not valid JSON ({error})") from None


def mapping(value, name: str) -> dict:
    """``value`` if it is a JSON object with string keys."""
    if not isinstance(value, dict):
        raise DamagedField(f"{name} is {_shown(value)}, not an object of named fields")
    return value


def listing(value, name: str, length: int | None = None) -> list:
    """``value`` if it is a JSON list (of ``length`` items when given)."""
    if not isinstance(value, list):
        raise DamagedField(f"{name} is {_shown(value)}, not a list")
    if length is not None and len(value) != length:
        raise DamagedField(f"{name} has {len(value)} entries, not {length}")
    return value


def text(value, name: str, choices=None) -> str:
    """``value`` if it is a string (one of ``choices`` when given)."""
    if not isinstance(value, str):
        raise DamagedField(f"{name} is {_shown(value)}, not text")
    if choices is not None and value not in choices:
        raise DamagedField(f"{name} is {_shown(value)}, not one of {', '.join(map(str, choices))}")
    return value


def whole(value, name: str, low: int = 0, high: int = INT64_MAX) -> int:
    """``value`` if it is an integer (not a bool) in ``low..high``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise DamagedField(f"{name} is {_shown(value)}, not a whole number")
    if not low <= value <= high:
        raise DamagedField(f"{name} {value if len(str(value)) < 30 else _shown(value)} is outside {low}..{high}")
    return value


def number(value, name: str, low: float = -math.inf, high: float = math.inf, above: float | None = None) -> float:
    """``value`` as a float if it is a finite real number (not a bool) in [``low``, ``high``]
    and, when ``above`` is given, greater than it."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise DamagedField(f"{name} is {_shown(value)}, not a number")
    try:
        value = float(value)
    except OverflowError:
        raise DamagedField(f"{name} is an integer too large for a number") from None
    if not math.isfinite(value):
        raise DamagedField(f"{name} is {value}, not a finite number")
    if not low <= value <= high or (above is not None and value <= above):
        bounds = f"({above:g}, {high:g}]" if above is not None else f"[{low:g}, {high:g}]"
        raise DamagedField(f"{name} {value:g} is outside {bounds}")
    return value


def optional(check, value, name: str, *args, **kwargs):
    """None, or ``check(value, name, ...)``."""
    return None if value is None else check(value, name, *args, **kwargs)


def tensor(value, name: str, shape: tuple[int, ...] | None = None, dtype: torch.dtype | None = None,
           finite: bool = True) -> torch.Tensor:
    """``value`` if it is a tensor of ``shape`` and ``dtype`` (when given) whose floating-point
    entries are all finite (when ``finite``)."""
    if not isinstance(value, torch.Tensor):
        raise DamagedField(f"the tensor {name} is missing")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise DamagedField(f"the tensor {name} has shape {tuple(value.shape)}, not {tuple(shape)}")
    if dtype is not None and value.dtype != dtype:
        raise DamagedField(f"the tensor {name} holds {value.dtype}, not {dtype}")
    if finite and value.is_floating_point() and not torch.isfinite(value).all():
        raise DamagedField(f"the tensor {name} holds NaN or infinite values")
    return value
