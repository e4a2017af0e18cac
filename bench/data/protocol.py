"""The official test protocol: frame geometry (centre crop, padding) and the GOP / frame-type plan.

Read from the official test loop (HyTIP.py `test_step`, dataloader `VideoTestData`):
- every frame is centre-cropped to a multiple of 64 with torchvision's CenterCrop rule, top = round((H - h) / 2)
  with Python's round-half-to-even, and metrics are taken on the cropped frame;
- the cropped frame is padded right and bottom to a multiple of 16 by edge replication (a no-op after the crop),
  coded, and the reconstruction cropped back;
- the sequence is cut into independent GOPs of `intra_period` frames, each starting with an I-frame; a sequence that
  is not a whole number of GOPs loses its tail (seq_len // gop) unless keep_partial is set (the official full-sequence
  mode). Listed scene-cut frames (1-based) are coded as I-frames that reset all buffers; the first P-frame after any
  I-frame has no temporal prior (predict=False); `ref_feature` is dropped when frame_idx % 32 == 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.errors import InputError

# The frame plan and the padding are part of the codec's coding loop, so hytip owns them; bench uses them from here.
from hytip.gop import (
    ALIGN_FACTOR,
    GOP_SIZE,
    RESET_INTERVAL,
    FramePlan,
    PlanError,
    iter_plan,
    pad_to_multiple,
    plan_frames,
    unpad,
)

__all__ = ["ALIGN_FACTOR", "CROP_FACTOR", "GOP_SIZE", "RESET_INTERVAL", "TEST_FRAMES", "CropBox",
           "FramePlan", "PlanError", "centre_crop", "centre_crop_box", "iter_plan", "pad_to_multiple", "plan_frames",
           "unpad"]

CROP_FACTOR = 64
TEST_FRAMES = 96

@dataclass(frozen=True)
class CropBox:
    top: int
    left: int
    height: int
    width: int


def centre_crop_box(height: int, width: int, factor: int = CROP_FACTOR) -> CropBox:
    """The largest multiple-of-`factor` window, centred as torchvision's CenterCrop places it."""
    h, w = factor * (height // factor), factor * (width // factor)
    if h == 0 or w == 0:
        raise InputError(f"a {width}x{height} frame is smaller than the {factor}x{factor} crop unit")
    return CropBox(int(round((height - h) / 2.0)), int(round((width - w) / 2.0)), h, w)


def centre_crop(x: torch.Tensor, factor: int = CROP_FACTOR) -> torch.Tensor:
    """Crop the last two dimensions (..., H, W) with `centre_crop_box` (a view, no copy)."""
    box = centre_crop_box(x.shape[-2], x.shape[-1], factor)
    return x[..., box.top:box.top + box.height, box.left:box.left + box.width]
