"""How many intra-op threads the training steps run on.

On a quiet multi-core CPU, all cores make a step of a typical small network
1.2-1.4x faster than one; when other processes share the cores, threads that
spin at every tiny parallel region made the same step 5-8x slower (a loaded
2-core run once took 24x longer). Neither fixed choice is right, so by
default the loop times the steps themselves: a few at one thread, a few at
all, keeps the faster, and asks again every ``REPROBE_SECONDS``, or at once
when its steps become ``SLOWDOWN`` times slower than they were (the load
changed).

Thread counts can change the last bits of a matmul's sum for some shapes, so
an adaptive run is not bit-for-bit repeatable on every shape; ``threads=N``
pins the count (then the same seed gives the same weights and a resumed run
matches an uninterrupted one, bit for bit).
"""

from __future__ import annotations

import statistics
import time

import torch

# Below this many multiply-adds in the step's largest matmul, one thread is always
# at least as fast (the parallel region costs more than it saves).
TINY_STEP_MACS = 2**20
# Steps timed at each count when choosing.
PROBE_STEPS = 6
# Seconds between choices.
REPROBE_SECONDS = 20.0
# Steps this much slower than when the count was chosen call for a new choice.
SLOWDOWN = 1.5


def largest_matmul(model: torch.nn.Module, batch_size: int) -> int:
    """Multiply-adds of the largest weight matrix applied to a batch."""
    largest = max((p[0].numel() * p.shape[0] for p in model.parameters() if p.dim() >= 2), default=0)
    return batch_size * largest


class StepThreads:
    """Sets torch's thread count before each training step (:meth:`before_step`) and
    learns from the step's duration (:meth:`after_step`)."""

    def __init__(self, model: torch.nn.Module, batch_size: int, available: int, pinned: int | None = None):
        if pinned is not None:
            self.choices = [pinned]
        elif available <= 1 or largest_matmul(model, batch_size) < TINY_STEP_MACS:
            self.choices = [1]
        else:
            self.choices = [1, available]
        self.current = self.choices[-1]
        self.timings: dict[int, list[float]] = {}
        self.recent: list[float] = []  # the chosen count's latest step times
        self.chosen_time = 0.0
        self.probing = len(self.choices) > 1
        self.decided_at = time.monotonic()
        self.started = 0.0

    def before_step(self) -> None:
        if self.probing:
            self.current = next((n for n in self.choices if len(self.timings.get(n, ())) < PROBE_STEPS + 1),
                                self.current)
        elif len(self.choices) > 1 and time.monotonic() - self.decided_at > REPROBE_SECONDS:
            self.probing, self.timings = True, {}
            return self.before_step()
        if torch.get_num_threads() != self.current:
            torch.set_num_threads(self.current)
        self.started = time.perf_counter()

    def after_step(self) -> None:
        if len(self.choices) == 1:
            return
        seconds = time.perf_counter() - self.started
        if not self.probing:
            self.recent = [*self.recent[1 - PROBE_STEPS :], seconds]
            if len(self.recent) == PROBE_STEPS and statistics.median(self.recent) > SLOWDOWN * self.chosen_time:
                self.decided_at = -float("inf")  # ask again at the next step
            return
        self.timings.setdefault(self.current, []).append(seconds)
        if all(len(self.timings.get(n, ())) > PROBE_STEPS for n in self.choices):
            # The first step after a switch pays for waking threads: leave it out.
            medians = {n: statistics.median(self.timings[n][1:]) for n in self.choices}
            self.current = min(self.choices, key=medians.get)
            self.chosen_time, self.recent = medians[self.current], []
            self.probing, self.decided_at = False, time.monotonic()
