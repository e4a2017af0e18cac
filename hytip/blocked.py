"""The exact kernels on the CPU with the activations inside a block in oneDNN's blocked layout: the same values, faster.

On the CPU torch runs a float32 convolution through oneDNN (where it selects that backend) by reordering the NCHW
input into oneDNN's blocked layout (nChw16c), computing there and reordering the output back to NCHW: the values are
the blocked kernel's. Inside a block (a depth-conv block and its FFN, a ResBlk, an RBI, SPyNet's refinement stack)
the activations can stay blocked from one convolution to the next (torch's ``_mkldnn`` tensors), with each leaky
ReLU applied by the convolution that produces its input (a oneDNN post-op on each output value, as the separate
operation would): the same kernels on the same values, without two reorders and a pass over memory per
convolution, so bit for bit the NCHW model's values (tests/test_blocked.py) at 1.4-2x the speed per depth-conv block.
The copy's pixel shuffles are one strided copy each (``_PixelShuffle``).

Only where torch itself would run every convolution of the block through oneDNN for that input
(``torch._C._select_conv_backend``): it runs 1x1 convolutions through its own GEMM with one thread and on small
inputs, whose values differ in the last bits; such a block runs as it is. On CUDA and in float64 every block runs
as it is. The codec's exact kernels run ``blocked_model`` on the CPU; the model itself keeps the release's modules.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import ResBlk, RBI, _DepthConvBlock, _GatedFFN, _PlainFFN, _SumFFN


def _conv(x: torch.Tensor, conv: nn.Conv2d, slope: float | None = None, rows: slice = slice(None)) -> torch.Tensor:
    """Output channels ``rows`` of ``conv`` of the blocked ``x`` (blocked out), then a leaky ReLU of ``slope`` (0:
    ReLU) as oneDNN's post-op. Each output channel is computed the same way whatever the others."""
    attr, scalars = ("none", []) if slope is None else ("relu", []) if slope == 0 else ("leaky_relu", [slope])
    bias = None if conv.bias is None else conv.bias[rows]
    return torch.ops.mkldnn._convolution_pointwise(x, conv.weight[rows], bias, list(conv.padding),
                                                   list(conv.stride), list(conv.dilation), conv.groups, attr,
                                                   scalars, "")


def _ffn(ffn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(ffn, _PlainFFN):
        c1, r1, c2, r2 = ffn.conv
        return _conv(_conv(x, c1, r1.negative_slope), c2, r2.negative_slope).add_(x)
    # The expansion's halves (a, b) as two convolutions: blocked tensors have no channel views.
    n, conv = ffn.conv.out_channels // 2, ffn.conv
    a, b = slice(0, n), slice(n, 2 * n)
    if isinstance(ffn, _SumFFN):
        h = _conv(x, conv, ffn.relu1.negative_slope, a).add_(_conv(x, conv, ffn.relu2.negative_slope, b))
    else:
        h = _conv(x, conv, None, a).mul_(_conv(x, conv, ffn.relu.negative_slope, b))
    return _conv(h, ffn.conv_out).add_(x)


def _depth_conv_block(block: _DepthConvBlock, xs: list) -> torch.Tensor:
    dc, ffn = block.block
    x = xs.pop()
    identity = x if dc.adaptor is None else _conv(x, dc.adaptor)
    out = _conv(_conv(x, dc.conv1[0], dc.conv1[1].negative_slope), dc.depth_conv)
    del x
    out = _conv(out, dc.conv2).add_(identity)
    del identity
    return _ffn(ffn, out)


def _rbi(block: RBI, xs: list) -> torch.Tensor:
    x = xs.pop()
    identity = x if block.adaptor is None else _conv(x, block.adaptor)
    slope = block.leaky_relu.negative_slope
    return _conv(_conv(x, block.conv1, slope), block.conv2, slope).add_(identity)


def _stack(seq: nn.Sequential, xs: list) -> torch.Tensor:
    """Convolutions each followed by its ReLU or leaky ReLU, or by none."""
    x, layers = xs.pop(), list(seq)
    for k, layer in enumerate(layers):
        if isinstance(layer, nn.Conv2d):
            act = layers[k + 1] if k + 1 < len(layers) else None
            slope = 0 if isinstance(act, nn.ReLU) else getattr(act, "negative_slope", None)
            x = _conv(x, layer, slope)
    return x


def _nchw(run):
    """``run`` (blocked in and out) on an NCHW input held by a list, NCHW out."""
    def nchw(body: nn.Module, xs: list) -> torch.Tensor:
        xs.append(xs.pop().to_mkldnn())   # the NCHW input freed here where only the caller's list held it
        return run(body, xs).to_dense()
    return nchw


def _resblk(block: ResBlk, xs: list) -> torch.Tensor:
    """ResBlk: its first leaky ReLU (on the input, which the shortcut still needs) in NCHW."""
    x = xs.pop()
    slope = block.relu.negative_slope
    out = _conv(_conv(F.leaky_relu(x, block.first_layer.negative_slope).to_mkldnn(), block.conv1, slope), block.conv2)
    return out.to_dense().add_(x)


def _blocked_kind(module: nn.Module):
    """How ``module`` runs blocked, NCHW in (held by a list) and out; None for a module that cannot."""
    if isinstance(module, _DepthConvBlock) and isinstance(module.block[1], (_SumFFN, _GatedFFN, _PlainFFN)):
        return _nchw(_depth_conv_block)
    if isinstance(module, RBI):
        return _nchw(_rbi)
    if isinstance(module, ResBlk):
        return _resblk
    if (isinstance(module, nn.Sequential) and len(module) > 2
            and all(isinstance(m, (nn.Conv2d, nn.ReLU, nn.LeakyReLU)) for m in module)
            and all(isinstance(m, nn.Conv2d) == (k % 2 == 0) for k, m in enumerate(module))):
        return _nchw(_stack)
    return None


# Inputs of more values than this run as they are (1080p: the full- and half-resolution blocks), for the memory: an
# FFN's expansion then stays within hytip.layers.SPLIT_ELEMENTS (above it the NCHW model computes it in parts, which
# blocked tensors, having no channel views, cannot), and the check of a shape's first input, which computes both
# ways, holds at most one more output of 64 MiB.
BLOCKED_ELEMENTS = 1 << 24
# torch builds with oneDNN and the backend query (x86-64 and most others)
ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch._C, "_select_conv_backend")


