"""Fast kernels for estimated rates: the same network and weights, activations in channels_last (NHWC) layout.

In the NCHW layout that the release (and so the exact mode) uses, oneDNN reorders the input and output of every
convolution into and out of its blocked layout; in NHWC a convolution reads and writes the tensors as they are and a
1x1 convolution is one GEMM. The FFN blocks' expanding 1x1 convolution is split in two (its two halves' weights), so
that each half is a dense NHWC tensor rather than a strided channel slice of one (an elementwise op on such a slice is
slow, and the next convolution would first copy it); the narrow ones run in row chunks at every size, their expansion
in the CPU's caches (``_SplitFFN``). The depth-conv blocks (1x1, depthwise 3x3 and 1x1 convolutions, then the FFN;
halo one row), the ResBlks (two 3x3 convolutions; halo two rows; their tiles overwrite their input), the sub-pixel
convolutions (each tile shuffled into the output) and the convolutions and blocks of a concatenation (in the modules
with ``row_tiles``: the context fusion, the contextual coder, the U-Nets' skips) run in row tiles: their
intermediates, the sub-pixel convolutions' outputs before their shuffle and the concatenations then exist for one
tile, not for the whole frame (3 GB at 1080p). In NHWC a row tile is a contiguous slice and each output pixel is
computed the same way whatever the tile, so tiling changes no value (tests/test_fast.py); in NCHW oneDNN's 1x1 kernels
block the pixels by thread and tile, and their rounding would depend on the tiling.

On a CPU where torch has NNPACK (x86-64 with AVX2), SPyNet's 7x7 convolutions (a quarter of a P-frame's multiply-
adds) run through NNPACK's FFT kernels instead (``_FFTConv``): 2.3x oneDNN's direct NHWC kernels on its refinement
blocks at 448x256 (2 threads), and closer to a float64 reference than either (relative 1e-7 against 2e-7).

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
import torch.nn.functional as F

from .inter import Inter
from .layers import ConvRows, ResBlk, RowTiles, _DepthConvBlock, _FFN, rowwise

FAST_KERNELS = ("fast", "bf16")          # the kernel sets that run a copy of the model (hytip.codec.KERNELS)
LAYOUT = torch.channels_last


# Input values per row chunk of an FFN (``_SplitFFN``): 2 MiB, whose 4x expansion stays in the CPU's caches. Only FFNs
# of up to CHUNKED_FFN_CHANNELS channels run in chunks: their 1x1 convolutions do too few multiply-adds per value moved
# to hide memory (2c), the wider ones are compute-bound and only lose to the chunks' overhead (measured in the model).
CACHE_TILE_ELEMENTS = 1 << 19
CHUNKED_FFN_CHANNELS = 64


class _SplitFFN(nn.Module):
    """``ffn`` with its expansion's halves (a, b) computed as two convolutions on views of its weights (``ConvRows``),
    each a dense NHWC tensor; ``ffn`` stays a child, so that its weights stay the model's. Every operation of an FFN
    is per pixel, so a narrow one runs in row chunks of about CACHE_TILE_ELEMENTS input values with no halo: the
    expansion is then written and read in the caches rather than in memory (448x256, 2 threads: the 48-channel FFNs
    at full resolution 52 -> 34-40 ms in the model). In NHWC each pixel's values are those of the whole frame
    (``rowwise``)."""

    def __init__(self, ffn: _FFN):
        super().__init__()
        n = ffn.conv.out_channels // 2
        self.ffn, self.conv_a, self.conv_b = ffn, ConvRows(ffn.conv, slice(0, n)), ConvRows(ffn.conv, slice(n, 2 * n))

    def forward(self, x):
        if x.shape[1] > CHUNKED_FFN_CHANNELS:
            return self._rows(x)
        return rowwise(self._rows, (x,), 0, elements=CACHE_TILE_ELEMENTS)

    def _rows(self, x):
        return self.ffn.conv_out(self.ffn.combine(self.conv_a(x), self.conv_b(x))).add_(x)


# Input values per call of NNPACK (about 16 bytes of workspace per value of the wider of its input and output, which
# torch keeps for the next call): 64 MB of workspace, where SPyNet's widest layer at 1080p would need 1.6 GB whole.
FFT_TILE_ELEMENTS = 1 << 22


class _FFTConv(nn.Module):
    """``conv`` (stride 1) through NNPACK's FFT kernels, NCHW in and out (NNPACK's layout), one sample at a time (its
    batched kernels are 5x slower per sample) and in row tiles of about FFT_TILE_ELEMENTS values. A tile moves the
    FFT's own tile grid, so the last bits depend on the tiling (not the values beyond them)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        weight, bias, (pad, pad_w) = self.conv.weight, self.conv.bias, self.conv.padding
        n, _, h, w = x.shape
        rows = max(1, FFT_TILE_ELEMENTS // (max(x.shape[1], weight.shape[0]) * w))
        out = x.new_empty(n, weight.shape[0], h, w)
        for i in range(n):
            for r0 in range(0, h, rows):
                r1 = min(r0 + rows, h)
                lo, hi = max(r0 - pad, 0), min(r1 + pad, h)
                # the tile's rows and the halo its output rows read; zero rows beyond the frame (the padding)
                tile = F.pad(x[i:i + 1, :, lo:hi], (0, 0, pad - (r0 - lo), pad - (hi - r1))).contiguous()
                out[i:i + 1, :, r0:r1] = torch._nnpack_spatial_convolution(tile, weight, bias, [0, pad_w])
        return out


def uses_nnpack(device: torch.device | str) -> bool:
    """Whether the fast kernels run SPyNet's 7x7 convolutions through NNPACK (``_FFTConv``) on ``device``: a CPU where
    torch has NNPACK. Their last bits differ from oneDNN's, so the records and benchmarks say which."""
    return torch.device(device).type == "cpu" and torch._nnpack_available()


def _fft_conv(module: nn.Module) -> bool:
    """SPyNet's 7x7 convolutions (the model's only ones), where NNPACK's FFT beats direct convolution most."""
    return (isinstance(module, nn.Conv2d) and module.kernel_size == (7, 7) and module.stride == (1, 1)
            and module.dilation == (1, 1) and module.groups == 1 and module.padding_mode == "zeros")


def _row_tiles(module: nn.Module) -> RowTiles | None:
    """``module`` in row tiles, for the blocks the fast kernels run so, each with the input rows one output row reads
    beyond its own: a depth-conv block (1x1, depthwise 3x3, 1x1 convolutions, then its FFN) one, a ResBlk (two 3x3
    convolutions) two, a sub-pixel convolution and its shuffle (``subpel1``, ``subpel3``) its kernel's half. Every
    ResBlk of HyTIP (hytip.inter) reads a fresh tensor that nothing reads after it: its tiles overwrite it."""
    if isinstance(module, _DepthConvBlock):
        return RowTiles(module, 1)
    if isinstance(module, ResBlk):
        return RowTiles(module, 2, into_input=True)
    if (isinstance(module, nn.Sequential) and len(module) == 2 and isinstance(module[1], nn.PixelShuffle)
            and isinstance(module[0], nn.Conv2d) and module[0].stride == (1, 1)):
        return RowTiles(module, module[0].padding[0], scale=module[1].upscale_factor)
    return None


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
        with torch.autocast(next(self.body.parameters()).device.type, dtype=torch.bfloat16):
            out = self.body(*args)
        return tuple(t.float() for t in out) if isinstance(out, tuple) else out.float()


def fast_model(model: nn.Module, kernels: str = "fast") -> nn.Module:
    """``model`` for the ``kernels`` "fast" or "bf16": a copy of its modules that shares its weights, which neither
    changes. On a CPU with NNPACK, SPyNet's convolutions become ``_FFTConv``s with the model's own (NCHW) weights. Every
    other 4-D parameter and buffer gets NHWC strides (a weight in NHWC makes a convolution NHWC even where its input is
    not): a view where its memory already has that order (1x1 and depthwise kernels, per-channel scales), a copy for
    the k x k kernels (42 of the 190 MB of weights; 47 with SPyNet's, where there is no NNPACK)."""
    if kernels not in FAST_KERNELS:
        raise ValueError(f"kernels {kernels!r}: expected one of {', '.join(FAST_KERNELS)} for a fast copy")
    fast = copy.deepcopy(model, memo={id(t): t for t in (*model.parameters(), *model.buffers())})
    weight = next(model.parameters())
    fft = uses_nnpack(weight.device) and weight.dtype == torch.float32
    for parent in list(fast.modules()):
        for name, child in parent.named_children():
            if fft and _fft_conv(child):
                setattr(parent, name, _FFTConv(child))
            elif isinstance(child, _FFN):
                setattr(parent, name, _SplitFFN(child))
            elif (tiled := _row_tiles(child)) is not None:
                setattr(parent, name, tiled)
            elif kernels == "bf16" and isinstance(parent, Inter) and name in BF16_MODULES:
                setattr(parent, name, _InBFloat16(child))
        if hasattr(parent, "row_tiles"):
            parent.row_tiles = True
    nchw = {m for f in fast.modules() if isinstance(f, _FFTConv) for m in f.modules()}   # NNPACK's weights: NCHW
    for module in fast.modules():
        if module in nchw:
            continue
        for name, t in (*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)):
            if t.dim() == 4:
                nhwc = _nhwc(t.detach())
                setattr(module, name, nn.Parameter(nhwc, requires_grad=False) if isinstance(t, nn.Parameter) else nhwc)
    return fast


def _nhwc(t: torch.Tensor) -> torch.Tensor:
    """``t`` with the strides of ``t.contiguous(memory_format=LAYOUT)``, as a view of it where they address the same
    memory (size-1 dimensions), which ``contiguous`` would return unchanged with its NCHW strides."""
    if not t.is_contiguous(memory_format=LAYOUT):
        return t.contiguous(memory_format=LAYOUT)
    return t.as_strided(t.shape, torch.empty(t.shape, device="meta", memory_format=LAYOUT).stride(), t.storage_offset())


def fast_input(x: torch.Tensor) -> torch.Tensor:
    """A frame or buffer in the fast model's layout."""
    return x.contiguous(memory_format=LAYOUT)
