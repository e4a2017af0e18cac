"""`run_bench.py anchors`: conventional-codec anchors coded and measured in the same protocol as the HyTIP runs.

For each sequence, the protocol's first frames (96) are centre-cropped to a multiple of 64; every GOP of the frame
plan (intra period 32, plus the listed scene cuts as extra I-frames) is written as a headerless planar file in the
format the encoder takes and encoded as its own stream, so each starts with an intra frame that refreshes all
references, as the HyTIP test loop codes them; the streams are decoded and measured against the source:
- mode yuv420: the source's YUV 4:2:0 is coded; PSNR/MS-SSIM of Y, U, V (and 6:1:1 YUV) on the decoded planes, and
  PSNR-RGB / MS-SSIM-RGB after converting the decoded planes to RGB with the run's ColourSpec, against the RGB of the
  source converted with the same ColourSpec (whole frame, then cropped, as the HyTIP inputs are made);
- mode rgb444: the RGB the HyTIP run sees is converted to YUV 4:4:4 10-bit (the ColourSpec's matrix and range) and
  coded (DCVC's suggested RGB anchor); the decoded planes go back to RGB and only RGB metrics are taken.
bpp = bits / (cropped width * height * frames); kbps = bits * fps / frames / 1000. Each (encoder, sequence, rate)
is one resumable job of bench.sweep.jobs; the encoder logs and bitstreams are kept under the output folder. Documented,
with the exact command lines, in anchors/GENERATION.md.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.codecs.encoders import RawVideo, make_encoder
from bench.data.colour import (
    ColourSpec,
    frame_to_rgb,
    rgb_to_yuv444,
    yuv420_to_rgb,
    yuv444_to_rgb,
)
from bench.data.protocol import CROP_FACTOR, centre_crop_box, plan_frames
from bench.data.readers import open_source
from bench.errors import InputError
from bench.measure.metrics import msssim_plane, msssim_rgb, psnr_plane, psnr_rgb

MODES = ("yuv420", "rgb444")
DEFAULT_ENCODERS = ("x264", "x265", "svtav1", "vvenc")
CHUNK = 4  # frames measured at once; bounds memory at 1080p
YUV_WEIGHTS = (6, 1, 1)  # DCVC's (6Y + U + V) / 8


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
    rgb: bool            # an RGB source (PNG folder, gbrp10le): only mode rgb444 applies
    frames: int          # frames coded (the protocol's count)
    intra_period: int
    scene_cuts: tuple[int, ...]  # 1-based

    def open(self):
        return open_source(self.path, width=self.width, height=self.height, pix_fmt=self.pix_fmt, num_frames=self.frames)

    @property
    def crop(self):
        return centre_crop_box(self.height, self.width, CROP_FACTOR)

    def plan(self):
        return plan_frames(self.frames, self.intra_period, self.scene_cuts)

    def segments(self) -> list[tuple[int, int]]:
        """(first frame 0-based, frame count) of each independently coded stream: from each I-frame to the next."""
        starts = [p.number - 1 for p in self.plan() if p.type == "I"]
        ends = starts[1:] + [len(self.plan())]
        return [(s, e - s) for s, e in zip(starts, ends)]


# ---------------------------------------------------------------------------------------------------- colour helpers
def _to_depth(plane: np.ndarray, src_bits: int, dst_bits: int) -> np.ndarray:
    """Change sample depth as VTM does: left shift up, round-half-up right shift down, clipped."""
    if src_bits == dst_bits:
        return plane
    if dst_bits > src_bits:
        return plane.astype("<u2") << (dst_bits - src_bits)
    shift = src_bits - dst_bits
    down = (plane.astype(np.int32) + (1 << (shift - 1))) >> shift
    return np.clip(down, 0, (1 << dst_bits) - 1).astype(np.uint8 if dst_bits == 8 else "<u2")


def _reference_rgb(frame, source_bits: int, spec: ColourSpec, crop) -> torch.Tensor:
    """[3,h,w] RGB in [0,1] of one source frame as the HyTIP run sees it: converted whole, then cropped."""
    rgb = frame_to_rgb(frame, spec, bit_depth=source_bits)
    return rgb[:, crop.top:crop.top + crop.height, crop.left:crop.left + crop.width]


def _crop_planes(frame, crop):
    y, u, v = frame
    if crop.top % 2 or crop.left % 2:
        raise InputError(f"a 4:2:0 source cannot be cropped at an odd offset ({crop.left}, {crop.top}); "
                         "use --mode rgb444")
    c = (slice(crop.top // 2, (crop.top + crop.height) // 2), slice(crop.left // 2, (crop.left + crop.width) // 2))
    return (y[crop.top:crop.top + crop.height, crop.left:crop.left + crop.width], u[c], v[c])


# ---------------------------------------------------------------------------------------------------- encoder input
def input_format(encoder, mode: str, source_bits: int) -> str:
    """The raw format an encoder is fed: the source's own 4:2:0 depth where it takes it, else 10 bits."""
    return encoder.input_format("420" if mode == "yuv420" else "444", source_bits if mode == "yuv420" else 10)