class Blocked(nn.Module):
    """``body`` (NCHW in and out) with its activations in oneDNN's blocked layout inside. The first call at each
    input shape (and thread count) computes both ways and keeps the blocked way for that shape only if its output
    equals the NCHW way's bit for bit: which kernel oneDNN runs depends on the input's layout as well as on the
    shapes, the CPU and the threads (on this machine one 1x1 convolution of 64 -> 128 channels at 16x28 pixels gave
    other values in blocked layout). It runs as it is where torch would not run all its convolutions through oneDNN
    (``torch._C._select_conv_backend``), on CUDA, in float64 and above BLOCKED_ELEMENTS input values. Takes a tensor,
    or a list holding one, which it empties (``hytip.layers.of_cat``: the input is then freed once read)."""
    pops_list = True

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body
        self._run = _blocked_kind(body)
        self._convs = [m for m in body.modules() if isinstance(m, nn.Conv2d)]
        self.verified: dict = {}          # (input shape, threads) -> whether the blocked way gave the same values

    def forward(self, x):
        xs = x if isinstance(x, list) else [x]
        del x         # no reference of its own: a depth-conv block frees an input that only the list holds (of_cat)
        key = (tuple(xs[0].shape), torch.get_num_threads())
        if key not in self.verified and not self._eligible(xs[0]):
            self.verified[key] = False
        if not self.verified.get(key, True):
            return self.body(xs if getattr(self.body, "pops_list", False) else xs.pop())
        if key not in self.verified:
            out = self.body(xs[0])        # reads its input, writes only tensors of its own
            self.verified[key] = torch.equal(out, self._run(self.body, xs))
            return out
        return self._run(self.body, xs)

    def _eligible(self, x: torch.Tensor) -> bool:
        return (ONEDNN and x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4
                and x.is_contiguous() and x.numel() <= BLOCKED_ELEMENTS and _all_onednn(self._convs, x))


def _all_onednn(convs: list, x: torch.Tensor) -> bool:
    """Whether torch would run each of ``convs`` (in the order they run, each on the last one's output; the
    shortcuts' 1x1 adaptors keep the size) through oneDNN, with ``x`` as the first one's input."""
    n, _, h, w = x.shape
    for conv in convs:
        probe = x.new_empty(1).expand(n, conv.in_channels, h, w)     # no memory: only the sizes count
        if torch._C._select_conv_backend(probe, conv.weight, conv.bias, list(conv.stride), list(conv.padding),
                                         list(conv.dilation), False, [0, 0], conv.groups,
                                         None) != torch._C._ConvBackend.Mkldnn:
            return False
        (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
        h, w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    return True


def blocked_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` that shares its weights, with its blocks wrapped in ``Blocked``."""
    blocked = copy.deepcopy(model, memo={id(t): t for t in (*model.parameters(), *model.buffers())})
    _wrap(blocked)
    return blocked


def _wrap(module: nn.Module) -> None:
    for name, child in module.named_children():
        if _blocked_kind(child) is not None:
            setattr(module, name, Blocked(child))
        elif type(child) is nn.PixelShuffle:
            setattr(module, name, _PixelShuffle(child.upscale_factor))
        else:
            _wrap(child)


class _PixelShuffle(nn.PixelShuffle):
    """A pixel shuffle of an NCHW tensor as one strided copy: torch's own kernel moves one value at a time (4x slower
    at 448x256, 35 ms of an exact P-frame); a permutation either way, so the same values."""

    def forward(self, x):
        if not x.is_contiguous():
            return super().forward(x)
        (n, c, h, w), r = x.shape, self.upscale_factor
        return x.view(n, c // r ** 2, r, r, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c // r ** 2, h * r, w * r)
