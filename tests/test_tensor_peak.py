"""The tensor-peak benchmark's tracker (bench.benchmarks.tensor_peak): byte counts of known allocations, and per-frame
peaks of an estimate on the golden checkpoint that hold the tensors they list."""
import golden
import torch

import hytip
from bench.benchmarks.tensor_peak import LiveTensors, frame_peaks

MIB = 1 << 20


def test_live_tensors_count_each_storage_once_while_it_lives():
    with LiveTensors() as live:
        a = torch.empty(MIB // 4)                # 1 MiB of float32
        b = torch.empty(MIB // 2)                # 2 MiB
        views = (b[:10], b.view(2, -1), b[::2])   # b's storage: counted once
        assert live.total == 3 * MIB and live.peak == 3 * MIB
        del a
        c = torch.zeros(MIB // 4)                # a's bytes went when a did
        assert live.total == 3 * MIB
        live.reset_peak()
        d = c + 1
        e = d.add_(1)                            # in place: no new storage
    assert live.peak == 4 * MIB and live.peak_at == "- (add)"
    assert [(x.nbytes, x.shape) for x in live.alive_at_peak] == [(2 * MIB, (MIB // 2,)), (MIB, (MIB // 4,)),
                                                                (MIB, (MIB // 4,))]
    assert views[0].untyped_storage().data_ptr() == b.untyped_storage().data_ptr() and e is d


def test_frame_peaks_name_the_module_and_hold_what_they_list():
    codec = hytip.load(golden.golden_checkpoint_path())
    torch.manual_seed(0)
    frames = [torch.rand(3, 64, 96) for _ in range(3)]
    peaks = frame_peaks(codec, frames, kernels="fast", qp=21, i_quality=21)
    assert [kind for kind, *_ in peaks] == ["I", "P", "P"]
    for kind, peak, at, alive in peaks:
        assert peak == sum(a.nbytes for a in alive)
        # Every frame holds at least a full-resolution 32-channel float32 intermediate of its own coder.
        assert alive[0].nbytes >= 32 * 64 * 96 * 4
        assert at.startswith("if_model" if kind == "I" else "Residual") and "(" in at
    # the hooks that named the modules are gone: the model runs as before
    model = codec._model("fast")
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
