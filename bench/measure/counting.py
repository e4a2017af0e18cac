"""One counting protocol for every codec (HyTIP and its peers): MACs of a path with ptflops under an explicit rule
for transposed convolutions, the operations the counter cannot see listed with their size, and the temporal buffer
in the paper's unit.

* ptflops hooks nn modules and, with its pytorch backend, patches a list of functionals and tensor methods. How it
  counts ``nn.ConvTranspose2d`` changed between versions: 0.7.3 and 0.7.4 multiplied the kernel by the *output*
  positions (stride^2 times the multiply-adds performed), 0.7.5 by the input positions. That alone moves HyTIP from
  1265.83 / 845.12 to 1293.48 / 872.77 kMAC/pixel. So the rule is ours, passed to ptflops as a hook for every codec
  alike, whatever version is installed (``DECONV_RULES``).
* What ptflops does not see (``UNSEEN_RULES``): ``grid_sample`` (the warps), convolutions called as functions outside
  a convolution module, and products written with ``@``. Those functions are wrapped for the counted run (as
  ptflops wraps the ones it counts) and each call is booked with its multiply-adds by a stated rule; they are listed
  beside the count, not added to it, so that the count stays the convention the published figures use.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import io
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from typing import Callable, Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

DECONV_RULES = {
    "input": "ConvTranspose2d: k*k*Cin*Cout/groups MACs per input position (ptflops 0.7.5; the multiply-adds "
             "performed)",
    "output": "ConvTranspose2d: k*k*Cin*Cout/groups MACs per output position (ptflops 0.7.3/0.7.4, whose count the "
              "HyTIP README's complexity figure matches; stride^2 times the multiply-adds performed)",
}
DEFAULT_DECONV_RULE = "input"
GRID_SAMPLE_TAPS = {"bilinear": 4, "nearest": 0, "bicubic": 16}
UNSEEN_RULES = {
    "grid_sample": "one MAC per interpolation tap and output value (bilinear 4, trilinear 8, bicubic 16, "
                   "nearest 0); coordinate arithmetic left out",
    "conv (functional)": "Cin/groups*k*k MACs per output value, called outside a convolution module",
    "matmul (@)": "n*k*m MACs per (n x k)(k x m) product written with the @ operator (ptflops patches torch.matmul, "
                  "not the operator)",
}
BUFFER_RULE = ("full-resolution channel equivalents: sum over the tensors kept for the next frame of C*h*w/(H*W); "
               "bytes are C*h*w*4 (float32)")


def counter_text(deconv_rule: str) -> str:
    return (f"ptflops {importlib.metadata.version('ptflops')} (backend 'pytorch', modules and its patched "
            f"functionals; {DECONV_RULES[deconv_rule]})")


@dataclass(frozen=True)
class UnseenOp:
    """Calls of one kind the counter does not see in a counted path, with their MACs by ``UNSEEN_RULES``."""
    op: str
    calls: int
    macs: int


@dataclass(frozen=True)
class PathCount:
    macs: int
    unseen: Tuple[UnseenOp, ...]


def _deconv_hook(rule: str):
    from ptflops.pytorch_ops import conv_flops_counter_hook
    return partial(conv_flops_counter_hook, transpose=rule == "input")


_CONVS = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")


class _UnseenOps:
    """Books the calls ptflops misses, by wrapping those functions for the counted run as ptflops wraps the ones it
    counts. The innermost nn module being run (global forward hooks) tells whether a convolution is a module's own,
    which ptflops counts."""

    def __init__(self, seen_types: tuple):
        self.seen_types, self.stack, self.found = seen_types, [], {}

    def _book(self, op: str, macs: int) -> None:
        calls, total = self.found.get(op, (0, 0))
        self.found[op] = (calls + 1, total + int(macs))

    def _grid_sample(self, original):
        def grid_sample(input, grid, mode="bilinear", *args, **kwargs):
            out = original(input, grid, mode, *args, **kwargs)
            taps = GRID_SAMPLE_TAPS.get(mode, 4) * (2 if out.dim() == 5 and mode == "bilinear" else 1)
            self._book("grid_sample", out.numel() * taps)
            return out
        return grid_sample

    def _conv(self, original, transposed: bool):
        def conv(input, weight, *args, **kwargs):
            out = original(input, weight, *args, **kwargs)
            if not (self.stack and isinstance(self.stack[-1], self.seen_types)):
                self._book("conv (functional)", (input.numel() if transposed else out.numel()) * weight[0].numel())
            return out
        return conv

    def _matmul(self, original):
        def matmul(left, right):
            out = original(left, right)
            self._book("matmul (@)", out.numel() * left.shape[-1])
            return out
        return matmul

    def _enter(self, module, _inputs) -> None:
        self.stack.append(module)

    def _leave(self, _module, _inputs, _output) -> None:   # returns None: the output stays as it is
        self.stack.pop()

    @contextlib.contextmanager
    def watching(self):
        patches = [(F, "grid_sample", self._grid_sample(F.grid_sample)),
                   (torch.Tensor, "__matmul__", self._matmul(torch.Tensor.__matmul__))]
        for name in _CONVS:   # F.conv2d and torch.conv2d are one function under two names
            wrapped = self._conv(getattr(F, name), name.startswith("conv_transpose"))
            patches += [(F, name, wrapped), (torch, name, wrapped)]
        originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
        for owner, name, wrapped in patches:
            setattr(owner, name, wrapped)
        pre = nn.modules.module.register_module_forward_pre_hook(self._enter)
        post = nn.modules.module.register_module_forward_hook(self._leave)
        try:
            yield self
        finally:
            pre.remove()
            post.remove()
            for owner, name, original in originals:
                setattr(owner, name, original)


class _Path(nn.Module):
    """One path as a module for ptflops: ``model`` is a child, so that every submodule is hooked; the dummy
    positional input makes ptflops' batch count 1 without its 'No positional inputs' notice."""

    def __init__(self, model: nn.Module, run: Callable[[], object]):
        super().__init__()
        self.model, self.run = model, run

    def forward(self, _batch):
        return self.run()


