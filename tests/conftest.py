import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seed, so its random draws, and any
    statistical tolerance stated in it, are the same on every run."""
    torch.manual_seed(0)
    yield
