"""Complexity of HyTIP (SPEC §6-§7): kMAC/pixel of one P-frame, parameters per module, temporal buffer size.

Every function returns frozen records that carry the protocol they were measured under, so a report can print
a figure together with how it was obtained. MACs come from the counters themselves (ptflops, fvcore), never
from hand counts. None of the figures depends on the weights: they are fixed by the architecture and the frame
size, so a randomly initialised ``HyTIP()`` gives the same numbers as a trained one.

The ``complexity`` subcommand prints all of them next to the published figures of other codecs
(``bench.measure.published_complexity``); ``bench.measure.complexity_summary`` keeps HyTIP's figures per code version.
"""
from __future__ import annotations

import importlib.metadata
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn as nn

from bench.errors import InputError
from bench.measure.counting import (
    DEFAULT_DECONV_RULE,
    DECONV_RULES,
    TemporalBuffer,
    UnseenOp,
    count_path,
    counter_text,
    temporal_buffer_of,
)
from hytip.gop import ALIGN_FACTOR
from hytip.layers import ConvRows
from hytip.model import HyTIP, TemporalState, ZeroLatentDecoder

COUNTERS = ("ptflops", "fvcore")
FVCORE_OUTPUTS = ("all", "reconstruction")
PATHS = {
    "encode": "full P-frame forward (HyTIP.forward_pframe): SPyNet motion estimation, motion coder and inter coder "
              "with the temporal prior",
    "decode": "synthesis from latents only (HyTIP.decode_pframe on all-zero latents, as the release's "
              "--compute_decode_macs): no SPyNet, analysis or hyper-analysis transforms",
}
# The release's --compute_macs: frames 0 (I) and 1 (P, no temporal prior) run normally, frame 2 is counted.
COUNTED_FRAME = dict(frame_idx=2, predict=True, qp=0)
COUNTED_FRAME_TEXT = ("frame_idx=2 with predict=True and qp=0 on all-ones frames, after frame 1 (predict=False) "
                      "filled the temporal state")
NOT_COUNTED = {
    "ptflops": "grid_sample and the other operations listed as unseen (ptflops has no rule for them), tensor "
               "arithmetic written with operators, entropy coding, the I-frame",
    "fvcore": "everything but conv, matmul, upsample and grid_sample (activations, normalisation, element-wise "
              "arithmetic), entropy coding, the I-frame",
}
FVCORE_OUTPUTS_TEXT = {
    "all": "traced outputs: reconstruction, likelihoods and the buffers for the next frame",
    "reconstruction": "traced outputs: the reconstruction only, so tracing drops the two feature generators that "
                      "only feed the next frame's buffer (as in the release's fvcore figure)",
}
INTRA_MODULE = "if_model"   # the release's --compute_model_size builds the model without it


@dataclass(frozen=True)
class MacCount:
    """MACs of one P-frame on one path, with the protocol of the count."""
    counter: str             # "ptflops" or "fvcore"
    counter_version: str
    path: str                # "encode" or "decode" (see PATHS)
    width: int
    height: int
    macs: int
    kmac_per_pixel: float    # macs / (width*height) / 1e3
    protocol: str            # what was run, how it was counted and what is not counted
    by_module: Tuple[Tuple[str, int], ...] = ()   # fvcore only: MACs per top-level module that has any
    unseen: Tuple[UnseenOp, ...] = ()             # ptflops only: what it cannot see, sized by rule, not added


@dataclass(frozen=True)
class ModuleParameters:
    module: str
    parameters: int
    in_model_size: bool      # counted in the release's "model size"


@dataclass(frozen=True)
class ParameterCounts:
    modules: Tuple[ModuleParameters, ...]
    total: int
    model_size: int          # the release's --compute_model_size figure: everything but the intra coder
    protocol: str


def check_size(height: int, width: int) -> None:
    if height <= 0 or width <= 0 or height % ALIGN_FACTOR or width % ALIGN_FACTOR:
        raise InputError(f"frame size {width}x{height}: expected width and height positive multiples of {ALIGN_FACTOR} "
                         f"(the P-frame coder runs on frames padded to {ALIGN_FACTOR})")


@contextmanager
def _inference(model: nn.Module):
    """Eval mode and no autograd for the counting run; the caller's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _counted_state(model: HyTIP, height: int, width: int) -> TemporalState:
    """The temporal state after frame 1 (predict=False), as the release's counting run leaves it."""
    ones = torch.ones(1, 3, height, width)
    return model.forward_pframe(ones, ones, TemporalState(), frame_idx=1, qp=COUNTED_FRAME["qp"],
                                predict=False).state


class _TracedPFrame(nn.Module):
    """A tensor-in, tensor-out view of one P-frame path, because fvcore's JIT trace takes neither the state
    dataclass as input nor the output records. Only what ``outputs`` names is returned, and tracing keeps only
    the operations those outputs depend on."""

    def __init__(self, model: HyTIP, state: TemporalState, path: str, outputs: str):
        super().__init__()
        self.model, self.state, self.path, self.outputs = model, state, path, outputs

    def forward(self, ref_frame, x=None):
        if self.path == "encode":
            out = self.model(ref_frame, x, self.state, **COUNTED_FRAME)
            recon, extra, state = out.recon, tuple(out.likelihoods), out.state
        else:
            recon, state = ZeroLatentDecoder(self.model)(ref_frame, self.state, **COUNTED_FRAME)
            extra = ()
        if self.outputs == "reconstruction":
            return recon
        return (recon,) + extra + tuple(state.tensors().values())


