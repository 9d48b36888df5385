"""The training loop times its steps to pick one thread or all, pins a count on request,
and gives the caller's count back."""

from __future__ import annotations

import numpy as np
import torch

from aevb import VAE
from aevb.config import VAEConfig
from aevb.train import threads as step_threads
from aevb.train.threads import StepThreads
from aevb.vae.model import build_vae


def run_steps(chooser: StepThreads, seconds_at: dict[int, float], n: int, clock: list[float]) -> list[int]:
    """Drive ``chooser`` for n steps whose duration depends on the thread count; return the counts used."""
    used = []
    for _ in range(n):
        chooser.before_step()
        used.append(chooser.current)
        clock[0] += seconds_at[chooser.current]
        chooser.after_step()
    return used


def fake_clock(monkeypatch, load: list[float] | None = None) -> list[float]:
    """A clock the test advances, and the threads busy elsewhere it sets (``load[0]``)."""
    clock, load = [0.0], load if load is not None else [0.0]
    monkeypatch.setattr(step_threads, "busy_elsewhere", lambda: load[0])
    monkeypatch.setattr(step_threads.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(step_threads.time, "monotonic", lambda: clock[0])
    return clock


def test_the_faster_count_wins_and_a_slowdown_drops_to_one_thread(monkeypatch):
    load = [0.0]
    clock = fake_clock(monkeypatch, load)
    before = torch.get_num_threads()
    model = build_vae(VAEConfig(hidden=(256, 256), latent_dim=16), 64, "gaussian")  # 128 x 256 x 256 multiply-adds: worth timing
    try:
        chooser = StepThreads(model, 128, available=2)
        assert chooser.choices == [1, 2]
        quiet = {1: 0.005, 2: 0.004}
        used = run_steps(chooser, quiet, 200, clock)
        assert used[-1] == 2 and used[100:].count(2) == 100
        busy = {1: 0.005, 2: 0.030}  # another process took a core: two threads spin
        load[0] = 1.0
        later = run_steps(chooser, busy, 2000, clock)
        assert later[-1] == 1
        assert later.count(2) <= 10  # dropped at once, and no probing while the machine is busy
        load[0] = 0.0  # quiet again: asked again after REPROBE_SECONDS
        again = run_steps(chooser, quiet, int(step_threads.REPROBE_SECONDS / 0.004) + 100, clock)
        assert again[-1] == 2
    finally:
        torch.set_num_threads(before)


def test_a_busy_machine_is_never_probed(monkeypatch):
    clock = fake_clock(monkeypatch, [1.0])
    chooser = StepThreads(build_vae(VAEConfig(hidden=(256, 256), latent_dim=16), 64, "gaussian"), 128, available=2)
    before = torch.get_num_threads()
    try:
        assert set(run_steps(chooser, {1: 0.005, 2: 0.5}, 5000, clock)) == {1}
    finally:
        torch.set_num_threads(before)


def test_tiny_steps_and_single_cores_never_switch_and_a_pinned_count_holds(monkeypatch):
    fake_clock(monkeypatch)
    tiny = build_vae(VAEConfig(hidden=(8,), latent_dim=2), 3, "gaussian")
    assert StepThreads(tiny, 16, available=2).choices == [1]
    assert StepThreads(build_vae(VAEConfig(hidden=(256, 256), latent_dim=16), 64, "gaussian"), 128, available=1).choices == [1]
    assert StepThreads(tiny, 16, available=2, pinned=3).choices == [3]


def test_fit_restores_the_callers_thread_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        VAE(hidden=(8,), latent_dim=2, epochs=2).fit(np.random.default_rng(0).normal(size=(40, 3)), progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
