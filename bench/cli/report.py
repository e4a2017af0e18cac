"""`run_bench.py report`: the HTML report (RD curves, BD-rate tables, complexity, reproduction, provenance)."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from bench.analysis.bdrate import AVERAGING, DEFAULT_MIN_OVERLAP, METHODS
from bench.analysis.intervals import IntervalOptions
from bench.argtypes import non_negative_float, share
from bench.errors import InputError

EXAMPLE = "run_bench.py report runs/quick runs/anchors --anchor VVenC --out runs/report"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="render an HTML report of results (or, with --published, of the bundled published data)",
        description="Render one self-contained HTML report (DIR/index.html; figures inline, opens offline) with RD "
                    "curves, BD-rate tables against the anchor, the complexity trade-off, our BD-rates next to the "
                    "published ones, a per-sequence drill-down and the protocol of every number. Also writes every "
                    "figure as SVG and PDF (DIR/figures) and every table as CSV and LaTeX (DIR/tables). RESULTS are "
                    "results tables (.csv/.parquet), sweep output folders (results.csv, records/, complexity.json, "
                    "sweep.json) and anchor CSVs.")
    parser.add_argument("results", nargs="*", metavar="RESULTS", help="results tables, sweep folders, anchor CSVs")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--published", action="store_true",
                        help="report the published data bundled in anchors/ (no RESULTS needed), with the complexity "
                             "trade-off of HyTIP and its peers as counted here (anchors/measured_complexity.json)")
    parser.add_argument("--anchor", default="VTM-17.0", help="anchor codec, CODEC-VERSION or CODEC (default VTM-17.0)")
    parser.add_argument("--dcvc", nargs="+", action="append", default=[], metavar="FILE_OR_KEY=VALUE",
                        help="a DCVC result JSON and its protocol, e.g. --dcvc dcvc.json codec=DCVC-DC "
                             "codec_version=official codec_config=... color_transform=BT709 metric_space=rgb")
    parser.add_argument("--compressai", nargs="+", action="append", default=[], metavar="FILE_OR_KEY=VALUE",
                        help="a CompressAI video result JSON and its protocol, e.g. --compressai ssf.json dataset=UVG "
                             "codec_version=compressai")
    parser.add_argument("--complexity", nargs="+", default=[], metavar="JSON",
                        help="complexity.json files (a sweep folder's is read by itself; run_bench.py complexity "
                             "--peer ... --json writes peers'): their counts replace the bundled ones of the same codec")
    parser.add_argument("--measure-complexity", action="store_true",
                        help="count HyTIP's complexity on its architecture now (about a minute of CPU the first time, "
                             "then cached) when no complexity.json gives it, rather than take the bundled count")
    parser.add_argument("--method", choices=METHODS, default="pchip",
                        help="BD interpolation: pchip (JVET CTC, default), cubic (VCEG-M33), akima")
    parser.add_argument("--average", choices=sorted(AVERAGING), default="sequences",
                        help="per-dataset BD: 'sequences' (mean of per-sequence values, default) or 'curve'")
    parser.add_argument("--msssim-linear", action="store_true",
                        help="compute MS-SSIM BD-rates on MS-SSIM itself rather than in dB (figures stay in dB)")
    parser.add_argument("--min-overlap", type=share, default=DEFAULT_MIN_OVERLAP,
                        help="note curve pairs covering less than this share of the anchor's range (0.75)")
    parser.add_argument("--allow-protocol-mismatch", action="store_true",
                        help="compare curves even when frames, intra period, crop, size or colour conversion differ")
    parser.add_argument("--tolerance", type=non_negative_float, default=0.5,
                        help="reproduction verdict: consistent when the published value lies in our BD-rate's interval "
                             "widened by this many percentage points on each side (0.5)")
    parser.add_argument("--exclude-rate-points", nargs="+", default=[], metavar="[CODEC:]POINT",
                        help="leave rate points out of every curve, BD value and RD figure: POINT (e.g. qp22) of every "
                             "codec, or CODEC:POINT of one (as DCVC's --rate_exclude); the report says so")
    parser.add_argument("--no-drill-down", action="store_true", help="leave out the per-sequence section")
    IntervalOptions.add_arguments(parser.add_argument_group(
        "intervals", "every BD-rate's interval: bdci's interpolation interval, the method spread and a bootstrap"))
    parser.add_argument("--title", default=None, help="page title")
    parser.set_defaults(func=run)


def run(args) -> int:
    from reports import ReportOptions, build_published_report, build_report
    from reports.inputs import read_complexity, read_inputs

    options = ReportOptions(
        anchor=args.anchor, method=args.method, averaging=args.average, msssim_db=not args.msssim_linear,
        min_overlap=args.min_overlap, allow_protocol_mismatch=args.allow_protocol_mismatch, tolerance=args.tolerance,
        measure_complexity=args.measure_complexity, drill_down=not args.no_drill_down,
        intervals=IntervalOptions.from_args(args), exclude_rate_points=tuple(args.exclude_rate_points),
        title=args.title or ("Published data bundled with hytip-bench" if args.published else "hytip-bench report"),
        command="run_bench.py " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["report"] else "")
    if args.published:
        if args.results or args.dcvc or args.compressai:
            raise InputError("--published reports the bundled data only; give RESULTS in a separate report")
        configurations = [c for path in args.complexity for c in read_complexity(Path(path))]
        path = build_published_report(args.out, options, configurations)
    else:
        specs = [("dcvc", s) for s in args.dcvc] + [("compressai", s) for s in args.compressai]
        path = build_report(read_inputs(args.results, specs, args.complexity), args.out, options)
    print(f"wrote {path}")
    return 0