def _count_ptflops(model: HyTIP, state: TemporalState, path: str, frame: torch.Tensor,
                   deconv_rule: str) -> Tuple[int, tuple]:
    from ptflops.pytorch_ops import conv_flops_counter_hook

    if path == "encode":
        def run():
            return model(frame, frame, state, **COUNTED_FRAME)
    else:
        decoder = ZeroLatentDecoder(model)

        def run():
            return decoder(frame, state, **COUNTED_FRAME)
    # ptflops matches module types exactly: the parts of a large FFN expansion (hytip.layers.ConvRows, from about
    # 1080p) are convolutions to it too.
    count = count_path(model, run, deconv_rule=deconv_rule, custom_hooks={ConvRows: conv_flops_counter_hook})
    return count.macs, count.unseen


def _count_fvcore(model: HyTIP, state: TemporalState, path: str, frame: torch.Tensor,
                  outputs: str) -> Tuple[int, tuple]:
    from fvcore.nn import FlopCountAnalysis

    inputs = (frame, frame) if path == "encode" else (frame,)
    analysis = FlopCountAnalysis(_TracedPFrame(model, state, path, outputs), inputs)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    # fvcore counts one multiply-add as one "flop", i.e. MACs. Ops run from a module's helper methods rather than
    # its forward are booked to the caller's scope, so the split is by the module whose forward was called.
    per_module = analysis.by_module()
    by_module = tuple((name, int(per_module.get(f"model.{name}", 0))) for name, _ in model.named_children())
    return int(analysis.total()), tuple((name, macs) for name, macs in by_module if macs)


def pframe_kmac_per_pixel(model: HyTIP, height: int, width: int, *, counter: str = "ptflops",
                          fvcore_outputs: str = "all",
                          deconv_rule: str = DEFAULT_DECONV_RULE) -> Tuple[MacCount, MacCount]:
    """(encode, decode) MACs of one P-frame at ``width``x``height`` (multiples of 16), counted the release's way:
    frame 2 with a temporal prior, on all-ones frames.

    counter "ptflops" (default backend "pytorch", the release's call) or "fvcore". ``fvcore_outputs`` picks what
    the fvcore trace returns: "all" (default; every op of the P-frame, including the feature generators that only
    feed the next frame's buffer) or "reconstruction" (how the release's fvcore figure was traced; 0.936 kMAC/px
    lower). ptflops hooks every module call, so it has no such choice."""
    if counter not in COUNTERS:
        raise InputError(f"MAC counter {counter!r}: expected one of {', '.join(COUNTERS)}")
    if fvcore_outputs not in FVCORE_OUTPUTS:
        raise InputError(f"fvcore_outputs {fvcore_outputs!r}: expected one of {', '.join(FVCORE_OUTPUTS)}")
    if counter != "fvcore" and fvcore_outputs != "all":
        raise InputError(f"fvcore_outputs={fvcore_outputs!r} only applies to counter='fvcore', not {counter!r}")
    if deconv_rule not in DECONV_RULES:
        raise InputError(f"transposed-convolution rule {deconv_rule!r}: expected one of {', '.join(DECONV_RULES)}")
    check_size(height, width)
    version = importlib.metadata.version(counter)
    how = (counter_text(deconv_rule) if counter == "ptflops"
           else f"fvcore {version} ({FVCORE_OUTPUTS_TEXT[fvcore_outputs]})")
    frame = torch.ones(1, 3, height, width)
    counts = []
    with _inference(model):
        state = _counted_state(model, height, width)
        for path in ("encode", "decode"):
            if counter == "ptflops":
                (macs, unseen), by_module = _count_ptflops(model, state, path, frame, deconv_rule), ()
            else:
                (macs, by_module), unseen = _count_fvcore(model, state, path, frame, fvcore_outputs), ()
            protocol = (f"{how}; {path}: {PATHS[path]}; {COUNTED_FRAME_TEXT}; "
                        f"kMAC/pixel = MACs/(W*H)/1e3 at {width}x{height}; not counted: {NOT_COUNTED[counter]}")
            counts.append(MacCount(counter, version, path, width, height, macs, macs / (width * height) / 1e3,
                                   protocol, by_module, unseen))
    return counts[0], counts[1]


def parameter_counts(model: HyTIP) -> ParameterCounts:
    """Parameters per top-level module, their total, and the release's "model size" (all but the intra coder)."""
    modules = tuple(ModuleParameters(name, sum(p.numel() for p in child.parameters()), name != INTRA_MODULE)
                    for name, child in model.named_children())
    return ParameterCounts(
        modules=modules,
        total=sum(p.numel() for p in model.parameters()),
        model_size=sum(m.parameters for m in modules if m.in_model_size),
        protocol=f"parameters (not buffers) per top-level module; model size leaves out {INTRA_MODULE}, as the "
                 "release's --compute_model_size, which does not build the intra coder",
    )


def temporal_buffer(model: HyTIP, height: int, width: int) -> TemporalBuffer:
    """What a P-frame keeps for the next one at ``width``x``height`` (multiples of 16): the decoded frame plus
    the model's temporal state, measured from one P-frame run."""
    check_size(height, width)
    with _inference(model):
        state = _counted_state(model, height, width)
    buffered = {"ref_frame": torch.empty(1, 3, height, width), **state.tensors()}
    return temporal_buffer_of(buffered, height, width, "after a P-frame (frame_idx=1, predict=False)")
