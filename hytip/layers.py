"""Shared building blocks of HyTIP (SPEC §1).

Attribute names are part of the checkpoint interface: each block names its children so that the
state-dict keys equal the released checkpoint's (e.g. ``block.0.conv1.0.weight``, ``block.1.conv_out.bias``).
All convolutions have a bias and "same" padding (k // 2). Activations and pooling are modules, not functionals:
ptflops (the official kMAC/pixel counter) counts only modules, so this is what reproduces the official figures.
Activations and residual sums work in place on tensors that nothing else reads: the same arithmetic (IEEE
addition is commutative, so ``out.add_(x)`` equals ``x + out`` bit for bit) with less memory traffic and a lower
peak.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.layers import GDN  # state-dict keys (beta, gamma, *_reparam.*) match the release

__all__ = [
    "conv", "lrelu", "subpel1", "subpel3", "RBS", "RBU", "DepthConv", "DCB", "DCB4", "DCBI", "DCBC",
    "ResBlk", "RBI", "UNet", "UNet2", "GDN", "warp", "rowwise", "RowTiles", "of_cat",
]

# Input values per row tile (halo included) of the fast kernels' tiled layers (hytip.fast): 32 MiB of float32, which
# a depth-conv block's FFN expands to about 7x while the tile is computed.
TILE_ELEMENTS = 1 << 23
# An FFN's expansion above this many values is computed in parts (_FFN): 256 MiB of float32, so 448x256 and smaller
# frames run the release's single convolution.
SPLIT_ELEMENTS = 1 << 26


def lrelu(slope: float = 0.01) -> nn.LeakyReLU:
    """Leaky ReLU in place: for activations of a fresh output that nothing else reads."""
    return nn.LeakyReLU(slope, inplace=True)


def conv(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2)


def rowwise(fn, inputs, halo: int, into_input: bool = False, scale: int = 1,
            elements: int | None = None) -> torch.Tensor:
    """``fn(*inputs)`` computed in row tiles of about ``elements`` input values (default ``TILE_ELEMENTS``), for
    NHWC ``inputs`` of one height and width and an ``fn`` whose output pixel depends on the input rows within
    ``halo`` of its own and that zero-pads at the frame's edges: each tile reads ``halo`` rows more on each side,
    and the rows computed from its own padding are dropped. In NHWC a row tile is a contiguous slice and each output
    pixel is computed the same way whatever the tile, as long as no tile is so small that oneDNN picks another
    kernel (a few hundred pixels: the tiles are balanced, none is a short remainder), so the values are the whole
    frame's (tests/test_fast.py); in NCHW they would not be (hytip.fast). With ``into_input`` (for an ``inputs[0]``
    that nothing reads afterwards) the tiles overwrite ``inputs[0]`` where the output has its shape and dtype,
    instead of a new tensor (1080p: 0.36 GB for a 48-channel one); each tile first keeps the ``halo`` rows the next
    one still reads as they were. An ``fn`` whose output has ``scale`` times the input's rows and columns (a
    sub-pixel convolution and its shuffle) writes ``scale`` output rows per input row."""
    h, w = inputs[0].shape[-2:]
    row = w * sum(x.shape[0] * x.shape[1] for x in inputs)
    tiles = round(h / max(1, (elements or TILE_ELEMENTS) // row - 2 * halo))
    if tiles <= 1:
        return fn(*inputs)
    bounds = [round(k * h / tiles) for k in range(tiles + 1)]
    out, kept = None, None
    for top, bottom in zip(bounds, bounds[1:]):
        lo = max(0, top - halo)
        parts = [x[..., lo:bottom + halo, :] for x in inputs]
        if kept is not None:       # rows lo..top of inputs[0] as they were before the previous tile overwrote them
            parts[0] = torch.cat((kept, parts[0][..., top - lo:, :]), dim=-2)
        tile = fn(*parts)[..., (top - lo) * scale:(bottom - lo) * scale, :]
        if out is None:
            same = scale == 1 and tile.shape[:2] == inputs[0].shape[:2] and tile.dtype == inputs[0].dtype
            out = inputs[0] if into_input and same and h // tiles >= halo else torch.empty(
                tile.shape[:2] + (h * scale, w * scale), dtype=tile.dtype, device=tile.device,
                memory_format=torch.channels_last)
        if out is inputs[0] and bottom < h:
            kept = out[..., bottom - halo:bottom, :].clone()
        out[..., top * scale:bottom * scale, :] = tile
    return out


class RowTiles(nn.Module):
    """``body`` in row tiles (``rowwise``): its full-resolution intermediates exist for one tile at a time. The fast
    kernels (hytip.fast) wrap the depth-conv blocks, ResBlks and sub-pixel convolutions in it; ``into_input``: the
    output overwrites the input, ``scale``: the output has that many rows per input row (``rowwise``)."""

    def __init__(self, body: nn.Module, halo: int, into_input: bool = False, scale: int = 1):
        super().__init__()
        self.body, self.halo, self.into_input, self.scale = body, halo, into_input, scale

    def forward(self, x):
        return rowwise(self.body, (x,), self.halo, self.into_input, self.scale)


def of_cat(module: nn.Module, inputs: list, row_tiles: bool = False, into_input: bool = False) -> torch.Tensor:
    """``module(torch.cat(inputs, dim=1))`` for a stride-1 convolution, block or sub-pixel convolution and its shuffle
    (in the fast kernels a ``RowTiles``), emptying the caller's list ``inputs`` once read: tensors that only the list
    holds are freed before ``module`` runs (at 1080p, 0.1-0.6 GB each); the concatenation of one tensor is that
    tensor. With ``row_tiles`` (NHWC inputs, the fast kernels) the concatenation and the module's intermediates exist
    for one row tile at a time, and with ``into_input`` the output overwrites ``inputs[0]`` where it can
    (``rowwise``; for an ``inputs[0]`` that only the list holds)."""
    if row_tiles:
        body, halo, scale = ((module.body, module.halo, module.scale) if isinstance(module, RowTiles)
                             else (module, module.padding[0], 1))
        out = rowwise(body if len(inputs) == 1 else lambda *tile: body(torch.cat(tile, dim=1)), inputs, halo,
                      into_input, scale)
        inputs.clear()
        return out
    held = [inputs.pop() if len(inputs) == 1 else torch.cat(inputs, dim=1)]
    inputs.clear()
    # Stage by stage, each stage's input held by that stage alone: the concatenation goes before a depth-conv block's
    # FFN expands its output (exact kernels, 1080p P-frame: 0.48 GB of the 2.85 GB of tensors alive at its peak), or
    # inside the block's DepthConv once read, and a sub-pixel convolution's input before its shuffle.
    block = module.block if isinstance(module, _DepthConvBlock) else module
    for stage in block if isinstance(block, nn.Sequential) else (block,):
        held.append(stage(held if getattr(stage, "pops_list", False) else held.pop()))
    return held.pop()


def subpel1(in_ch: int, out_ch: int, r: int = 2) -> nn.Sequential:
    """1x1 conv to out·r² channels, then PixelShuffle(r)."""
    return nn.Sequential(conv(in_ch, out_ch * r * r, 1), nn.PixelShuffle(r))


def subpel3(in_ch: int, out_ch: int, r: int = 2) -> nn.Sequential:
    """3x3 conv to out·r² channels, then PixelShuffle(r)."""
    return nn.Sequential(conv(in_ch, out_ch * r * r, 3), nn.PixelShuffle(r))


class RBS(nn.Module):
    """Residual block with a strided first conv; the 1x1 shortcut exists only when stride != 1."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 2):
        super().__init__()
        self.conv1 = conv(in_ch, out_ch, 3, stride)
        self.conv2 = conv(out_ch, out_ch, 3)
        self.downsample = conv(in_ch, out_ch, 1, stride) if stride != 1 else None
        self.leaky_relu = lrelu(0.01)
        self.leaky_relu2 = lrelu(0.1)

    def forward(self, x):
        out = self.leaky_relu(self.conv1(x))
        out = self.leaky_relu2(self.conv2(out))
        return out.add_(x if self.downsample is None else self.downsample(x))


