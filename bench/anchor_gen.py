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
is one resumable job of bench.jobs; the encoder logs and bitstreams are kept under the output folder. Documented,
with the exact command lines, in anchors/GENERATION.md.
"""
from __future__ import annotations

import argparse
import math
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.anchors import DCVC_YUV_WEIGHTS, write_rd_csv
from bench.catalog import COLOR_TRANSFORMS, load_catalog
from bench.clips import bundled_clip_path
from bench.colour import ColourSpec, frame_to_rgb, rgb_to_yuv444, yuv420_to_rgb, yuv444_to_rgb
from bench.encoders import ENCODERS, RawVideo, make_encoder
from bench.errors import InputError
from bench.jobs import Job, job_key, run_jobs
from bench.metrics import msssim_plane, msssim_rgb, psnr_plane, psnr_rgb
from bench.protocol import CROP_FACTOR, GOP_SIZE, TEST_FRAMES, centre_crop_box, plan_frames
from bench.readers import open_source

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
    """Encode, decode and measure one rate point of one sequence (a bench.jobs job function)."""
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


# ---------------------------------------------------------------------------------------------------- the run
def _sources(args) -> list[SourceSpec]:
    if args.input:
        path = bundled_clip_path() if args.input == "bundled" else Path(args.input)
        with open_source(path, width=args.width, height=args.height, pix_fmt=args.pix_fmt) as probe:
            fps = args.fps or probe.fps
            if not fps:
                raise InputError(f"{path}: the file states no frame rate; pass --fps")
            return [_checked(SourceSpec(
                args.dataset_label, args.name or path.stem, str(path), probe.width, probe.height, probe.pix_fmt,
                float(fps), probe.bit_depth, not probe.is_yuv, args.frames or TEST_FRAMES,
                args.intra_period or GOP_SIZE, tuple(args.scene_cuts)), args.mode)]
    if not args.dataset:
        raise InputError("anchors: give --dataset (catalogued test sets under --data-root) or --input FILE")
    catalog = load_catalog(args.catalog)
    specs = []
    for located in catalog.resolve(args.dataset, args.sequences or None, data_root=args.data_root):
        seq = located.sequence
        frames = args.frames or seq.protocol.frames
        cuts = () if args.no_scene_cuts else tuple(c for c in seq.scene_cuts if c <= frames)
        specs.append(_checked(SourceSpec(
            seq.dataset, seq.name, str(located.path), seq.width, seq.height, seq.pix_fmt, float(seq.fps),
            seq.bit_depth, seq.is_rgb or seq.chroma != "420", frames, args.intra_period or seq.protocol.intra_period,
            cuts), args.mode))
    return specs


def _checked(source: SourceSpec, mode: str) -> SourceSpec:
    if source.frames < 1 or source.intra_period < 1 or source.frames % source.intra_period:
        raise InputError(f"{source.path}: {source.frames} frames must be a positive multiple of the intra period "
                         f"{source.intra_period} (the protocol codes whole GOPs only)")
    if mode == "yuv420" and source.rgb:
        raise InputError(f"{source.path}: mode yuv420 codes a YUV 4:2:0 source, this one is "
                         f"{source.pix_fmt}; use --mode rgb444")
    return source


def _csv_row(result: dict, source: SourceSpec, spec: ColourSpec, color_transform: str, record: str) -> dict:
    row = {"codec": result["codec"], "codec_version": result["version"],
           "codec_config": f"{result['mode']}: {result['config']}", "dataset": source.dataset, "sequence": source.name,
           "color_transform": color_transform, "frames": result["frames"], "intra_period": source.intra_period,
           "crop": f"centre-{CROP_FACTOR}", "width": result["width"], "height": result["height"],
           "input_format": source.pix_fmt, "color_matrix": spec.matrix, "color_range": spec.range,
           "color_filter": spec.filter,
           "rate_point": f"qp{result['rate']}", "bpp": result["bpp"], "kbps": result["kbps"],
           "source": f"hytip-bench anchors {record}", **result["metrics"]}
    if result["mode"] == "yuv420":
        row["yuv_weights"] = DCVC_YUV_WEIGHTS
    return row


def run_anchors(args: argparse.Namespace) -> int:
    spec = ColourSpec.for_protocol(args.color_transform)
    encoders = []
    for name in args.encoders:
        enc = make_encoder(name, threads=args.threads, encoder_app=args.vtm_encoder, decoder_app=args.vtm_decoder,
                           cfg=args.vtm_cfg)
        enc.check()
        encoders.append(enc)
    sources = _sources(args)
    out = Path(args.out)
    jobs, owners = [], {}
    for source in sources:
        for enc in encoders:
            for rate in args.rates or enc.default_rates:
                key = job_key(enc.name, args.mode, source.dataset, source.name, f"qp{rate}", f"f{source.frames}",
                              f"ip{source.intra_period}", args.color_transform)
                owners[key] = source
                jobs.append(Job(key, encode_point, {
                    "encoder": {"name": enc.name, "options": asdict(enc)}, "source": asdict(source),
                    "mode": args.mode, "colour": spec.describe(), "rate": rate, "logs": str(out / "logs" / key),
                    "bitstreams": str(out / "bitstreams" / key), "work": str(out / "work" / key),
                    "device": args.device}))
    summary = run_jobs(jobs, out / "records", workers=args.jobs, desc="anchors", progress=not args.no_progress)
    rows = [_csv_row(summary.done[job.key]["result"], owners[job.key], spec, args.color_transform,
                     f"records/{job.key}.json") for job in jobs if job.key in summary.done]
    csv_path = Path(args.csv) if args.csv else out / "anchors.csv"
    if rows:
        write_rd_csv(pd.DataFrame(rows), csv_path)
    print(f"anchors: {len(summary.ran)} coded, {len(summary.skipped)} already done, {len(summary.failed)} failed; "
          f"{len(rows)} points in {csv_path if rows else '(no CSV: nothing done)'}")
    for key, error in summary.failed.items():
        print(f"  failed {key}: {error} (record {out / 'records' / (key + '.json')}; rerun the same command to retry)")
    if (out / "work").is_dir() and not any((out / "work").iterdir()):
        (out / "work").rmdir()
    return 0 if summary.ok else 1


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "anchors", help="encode a dataset with VTM, x264, x265, SVT-AV1, VVenC in the HyTIP protocol and measure it",
        description="Code the protocol's frames (96, intra period 32, centre crop to a multiple of 64) of each sequence "
        "with conventional encoders at several QPs, decode, and measure with the same colour conversion and metrics as "
        "the HyTIP runs. Writes an anchor CSV (bench/anchors.py schema), one JSON record per job, encoder logs and "
        "bitstreams under --out. Rerunning the same command skips finished jobs and retries failed ones. "
        "See anchors/GENERATION.md.")
    src = p.add_argument_group("source (a catalogued dataset, or one file)")
    src.add_argument("--dataset", help="dataset of the catalogue (datasets.yaml), e.g. UVG")
    src.add_argument("--sequences", nargs="+", metavar="NAME", help="only these sequences of the dataset")
    src.add_argument("--data-root", help="folder holding the test sets (default: $HYTIP_DATA_ROOT)")
    src.add_argument("--catalog", action="extend", nargs="+", default=[], metavar="YAML", help="extra catalogue file(s)")
    src.add_argument("--no-scene-cuts", action="store_true", help="do not code the catalogue's scene cuts as I-frames")
    src.add_argument("--input", metavar="FILE", help="one video file (raw .yuv needs --width/--height/--pix-fmt), "
                     "or 'bundled' for the bundled 1280x720 clip")
    src.add_argument("--name", help="sequence name for --input (default: the file name)")
    src.add_argument("--dataset-label", default="custom", help="dataset column for --input (default: custom)")
    src.add_argument("--width", type=int)
    src.add_argument("--height", type=int)
    src.add_argument("--pix-fmt", help="pixel format of a raw --input: yuv420p, yuv420p10le, gbrp10le")
    src.add_argument("--fps", type=float, help="frame rate of --input when the file does not state it")
    src.add_argument("--scene-cuts", type=int, nargs="*", default=[], metavar="N",
                     help="1-based frames of --input coded as I-frames")
    proto = p.add_argument_group("protocol")
    proto.add_argument("--frames", type=int, help=f"frames coded (default: the catalogue's protocol, {TEST_FRAMES})")
    proto.add_argument("--intra-period", type=int, help=f"intra period (default: the protocol's, {GOP_SIZE})")
    proto.add_argument("--color-transform", choices=COLOR_TRANSFORMS, default="BT601",
                       help="ColourSpec.for_protocol of the HyTIP run being compared (default: BT601)")
    proto.add_argument("--mode", choices=MODES, default="yuv420",
                       help="yuv420: code the source's 4:2:0 planes; rgb444: code the RGB as YUV 4:4:4 10-bit")
    enc = p.add_argument_group("encoders")
    enc.add_argument("--encoders", nargs="+", choices=list(ENCODERS), default=list(DEFAULT_ENCODERS),
                     help=f"default: {' '.join(DEFAULT_ENCODERS)} (vtm needs the paths below)")
    enc.add_argument("--rates", type=int, nargs="+", metavar="QP", help="QPs for every encoder (default: per encoder)")
    enc.add_argument("--vtm-encoder", help="VTM EncoderApp (or $HYTIP_VTM_ENCODER)")
    enc.add_argument("--vtm-decoder", help="VTM DecoderApp (or $HYTIP_VTM_DECODER)")
    enc.add_argument("--vtm-cfg", help="VTM's cfg/encoder_lowdelay_vtm.cfg (or $HYTIP_VTM_CFG)")
    run = p.add_argument_group("run")
    run.add_argument("--out", required=True, help="output folder: records/, logs/, bitstreams/, anchors.csv")
    run.add_argument("--csv", help="anchor CSV path (default: OUT/anchors.csv)")
    run.add_argument("--jobs", type=int, default=1, help="jobs run in parallel (processes; default 1)")
    run.add_argument("--threads", type=int, default=1, help="threads per encoder (default 1; deterministic)")
    run.add_argument("--device", default="cpu", help="torch device for the metrics, e.g. cuda (default: cpu)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_anchors)