def count_path(model: nn.Module, run: Callable[[], object], *, deconv_rule: str = DEFAULT_DECONV_RULE,
               custom_hooks: Dict[type, Callable] | None = None) -> PathCount:
    """MACs of ``run()`` (which calls ``model`` or its submodules) by ptflops under ``deconv_rule``, with what ptflops
    cannot see. ptflops' own notices are kept off the terminal and shown only if the count fails."""
    from ptflops import get_model_complexity_info
    from ptflops.pytorch_ops import MODULES_MAPPING

    if deconv_rule not in DECONV_RULES:
        raise ValueError(f"transposed-convolution rule {deconv_rule!r}: expected one of {', '.join(DECONV_RULES)}")
    hooks = {nn.ConvTranspose1d: _deconv_hook(deconv_rule), nn.ConvTranspose2d: _deconv_hook(deconv_rule),
             nn.ConvTranspose3d: _deconv_hook(deconv_rule), **(custom_hooks or {})}
    watcher = _UnseenOps(tuple(set(MODULES_MAPPING) | set(hooks)))
    notices = io.StringIO()
    with torch.no_grad(), contextlib.redirect_stdout(notices), contextlib.redirect_stderr(notices), \
            watcher.watching():
        macs, _ = get_model_complexity_info(_Path(model, run), (1,), as_strings=False, print_per_layer_stat=False,
                                            input_constructor=lambda _: torch.zeros(1), backend="pytorch",
                                            custom_modules_hooks=hooks, ost=notices)
    if macs is None:   # ptflops prints the exception and returns None when the forward pass fails
        raise RuntimeError("ptflops could not count the path:\n" + notices.getvalue().strip())
    unseen = tuple(UnseenOp(op, calls, total) for op, (calls, total) in sorted(watcher.found.items()))
    return PathCount(int(macs), unseen)


@dataclass(frozen=True)
class BufferTensor:
    name: str
    channels: int
    height: int
    width: int
    scale: str               # tensor size / frame size, e.g. "1/4" ("1/1" at full resolution)
    channel_equivalent: float
    bytes_float32: int


@dataclass(frozen=True)
class TemporalBuffer:
    width: int
    height: int
    tensors: Tuple[BufferTensor, ...]
    total_channel_equivalent: float
    total_bytes_float32: int
    protocol: str


def temporal_buffer_of(tensors: Dict[str, torch.Tensor], height: int, width: int, kept: str) -> TemporalBuffer:
    """The paper's buffer size of ``tensors`` ([1, C, h, w] each; the decoded frame included) kept after a frame of
    ``width`` x ``height``; ``kept`` says which frame they were taken after."""
    records = []
    for name, t in tensors.items():
        if t.dim() != 4 or t.shape[0] != 1:
            raise ValueError(f"{name}: a buffered tensor is [1, C, h, w], not {list(t.shape)}")
        c, h, w = t.shape[1:]
        scale_h, scale_w = Fraction(h, height), Fraction(w, width)
        scale = f"{scale_h.numerator}/{scale_h.denominator}" + ("" if scale_h == scale_w else
                                                               f" x {scale_w.numerator}/{scale_w.denominator}")
        records.append(BufferTensor(name, c, h, w, scale, c * h * w / (height * width), 4 * c * h * w))
    return TemporalBuffer(width=width, height=height, tensors=tuple(records),
                          total_channel_equivalent=sum(t.channel_equivalent for t in records),
                          total_bytes_float32=sum(t.bytes_float32 for t in records),
                          protocol=f"{BUFFER_RULE}; tensors kept {kept}, at {width}x{height}")


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
