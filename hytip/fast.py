"""Fast kernels for estimated rates: the same network and weights, activations in channels_last (NHWC) layout.

In the NCHW layout that the release (and so the exact mode) uses, oneDNN reorders the input and output of every
convolution into and out of its blocked layout; in NHWC a convolution reads and writes the tensors as they are
and a 1x1 convolution is one GEMM. The FFN blocks' expanding 1x1 convolution is split in two (its two halves'
weights), so that each half is a dense NHWC tensor rather than a strided channel slice of one (an elementwise op
on such a slice is slow, and the next convolution would first copy it). The depth-conv blocks (1x1, depthwise 3x3
and 1x1 convolutions, then the FFN) run in row tiles read with a halo of one row: their intermediates, the FFN's up
to 4x the channels, then exist for one tile, not for the whole frame (3 GB at 1080p). In NHWC a row tile is a
contiguous slice and each output pixel is computed the same way whatever the tile, so tiling changes no value
(tests/test_fast.py); in NCHW oneDNN's 1x1 kernels block the pixels by thread and tile, and their rounding would
depend on the tiling.

Other kernels round differently in the last bits: the golden README's "channels_last" variant of the official
code stays within 1e-6 of its NCHW run on case A and within the suggested tolerances on the chaotic case B. Use
it for estimated rates only; a stream's decoder must run the encoder's kernels, so compress and decompress always
run the exact (NCHW) model.

The "bf16" kernels are the fast ones with the inter coder's transforms (BF16_MODULES) under bfloat16 autocast: about
1.35x the fast kernels' speed where bfloat16 is native (AVX512-BF16, AMX, GPUs), and a larger drift (README "The
codec"): the golden cases stay within the golden tolerances on each frame's rate and PSNR-RGB, not on the
reconstructions themselves.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn

from .inter import Inter
from .layers import _DepthConvBlock, _GatedFFN, _SumFFN

FAST_KERNELS = ("fast", "bf16")          # the kernel sets that run a copy of the model (hytip.codec.KERNELS)
LAYOUT = torch.channels_last
TILE_PIXELS = 1 << 18     # pixels per row tile (halo included) of the depth-conv blocks


def rowwise(fn, x: torch.Tensor, halo: int) -> torch.Tensor:
    """``fn(x)`` computed in row tiles of ``TILE_PIXELS``, for an ``fn`` whose output pixel depends on the input rows
    within ``halo`` of its own and that zero-pads at the frame's edges: each tile reads ``halo`` rows more on each
    side, and the rows computed from its own padding are dropped."""
    h, w = x.shape[-2:]
    rows = max(1, TILE_PIXELS // w - 2 * halo)
    if rows >= h:
        return fn(x)
    out = None
    for r in range(0, h, rows):
        lo = max(0, r - halo)
        tile = fn(x[..., lo:r + rows + halo, :])[..., r - lo:r - lo + rows, :]
        if out is None:
            out = torch.empty(tile.shape[:2] + (h, w), dtype=tile.dtype, device=tile.device, memory_format=LAYOUT)
        out[..., r:r + rows, :] = tile
    return out


def _half(conv: nn.Conv2d, part: int) -> nn.Conv2d:
    """A 1x1 convolution computing output channels [part·n/2, (part+1)·n/2) of ``conv``."""
    n = conv.out_channels // 2
    half = nn.Conv2d(conv.in_channels, n, 1).to(device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        half.weight.copy_(conv.weight[part * n:(part + 1) * n])
        half.bias.copy_(conv.bias[part * n:(part + 1) * n])
    return half


class _SplitGatedFFN(nn.Module):
    def __init__(self, ffn: _GatedFFN):
        super().__init__()
        self.conv_a, self.conv_b = _half(ffn.conv, 0), _half(ffn.conv, 1)
        self.conv_out, self.relu = ffn.conv_out, ffn.relu

    def forward(self, x):
        return self.conv_out(self.conv_a(x).mul_(self.relu(self.conv_b(x)))).add_(x)


class _SplitSumFFN(nn.Module):
    def __init__(self, ffn: _SumFFN):
        super().__init__()
        self.conv_a, self.conv_b = _half(ffn.conv, 0), _half(ffn.conv, 1)
        self.conv_out, self.relu1, self.relu2 = ffn.conv_out, ffn.relu1, ffn.relu2

    def forward(self, x):
        return self.conv_out(self.relu1(self.conv_a(x)).add_(self.relu2(self.conv_b(x)))).add_(x)


class _TiledDepthConvBlock(nn.Module):
    """A depth-conv block (1x1, depthwise 3x3, 1x1 convolutions, then its FFN) in row tiles with a halo of one row:
    its full-resolution intermediates exist for one tile at a time."""

    def __init__(self, body: _DepthConvBlock):
        super().__init__()
        self.body = body

    def forward(self, x):
        return rowwise(self.body, x, halo=1)


_FAST = {_GatedFFN: _SplitGatedFFN, _SumFFN: _SplitSumFFN}
# The inter coder's transforms, about 75 % of a P-frame's time with the fast kernels at 448x256: bfloat16 in the "bf16"
# kernels. The intra coder, motion, every entropy parameter network and the warps stay in float32.
BF16_MODULES = ("feature_extractor", "context_fusion_net", "mc_generator", "MaskGenerator", "contextual_encoder",
                "contextual_decoder", "recon_generation_net")


class _InBFloat16(nn.Module):
    """``body`` under bfloat16 autocast (convolutions in bfloat16), float32 in and out."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, *args):
        with torch.autocast(args[0].device.type, dtype=torch.bfloat16):
            out = self.body(*args)
        return tuple(t.float() for t in out) if isinstance(out, tuple) else out.float()


def fast_model(model: nn.Module, kernels: str = "fast") -> nn.Module:
    """A copy of ``model`` (its weights unchanged) for the ``kernels`` "fast" or "bf16"; ``model`` itself is left as
    it is."""
    if kernels not in FAST_KERNELS:
        raise ValueError(f"kernels {kernels!r}: expected one of {', '.join(FAST_KERNELS)} for a fast copy")
    fast = copy.deepcopy(model)
    for parent in list(fast.modules()):
        for name, child in parent.named_children():
            if type(child) in _FAST:
                setattr(parent, name, _FAST[type(child)](child))
            elif isinstance(child, _DepthConvBlock):
                setattr(parent, name, _TiledDepthConvBlock(child))
            elif kernels == "bf16" and isinstance(parent, Inter) and name in BF16_MODULES:
                setattr(parent, name, _InBFloat16(child))
    return fast.to(memory_format=LAYOUT)


def fast_input(x: torch.Tensor) -> torch.Tensor:
    """A frame or buffer in the fast model's layout."""
    return x.contiguous(memory_format=LAYOUT)
