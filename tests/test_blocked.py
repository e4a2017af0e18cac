"""The exact kernels' blocks in oneDNN's blocked layout (``hytip.blocked``, the codec's exact kernels on the CPU):
bit for bit the NCHW model's values, or the NCHW model itself."""
import golden
import numpy as np
import pytest
import torch
from test_golden_pframe import run_case

import hytip
from hytip.blocked import Blocked, _PixelShuffle, blocked_model
from hytip.checkpoint import load_checkpoint
from hytip.layers import DCB, DCB4, DCBI, ResBlk, of_cat
from hytip.model import HyTIP


@pytest.fixture(scope="module")
def models():
    model = HyTIP()
    load_checkpoint(model, golden.golden_checkpoint_path())
    return model.eval(), blocked_model(model.eval())


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def _uniform(module: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    for p in module.parameters():
        bound = 1.2 / p[0].numel() ** 0.5 if p.dim() > 1 else 0.1
        p.data.uniform_(-bound, bound)
    return module.eval()


@pytest.mark.parametrize("name", ["A", "B"])
def test_blocked_model_gives_the_nchw_models_values(models, name, threads):
    """P-frames 1..5 of a golden case, every output of the blocked copy equal to the model's own, with two threads
    (torch then runs the 1x1 convolutions through oneDNN too) and with one."""
    model, blocked = models
    for n in (2, 1):
        threads(n)
        ours, theirs = run_case(blocked, name, 5), run_case(model, name, 5)
        for key in ("bpp", "recon", "flow", "flow_hat", "mc_frame"):
            assert all(np.array_equal(a, b) for a, b in zip(ours[key], theirs[key])), f"{n} threads: {key}"
        assert all(np.array_equal(a[2], b[2]) for a, b in zip(ours["sym"], theirs["sym"]))
    wrapped = [m for m in blocked.modules() if isinstance(m, Blocked)]
    assert not any(isinstance(m, Blocked) for m in model.modules())
    # ResBlks (3x3 convolutions) run through oneDNN at any thread count; the depth-conv blocks' 1x1 ones with two
    assert any(v for m in wrapped if isinstance(m.body, ResBlk) for (_, t), v in m.verified.items() if t == 1)
    assert any(v for m in wrapped if isinstance(m.body, DCB4) for (_, t), v in m.verified.items() if t == 2)


def test_codec_exact_kernels_run_blocked_on_the_cpu():
    codec = hytip.load(golden.golden_checkpoint_path())
    exact = codec._model("exact")
    assert exact is not codec.model and any(isinstance(m, Blocked) for m in exact.modules())
    assert {id(p) for p in exact.parameters()} == {id(p) for p in codec.model.parameters()}   # shared weights
    assert not any(type(m) is torch.nn.PixelShuffle for m in exact.modules())
    assert any(type(m) is torch.nn.PixelShuffle for m in codec.model.modules())


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_pixel_shuffle_as_one_copy(layout):
    x = torch.randn(2, 64, 12, 20).contiguous(memory_format=layout)
    out = _PixelShuffle(2)(x)
    assert out.shape == (2, 16, 24, 40) and torch.equal(out, torch.nn.functional.pixel_shuffle(x, 2))


@pytest.mark.parametrize("block", [DCB4(48, 48), DCB(32, 64), DCBI(64, 96), ResBlk(48)],
                         ids=["DCB4", "DCB-adaptor", "DCBI", "ResBlk"])
def test_blocked_block_verifies_once_per_shape(block, threads):
    threads(2)
    block = _uniform(block)
    wrapped = Blocked(block)
    for shape in ((1, block_in(block), 40, 56), (1, block_in(block), 40, 56), (2, block_in(block), 24, 32)):
        x = torch.randn(shape)
        with torch.inference_mode():
            out, ref = wrapped(x), block(x)
        assert torch.equal(out, ref)
    assert wrapped.verified == {((1, block_in(block), 40, 56), 2): True, ((2, block_in(block), 24, 32), 2): True}


def block_in(block) -> int:
    return block.conv1.in_channels if isinstance(block, ResBlk) else block.block[0].conv1[0].in_channels


def test_blocked_block_keeps_the_nchw_way_where_values_differ(threads):
    """A blocked way that differs (here made to) is dropped for that shape: the block's own values every time."""
    threads(2)
    block = _uniform(DCB4(48, 48))
    wrapped = Blocked(block)
    run = wrapped._run
    wrapped._run = lambda body, xs: run(body, xs).mul_(1 + 1e-4)
    x = torch.randn(1, 48, 32, 32)
    with torch.inference_mode():
        ref = block(x)
        assert torch.equal(wrapped(x), ref) and torch.equal(wrapped(x), ref)
    assert wrapped.verified == {((1, 48, 32, 32), 2): False}


def test_blocked_block_runs_as_it_is_where_torch_would_not_use_onednn(threads):
    """One thread: torch runs 1x1 convolutions through its own GEMM, whose values the blocked way would not give; a
    depth-conv block then runs as it is, never tried; on small inputs (its own kernels too) likewise."""
    block = _uniform(DCB4(48, 48))
    wrapped = Blocked(block)
    threads(1)
    with torch.inference_mode():
        for x in (torch.randn(1, 48, 32, 32), torch.randn(1, 48, 4, 4)):
            assert torch.equal(wrapped(x), block(x))
    assert wrapped.verified == {((1, 48, 32, 32), 1): False, ((1, 48, 4, 4), 1): False}


def test_blocked_block_of_a_concatenation(threads):
    """``of_cat`` hands the block the list holding the concatenation, which the block empties (then freed)."""
    threads(2)
    block = Blocked(_uniform(DCB4(64, 64)))
    parts = [torch.randn(1, 32, 32, 32), torch.randn(1, 32, 32, 32)]
    with torch.inference_mode():
        ref = block.body(torch.cat(parts, dim=1))
        for _ in range(2):             # verification, then the blocked way
            assert torch.equal(of_cat(block, list(parts)), ref)
    assert block.verified == {((1, 64, 32, 32), 2): True}
