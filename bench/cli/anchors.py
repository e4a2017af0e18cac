"""`run_bench.py anchors`: conventional-codec anchors coded and measured in the same protocol as the HyTIP runs."""
from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from bench.analysis.rd_schema import DCVC_YUV_WEIGHTS, write_rd_csv
from bench.codecs.conventional import DEFAULT_ENCODERS, MODES, SourceSpec, encode_point
from bench.codecs.encoders import ENCODERS, make_encoder
from bench.data.catalog import COLOR_TRANSFORMS, load_catalog
from bench.data.clips import bundled_clip_path
from bench.data.colour import ColourSpec
from bench.data.protocol import CROP_FACTOR, GOP_SIZE, TEST_FRAMES
from bench.data.readers import open_source
from bench.errors import InputError
from bench.sweep.jobs import Job, job_key, run_jobs


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
