"""A warning before work that would run for hours: time a small part of it, extrapolate.

``aevb fit --flow-layers 1000000``, ``score --k 10000000`` or ``impute --multiple 100000``
are valid requests that would run for days. Before starting, the caller times a
scaled-down piece of the same work (one training step of a model with fewer layers,
a few rows with fewer draws) and scales the time up by how much larger the request is:

    estimate = seconds of the piece x (work requested / work of the piece).

Costs grow about linearly in rows, draws, layers and components, so the estimate is
within a small factor of the truth, enough to say "about 3 days". When it passes
``LONG_SECONDS`` the user gets one warning line naming the option to lower; the
progress bar then shows how it goes.
"""

from __future__ import annotations

import time
import warnings
from typing import Callable

from ..errors import AevbWarning

LONG_SECONDS = 3600.0
# Read through the module (forecast.clock()), so tests can stand in a clock of their own.
clock = time.perf_counter


def timed(work: Callable[[], object], repeat: int = 2) -> float:
    """Seconds that ``work()`` takes: the least of ``repeat`` runs (the first pays for warming up)."""
    times = []
    for _ in range(repeat):
        start = clock()
        work()
        times.append(clock() - start)
    return min(times)


def duration(seconds: float) -> str:
    """``seconds`` in the unit a person reads best: 40 seconds, 12 minutes, 3.2 hours, 5.1 days."""
    for unit, size in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0), ("seconds", 1.0)):
        if seconds >= 2 * size or unit == "seconds":
            value = seconds / size
            return f"{value:.3g} {unit}" if value < 100 else f"{value:,.0f} {unit}"


def warn_if_long(seconds: float, what: str, basis: str, hint: str) -> None:
    """One warning when ``what`` is estimated to take more than ``LONG_SECONDS``: ``basis`` says
    what the estimate rests on, ``hint`` what to lower."""
    if seconds > LONG_SECONDS:
        warnings.warn(AevbWarning(f"{what} will take about {duration(seconds)} ({basis}); {hint}"), stacklevel=2)
