"""Pipeline overhead of the sweep: what reading, colour conversion, cropping, metrics and bookkeeping cost beside the
model, and coded frames per second of the whole sweep.

    python -m bench.benchmarks.sweep_overhead --checkpoint CKPT [--size 448x256] [--frames 8] [--threads 2]
        [--filter nearest|bilinear|bicubic|ffmpeg] [--rate-points 21:21 42:42] [--rate-point-batch N] [--device cuda]

A WxH crop of the bundled clip (from a part with motion; scaled, bicubic, to sizes over its 1280x720) is swept with
HyTIP (estimated rates, BT.601) in a fresh output folder. Model time is the codec's own per-frame time
(`enc_seconds`: the coding calls, less their waits for input, which are printed apart); job time is each job's wall
time in its worker, less the model load of a worker's first job (`load_seconds` of its record); overhead = job time /
model time - 1. The sweep's
one-time costs (model load, the complexity count, the results table) are printed apart. `--rate-point-batch 2` codes
the rate points as one batch (a batch's wall time counted once; compare its coded frames/s with the default's).
Without trained weights use the golden test checkpoint (same architecture and arithmetic, so the same cost).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from bench.cli.run import run_sweep
from bench.data.clips import bundled_clip_path
from bench.data.colour import FILTERS
from bench.data.readers import ffmpeg_exe
from bench.sweep.config import SweepConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--size", default="448x256")
    parser.add_argument("--frames", type=int, default=8, help="frames per job, one GOP (default 8)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--filter", choices=FILTERS, default="nearest", help="chroma filter (default nearest)")
    parser.add_argument("--rate-points", nargs="+", default=["21:21", "42:42"], metavar="I:QP",
                        help="rate points (default 21:21 42:42)")
    parser.add_argument("--rate-point-batch", type=int, default=1, help="rate points per batch (default 1)")
    parser.add_argument("--device", default="cpu", help="the model's device: cpu (default) or cuda[:N]")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    points = [dict(zip(("i_quality", "qp"), map(int, text.split(":")))) for text in args.rate_points]
    fits = width <= 1280 and height <= 720
    frame = (f"crop={width}:{height}:{(1280 - width) // 2}:{(720 - height) // 2}" if fits
             else f"scale={width}:{height}:flags=bicubic")
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / f"clip_{width}x{height}.yuv"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(bundled_clip_path()), "-vf",
                        f"trim=start_frame=60,setpts=PTS-STARTPTS,{frame}", "-frames:v", str(args.frames),
                        "-f", "rawvideo", "-pix_fmt", "yuv420p", str(clip)], check=True)
        config = SweepConfig(
            codecs=[{"codec": "hytip", "model": "golden-test", "checkpoint": args.checkpoint}],
            input={"path": str(clip), "name": "bbb", "width": width, "height": height, "pix_fmt": "yuv420p",
                   "fps": 25}, rate_points=points,
            color_transforms=["BT601"],
            protocol={"frames": args.frames, "intra_period": args.frames, "color_filter": args.filter},
            execution={"devices": args.device, "threads": args.threads, "rate_point_batch": args.rate_point_batch})
        out = Path(tmp) / "out"
        started = time.perf_counter()
        assert run_sweep(config, out, progress=False) == 0
        wall = time.perf_counter() - started
        table = pd.read_csv(out / "results.csv")
        records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    model = table["enc_seconds"].sum()
    load = sum(r["result"]["load_seconds"] for r in records)
    batches = {tuple(r.get("batch") or [r["key"]]): r["seconds"] for r in records}   # a batch's records share it
    jobs = sum(batches.values()) - load
    frames = int(table["frames"].sum())
    print(f"sweep overhead: HyTIP estimate, {len(records)} jobs x {args.frames} frames at {width}x{height} "
          f"({'crop' if fits else 'scaled'}) in {len(batches)} batch(es), {table['device'].iloc[0]}, float32, "
          f"torch {torch.__version__}, BT.601 limited, {args.filter} chroma")
    print(f"  model time {model:.2f} s; job wall time {jobs:.2f} s without the model load; pipeline overhead "
          f"{100 * (jobs / model - 1):.2f} % of model time (reading, conversion, crop, metrics, records)")
    peak = max(records, key=lambda r: r["result"]["peak_memory_bytes"])["result"]
    print(f"  peak memory {peak['peak_memory_bytes'] / 2**30:.2f} GiB ({peak['peak_memory']})")
    print(f"  the model waited {table['input_wait_seconds'].sum():.2f} s for input (read, converted and cropped ahead "
          "of it in a background thread: the first frame of each job, plus any stall)")
    print(f"  whole sweep {wall:.2f} s: {frames / wall:.3f} coded frames/s; one-time costs {wall - jobs:.2f} s "
          f"(model load {load:.2f} s in the first job, complexity count, results table)")


if __name__ == "__main__":
    main()
