"""SPyNet motion estimation (SPEC §3.1), the encoder-only ``MENet`` of HyTIP.

State-dict keys: ``net.mean``, ``net.std`` and ``net.Blocks.{0..4}.{0,2,4,6,8}.{weight,bias}``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from hytip.gop import pad_to_multiple
from hytip.layers import warp

LEVELS = 5
ALIGN = 2 ** (LEVELS - 1)  # each pyramid level halves the frame


def _refine_block() -> nn.Sequential:
    layers = []
    for c_in, c_out in ((8, 32), (32, 64), (64, 32), (32, 16)):
        layers += [nn.Conv2d(c_in, c_out, 7, padding=3), nn.ReLU(inplace=True)]
    layers.append(nn.Conv2d(16, 2, 7, padding=3))
    return nn.Sequential(*layers)


class SPyNet(nn.Module):
    """Coarse-to-fine residual flow over a 5-level average-pooling pyramid."""

    def __init__(self):
        super().__init__()
        self.Blocks = nn.ModuleList(_refine_block() for _ in range(LEVELS))
        # The release normalises RGB input with the ImageNet statistics in BGR order; the trained
        # weights expect exactly this (SPEC §8.7).
        self.register_buffer("mean", torch.tensor([0.406, 0.456, 0.485]).view(3, 1, 1))
        self.register_buffer("std", torch.tensor([0.225, 0.224, 0.229]).view(3, 1, 1))
        self.requires_grad_(False)

    def forward(self, ref: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        """Backward flow (cur ← ref) in pixels; H and W must be multiples of 16."""
        pyramid = [torch.cat(((cur - self.mean) / self.std, (ref - self.mean) / self.std), dim=1)]
        for _ in range(LEVELS - 1):
            pyramid.append(F.avg_pool2d(pyramid[-1], kernel_size=2))
        flow = torch.zeros_like(pyramid[-1][:, :2])
        for block, level in zip(self.Blocks, reversed(pyramid)):
            cur_l, ref_l = level.chunk(2, dim=1)
            flow = F.interpolate(flow, size=ref_l.shape[-2:], mode="bilinear", align_corners=False) * 2.0
            flow = block(torch.cat((cur_l, warp(ref_l, flow), flow), dim=1)) + flow
        return flow


class MotionEstimator(nn.Module):
    """``MENet``: SPyNet on frames replicate-padded to a multiple of 16, flow cropped back."""

    def __init__(self):
        super().__init__()
        self.net = SPyNet()

    def forward(self, ref: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        h, w = cur.shape[-2:]
        flow = self.net(pad_to_multiple(ref, ALIGN)[0], pad_to_multiple(cur, ALIGN)[0])
        return flow[..., :h, :w]
