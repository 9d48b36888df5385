"""Every collective of a data-parallel step goes through Group.collective: a peer that
dies during DDP's forward (its buffer broadcast) is the one-line RankFailed, not a
gloo traceback. Run in one process: a gloo group of one, a Group that says two, and a
broadcast made to fail as a dead peer's does."""

import socket

import pytest
import torch
import torch.distributed as dist

from aevb.scale.distributed import Group, RankFailed


class WithBuffer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(2))
        self.register_buffer("loc", torch.zeros(2))

    def forward(self, x):
        return (x * self.weight + self.loc).sum()


@pytest.fixture
def gloo_of_one():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_a_peer_lost_in_the_forward_buffer_broadcast_is_rank_failed(gloo_of_one, monkeypatch):
    step = Group(rank=0, world_size=2).data_parallel(WithBuffer())
    assert step(torch.ones(2)).item() == 2.0  # a working forward, buffers broadcast

    def dead_peer(*args, **kwargs):
        raise dist.DistBackendError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:1234")

    monkeypatch.setattr(dist, "_broadcast_coalesced", dead_peer)
    with pytest.raises(RankFailed, match=r"^rank 0 of 2 lost contact .*Connection closed by peer"):
        step(torch.ones(2))
