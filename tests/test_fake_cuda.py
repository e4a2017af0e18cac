"""Every CUDA code path of the sweep, executed on this CPU-only machine on fake CUDA tensors (tests/fake_cuda.py:
torch._subclasses.fake_tensor.FakeTensorMode): model load and move, I- and P-frames with estimated rates under every
kernel set, batched rate points, a sweep job on "cuda:N" with its synchronised timing, one worker lane per GPU, and
the host points, each replaced and none other needed. The golden checkpoint is test data, not HyTIP's weights."""
from unittest import mock

import pytest
import torch

import golden
import hytip
from anchor_helpers import tiny_clip
from bench.codecs import hytip_codec
from bench.codecs.base import RatePoint, SourceSpec
from bench.codecs.hytip_codec import HytipCodec
from bench.data.colour import ColourSpec
from bench.sweep.runner import MODEL_LANE, lanes
from fake_cuda import GeneratorOnAnotherDevice, fake_cuda, host_stand_ins
from hytip.codec import KERNELS
from torch._subclasses.fake_tensor import DataDependentOutputException, FakeTensor, FakeTensorDeviceMismatchError

CODEC_POINTS = {"hytip.codec": {"_check_values": lambda where, x: None, "_bits": lambda likelihood: 0.0,
                                "_check_finite": lambda where, recon, bits: None}}
SWEEP_POINTS = {**CODEC_POINTS, "bench.codecs.hytip_codec": {
    "frame_metrics": lambda recon, *args: {"psnr_rgb": 0.0, "msssim_rgb": 0.0, "psnr_y": 0.0, "psnr_u": 0.0,
                                           "psnr_v": 0.0, "psnr_yuv": 0.0},
    "_yuv_planes": lambda recon, spec, source: None, "recon_sha256": lambda recon: ""}}


@pytest.fixture(autouse=True)
def _process_settings():
    """hytip.load on CUDA sets deterministic algorithms (process-wide); put every setting back."""
    saved = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    hytip_codec._loaded.cache_clear()
    yield
    hytip_codec._loaded.cache_clear()
    torch.use_deterministic_algorithms(saved[0])
    torch.set_num_threads(saved[1])


def frames(n=4):
    generator = torch.Generator().manual_seed(0)
    return [torch.rand(3, 64, 96, generator=generator) for _ in range(n)]


@pytest.mark.parametrize("kernels", KERNELS)
def test_load_move_and_code_i_and_p_frames_one_point_and_a_batch(kernels):
    with fake_cuda(), host_stand_ins(CODEC_POINTS):
        codec = hytip.load(golden.golden_checkpoint_path(), device="cuda")
        assert all(isinstance(p, FakeTensor) and p.device.type == "cuda" for p in codec.model.parameters())
        # Three frames: the I-frame, the first P-frame (no prediction) and one predicted from the temporal state;
        # the batch, which shares every kernel with them, on the exact kernels only (fake tensors cost seconds a frame).
        single = list(codec.estimate(frames(3), qp=30, i_quality=30, kernels=kernels))
        batch = (list(codec.estimate_points(frames(2), [(5, 9), (60, 40)], kernels=kernels))
                 if kernels == "exact" else [])
    assert [r.type for r in single] == ["I", "P", "P"] and [len(b) for b in batch] == ([2] * 2 if batch else [])
    for result in single + [r for b in batch for r in b]:
        assert result.recon.device.type == "cuda" and tuple(result.recon.shape) == (3, 64, 96)


def test_every_host_point_is_needed_and_no_other():
    """With all stand-ins the path runs through (the test above); without one, it stops at that point, asking for a
    value: the list is exactly the places that need one."""
    points = CODEC_POINTS["hytip.codec"]
    for missing in points:
        others = [mock.patch.object(hytip.codec, name, f) for name, f in points.items() if name != missing]
        for patch in others:
            patch.start()
        try:
            with fake_cuda(), pytest.raises(DataDependentOutputException) as caught:
                codec = hytip.load(golden.golden_checkpoint_path(), device="cuda")
                list(codec.estimate(frames(2), qp=30, i_quality=30))
        finally:
            for patch in reversed(others):
                patch.stop()
        assert any(entry.name == missing for entry in caught.traceback), missing


def test_a_sweep_job_on_the_second_gpu_times_with_synchronisation(tmp_path):
    clip = tiny_clip(tmp_path / "clip.yuv", frames=3)
    source = SourceSpec("Tiny", "clip", str(clip), 128, 64, "yuv420p", 25.0, 8, False, 3, 3, ())
    codec = HytipCodec(str(golden.golden_checkpoint_path()), model="golden")
    folders = {k: str(tmp_path / k) for k in ("work", "logs", "bitstreams")}
    with fake_cuda(device_count=2) as runtime, host_stand_ins(SWEEP_POINTS):
        (result,) = codec.code_points(source, [RatePoint(30, 30)], ColourSpec.for_protocol("BT601"),
                                      rate_mode="estimated", folders=folders, device="cuda:1")
    assert result["per_frame"]["type"] == ["I", "P", "P"] and result["peak_memory"] == "CUDA max_memory_allocated"
    # Synchronised before the first frame and twice per frame (its end; the next one's start, after the bookkeeping):
    # frame times are device times, on the job's own GPU.
    assert runtime.synchronized == ["cuda:1"] * 7 and runtime.peak_resets == ["cuda:1"]


def test_one_model_lane_per_gpu_each_spawned_with_the_gpu_batch():
    with fake_cuda(device_count=2):
        model = [lane for lane in lanes("auto") if lane.kind == MODEL_LANE]
    assert [(lane.device, lane.workers, lane.batch) for lane in model] == [("cuda:0", 1, 4), ("cuda:1", 1, 4)]
    assert all(lane.start_method == "spawn" for lane in model)   # CUDA cannot be forked


@pytest.mark.parametrize("bug, error", [
    (lambda x: x + torch.zeros(x.shape), FakeTensorDeviceMismatchError),              # a device-less torch.zeros
    (lambda x: x.cpu().numpy(), RuntimeError),                                          # .numpy() of a device tensor
    (lambda x: x * torch.rand(x.shape, device=x.device, generator=torch.Generator()),  # a CPU generator
     GeneratorOnAnotherDevice),
])
def test_the_bugs_a_first_gpu_run_would_hit_fail_here(bug, error, monkeypatch):
    """The kind of bug named in the issue, planted in the P-frame path of a scratch model: the run fails with it."""
    from hytip import model as model_module
    forward = model_module.HyTIP.forward_pframe

    def planted(self, ref, x, *args, **kwargs):
        bug(x)
        return forward(self, ref, x, *args, **kwargs)
    monkeypatch.setattr(model_module.HyTIP, "forward_pframe", planted)
    with fake_cuda(), host_stand_ins(CODEC_POINTS), pytest.raises(error):
        codec = hytip.load(golden.golden_checkpoint_path(), device="cuda")
        list(codec.estimate(frames(2), qp=30, i_quality=30))
