import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread, as the official test loop sets: results do not depend on the thread count's kernels, and
    the two pytest-xdist workers on two cores do not oversubscribe the CPU."""
    torch.set_num_threads(1)
