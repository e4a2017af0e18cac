"""CUDA code paths executed on a machine without a GPU.

The mechanism is PyTorch's fake tensors (`torch._subclasses.fake_tensor.FakeTensorMode`, what torch.compile and
torch.export trace with; present with this interface in every torch our pyproject allows, >= 2.1): inside the mode,
tensors carry shape, dtype and a device, here "cuda", but no values, and every operator checks its inputs' devices as
CUDA would. So a run under `fake_cuda()` fails on the bugs a first GPU run would hit: a tensor made on the CPU inside
a forward and mixed with CUDA tensors (FakeTensorDeviceMismatchError), `.numpy()` of a device tensor, a value read
where none should be needed (DataDependentOutputException), and, through the check added here, a generator on another
device than the tensor it fills (fake tensors accept that one; CUDA does not).

The model is built and its checkpoint loaded on the CPU for real, as `hytip.load` does; the fake mode starts at the
first `Module.to("cuda...")`, the move to the GPU. CUDA runtime calls that need a driver (synchronize, memory
statistics, device queries) are recorded in `FakeCudaRuntime`, not made. The places where the code needs a value on
the host (the documented host points: `HOST_POINTS` of hytip.codec and bench.codecs.hytip_codec) are given stand-ins
by `host_stand_ins`; a test that runs a whole path with them and nothing else shows that no other place needs one.
"""
from __future__ import annotations

import importlib
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from unittest import mock

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.overrides import TorchFunctionMode


class GeneratorOnAnotherDevice(RuntimeError):
    pass


class _GeneratorCheck(TorchFunctionMode):
    """CUDA refuses a generator of another device than the tensor it fills; fake tensors do not check it."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        generator = kwargs.get("generator")
        if generator is not None:
            device = kwargs.get("device") or next((a.device for a in args if torch.is_tensor(a)), None)
            if device is not None and torch.device(device).type != generator.device.type:
                raise GeneratorOnAnotherDevice(f"{func.__name__}: a {generator.device.type} generator for a "
                                               f"{torch.device(device).type} tensor")
        return func(*args, **kwargs)


@dataclass
class FakeCudaRuntime:
    """What the code asked of the CUDA runtime."""

    synchronized: list = field(default_factory=list)
    peak_resets: list = field(default_factory=list)
    device_count: int = 1

    def synchronize(self, device=None):
        self.synchronized.append(str(device))

    def reset_peak_memory_stats(self, device=None):
        self.peak_resets.append(str(device))


@contextmanager
def fake_cuda(device_count: int = 1):
    """Fake CUDA from the first model move to a CUDA device on (see the module docstring)."""
    mode, runtime, entered = FakeTensorMode(allow_non_fake_inputs=True), FakeCudaRuntime(device_count=device_count), []
    move = torch.nn.Module.to

    def to(module, *args, **kwargs):
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        if device is not None and device.type == "cuda" and not entered:
            mode.__enter__()
            entered.append(mode)
        return move(module, *args, **kwargs)

    patches = [mock.patch.object(torch.nn.Module, "to", to),
               mock.patch("torch.cuda.synchronize", runtime.synchronize),
               mock.patch("torch.cuda.reset_peak_memory_stats", runtime.reset_peak_memory_stats),
               mock.patch("torch.cuda.max_memory_allocated", lambda device=None: 0),
               mock.patch("torch.cuda.device_count", lambda: runtime.device_count),
               mock.patch("torch.cuda.get_device_name", lambda device=None: "fake CUDA device"),
               mock.patch("torch.cuda.is_bf16_supported", lambda *a, **k: True),
               # CUDA autocast (the bf16 kernels) switches itself off where no driver is found
               mock.patch("torch.cuda.amp.common.amp_definitely_not_available", lambda: False),
               mock.patch("torch.cuda.device", lambda device: nullcontext())]
    for patch in patches:
        patch.start()
    check = _GeneratorCheck()
    check.__enter__()
    try:
        yield runtime
    finally:
        check.__exit__(None, None, None)
        if entered:
            mode.__exit__(None, None, None)
        for patch in reversed(patches):
            patch.stop()


@contextmanager
def host_stand_ins(stand_ins: dict):
    """{module name: {host point: stand-in}}: each module's host points (its HOST_POINTS, every one of them) replaced
    by a stand-in that needs no value."""
    patches = []
    for name, points in stand_ins.items():
        module = importlib.import_module(name)
        if set(points) != set(module.HOST_POINTS):
            raise AssertionError(f"{name}: stand-ins for {sorted(points)}, host points {sorted(module.HOST_POINTS)}")
        patches += [mock.patch.object(module, point, stand_in) for point, stand_in in points.items()]
    for patch in patches:
        patch.start()
    try:
        yield
    finally:
        for patch in reversed(patches):
            patch.stop()
