"""Turning Ctrl-C and SIGTERM into a request that the training loop answers between steps."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass

HANDLED = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Caught:
    signum: int | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


@contextmanager
def deferred_signals():
    """Within the block SIGINT and SIGTERM only set ``caught.signum``, so the current
    step can finish and a checkpoint be written; a second one interrupts at once."""
    caught = Caught()
    if threading.current_thread() is not threading.main_thread():
        yield caught  # only the main thread may install handlers
        return

    def handler(signum, frame):
        if caught.signum is not None:
            raise KeyboardInterrupt
        caught.signum = signum

    previous = {number: signal.signal(number, handler) for number in HANDLED}
    try:
        yield caught
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
