"""`run_bench.py demo`: the main job out of the box, on the bundled clip, in minutes, with no data set or GPU.

It runs the real sweep (the `run` pipeline) with a small protocol: a 448x256 centre crop of the bundled clip, one
GOP, both colour transforms; x264, x265, SVT-AV1 and VVenC through ffmpeg at 4 QPs each, with real bitstreams
decoded and measured. VVenC stands in as the anchor (no VTM binary here) and codes its own 4 QPs; the other
encoders' QPs are matched to its range (bench.sweep.rate_match), so that no curve pair of the report falls short of
the anchor's range. HyTIP joins when the official PSNR-RGB checkpoint is found (models/, the user cache,
--checkpoint) or can be fetched (unless --offline), at its 4 protocol points (probing it on a CPU would take
minutes); the demo then codes fewer frames so that it still fits the time. Without a checkpoint it says so, and
HyTIP's complexity is still measured from the architecture. It renders the HTML report of the run and the report of
the published data, and prints where they and the results table are. A rerun reuses every finished job.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.argtypes import positive_int
from bench.codecs.conventional import DEFAULT_ENCODERS
from bench.codecs.weights import DownloadError, fetch, find_checkpoint
from bench.data.catalog import COLOR_TRANSFORMS
from bench.data.clips import BUNDLED_CLIP
from bench.sweep.config import SweepConfig

EXAMPLE = "run_bench.py demo --offline --out runs/demo"

CROP = (448, 256)
FRAMES = 32         # one GOP with the conventional codecs only
HYTIP_FRAMES = 8    # one GOP when HyTIP (about 2.5 s per 448x256 frame on 2 CPU cores) joins
ANCHOR, ANCHOR_CODEC = "VVenC", "vvenc"
ANCHOR_NOTE = "VVenC stands in as the anchor on the bundled clip: no VTM-17.0 binary is available here"


def _checkpoint(args) -> tuple[str | None, str]:
    """The checkpoint HyTIP runs with, and a line saying where it came from (or why there is none)."""
    if args.checkpoint:
        return str(args.checkpoint), f"HyTIP: {args.checkpoint} (given)"
    found = find_checkpoint("PSNR-RGB")
    if found:
        return str(found), f"HyTIP: {found} (official PSNR-RGB checkpoint)"
    if args.offline:
        return None, "HyTIP: not run (offline and no PSNR-RGB checkpoint in models/ or the cache)"
    try:
        path = fetch("PSNR-RGB", progress=not args.no_progress)
    except DownloadError as exc:
        return None, f"HyTIP: not run (no checkpoint, and fetching it failed: {exc})"
    return str(path), f"HyTIP: {path} (official PSNR-RGB checkpoint, fetched)"


def demo_config(checkpoint: str | None, frames: int, threads: int | None) -> SweepConfig:
    codecs = [{"codec": name} for name in DEFAULT_ENCODERS]
    if checkpoint:
        codecs.insert(0, {"codec": "hytip", "model": "PSNR-RGB", "checkpoint": checkpoint})
    matched = [name for name in DEFAULT_ENCODERS if name != ANCHOR_CODEC]
    return SweepConfig(codecs=codecs, input={"path": "bundled", "name": "BigBuckBunny", "dataset": "bundled-clip"},
                       rate_points={"mode": "match", "anchor": ANCHOR_CODEC, "codecs": matched},
                       color_transforms=list(COLOR_TRANSFORMS),
                       protocol={"frames": frames, "intra_period": frames, "crop_size": list(CROP)},
                       rate_mode="estimated", execution={"devices": "auto", "threads": threads, "encoder_jobs": 2},
                       name="demo")


def run(args: argparse.Namespace) -> int:
    from bench.cli.run import run_sweep
    from reports import ReportOptions, build_published_report, build_report
    from reports.inputs import read_complexity, read_inputs

    checkpoint, hytip_line = _checkpoint(args)
    frames = args.frames or (HYTIP_FRAMES if checkpoint else FRAMES)
    out = Path(args.out)
    print(f"demo: {BUNDLED_CLIP['content']}; {CROP[0]}x{CROP[1]} centre crop, {frames} frames (one GOP), "
          f"BT601 and BT709; x264, x265, SVT-AV1, VVenC at 4 QPs each (VVenC's own, the others' matched to its "
          "range), real bitstreams decoded and measured")
    print(f"  {hytip_line}" + ("; estimated rates" if checkpoint else ""))
    print(f"  {ANCHOR_NOTE}")
    code = run_sweep(demo_config(checkpoint, frames, args.threads), out / "sweep", progress=not args.no_progress,
                     hytip_architecture=True)
    notes = (ANCHOR_NOTE, hytip_line,
             f"Demo protocol: {CROP[0]}x{CROP[1]} centre crop of the bundled clip, {frames} frames; not the paper's "
             "protocol, so no number here compares with a published one")
    options = ReportOptions(anchor=ANCHOR, title="hytip-bench demo: the bundled clip", notes=notes,
                            command="run_bench.py demo")
    report = build_report(read_inputs([out / "sweep"]), out / "report", options)
    published = build_published_report(out / "published", ReportOptions(title="Published data bundled with "
                                                                               "hytip-bench"),
                                       read_complexity(out / "sweep" / "complexity.json"))
    print(f"results table: {out / 'sweep' / 'results.csv'}")
    print(f"report of this run: {report}")
    print(f"report of the published data: {published}")
    return code


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="the sweep and its report on the bundled clip (minutes, no data needed)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--checkpoint", type=Path, help="a HyTIP checkpoint to run (default: the official PSNR-RGB one)")
    p.add_argument("--offline", action="store_true", help="do not try to fetch the official checkpoint")
    p.add_argument("--frames", type=positive_int, help=f"frames (default {FRAMES}, {HYTIP_FRAMES} with HyTIP)")
    p.add_argument("--threads", type=positive_int, help="CPU threads of the HyTIP worker (default: torch's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
