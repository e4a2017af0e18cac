"""Benchmark: how long counting each codec's complexity takes (`run_bench.py complexity [--peer NAME]`), at the
paper's frame size (1920x1024, the crop of its 1080p test sets), and its peak memory.

Run: python -m bench.benchmarks.peer_count --source DIR [--size WxH] [--peers NAME ...]. DIR is your checkout of
microsoft/DCVC (ssf2020 comes from the installed compressai; HyTIP is ours). Each count runs in a process of its own,
one after the other, so that its peak resident memory is its own. Prints one row per codec: seconds of the count
(building the model, the frame that fills the state, the two counted passes), wall seconds of the process, peak RSS,
and the encode / decode kMAC/pixel it found.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import pandas as pd

CODECS = ("HyTIP", "DCVC-TCM", "DCVC-HEM", "DCVC-DC", "DCVC-FM", "DCVC-RT", "ssf2020")


def _count_one(name: str, source: str | None, width: int, height: int) -> dict:
    """In this process: count ``name`` and report the figures and this process's peak RSS as JSON."""
    start = time.perf_counter()
    if name == "HyTIP":
        from bench.measure.complexity import pframe_kmac_per_pixel
        from hytip.model import HyTIP

        enc, dec = pframe_kmac_per_pixel(HyTIP().eval(), height, width)
        figures = {"enc": enc.kmac_per_pixel, "dec": dec.kmac_per_pixel}
    else:
        from bench.measure.peer_complexity import count_peer

        peer = count_peer(name, source, width, height)
        figures = {"enc": peer.kmac_per_pixel("encode"), "dec": peer.kmac_per_pixel("decode")}
    return {**figures, "count_seconds": time.perf_counter() - start,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", help="your checkout of microsoft/DCVC (needed for the DCVC family)")
    parser.add_argument("--size", default="1920x1024", help="WxH (default 1920x1024)")
    parser.add_argument("--peers", nargs="+", default=list(CODECS), help=f"codecs (default: {' '.join(CODECS)})")
    parser.add_argument("--one", help=argparse.SUPPRESS)   # the child process's own count
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    if args.one:
        print(json.dumps(_count_one(args.one, args.source, width, height)))
        return
    rows = []
    for name in args.peers:
        if name.startswith("DCVC") and not args.source:
            print(f"{name}: skipped (give --source, your checkout of microsoft/DCVC)")
            continue
        command = [sys.executable, "-m", "bench.benchmarks.peer_count", "--one", name, "--size", args.size]
        command += ["--source", args.source] if args.source and name.startswith("DCVC") else []
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode:
            print(f"{name}: failed\n{done.stderr.strip()}")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append({"codec": name, "count (s)": round(result["count_seconds"], 1), "process (s)": round(wall, 1),
                     "peak RSS (GB)": round(result["peak_rss_gb"], 2), "enc kMAC/px": round(result["enc"], 2),
                     "dec kMAC/px": round(result["dec"], 2)})
    print(f"Complexity counts at {args.size}: ptflops (rule 'input' for transposed convolutions), one P-frame with a "
          f"filled temporal state, float32, CPU, torch's default threads ({os.cpu_count()} CPUs here)")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
