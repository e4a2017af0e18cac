"""Conventional encoders as sweep codecs, coded and measured in the same protocol as the HyTIP runs.

For each sequence, the protocol's first frames (96) are centre-cropped to a multiple of 64; every GOP of the frame
plan (intra period 32, plus the listed scene cuts as extra I-frames) is written as a headerless planar file in the
format the encoder takes and encoded as its own stream, so each starts with an intra frame that refreshes all
references, as the HyTIP test loop codes them; the streams are decoded and measured against the source:
- mode yuv420: the source's YUV 4:2:0 is coded; PSNR/MS-SSIM of Y, U, V (and 6:1:1 YUV) on the decoded planes, and
  PSNR-RGB / MS-SSIM-RGB after converting the decoded planes to RGB with the run's ColourSpec, against the RGB of the
  source converted with the same ColourSpec (whole frame, then cropped, as the HyTIP inputs are made);
- mode rgb444: the RGB the HyTIP run sees is converted to YUV 4:4:4 10-bit (the ColourSpec's matrix and range) and
  coded (DCVC's suggested RGB anchor); the decoded planes go back to RGB and only RGB metrics are taken.
Asked for (`metrics`), VMAF and XPSNR (bench.measure.video_metrics) are taken on the 4:2:0 planes the PSNR-Y/U/V
columns compare: the decoded planes at the source's depth against the cropped source planes; in mode rgb444, the
decoded RGB converted to YUV 4:2:0 with the run's ColourSpec against the source's planes, as for HyTIP.
bpp = bits / (cropped width * height * frames); kbps = bits * fps / frames / 1000. Each frame's bits (per_frame
"bits", display order) are its share of its GOP's stream, adding up to the stream's size (encoders.frame_bits); an
encoder output that does not give them (FrameSizesUnknown) leaves them out and says why in the result's
"frame_bits_unknown", since only frame-type BD-rate needs them. Each (encoder, sequence, rate)
is one resumable job of the sweep (bench.sweep); the encoder logs and bitstreams are kept under the output folder. Documented,
with the exact command lines, in anchors/GENERATION.md.
"""
from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bench.analysis.rd_schema import DCVC_YUV_WEIGHTS
from bench.codecs.base import (
    YUV_WEIGHTS,
    RateAxis,
    SourceSpec,
    crop_planes,
    json_number,
    reference_planes,
    reference_rgb,
    summarise,
)
from bench.codecs.encoders import EncoderFailed, FrameSizesUnknown, RawVideo, make_encoder
from bench.data.colour import (
    ColourSpec,
    rgb_to_yuv420,
    rgb_to_yuv444,
    yuv420_to_rgb,
    yuv444_to_rgb,
)
from bench.errors import InputError
from bench.measure.metrics import msssim_plane, msssim_rgb, psnr_plane, psnr_rgb
from bench.measure.video_metrics import FramePairs

MODES = ("yuv420", "rgb444")
DEFAULT_ENCODERS = ("x264", "x265", "svtav1", "vvenc")
CHUNK = 4  # frames measured at once; bounds memory at 1080p


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


# ---------------------------------------------------------------------------------------------------- encoder input
def input_format(encoder, mode: str, source_bits: int) -> str:
    """The raw format an encoder is fed: the source's own 4:2:0 depth where it takes it, else 10 bits."""
    return encoder.input_format("420" if mode == "yuv420" else "444", source_bits if mode == "yuv420" else 10)


def write_segment(reader, source: SourceSpec, mode: str, spec: ColourSpec, start: int, raw: RawVideo) -> None:
    """Write frames start .. start + raw.frames - 1 of the source, cropped and in raw.pix_fmt, to raw.path."""
    with open(raw.path, "wb") as out:
        for frame in reader.frames(start, raw.frames):
            if mode == "yuv420":
                for plane in crop_planes(frame, source.crop):
                    out.write(np.ascontiguousarray(_to_depth(plane, source.bit_depth, raw.bit_depth)).tobytes())
            else:
                codes = rgb_to_yuv444(reference_rgb(frame, source, spec), spec, bit_depth=10)
                out.write(torch.stack(codes).numpy().astype("<u2").tobytes())


# ---------------------------------------------------------------------------------------------------- metrics
def frame_sha256(planes) -> str:
    """sha256 of one decoded frame: its planes' bytes (Y, U, V) as `RawVideo.read` gives them, in the decoder's own
    format; the stream manifest's per-frame hash (per_frame "recon_sha256"), recomputed by bench.sweep.verify."""
    digest = hashlib.sha256()
    for plane in planes:
        digest.update(np.ascontiguousarray(plane).tobytes())
    return digest.hexdigest()


