"""What every codec of a sweep shares: the sequence it codes, the rate point, and the per-frame record it returns.

A codec (HyTIP, or a conventional encoder) codes one `SourceSpec` at one `RatePoint` under a `ColourSpec` and
returns a JSON-ready result: per-frame lists (number, type, bits, metrics, seconds) and their sequence averages,
both ways (`summarise`). The sweep turns that into a row of the results table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from bench.data.colour import ColourSpec, frame_to_rgb, rgb_to_yuv420
from bench.data.protocol import CROP_FACTOR, CropBox, centre_crop_box, plan_frames
from bench.data.readers import open_source
from bench.errors import InputError
from bench.measure.metrics import msssim_rgb, psnr_plane, psnr_rgb

YUV_WEIGHTS = (6, 1, 1)  # DCVC's (6Y + U + V) / 8
AVERAGING_TEXT = ("per sequence: mean over each GOP's frames, then over GOPs (the official code's rule); "
                  "*_from_mse: PSNR of the mean MSE over all frames")
PSNR_KEYS = ("psnr_rgb", "psnr_y", "psnr_u", "psnr_v")
AVERAGED = ("psnr", "msssim", "vmaf", "xpsnr")  # per-frame keys summarise averages (vmaf/xpsnr: when measured)


@dataclass(frozen=True)
class SourceSpec:
    """One sequence as the protocol codes it; picklable, so that a worker process can reopen the source."""

    dataset: str
    name: str
    path: str
    width: int
    height: int
    pix_fmt: str         # as open_source delivers it: yuv420p, yuv420p10le, rgb24, gbrp10le
    fps: float
    bit_depth: int
    rgb: bool            # an RGB source (PNG folder, gbrp10le)
    frames: int          # frames coded (the protocol's count)
    intra_period: int
    scene_cuts: tuple[int, ...]  # 1-based
    crop_multiple: int = CROP_FACTOR
    crop_size: tuple[int, int] | None = None  # (width, height): a centre crop of this size instead (the demo's)

    def open(self):
        return open_source(self.path, width=self.width, height=self.height, pix_fmt=self.pix_fmt, num_frames=self.frames)

    @property
    def crop(self) -> CropBox:
        if self.crop_size is None:
            return centre_crop_box(self.height, self.width, self.crop_multiple)
        w, h = self.crop_size
        if w > self.width or h > self.height:
            raise InputError(f"{self.path}: a {w}x{h} crop does not fit the {self.width}x{self.height} frame")
        return CropBox(int(round((self.height - h) / 2.0)), int(round((self.width - w) / 2.0)), h, w)

    @property
    def crop_text(self) -> str:
        return f"centre-{self.crop_multiple}" if self.crop_size is None else "centre-{}x{}".format(*self.crop_size)

    def plan(self):
        return plan_frames(self.frames, self.intra_period, self.scene_cuts)

    def segments(self) -> list[tuple[int, int]]:
        """(first frame 0-based, frame count) of each independently coded stream: from each I-frame to the next."""
        starts = [p.number - 1 for p in self.plan() if p.type == "I"]
        ends = starts[1:] + [len(self.plan())]
        return [(s, e - s) for s, e in zip(starts, ends)]

    def check(self) -> "SourceSpec":
        if self.frames < 1 or self.intra_period < 1 or self.frames % self.intra_period:
            raise InputError(f"{self.path}: {self.frames} frames must be a positive multiple of the intra period "
                             f"{self.intra_period} (the protocol codes whole GOPs only)")
        return self


@dataclass(frozen=True)
class RatePoint:
    """HyTIP: I-frame quality and P-frame QP index (0..63, higher is better); conventional codecs: qp only."""

    qp: int
    i_quality: int | None = None

    @property
    def label(self) -> str:
        return f"qp{self.qp}" if self.i_quality is None else f"i{self.i_quality}-qp{self.qp}"


@dataclass(frozen=True)
class RateAxis:
    """The integer a codec's rate points are made from: HyTIP's index (I-frame quality = P-frame QP index, more bits
    as it grows), an encoder's QP (fewer bits as it grows). Rate matching and dense curves walk along it."""

    low: int
    high: int
    more_bits_up: bool
    paired: bool = False     # HyTIP: the value is both the I-frame quality and the P-frame QP index

    def point(self, value: int) -> RatePoint:
        return RatePoint(value, value) if self.paired else RatePoint(value)

    def value(self, rate: RatePoint) -> int:
        return rate.qp

    def contains(self, value: int) -> bool:
        return self.low <= value <= self.high


class SequenceCodec(Protocol):
    """A codec of the sweep. `spec()` is a JSON dict that rebuilds it in a worker (bench.codecs.registry) and, with
    the checkpoint's or encoder's identity, keys its results; `check()` raises a BenchError naming what is missing."""

    name: str

    def spec(self) -> dict: ...

    def check(self) -> None: ...

    def code(self, source: SourceSpec, rate: RatePoint, colour: ColourSpec, *, rate_mode: str, work: str,
             store: str, device: str) -> dict: ...


