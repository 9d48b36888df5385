"""How many intra-op threads the training steps run on.

On a quiet multi-core CPU, all cores make a step of a typical small network
1.2-1.4x faster than one; when other processes share the cores, threads that
spin at every tiny parallel region made the same step 5-8x slower (a loaded
2-core run once took 24x longer), and even a few probing steps on all cores
cost more than they can win back. So by default:

- while no other thread wants a second core (``busy_elsewhere``), the loop times a few
  steps on one thread and a few on all, and keeps the faster;
- it asks again every ``REPROBE_SECONDS``; when steps on all cores become
  ``SLOWDOWN`` times slower than they were, it drops to one thread at once;
- on a busy machine it stays on one thread and probes nothing.

Thread counts can change the last bits of a matmul's sum for some shapes, so
an adaptive run is not bit-for-bit repeatable on every shape; ``threads=N``
pins the count (then the same seed gives the same weights and a resumed run
matches an uninterrupted one, bit for bit).
"""

from __future__ import annotations

import os
import statistics
import time
from contextlib import contextmanager

import torch

# Below this many multiply-adds in the step's largest matmul, one thread is always
# at least as fast (the parallel region costs more than it saves).
TINY_STEP_MACS = 2**20
# Steps timed at each count when choosing (the first after a switch is left out).
PROBE_STEPS = 6
# Seconds between choices.
REPROBE_SECONDS = 20.0
# Steps on all cores this much slower than when chosen: another process arrived.
SLOWDOWN = 1.5


def largest_matmul(model: torch.nn.Module, batch_size: int) -> int:
    """Multiply-adds of the largest weight matrix applied to a batch."""
    largest = max((p[0].numel() * p.shape[0] for p in model.parameters() if p.dim() >= 2), default=0)
    return batch_size * largest


def busy_elsewhere() -> float:
    """How many threads of other processes want a core now: the running count of
    /proc/loadavg less this process's running threads (torch's idle workers spin for a
    while after a parallel region, so they count as running); else the 1-minute load
    average less one (it lags by a minute and counts this process's own recent work)."""
    try:
        with open("/proc/loadavg") as handle:
            running = int(handle.read().split()[3].split("/")[0])
        return running - _own_running_threads()
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.getloadavg()[0] - 1
    except (OSError, AttributeError):  # no load figures here: assume busy, do not probe
        return float("inf")


def _own_running_threads() -> int:
    own = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat") as handle:
                own += handle.read().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            continue  # a thread that ended meanwhile
    return max(own, 1)


def cores_free(available: int) -> bool:
    """Is a core idle beside this thread?"""
    return busy_elsewhere() < available - 1


@contextmanager
def kept_threads(count: int | None = None):
    """Run the block on ``count`` intra-op threads (None: as it is); torch's count is restored after."""
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield before
    finally:
        torch.set_num_threads(before)


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
        self.current = self.choices[0]
        self.timings: dict[int, list[float]] = {}
        self.recent: list[float] = []  # the latest step times on the chosen count
        self.chosen_time = 0.0
        self.probing = False
        self.decided_at = -float("inf")  # ask at the first step
        self.started = 0.0

    def before_step(self) -> None:
        if len(self.choices) > 1 and not self.probing and time.monotonic() - self.decided_at > REPROBE_SECONDS:
            self.decided_at = time.monotonic()
            if cores_free(self.choices[-1]):
                self.probing, self.timings = True, {}
            else:
                self.current = 1
        if self.probing:
            self.current = next(n for n in self.choices if len(self.timings.get(n, ())) <= PROBE_STEPS)
        if torch.get_num_threads() != self.current:
            torch.set_num_threads(self.current)
        self.started = time.perf_counter()

    def after_step(self) -> None:
        if len(self.choices) == 1:
            return
        seconds = time.perf_counter() - self.started
        if self.probing:
            self.timings.setdefault(self.current, []).append(seconds)
            if all(len(self.timings.get(n, ())) > PROBE_STEPS for n in self.choices):
                medians = {n: statistics.median(self.timings[n][1:]) for n in self.choices}
                self.current = min(self.choices, key=medians.get)
                self.chosen_time, self.recent = medians[self.current], []
                self.probing, self.decided_at = False, time.monotonic()
        elif self.current > 1:
            self.recent = [*self.recent[1 - PROBE_STEPS :], seconds]
            if len(self.recent) == PROBE_STEPS and statistics.median(self.recent) > SLOWDOWN * self.chosen_time:
                self.current, self.decided_at = 1, time.monotonic()