def measure(source: SourceSpec, decoded: RawVideo, mode: str, spec: ColourSpec,
            device: str = "cpu", pairs: FramePairs | None = None) -> dict[str, list[float]]:
    """Per-frame metrics of the decoded frames against the source, in the protocol (see the module docstring).
    MS-SSIM dominates the cost (seconds per 1080p frame on a CPU); `device` may be 'cuda'. `pairs` collects the
    4:2:0 frames that VMAF and XPSNR take."""
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
                refs.append(reference_rgb(frame, source, spec))
                got = decoded.read(i)
                if mode == "yuv420":
                    got = tuple(_to_depth(p, decoded.bit_depth, bits) for p in got)
                    src = crop_planes(frame, crop)
                    psnrs = [psnr_plane(a, b, peak) for a, b in zip(got, src)]
                    ssims = [msssim_plane(a, b, peak, device) for a, b in zip(got, src)]
                    for name, values in (("psnr", psnrs), ("msssim", ssims)):
                        for plane, value in zip("yuv", values):
                            per_frame[f"{name}_{plane}"].append(value)
                        per_frame[f"{name}_yuv"].append(sum(w * v for w, v in zip(YUV_WEIGHTS, values)) / sum(YUV_WEIGHTS))
                    outs.append(yuv420_to_rgb(*got, spec, bit_depth=bits))
                    if pairs:
                        pairs.add(got, src)
                else:
                    outs.append(yuv444_to_rgb(*got, spec, bit_depth=10))
                    if pairs:
                        pairs.add(rgb_to_yuv420(outs[-1], spec, bit_depth=bits),
                                  reference_planes(frame, refs[-1], source, spec))
            ref, out = torch.stack(refs).to(device), torch.stack(outs).to(device)
            per_frame["psnr_rgb"] += psnr_rgb(out, ref).tolist()
            per_frame["msssim_rgb"] += msssim_rgb(out, ref).tolist()
    return per_frame


