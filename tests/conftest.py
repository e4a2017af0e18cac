import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread: the setting the golden vectors were made with (the official test loop's), and no
    oversubscription when two pytest-xdist workers share the two cores."""
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def official_settings():
    """The rest of the official harness's test settings: deterministic algorithms (restored after)."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(deterministic)