# ---------------------------------------------------------------------------------------------------- measuring
def reference_rgb(frame, source: SourceSpec, spec: ColourSpec) -> torch.Tensor:
    """[3,h,w] RGB in [0,1] of one source frame as the codec sees it: converted whole, then cropped."""
    c = source.crop
    rgb = frame_to_rgb(frame, spec, bit_depth=source.bit_depth)
    return rgb[:, c.top:c.top + c.height, c.left:c.left + c.width]


def crop_planes(frame, crop: CropBox):
    """The crop window of a 4:2:0 frame's (y, u, v) planes; the chroma window covers every luma sample's chroma."""
    y, u, v = frame
    if crop.top % 2 or crop.left % 2:
        raise InputError(f"a 4:2:0 source cannot be cropped at an odd offset ({crop.left}, {crop.top}); "
                         "use --mode rgb444")
    h, w = slice(crop.top, crop.top + crop.height), slice(crop.left, crop.left + crop.width)
    ch = slice(crop.top // 2, (crop.top + crop.height + 1) // 2)
    cw = slice(crop.left // 2, (crop.left + crop.width + 1) // 2)
    return y[h, w], u[ch, cw], v[ch, cw]


def reference_planes(frame, rgb: torch.Tensor, source: SourceSpec, spec: ColourSpec):
    """The YUV 4:2:0 planes the reconstruction is measured against: the source's own cropped planes, or, for an RGB
    source (or an odd crop offset), the cropped RGB converted with the run's colour spec."""
    c = source.crop
    if isinstance(frame, tuple) and c.top % 2 == 0 and c.left % 2 == 0:
        return crop_planes(frame, c)
    return tuple(p.numpy() for p in rgb_to_yuv420(rgb, spec, bit_depth=source.bit_depth))


def frame_metrics(recon: torch.Tensor, ref_rgb: torch.Tensor, ref_planes, source: SourceSpec,
                  spec: ColourSpec) -> dict[str, float]:
    """PSNR-RGB and MS-SSIM-RGB of a [3,h,w] reconstruction, and PSNR of its Y, U, V after converting it back to
    YUV 4:2:0 with the run's colour spec (6:1:1 YUV)."""
    out = {"psnr_rgb": float(psnr_rgb(recon[None], ref_rgb[None].to(recon.device))[0]),
           "msssim_rgb": float(msssim_rgb(recon[None], ref_rgb[None].to(recon.device))[0])}
    peak = (1 << source.bit_depth) - 1
    planes = rgb_to_yuv420(recon.float().cpu(), spec, bit_depth=source.bit_depth)
    for name, got, ref in zip("yuv", planes, ref_planes):
        out[f"psnr_{name}"] = psnr_plane(got.numpy(), ref, peak)
    out["psnr_yuv"] = sum(w * out[f"psnr_{p}"] for w, p in zip(YUV_WEIGHTS, "yuv")) / sum(YUV_WEIGHTS)
    return out


# ---------------------------------------------------------------------------------------------------- averaging
def sequence_mean(values, gops) -> float | None:
    """The protocol's average: mean over each GOP's frames, then mean over GOPs (None where no frame has a value)."""
    series = pd.Series([math.nan if v is None else v for v in values], dtype=float)
    if series.isna().all():
        return None
    return float(series.groupby(list(gops)).mean().mean())


def psnr_from_mse(values) -> float | None:
    """PSNR of the mean MSE over frames, from per-frame PSNRs (the peak cancels)."""
    psnrs = np.array([v for v in values if v is not None], dtype=float)
    if not len(psnrs):
        return None
    return float(-10 * np.log10(np.mean(10 ** (-psnrs / 10))))


def json_number(value):
    """NaN (MS-SSIM of a frame under 161 pixels) is stored as null; an identical frame has no finite PSNR."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and math.isinf(value):
        raise ValueError("a decoded frame is identical to the source (infinite PSNR); use a coarser rate point")
    return value


def summarise(per_frame: dict[str, list], source: SourceSpec) -> dict[str, float | None]:
    """Sequence values of every per-frame metric, both ways (see AVERAGING_TEXT)."""
    gops = [p.gop for p in source.plan()]
    metrics = {k: json_number(sequence_mean(v, gops)) for k, v in per_frame.items()
               if k.startswith(AVERAGED)}
    for key in PSNR_KEYS:
        if key in per_frame:
            metrics[f"{key}_from_mse"] = json_number(psnr_from_mse(per_frame[key]))
    if all(metrics.get(f"psnr_{p}_from_mse") is not None for p in "yuv"):
        metrics["psnr_yuv_from_mse"] = sum(w * metrics[f"psnr_{p}_from_mse"]
                                           for w, p in zip(YUV_WEIGHTS, "yuv")) / sum(YUV_WEIGHTS)
    return metrics
