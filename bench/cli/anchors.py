"""`run_bench.py anchors`: conventional-codec anchors, coded and measured in the same protocol as the HyTIP runs.

A preset of the sweep (`run_bench.py run` with conventional codecs only): the same jobs, records and store, plus the
anchor CSV (RD schema, anchors/README.md) that `bdrate` takes. See anchors/GENERATION.md.

`--conform PUBLISHED.csv` regenerates the points of a published anchor CSV in that file's own protocol (each row's
frames, intra period, crop, colour conversion, codec configuration and QP), refuses before anything runs whatever
this tool cannot reproduce, and writes the conformance table (bench.analysis.conformance) beside the anchor CSV.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from bench.analysis.conformance import (
    Tolerances,
    coding_mode,
    compare,
    rate_point_qp,
    summary_lines,
    write_conformance_csv,
)
from bench.analysis.rd_schema import RD_COLUMNS, load_rd_csv, write_rd_csv
from bench.codecs.conventional import DEFAULT_ENCODERS, MODES
from bench.codecs.encoders import ENCODERS, make_encoder
from bench.data.catalog import COLOR_TRANSFORMS
from bench.data.colour import FILTERS, ColourSpec
from bench.data.protocol import GOP_SIZE, TEST_FRAMES
from bench.errors import InputError
from bench.sweep.config import NATIVE_RGB, SweepConfig, colour_of, expand, preflight
from bench.sweep.jobs import run_jobs
from bench.sweep.runner import lanes, make_jobs
from bench.sweep.store import remove_empty_work, write_results

EXAMPLE = "run_bench.py anchors --dataset HEVC-D --encoders x265 vvenc --data-root /data --out runs/anchors"

# Options that --conform takes from the published file instead.
CONFORM_FROM_FILE = {"dataset": "--dataset", "frames": "--frames", "intra_period": "--intra-period", "rates": "--rates",
                     "encoders": "--encoders", "mode": "--mode", "color_transform": "--color-transform"}
_CROP = re.compile(r"^centre-(?:(\d+)|(\d+)x(\d+))$")
_FFMPEG_BUILD = re.compile(r" \(ffmpeg [^()]*\)$")  # the build codec_config names after an ffmpeg encoder's options


class _Point(NamedTuple):
    """A published point as a job of this tool (besides its protocol)."""

    encoder: str | None
    mode: str | None
    dataset: str
    sequence: str
    transform: str
    qp: int | None


def _encoder_options(args: argparse.Namespace) -> dict:
    options = {"threads": args.threads, "encoder_app": args.vtm_encoder, "decoder_app": args.vtm_decoder,
               "cfg": args.vtm_cfg}
    return {k: v for k, v in options.items() if v}


def _config(args: argparse.Namespace, codecs: list[dict], transforms: list[str], protocol: dict,
            sequences: dict | None = None) -> SweepConfig:
    """The sweep of `codecs` over the --input file, the `sequences` {dataset: names} or the --dataset."""
    config = SweepConfig(codecs=[{k: v for k, v in c.items() if v} for c in codecs], color_transforms=transforms,
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
    elif sequences:
        config.datasets, config.sequences = list(sequences), sequences
    elif args.dataset:
        config.datasets = [args.dataset]
        if args.sequences:
            config.sequences = {args.dataset: args.sequences}
    else:
        raise InputError("anchors: give --dataset (catalogued test sets under --data-root) or --input FILE")
    return config


def anchor_config(args: argparse.Namespace) -> SweepConfig:
    codecs = [{"codec": name, "mode": args.mode or "yuv420", "qps": args.rates, **_encoder_options(args)}
              for name in args.encoders or DEFAULT_ENCODERS]
    protocol = {k: v for k, v in (("frames", args.frames), ("intra_period", args.intra_period)) if v}
    return _config(args, codecs, [args.color_transform or "BT601"], protocol)


def _specs(config: SweepConfig, transforms: list[str]) -> list:
    specs = expand(config)
    if config.input and specs and specs[0].source.rgb:  # an RGB file takes the transform(s) named, not native-RGB
        specs = [replace(s, color_transform=ct, colour=colour_of(config, ct)) for s in specs for ct in transforms]
    return specs


def _check(problems: list) -> None:
    if problems:
        raise problems[0] if len(problems) == 1 else InputError(
            f"anchors cannot start ({len(problems)} problems):\n  " + "\n  ".join(map(str, problems)))


def _hash_checks(records: dict) -> str | None:
    """One line on VTM's decoded-picture-hash checks (per GOP stream, in each record's segments), or None."""
    results = [s["reported"]["decoded_picture_hash"] for r in records.values()
               for s in r.get("result", {}).get("segments", []) if "decoded_picture_hash" in s.get("reported", {})]
    if not results:
        return None
    counts = pd.Series(results).str.replace(r" \(.*\)$", "", regex=True).value_counts()
    return (f"decoded picture hashes (VTM DecoderApp, {len(results)} streams): "
            + ", ".join(f"{n} {status}" for status, n in counts.items()))


def _code(args: argparse.Namespace, specs: list) -> tuple:
    """Run the jobs of `specs`, write the anchor CSV; (run summary, CSV path or None when nothing is done)."""
    out = Path(args.out)
    jobs = make_jobs(specs, out, "real")
    summary = run_jobs(jobs, out / "records", lanes=lanes("cpu", args.jobs, args.device), desc="anchors",
                       progress=not args.no_progress)
    table = write_results(out, jobs)
    csv_path = Path(args.csv) if args.csv else out / "anchors.csv"
    if len(table):
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        write_rd_csv(table.loc[:, list(RD_COLUMNS)], csv_path)
    print(f"anchors: {len(summary.ran)} coded, {len(summary.skipped)} already done, {len(summary.failed)} failed; "
          f"{len(table)} points in {csv_path if len(table) else '(no CSV: nothing done)'}")
    for key, error in summary.failed.items():
        print(f"  failed {key}: {error} (record {out / 'records' / (key + '.json')}; rerun the same command to retry)")
    hashes = _hash_checks(summary.done)
    if hashes:
        print(f"  {hashes}")
    remove_empty_work(out)
    return summary, csv_path if len(table) else None


def run_anchors(args: argparse.Namespace) -> int:
    if args.conform:
        return run_conform(args)
    config = anchor_config(args)
    _check(preflight(config))
    summary, _ = _code(args, _specs(config, [args.color_transform or "BT601"]))
    return 0 if summary.ok else 1


# ---------------------------------------------------------------------------------------------------- --conform
def _refuse(file, problems: list[str]) -> None:
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise InputError(f"{file}: {len(problems)} row(s) cannot be regenerated in their own protocol:\n  "
                         + "\n  ".join(shown))


def _row_text(row: dict) -> str:
    return f"{row['where']} ({row['codec']} {row['dataset']}/{row['sequence']} {row['rate_point']})"


def _conform_row(row: dict, encoders: dict, options: dict) -> tuple[list[str], dict]:
    """What differs between a published row and what this tool can code (empty when it can), and what to code."""
    why = []
    name, mode, qp = encoders.get(row["codec"]), coding_mode(row["codec_config"]), rate_point_qp(row["rate_point"])
    if name is None:
        why.append(f"codec {row['codec']!r} is not one this tool runs ({', '.join(encoders)})")
    elif mode is None:
        why.append(f"codec_config {row['codec_config']!r} does not start with a coding mode this tool writes "
                   f"({', '.join(m + ':' for m in MODES)})")
    else:
        encoder = make_encoder(name, **options)
        ours, theirs = encoder.describe(), _FFMPEG_BUILD.sub("", row["codec_config"].partition(": ")[2])
        if theirs != ours:
            why.append(f"codec_config {theirs!r} is not this tool's {row['codec']} command line {ours!r}")
        if qp is not None and not encoder.qp_range[0] <= qp <= encoder.qp_range[1]:
            why.append(f"QP {qp} is outside {row['codec']}'s {encoder.qp_range[0]}..{encoder.qp_range[1]}")
    if qp is None:
        why.append(f"rate_point {row['rate_point']!r} is not a QP (qpNN or NN)")
    protocol = {}
    crop = _CROP.match(row["crop"])
    if crop is None:
        why.append(f"crop {row['crop']!r}: this tool codes centre crops only (centre-N, centre-WxH)")
    elif crop[1]:
        protocol["crop_multiple"] = int(crop[1])
    else:
        protocol["crop_size"] = (int(crop[2]), int(crop[3]))
    frames, period = row["frames"], row["intra_period"]
    if pd.isna(frames) or pd.isna(period):
        why.append("frames or intra_period is not stated")
    else:
        period = frames if period == -1 else period   # one intra frame: a single GOP of all the frames
        if frames % period:
            why.append(f"{frames} frames are not whole intra periods of {period}")
        protocol.update(frames=int(frames), intra_period=int(period))
    transform = row["color_transform"]
    if transform not in COLOR_TRANSFORMS + (NATIVE_RGB,):
        why.append(f"color_transform {transform!r}: this tool measures under {', '.join(COLOR_TRANSFORMS)} or "
                   f"{NATIVE_RGB}")
    else:
        colour = ColourSpec.for_protocol("BT709" if transform == NATIVE_RGB else transform)
        if (row["color_matrix"], row["color_range"]) != (colour.matrix, colour.range):
            why.append(f"colour conversion {row['color_matrix']} {row['color_range']} is not {transform}'s "
                       f"({colour.matrix} {colour.range})")
        if row["color_filter"] not in FILTERS:
            why.append(f"color_filter {row['color_filter']!r} is not one of {', '.join(FILTERS)}")
        elif row["color_filter"] != colour.filter:
            protocol["color_filter"] = row["color_filter"]
    point = _Point(name, mode, row["dataset"], row["sequence"], transform, qp)
    return why, {"row": row, "point": point, "protocol": tuple(sorted(protocol.items()))}


def _geometry(row: dict, spec) -> str:
    """What differs between a published row's size and input format and the source's (empty when nothing does)."""
    crop = spec.source.crop
    ours, theirs = (f"{crop.width}x{crop.height}", spec.source.pix_fmt), (f"{row['width']}x{row['height']}",
                                                                         row["input_format"])
    return "" if ours == theirs else (f"size and input format {theirs[0]} {theirs[1]} are not the source's "
                                      f"{ours[0]} {ours[1]} ({spec.source.path}, crop {spec.source.crop_text})")


def conform_specs(args: argparse.Namespace, published: pd.DataFrame) -> list:
    """The jobs that regenerate every row of `published` in its own protocol. Whatever cannot be matched (codec,
    configuration, crop, frames and intra period, colour conversion, QP, source sequence, size) is refused before
    anything runs, naming the file, the rows and what differs."""
    encoders = {cls.codec: name for name, cls in ENCODERS.items()}
    options = _encoder_options(args)
    for name in sorted({encoders[c] for c in published["codec"] if c in encoders}):
        make_encoder(name, **options).check()   # a missing encoder first: its configuration cannot be compared
    wanted, problems = [], []
    for row in published.to_dict("records"):
        why, item = _conform_row(row, encoders, options)
        if why:
            problems.append(f"{_row_text(row)}: {'; '.join(why)}")
        wanted.append(item)
    _refuse(args.conform, problems)
    specs = {}
    for protocol in dict.fromkeys(w["protocol"] for w in wanted):
        group = [w for w in wanted if w["protocol"] == protocol]
        points = [w["point"] for w in group]
        qps: dict = {}
        for point in points:
            qps.setdefault((point.encoder, point.mode), set()).add(point.qp)
        codecs = [{"codec": name, "mode": mode, "qps": sorted(q), **options} for (name, mode), q in qps.items()]
        # A catalogued RGB set is coded as native-RGB whatever the transforms; an RGB --input under each one named.
        transforms = sorted({p.transform for p in points} - {NATIVE_RGB}) or ["BT709"]
        sequences: dict = {}
        for point in points:
            sequences.setdefault(point.dataset, set()).add(point.sequence)
        config = _config(args, codecs, transforms, dict(protocol), {d: sorted(n) for d, n in sequences.items()})
        found = preflight(config)
        if found:
            lines = ", ".join(dict.fromkeys(w["row"]["where"] for w in group))
            raise InputError(f"{args.conform}: {lines}: cannot be regenerated: " + "; ".join(map(str, found)))
        made = {_Point(s.codec["encoder"], s.codec["mode"], s.source.dataset, s.source.name, s.color_transform,
                       s.rate.qp): s for s in _specs(config, transforms)}
        sources = ", ".join(sorted({f"{p.dataset}/{p.sequence}" for p in made}))
        for w in group:
            row, spec = w["row"], made.get(w["point"])
            why = (f"no source for {row['dataset']}/{row['sequence']} {row['color_transform']} (the sources are "
                   f"{sources})") if spec is None else _geometry(row, spec)
            if why:
                problems.append(f"{_row_text(row)}: {why}")
            else:
                specs[protocol, w["point"]] = spec
    _refuse(args.conform, problems)
    return list(specs.values())


def run_conform(args: argparse.Namespace) -> int:
    given = [flag for attr, flag in CONFORM_FROM_FILE.items() if getattr(args, attr)]
    if given:
        raise InputError(f"--conform {args.conform}: the sequences, protocol, codecs and rate points come from the "
                         f"file; drop {', '.join(given)} (--sequences picks sequences of the file)")
    tolerances = Tolerances(args.rate_tolerance, args.quality_tolerance, args.bd_tolerance)
    published = load_rd_csv(args.conform)
    if args.sequences:
        published = published[published["sequence"].isin(args.sequences)]
        if published.empty:
            raise InputError(f"{args.conform}: none of the sequences {', '.join(args.sequences)} is in the file")
    summary, csv_path = _code(args, conform_specs(args, published))
    regenerated = load_rd_csv(csv_path) if csv_path else pd.DataFrame(columns=RD_COLUMNS)
    result = compare(published, regenerated, tolerances)
    table = (csv_path or Path(args.out) / "anchors.csv").with_name("conformance.csv")
    write_conformance_csv(result, table)
    print(f"conformance of the regenerated points with {args.conform}: {len(result.curves)} curve(s), "
          f"{len(result.points)} point(s), table {table}")
    for line in summary_lines(result):
        print(f"  {line}")
    return 0 if summary.ok and result.conforms else 1


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "anchors", help="encode a dataset with VTM, x264, x265, SVT-AV1, libaom, libvpx, VVenC in the HyTIP "
                        "protocol and measure it",
        description="Code the protocol's frames (96, intra period 32, centre crop to a multiple of 64) of each sequence "
        "with conventional encoders at several QPs, decode, and measure with the same colour conversion and metrics as "
        "the HyTIP runs. Writes an anchor CSV (bench/anchors.py schema), one JSON record per job, encoder logs and "
        "bitstreams under --out. Rerunning the same command skips finished jobs and retries failed ones. "
        "See anchors/GENERATION.md.")
    src = p.add_argument_group("source (a catalogued dataset, or one file)")
    src.add_argument("--dataset", help="dataset of the catalogue (datasets.yaml), e.g. UVG")
    src.add_argument("--sequences", nargs="+", metavar="NAME",
                     help="only these sequences of the dataset (with --conform: of the published file)")
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
    proto.add_argument("--color-transform", choices=COLOR_TRANSFORMS,
                       help="ColourSpec.for_protocol of the HyTIP run being compared (default: BT601)")
    proto.add_argument("--mode", choices=MODES,
                       help="yuv420 (default): code the source's 4:2:0 planes; rgb444: code the RGB as YUV 4:4:4 "
                       "10-bit")
    enc = p.add_argument_group("encoders")
    enc.add_argument("--encoders", nargs="+", choices=list(ENCODERS),
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
    conform = p.add_argument_group(
        "conformance (anchors/README.md, 'Conformance table')",
        "--conform regenerates a published anchor CSV's points in its own protocol (so --dataset, --frames, "
        "--intra-period, --rates, --encoders, --mode and --color-transform are not given; the sequences are found "
        "under --data-root, or --input is the one sequence), writes conformance.csv beside the anchor CSV and exits "
        "with 1 unless every curve conforms")
    tol = Tolerances()
    conform.add_argument("--conform", metavar="PUBLISHED.csv", help="published anchor CSV (RD schema) to reproduce")
    conform.add_argument("--rate-tolerance", type=float, default=tol.rate_pct, metavar="PCT",
                         help=f"largest |rate difference| of a point, %% of the published rate (default "
                         f"{tol.rate_pct:g})")
    conform.add_argument("--quality-tolerance", type=float, default=tol.quality_db, metavar="DB",
                         help=f"largest |PSNR difference| of a point, dB (default {tol.quality_db:g})")
    conform.add_argument("--bd-tolerance", type=float, default=tol.bd_rate_pct, metavar="PCT",
                         help=f"largest |BD-rate| of a curve against the published one, %% (default "
                         f"{tol.bd_rate_pct:g})")
    p.set_defaults(func=run_anchors)