class RBU(nn.Module):
    """Residual block upsampling x2 by 1x1 sub-pixel convs, on both the main path and the shortcut."""

    def __init__(self, in_ch: int, out_ch: int, r: int = 2):
        super().__init__()
        self.subpel_conv = subpel1(in_ch, out_ch, r)
        self.conv = conv(out_ch, out_ch, 3)
        self.upsample = subpel1(in_ch, out_ch, r)
        self.leaky_relu = lrelu(0.01)
        self.leaky_relu2 = lrelu(0.1)

    def forward(self, x):
        out = self.leaky_relu(self.subpel_conv(x))
        out = self.leaky_relu2(self.conv(out))
        return out.add_(self.upsample(x))


class DepthConv(nn.Module):
    """1x1 → LReLU → depthwise 3x3 → 1x1, plus identity (1x1 ``adaptor`` when in != out)."""
    pops_list = True       # takes a list holding its input (of_cat)

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = nn.Sequential(conv(in_ch, in_ch, 1), lrelu(0.01))
        self.depth_conv = nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch)
        self.conv2 = conv(in_ch, out_ch, 1)
        self.adaptor = conv(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x):
        """``x``: a tensor, or a list holding one, which it empties: an input that only the list holds is then freed
        once ``conv1`` and the adaptor have read it (exact kernels, 1080p: 0.48 GB of the 1.98 GB of tensors alive at a
        P-frame's peak, in the reconstruction U-Net's last block; ``of_cat``)."""
        if isinstance(x, list):
            x = x.pop()
        identity = x if self.adaptor is None else self.adaptor(x)
        out = self.conv1(x)
        del x
        out = self.depth_conv(out)
        return self.conv2(out).add_(identity)


