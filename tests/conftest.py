import os

# MKL's conditional numerical reproducibility: the same GEMM kernels on every x86-64 CPU. With one thread torch runs
# 1x1 convolutions through MKL's sgemm, which otherwise picks kernels by CPU. This path gives the golden vectors'
# values; another (an Intel Xeon's own, with AVX-512 and AMX: measured, for the official code too) moves the
# likelihoods of improbable symbols (float32 cancellation, golden README §6) by 2.4e-4 of case A's I-frame rate, beyond
# the stable case's 1e-6 bound though not the suggested tolerances (tests/test_golden_intra.py runs that path too).
# Set before MKL loads.
os.environ["MKL_CBWR"] = "COMPATIBLE"

import pytest  # noqa: E402
import torch  # noqa: E402


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