# ---------------------------------------------------------------------------------------------------- the codec
@dataclass(frozen=True)
class ConventionalCodec:
    """A conventional encoder (bench.codecs.encoders) as a sweep codec: each GOP coded as its own stream, decoded,
    measured against the source (see the module docstring)."""

    encoder: str                 # a name of bench.codecs.encoders.ENCODERS
    mode: str = "yuv420"         # or rgb444
    options: tuple = ()          # (name, value) pairs for make_encoder: threads, VTM paths

    def __post_init__(self):
        if self.mode not in MODES:
            raise InputError(f"{self.encoder}: mode {self.mode!r} is not one of {', '.join(MODES)}")

    @property
    def backend(self):
        return make_encoder(self.encoder, **dict(self.options))

    @property
    def name(self) -> str:
        return self.backend.codec

    @property
    def default_rates(self) -> tuple[int, ...]:
        return self.backend.default_rates

    @property
    def rate_axis(self) -> RateAxis:
        return RateAxis(*self.backend.qp_range, more_bits_up=False)

    def spec(self) -> dict:
        return {"kind": "conventional", "encoder": self.encoder, "mode": self.mode, "options": dict(self.options)}

    def identity(self) -> dict:
        """What the results depend on (the job key's configuration hash)."""
        return {**self.spec(), "config": self.backend.describe()}

    def check(self) -> None:
        self.backend.check()

    def check_source(self, source: SourceSpec) -> None:
        if self.mode == "yuv420" and source.rgb:
            raise InputError(f"{source.path}: mode yuv420 codes a YUV 4:2:0 source, this one is "
                             f"{source.pix_fmt}; use --mode rgb444 (mode: rgb444 in a sweep config)")

    def code(self, source: SourceSpec, rate, spec: ColourSpec, *, rate_mode: str, folders: dict,
             device: str = "cpu", metrics: tuple = ()) -> dict:
        """Encode, decode and measure one rate point of one sequence; `folders`: work, logs, bitstreams; `metrics`:
        VMAF and/or XPSNR besides (bench.measure.video_metrics.VIDEO_METRICS)."""
        if rate_mode != "real":
            raise InputError(f"{self.encoder}: a conventional encoder has no estimated rate mode; use rate mode real")
        self.check_source(source)
        enc, src, mode = self.backend, source, self.mode
        crop = src.crop
        # The layout of what the encoder is fed; each GOP stream gets its own file of this layout.
        raw = RawVideo(Path(folders["work"]) / "sequence.yuv", crop.width, crop.height,
                       input_format(enc, mode, src.bit_depth), src.frames, src.fps)
        logs, bitstreams, work = (Path(folders[k]) for k in ("logs", "bitstreams", "work"))
        for folder in (logs, bitstreams):
            folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)  # leftovers of a killed attempt
        work.mkdir(parents=True)
        decoded_path = work / "decoded.yuv"
        segments, bits, versions, frame_bits, unknown = [], 0, set(), [], None
        try:
            with open(decoded_path, "wb") as decoded_all, src.open() as reader:
                for k, (start, count) in enumerate(src.segments()):
                    seg = replace(raw, path=work / f"seg{k:02d}.yuv", frames=count)
                    write_segment(reader, src, mode, spec, start, seg)
                    started = time.perf_counter()
                    coded = enc.encode(seg, rate.qp, bitstreams / f"seg{k:02d}{enc.suffix}",
                                       logs / f"seg{k:02d}.encode.log")
                    encoded = time.perf_counter()
                    try:
                        sizes = enc.frame_bits(coded.bitstream, coded.log)
                    except FrameSizesUnknown as exc:
                        unknown = str(exc)
                    else:
                        if len(sizes) != count:
                            raise EncoderFailed(f"{coded.bitstream}: {len(sizes)} frames found, {count} coded")
                        frame_bits += sizes
                    out = enc.decode(coded.bitstream, seg, work / f"seg{k:02d}.decoded.yuv",
                                     logs / f"seg{k:02d}.decode.log")
                    decoded_at = time.perf_counter()
                    with open(out.path, "rb") as part:
                        shutil.copyfileobj(part, decoded_all)
                    seg.path.unlink()
                    out.path.unlink()
                    bits += coded.bits
                    versions.add(coded.version)
                    segments.append({"first_frame": start + 1, "frames": count, "bits": coded.bits,
                                     "bitstream": str(coded.bitstream),
                                     "sha256": hashlib.sha256(coded.bitstream.read_bytes()).hexdigest(),
                                     "command": list(coded.command),
                                     "encoder_log": str(coded.log), "reported": coded.reported,
                                     "enc_seconds": encoded - started, "dec_seconds": decoded_at - encoded})
            decoded = replace(raw, path=decoded_path, pix_fmt=out.pix_fmt)
            decoded.check_size()
            pairs = FramePairs(crop.width, crop.height, src.bit_depth, src.fps, folder=work) if metrics else None
            per_frame = measure(src, decoded, mode, spec, device, pairs)
            scores = pairs.measure(metrics, enc.threads) if pairs else None
            per_frame.update(scores.per_frame if scores else {})
            recon_sha256 = [frame_sha256(decoded.read(i)) for i in range(src.frames)]
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if len(versions) != 1:
            raise RuntimeError(f"{enc.name}: segments report different versions {sorted(versions)}")
        pixels = raw.width * raw.height * src.frames
        plan = src.plan()
        per_frame = {"number": [p.number for p in plan], "type": [p.type for p in plan],
                     **({} if unknown else {"bits": frame_bits}),
                     **{k: [json_number(x) for x in v] for k, v in per_frame.items()}, "recon_sha256": recon_sha256}
        ffmpeg = {s["reported"].get("ffmpeg") for s in segments} - {None}
        config = enc.describe() + (f" (ffmpeg {ffmpeg.pop()})" if ffmpeg else "")
        return {
            "encoder": enc.name, "codec": enc.codec, "version": versions.pop(), "config": config,
            "rate": rate.qp, "mode": mode, "input_format": raw.pix_fmt, "bits": bits, "bpp": bits / pixels,
            "kbps": bits * src.fps / src.frames / 1000, "width": raw.width, "height": raw.height,
            "frames": src.frames, "metrics": summarise(per_frame, src), "per_frame": per_frame,
            "segments": segments, "enc_seconds": sum(s["enc_seconds"] for s in segments),
            "dec_seconds": sum(s["dec_seconds"] for s in segments), "decode_check": "n/a",
            "command": " ; ".join(" ".join(s["command"]) for s in segments[:1]),
            "yuv_weights": DCVC_YUV_WEIGHTS if mode == "yuv420" else "",
            **({"frame_bits_unknown": unknown} if unknown else {}),
            **({"video_metrics": scores.record()} if scores else {}),
        }
