"""`run_bench.py bdrate`: BD-rate tables of result CSVs against an anchor, printed and written as CSV."""
from __future__ import annotations

import sys
import warnings
from functools import partial

import pandas as pd

from bench.analysis.bdrate import (
    AVERAGE_ROW,
    AVERAGING,
    DEFAULT_MIN_OVERLAP,
    METHOD_TEXT,
    METHODS,
    bd_tables,
)
from bench.analysis.frame_types import FRAME_TYPE_METHOD, FRAME_TYPE_TEXT, FRAME_TYPES, frame_type_tables
from bench.analysis.intervals import IntervalOptions, bd_tables_with_intervals, interval_text
from bench.analysis.rate_points import exclude_rate_points
from bench.analysis.rd_schema import BD_METRICS, load_rd_csvs, write_bd_table_csv
from bench.argtypes import share

EXAMPLE = "run_bench.py bdrate runs/quick/results.csv runs/anchors/anchors.csv --anchor VVenC --ci"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bdrate", help="BD-rate of result CSVs against an anchor",
        description="BD-rate (and BD-quality) of every codec in RESULTS against the anchor codec, per dataset and "
                    "colour transform. RESULTS are CSVs in the anchor schema (anchors/README.md); the anchor's own "
                    "CSV is one of them. Prints one table per metric and colour transform (datasets as rows, codecs "
                    "as columns, an Average row) and writes all values to --output.")
    parser.add_argument("results", nargs="+", metavar="RESULTS", help="RD CSVs in the anchor schema")
    parser.add_argument("--anchor", required=True,
                        help="anchor codec, as CODEC-VERSION (e.g. VTM-17.0) or CODEC")
    parser.add_argument("--metric", nargs="+", default=["psnr_rgb", "msssim_rgb"], choices=BD_METRICS,
                        help="quality metrics (default: psnr_rgb msssim_rgb)")
    parser.add_argument("--method", choices=METHODS, default="pchip",
                        help="interpolation: pchip (JVET/JCT-VC CTC, default), cubic (VCEG-M33), akima")
    parser.add_argument("--average", choices=sorted(AVERAGING), default="sequences",
                        help="per-dataset convention: 'sequences' = mean of per-sequence BD values (default, as "
                             "the JVET CTC sheets); 'curve' = BD of the dataset-mean RD curve")
    parser.add_argument("--msssim-db", action="store_true", help="compute MS-SSIM BD values on -10 log10(1 - MS-SSIM)")
    parser.add_argument("--min-overlap", type=share, default=DEFAULT_MIN_OVERLAP,
                        help="warn when the test covers less than this share of the anchor's range (default 0.75)")
    parser.add_argument("--allow-protocol-mismatch", action="store_true",
                        help="compare even when frames, intra period, crop, size or colour conversion differ")
    parser.add_argument("--frame-type", nargs="+", choices=FRAME_TYPES, default=["all"],
                        help="BD values of the I-frames only, the P-frames only and/or all frames (default: all, the "
                             "tables' own rows), as DCVC's --compare_frame_type; I and P are computed from the "
                             "per-frame records in the records/ folder beside each RESULTS table")
    parser.add_argument("--show", choices=("rate", "quality"), default="rate",
                        help="print BD-rate in %% (default) or BD-quality (dB for PSNR)")
    parser.add_argument("-o", "--output", default="bdrate.csv", help="CSV of the per-dataset values (bdrate.csv)")
    parser.add_argument("--per-sequence", metavar="CSV", help="also write the per-sequence values here")
    parser.add_argument("--exclude-rate-points", nargs="+", default=[], metavar="[CODEC:]POINT",
                        help="leave rate points out: POINT (e.g. qp22) of every codec, or CODEC:POINT of one "
                             "(as DCVC's --rate_exclude)")
    ci = parser.add_argument_group("intervals (--ci)")
    ci.add_argument("--ci", action="store_true",
                    help="give every BD-rate an interval: the widest of bdci's interpolation interval, the spread of "
                         "pchip, akima and cubic, and a bootstrap over sequences (over datasets for the Average); "
                         "printed as value [low, high], each part written to the CSVs")
    IntervalOptions.add_arguments(ci)
    parser.set_defaults(func=run)


def run(args) -> int:
    rd, excluded = exclude_rate_points(load_rd_csvs(args.results), args.exclude_rate_points)
    options = dict(method=args.method, averaging=args.average, msssim_db=args.msssim_db, min_overlap=args.min_overlap,
                   allow_protocol_mismatch=args.allow_protocol_mismatch)
    if args.ci:
        compute = partial(bd_tables_with_intervals, anchor=args.anchor, metrics=args.metric,
                          options=IntervalOptions.from_args(args), **options)
    else:
        compute = partial(bd_tables, anchor=args.anchor, metrics=args.metric, **options)
    frame_types = list(dict.fromkeys(args.frame_type))
    by_type = frame_types != ["all"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = frame_type_tables(rd, frame_types, compute) if by_type else compute(rd)
    anchor = tables.datasets["anchor"].iloc[0]
    print(f"BD-{args.show} against {anchor}; method {METHOD_TEXT[args.method]}")
    print(f"per dataset: {AVERAGING[args.average]}; {AVERAGE_ROW}: mean of the per-dataset values")
    if excluded:
        print(excluded)
    if by_type:
        print(FRAME_TYPE_METHOD)
    if args.ci:
        print(tables.datasets["interval"].iloc[0])
    value = "bd_rate_pct" if args.show == "rate" else "bd_quality"
    datasets = tables.datasets if by_type else tables.datasets.assign(frame_type="all")
    for (frame_type, metric, transform), rows in datasets.groupby(["frame_type", "metric", "color_transform"],
                                                                   sort=False):
        which = f", {FRAME_TYPE_TEXT[frame_type]}" if by_type else ""
        print(f"\n{metric}, colour transform {transform}{which} ({_unit(metric, args.show)})")
        print(_format_table(rows, value, with_interval=args.ci and args.show == "rate"))
    for note in tables.notes:
        print(f"note: {note}", file=sys.stderr)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    write_bd_table_csv(tables.datasets, args.output)
    print(f"\nwrote {args.output}")
    if args.per_sequence:
        tables.sequences.to_csv(args.per_sequence, index=False, na_rep="")
        print(f"wrote {args.per_sequence}")
    return 0


def _unit(metric: str, show: str) -> str:
    if show == "rate":
        return "BD-rate %, negative = fewer bits than the anchor"
    if metric == "vmaf":
        return "BD-quality, VMAF points"
    if metric.startswith("msssim") and not metric.endswith("_db"):
        return "BD-quality, MS-SSIM units"
    return "BD-quality dB"   # PSNR, XPSNR and MS-SSIM in dB (msssim_*_db)


def _format_table(rows: pd.DataFrame, value: str, with_interval: bool = False) -> str:
    if with_interval:   # value [low, high], one decimal
        rows = rows.assign(shown=[interval_text(v, lo, hi) for v, lo, hi in
                                  zip(rows[value], rows["bd_rate_low"], rows["bd_rate_high"])])
        value = "shown"
    table = rows.pivot(index="dataset", columns="codec", values=value)
    order = [d for d in dict.fromkeys(rows["dataset"]) if d != AVERAGE_ROW] + [AVERAGE_ROW]
    table = table.reindex(order)
    return table.to_string(float_format=lambda v: f"{v:.2f}" if value == "bd_quality" else f"{v:.1f}",
                           na_rep="n/a")
