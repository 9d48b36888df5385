import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seed, so its random draws, and any
    statistical tolerance stated in it, are the same on every run."""
    torch.manual_seed(0)
    yield


# The suite's networks are tiny: one thread is faster than two, and far faster than
# two threads contending for a shared 2-core machine.
torch.set_num_threads(1)
