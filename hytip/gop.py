"""The official coding order (HyTIP.py ``test_step``): frame plan, and padding to 16 with crop-back.

- A sequence is cut into GOPs of ``intra_period`` frames, each opened by an I-frame (``None``: one GOP).
  ``plan_frames`` keeps whole GOPs only (``seq_len // gop``), as the official loader does, unless
  ``keep_partial``; ``iter_plan`` is the same plan for a stream of unknown length.
- A listed scene cut (1-based frame number) is coded as an I-frame that resets every temporal buffer;
  ``frame_idx`` keeps counting from the GOP start, since it selects the frame-type adaptor.
- The first P-frame after any I-frame has no temporal prior (``predict=False``).
- ``ref_feature`` is dropped before a P-frame with ``frame_idx % reset_interval == 1``.
- Frames are coded replicate-padded right and bottom to a multiple of 16; the reconstruction is cropped back.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import HytipError

ALIGN_FACTOR = 16
GOP_SIZE = 32
RESET_INTERVAL = 32


class PlanError(HytipError):
    """Invalid frame-plan parameters."""


def padding(height: int, width: int, factor: int = ALIGN_FACTOR) -> tuple[int, int]:
    """(right, bottom): columns and rows that bring a height x width frame to multiples of `factor`."""
    return -width % factor, -height % factor


def pad_to_multiple(x: torch.Tensor, factor: int = ALIGN_FACTOR) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad a (N, C, H, W) tensor right and bottom to multiples of `factor`; returns (padded, (right, bottom))."""
    right, bottom = padding(*x.shape[-2:], factor)
    if right or bottom:
        x = F.pad(x, (0, right, 0, bottom), mode="replicate")
    return x, (right, bottom)


def unpad(x: torch.Tensor, pads: tuple[int, int]) -> torch.Tensor:
    """Undo `pad_to_multiple`: drop `pads` = (right, bottom) columns and rows."""
    right, bottom = pads
    return x[..., :x.shape[-2] - bottom, :x.shape[-1] - right]


@dataclass(frozen=True)
class FramePlan:
    number: int      # 1-based frame number in the sequence
    gop: int         # 0-based GOP index
    frame_idx: int   # position in its GOP (0 = the GOP's I-frame); selects the frame-type adaptor
    type: str        # 'I' or 'P'
    predict: bool    # P-frame uses the previous flow and temporal prior
    scene_cut: bool  # an I-frame inserted at a listed scene cut
    reset_ref_feature: bool  # P-frame at frame_idx % reset_interval == 1: ref_feature is dropped before coding


def _check(intra_period, scene_cuts, reset_interval) -> set[int]:
    if intra_period is not None and (isinstance(intra_period, bool) or int(intra_period) != intra_period
                                     or intra_period < 1):
        raise PlanError(f"frame plan: intra period must be an integer >= 1 or None, got {intra_period!r}")
    if reset_interval < 0:
        raise PlanError(f"frame plan: reset interval must be >= 0 (0: never), got {reset_interval}")
    cuts = set(scene_cuts)
    if any(c < 1 for c in cuts):
        raise PlanError(f"frame plan: scene cuts are 1-based frame numbers, got {sorted(cuts)}")
    return cuts


def iter_plan(intra_period: int | None = GOP_SIZE, scene_cuts: Iterable[int] = (), *,
              reset_interval: int = RESET_INTERVAL) -> Iterator[FramePlan]:
    """The plan of frames 1, 2, ... without end (intra_period None: one GOP)."""
    cuts = _check(intra_period, scene_cuts, reset_interval)
    for number in itertools.count(1):
        gop, frame_idx = (0, number - 1) if intra_period is None else divmod(number - 1, intra_period)
        cut = frame_idx > 0 and number in cuts
        if frame_idx == 0 or cut:
            yield FramePlan(number, gop, frame_idx, "I", False, cut, False)
        else:
            predict = frame_idx != 1 and (number - 1) not in cuts
            reset = reset_interval > 0 and frame_idx % reset_interval == 1
            yield FramePlan(number, gop, frame_idx, "P", predict, False, reset)


def plan_frames(num_frames: int, intra_period: int | None = GOP_SIZE, scene_cuts: Iterable[int] = (), *,
                keep_partial: bool = False, reset_interval: int = RESET_INTERVAL) -> list[FramePlan]:
    """The frame plan of the official test loop for the first `num_frames` frames of a sequence.

    intra_period None codes the frames as one GOP. scene_cuts are 1-based frame numbers.
    """
    if num_frames < 1:
        raise PlanError(f"frame plan: expected at least 1 frame, got {num_frames}")
    period = num_frames if intra_period is None else intra_period
    _check(period, scene_cuts, reset_interval)
    used = num_frames if keep_partial else period * (num_frames // period)
    if used == 0:
        raise PlanError(f"frame plan: {num_frames} frames hold no whole GOP of {period}; set keep_partial")
    return list(itertools.islice(iter_plan(intra_period, scene_cuts, reset_interval=reset_interval), used))
