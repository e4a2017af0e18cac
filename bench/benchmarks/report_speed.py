"""Benchmark: the HTML report of 7 datasets x 10 codecs x 4 rate points x 2 colour transforms x 2 metrics.

Run: python -m bench.benchmarks.report_speed [--out DIR]. The synthetic RD points are bench.benchmarks.bdrate_speed's
(60 sequences, an anchor "VTM-17.0" and 9 test codecs, all with 4 rate points). Prints the render time of
reports.build_report (BD tables, 28 RD figures as SVG + PDF, complexity and reproduction sections, the per-sequence
drill-down, CSV/LaTeX exports), its CPU time (the wall time on a machine that other jobs share is longer), and
the size of index.html: with every BD-rate's interval (the report's default), then without, and their ratio.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.analysis.intervals import IntervalOptions
from bench.benchmarks.bdrate_speed import synthetic_rd
from reports import ReportOptions, build_report
from reports.inputs import ReportInputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="keep the report here (default: a temporary folder)")
    args = parser.parse_args()
    rd = synthetic_rd(n_codecs=9, points=4, anchor_points=4)
    codecs, datasets = rd[["codec", "codec_version"]].drop_duplicates(), rd["dataset"].nunique()
    timings = {}
    for name, intervals in (("with intervals", IntervalOptions()), ("without intervals", None)):
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(args.out or scratch) / name.replace(" ", "_")
            start, cpu = time.perf_counter(), time.process_time()
            index = build_report(ReportInputs(rd=rd), out, ReportOptions(title="report_speed (synthetic data)",
                                                                         intervals=intervals))
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            figures = len(list((out / "figures").glob("*.svg")))
            tables = len(list((out / "tables").glob("*.csv")))
            size = index.stat().st_size
        timings[name] = seconds
        print(f"report of {datasets} datasets x {len(codecs)} codecs x 4 rate points x 2 transforms x 2 metrics "
              f"({len(rd)} RD points, {rd['sequence'].nunique()} sequences), {name}: rendered in {seconds:.1f} s "
              f"({cpu:.1f} s CPU, one process); index.html {size / 1e6:.2f} MB; {figures} figures (SVG + PDF), "
              f"{tables} CSV tables")
    print(f"intervals cost {timings['with intervals'] / timings['without intervals']:.2f}x (first run in the process "
          "includes importing torch for bdci)")


if __name__ == "__main__":
    main()