class ConvRows(nn.Conv2d):
    """Output channels ``rows`` of the 1x1 convolution ``source``, on views of its weights taken at each call (so they
    follow it through loading and ``.to``): a convolution module of its own, which ptflops counts, with no parameters
    of its own, so that the state dict keeps the release's keys."""

    weight = property(lambda self: self.source[0].weight[self.rows])
    bias = property(lambda self: self.source[0].bias[self.rows])

    def __init__(self, source: nn.Conv2d, rows: slice):
        super().__init__(source.in_channels, rows.stop - rows.start, 1, device="meta")
        del self.weight, self.bias
        self.source, self.rows = [source], rows       # in a list: not a child module


class _FFN(nn.Module):
    """1x1 c→4c, halves (a, b) combined into a by the subclass's ``combine``, 1x1 2c→c, plus identity.

    Where the expansion would exceed ``SPLIT_ELEMENTS`` values, ``parts`` compute it as a, then b's two halves, each
    combined into a's matching channels: the whole expansion never exists, nor oneDNN's blocked copy of it that an
    NCHW convolution's output also needs while it runs (1080p, exact kernels: 2.8 GB of resident memory for the
    reconstruction U-Net's last block). Each output channel of a 1x1 convolution is computed the same way whatever
    the others, so the values are the whole convolution's (tests/test_fast.py)."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = conv(ch, ch * 4, 1)
        self.conv_out = conv(ch * 2, ch, 1)
        rows = ((0, 2), (2, 3), (3, 4))            # in units of ch: a, then b's two halves
        self.parts = nn.ModuleList(ConvRows(self.conv, slice(ch * lo, ch * hi)) for lo, hi in rows)

    def forward(self, x):
        if x[:, :1].numel() * self.conv.out_channels <= SPLIT_ELEMENTS:
            h = self.combine(*self.conv(x).chunk(2, 1))
        else:
            h = self.parts[0](x)
            n = h.shape[1] // 2
            for k, part in enumerate(self.parts[1:]):
                self.combine(h[:, k * n:(k + 1) * n], part(x))
        return self.conv_out(h).add_(x)


class _GatedFFN(_FFN):
    """Intra FFN: 1x1 c→4c, split (a, b), a·LReLU(0.1)(b), 1x1 2c→c, plus identity."""

    def __init__(self, ch: int):
        super().__init__(ch)
        self.relu = lrelu(0.1)

    def combine(self, a, b):
        return a.mul_(self.relu(b))


class _SumFFN(_FFN):
    """P-frame FFN3: 1x1 c→4c, split (a, b), LReLU(0.1)(a) + LReLU(0.01)(b), 1x1 2c→c, plus identity."""

    def __init__(self, ch: int):
        super().__init__(ch)
        self.relu1 = lrelu(0.1)
        self.relu2 = lrelu(0.01)

    def combine(self, a, b):
        return self.relu1(a).add_(self.relu2(b))


class _PlainFFN(nn.Module):
    """Non-gated FFN: 1x1 c→m → LReLU(0.1) → 1x1 m→c → LReLU(0.1), plus identity; m = max(min(4c,1024), 2c)."""

    def __init__(self, ch: int):
        super().__init__()
        mid = max(min(ch * 4, 1024), ch * 2)
        self.conv = nn.Sequential(conv(ch, mid, 1), lrelu(0.1), conv(mid, ch, 1), lrelu(0.1))

    def forward(self, x):
        return self.conv(x).add_(x)


class _DepthConvBlock(nn.Module):
    ffn: type
    pops_list = True       # its DepthConv takes the list holding its input (of_cat)

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.block = nn.Sequential(DepthConv(in_ch, out_ch), self.ffn(out_ch))

    def forward(self, x):
        return self.block(x)


class DCB(_DepthConvBlock):
    """Intra DepthConvBlock: DepthConv + gated FFN."""
    ffn = _GatedFFN


class DCB4(_DepthConvBlock):
    """P-frame DepthConvBlock4: DepthConv + FFN3 (sum of two leaky branches)."""
    ffn = _SumFFN


class DCBI(_DepthConvBlock):
    """DepthConvBlock_Inter: DepthConv + plain FFN."""
    ffn = _PlainFFN


# The context model's DepthConvBlock (entropy_models/context_model.py) has exactly DCBI's layout.
DCBC = DCBI


class ResBlk(nn.Module):
    """ResBlock_Inter: LReLU → 3x3 → LReLU → 3x3, plus identity."""

    def __init__(self, ch: int, slope: float = 0.01):
        super().__init__()
        self.conv1 = conv(ch, ch, 3)
        self.conv2 = conv(ch, ch, 3)
        self.first_layer = nn.LeakyReLU(slope)           # on the input, which the shortcut still needs
        self.relu = lrelu(slope)

    def forward(self, x):
        out = self.conv1(self.first_layer(x))
        return self.conv2(self.relu(out)).add_(x)


class RBI(nn.Module):
    """ResidualBlock_Inter: 3x3 → LReLU → 3x3 → LReLU, plus identity (1x1 ``adaptor`` when in != out)."""

    def __init__(self, in_ch: int, out_ch: int, slope: float = 0.01):
        super().__init__()
        self.conv1 = conv(in_ch, out_ch, 3)
        self.conv2 = conv(out_ch, out_ch, 3)
        self.adaptor = conv(in_ch, out_ch, 1) if in_ch != out_ch else None
        self.leaky_relu = lrelu(slope)

    def forward(self, x):
        identity = x if self.adaptor is None else self.adaptor(x)
        out = self.leaky_relu(self.conv1(x))
        return self.leaky_relu(self.conv2(out)).add_(identity)


class UNet(nn.Module):
    """Three-level U-Net of depth-conv blocks (``block`` = DCB for the intra coder, DCB4 for UNet2).

    Skips are concatenated before the upsampled path: cat(skip, up).
    """
    row_tiles = False      # the skip concatenations in row tiles (the fast kernels, hytip.fast)

    def __init__(self, in_ch: int, out_ch: int, block: type = DCB):
        super().__init__()
        self.conv1 = block(in_ch, 32)
        self.conv2 = block(32, 64)
        self.conv3 = block(64, 128)
        self.context_refine = nn.Sequential(*(block(128, 128) for _ in range(4)))
        self.up3 = subpel1(128, 64, 2)
        self.up_conv3 = block(128, 64)
        self.up2 = subpel1(64, 32, 2)
        self.up_conv2 = block(64, out_ch)
        self.max_pool = nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, inputs: list):
        """The U-Net of ``inputs`` [x], which it empties once read (1080p: the reconstruction net's 0.36 GB x).
        Each skip lives on in its concatenation only, and each intermediate goes once read (1080p: up to 0.5 GB)."""
        x1 = self.conv1(inputs.pop())
        skip = [self.conv2(self.max_pool(x1))]
        skip.append(self.up3(self.context_refine(self.conv3(self.max_pool(skip[0])))))
        skip = [x1, of_cat(self.up2, [of_cat(self.up_conv3, skip, self.row_tiles)], self.row_tiles)]
        del x1
        return of_cat(self.up_conv2, skip, self.row_tiles)


class UNet2(UNet):
    """The P-frame reconstruction U-Net: UNet built from DCB4."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(in_ch, out_ch, block=DCB4)


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``x`` by ``flow`` (pixels, channel 0 = x): bilinear, border padding, align_corners=True."""
    h, w = flow.shape[-2:]
    ys = torch.linspace(-1.0, 1.0, h, dtype=flow.dtype, device=flow.device)
    xs = torch.linspace(-1.0, 1.0, w, dtype=flow.dtype, device=flow.device)
    base = torch.stack((xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w)), dim=0).unsqueeze(0)
    # Normalised by the warped tensor's size (the official fallback does so; it equals the flow's size).
    scale = torch.tensor([(x.shape[-1] - 1.0) / 2.0, (x.shape[-2] - 1.0) / 2.0], dtype=flow.dtype,
                         device=flow.device)
    grid = (base + flow / scale.view(1, 2, 1, 1)).permute(0, 2, 3, 1)

    def sample(v):
        return F.grid_sample(v, grid, mode="bilinear", padding_mode="border", align_corners=True)

    if not (x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()):
        return sample(x)
    # In the input's layout: grid_sample writes NCHW, and the fast kernels' convolutions that read the warped features
    # run faster on NHWC (P-frame estimate 6 % faster at 448x256). Each channel is sampled on its own, so a few at a
    # time (about TILE_ELEMENTS values) give the same values with one NCHW copy of a few channels, not of all
    # (1080p: 0.36 GB for the full-resolution level).
    out = torch.empty_like(x)
    step = max(1, TILE_ELEMENTS // (x.shape[0] * h * w))
    for c in range(0, x.shape[1], step):
        out[:, c:c + step] = sample(x[:, c:c + step])
    return out
