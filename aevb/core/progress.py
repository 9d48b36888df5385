"""Progress bars for long work (training, scoring, evaluation, imputation, factor
analysis), in a terminal or a notebook (tqdm.auto), silent otherwise.

A bar shows when ``show`` (:func:`showing`) is on, or, left unset, when the user can
see it: stderr is a terminal, or the code runs in a Jupyter kernel. ``aevb --quiet``
and non-interactive runs (pipes, CI logs) stay silent. Bars appear only after
``DELAY`` seconds, so quick calls print nothing, and stay on screen when done.

Work nested inside a step that already has a bar (a chunk of a file being scored,
batch by batch) advances that bar instead of opening a second one (:func:`rows`).
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from typing import Iterator

from tqdm.auto import tqdm

DELAY = 1.0  # seconds before a bar appears

_show: contextvars.ContextVar[bool | None] = contextvars.ContextVar("aevb_progress_show", default=None)
_active: contextvars.ContextVar[tqdm | None] = contextvars.ContextVar("aevb_progress_bar", default=None)


def interactive() -> bool:
    """Can someone see a bar: is stderr a terminal, or is this a Jupyter kernel?"""
    if sys.stderr is not None and hasattr(sys.stderr, "isatty") and sys.stderr.isatty():
        return True
    return "ipykernel" in sys.modules


def enabled() -> bool:
    setting = _show.get()
    return interactive() if setting is None else setting


@contextlib.contextmanager
def showing(show: bool | None) -> Iterator[None]:
    """Within this block, bars show if ``show`` (None: when :func:`interactive`)."""
    token = _show.set(show)
    try:
        yield
    finally:
        _show.reset(token)


def bar(total: int | None, desc: str, unit: str = "row", show: bool | None = None, **options) -> tqdm:
    """A bar over ``total`` units; disabled unless bars show (``show`` overrides)."""
    visible = enabled() if show is None else show
    return tqdm(total=total, desc=desc, unit=unit, disable=not visible, delay=DELAY, dynamic_ncols=True, **options)


@contextlib.contextmanager
def rows(total: int, desc: str, show: bool | None = None) -> Iterator[tqdm]:
    """The bar that ``total`` rows of work advance: the enclosing step's, if one is open,
    else a new one (``show`` as for :func:`bar`), closed at the end of the block."""
    outer = _active.get()
    if outer is not None:
        yield outer
        return
    current = bar(total, desc, show=show)
    token = _active.set(current)
    try:
        yield current
    finally:
        _active.reset(token)
        current.close()
