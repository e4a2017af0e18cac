"""`run_bench.py anchors`: conventional-codec anchors, coded and measured in the same protocol as the HyTIP runs.

A preset of the sweep (`run_bench.py run` with conventional codecs only): the same jobs, records and store, plus the
anchor CSV (RD schema, anchors/README.md) that `bdrate` takes. See anchors/GENERATION.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.analysis.rd_schema import RD_COLUMNS, write_rd_csv
from bench.codecs.conventional import DEFAULT_ENCODERS, MODES
from bench.codecs.encoders import ENCODERS
from bench.data.catalog import COLOR_TRANSFORMS
from bench.data.colour import ColourSpec
from bench.data.protocol import GOP_SIZE, TEST_FRAMES
from bench.errors import InputError
from bench.sweep.config import SweepConfig, expand, preflight
from bench.sweep.jobs import run_jobs
from bench.sweep.runner import lanes, make_jobs
from bench.sweep.store import remove_empty_work, write_results


def anchor_config(args: argparse.Namespace) -> SweepConfig:
    options = {"threads": args.threads, "encoder_app": args.vtm_encoder, "decoder_app": args.vtm_decoder,
               "cfg": args.vtm_cfg}
    codecs = [{"codec": name, "mode": args.mode, "qps": args.rates,
               **{k: v for k, v in options.items() if v}} for name in args.encoders]
    protocol = {k: v for k, v in (("frames", args.frames), ("intra_period", args.intra_period)) if v}
    config = SweepConfig(codecs=[{k: v for k, v in c.items() if v} for c in codecs], color_transforms=[args.color_transform],
                         protocol={**protocol, "scene_cuts": not args.no_scene_cuts}, rate_mode="real",
                         data_root=args.data_root, catalogs=list(args.catalog),
                         execution={"devices": "cpu", "encoder_jobs": args.jobs}, name="anchors")
    if args.input:
        config.input = {"path": args.input, "name": args.name, "dataset": args.dataset_label, "width": args.width,
                        "height": args.height, "pix_fmt": args.pix_fmt, "fps": args.fps,
                        "scene_cuts": list(args.scene_cuts)}
        config.input = {k: v for k, v in config.input.items() if v is not None}
        config.protocol.setdefault("frames", TEST_FRAMES)
        config.protocol.setdefault("intra_period", GOP_SIZE)
    elif args.dataset:
        config.datasets = [args.dataset]
        if args.sequences:
            config.sequences = {args.dataset: args.sequences}
    else:
        raise InputError("anchors: give --dataset (catalogued test sets under --data-root) or --input FILE")
    return config


def run_anchors(args: argparse.Namespace) -> int:
    config = anchor_config(args)
    problems = preflight(config)
    if problems:
        raise problems[0] if len(problems) == 1 else InputError(
            f"anchors cannot start ({len(problems)} problems):\n  " + "\n  ".join(map(str, problems)))
    out = Path(args.out)
    specs = expand(config)
    if config.input and specs and specs[0].source.rgb:  # an RGB file takes the transform the user named
        colour = ColourSpec.for_protocol(args.color_transform)
        specs = [type(s)(s.codec, s.source, s.rate, args.color_transform, colour, s.identity) for s in specs]
    jobs = make_jobs(specs, out, "real")
    summary = run_jobs(jobs, out / "records", lanes=lanes("cpu", args.jobs, args.device), desc="anchors",
                       progress=not args.no_progress)
    table = write_results(out, jobs)
    csv_path = Path(args.csv) if args.csv else out / "anchors.csv"
    if len(table):
        write_rd_csv(table.loc[:, list(RD_COLUMNS)], csv_path)
    print(f"anchors: {len(summary.ran)} coded, {len(summary.skipped)} already done, {len(summary.failed)} failed; "
          f"{len(table)} points in {csv_path if len(table) else '(no CSV: nothing done)'}")
    for key, error in summary.failed.items():
        print(f"  failed {key}: {error} (record {out / 'records' / (key + '.json')}; rerun the same command to retry)")
    remove_empty_work(out)
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