def write_segment(reader, source: SourceSpec, mode: str, spec: ColourSpec, start: int, raw: RawVideo) -> None:
    """Write frames start .. start + raw.frames - 1 of the source, cropped and in raw.pix_fmt, to raw.path."""
    with open(raw.path, "wb") as out:
        for frame in reader.frames(start, raw.frames):
            if mode == "yuv420":
                for plane in _crop_planes(frame, source.crop):
                    out.write(np.ascontiguousarray(_to_depth(plane, source.bit_depth, raw.bit_depth)).tobytes())
            else:
                codes = rgb_to_yuv444(_reference_rgb(frame, source.bit_depth, spec, source.crop), spec, bit_depth=10)
                out.write(torch.stack(codes).numpy().astype("<u2").tobytes())


# ---------------------------------------------------------------------------------------------------- metrics
def measure(source: SourceSpec, decoded: RawVideo, mode: str, spec: ColourSpec,
            device: str = "cpu") -> dict[str, list[float]]:
    """Per-frame metrics of the decoded frames against the source, in the protocol (see the module docstring).
    MS-SSIM dominates the cost (seconds per 1080p frame on a CPU); `device` may be 'cuda'."""
    crop = source.crop
    per_frame: dict[str, list[float]] = {"psnr_rgb": [], "msssim_rgb": []}
    if mode == "yuv420":
        for key in ("psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "msssim_y", "msssim_u", "msssim_v", "msssim_yuv"):
            per_frame[key] = []
    with source.open() as reader:
        bits = reader.bit_depth
        peak = (1 << bits) - 1
        frames = reader.frames(0, source.frames)
        for start in range(0, source.frames, CHUNK):
            count = min(CHUNK, source.frames - start)
            refs, outs = [], []
            for i in range(start, start + count):
                frame = next(frames)
                refs.append(_reference_rgb(frame, bits, spec, crop))
                got = decoded.read(i)
                if mode == "yuv420":
                    got = tuple(_to_depth(p, decoded.bit_depth, bits) for p in got)
                    src = _crop_planes(frame, crop)
                    psnrs = [psnr_plane(a, b, peak) for a, b in zip(got, src)]
                    ssims = [msssim_plane(a, b, peak, device) for a, b in zip(got, src)]
                    for name, values in (("psnr", psnrs), ("msssim", ssims)):
                        for plane, value in zip("yuv", values):
                            per_frame[f"{name}_{plane}"].append(value)
                        per_frame[f"{name}_yuv"].append(sum(w * v for w, v in zip(YUV_WEIGHTS, values)) / sum(YUV_WEIGHTS))
                    outs.append(yuv420_to_rgb(*got, spec, bit_depth=bits))
                else:
                    outs.append(yuv444_to_rgb(*got, spec, bit_depth=10))
            ref, out = torch.stack(refs).to(device), torch.stack(outs).to(device)
            per_frame["psnr_rgb"] += psnr_rgb(out, ref).tolist()
            per_frame["msssim_rgb"] += msssim_rgb(out, ref).tolist()
    return per_frame


def sequence_mean(values: list[float], gops: list[int]) -> float:
    """The protocol's average: mean over each GOP's frames, then mean over GOPs."""
    series = pd.Series(values, dtype=float)
    return float(series.groupby(gops).mean().mean())


def _json_number(value: float) -> float | None:
    """NaN (MS-SSIM of a frame under 161 pixels) is stored as null; an identical frame's PSNR has no finite value."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise ValueError("a decoded frame is identical to the source (infinite PSNR); use a coarser QP")
    return value


# ---------------------------------------------------------------------------------------------------- one job
def encode_point(*, encoder: dict, source: dict, mode: str, colour: dict, rate: int, logs: str, bitstreams: str,
                 work: str, device: str = "cpu") -> dict:
    """Encode, decode and measure one rate point of one sequence (a bench.sweep.jobs job function)."""
    enc = make_encoder(encoder["name"], **encoder["options"])
    src = SourceSpec(**{**source, "scene_cuts": tuple(source["scene_cuts"])})
    spec = ColourSpec(**colour)
    crop = src.crop
    # The layout of what the encoder is fed; each GOP stream gets its own file of this layout.
    raw = RawVideo(Path(work) / "sequence.yuv", crop.width, crop.height, input_format(enc, mode, src.bit_depth),
                   src.frames, src.fps)
    logs, bitstreams, work = Path(logs), Path(bitstreams), Path(work)
    for folder in (logs, bitstreams):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)  # leftovers of a killed attempt
    work.mkdir(parents=True)
    decoded_path = work / "decoded.yuv"
    segments, bits, versions = [], 0, set()
    try:
        with open(decoded_path, "wb") as decoded_all, src.open() as reader:
            for k, (start, count) in enumerate(src.segments()):
                seg = replace(raw, path=work / f"seg{k:02d}.yuv", frames=count)
                write_segment(reader, src, mode, spec, start, seg)
                coded = enc.encode(seg, rate, bitstreams / f"seg{k:02d}{enc.suffix}", logs / f"seg{k:02d}.encode.log")
                out = enc.decode(coded.bitstream, seg, work / f"seg{k:02d}.decoded.yuv", logs / f"seg{k:02d}.decode.log")
                with open(out.path, "rb") as part:
                    shutil.copyfileobj(part, decoded_all)
                seg.path.unlink()
                out.path.unlink()
                bits += coded.bits
                versions.add(coded.version)
                segments.append({"first_frame": start + 1, "frames": count, "bits": coded.bits,
                                 "bitstream": str(coded.bitstream), "command": list(coded.command),
                                 "encoder_log": str(coded.log), "reported": coded.reported})
        decoded = replace(raw, path=decoded_path, pix_fmt=out.pix_fmt)
        decoded.check_size()
        per_frame = measure(src, decoded, mode, spec, device)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(versions) != 1:
        raise RuntimeError(f"{enc.name}: segments report different versions {sorted(versions)}")
    gops = [p.gop for p in src.plan()]
    pixels = raw.width * raw.height * src.frames
    return {
        "encoder": enc.name, "codec": enc.codec, "version": versions.pop(), "config": enc.describe(), "rate": rate,
        "mode": mode, "input_format": raw.pix_fmt, "bits": bits, "bpp": bits / pixels,
        "kbps": bits * src.fps / src.frames / 1000, "width": raw.width, "height": raw.height, "frames": src.frames,
        "metrics": {k: _json_number(sequence_mean(v, gops)) for k, v in per_frame.items()},
        "per_frame": {k: [_json_number(x) for x in v] for k, v in per_frame.items()},
        "segments": segments,
    }
