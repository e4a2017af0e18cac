"""Benchmark: read a 1080p 8-bit 4:2:0 raw sequence and convert it to float RGB tensors, as a coding run does.

The input is the bundled Big Buck Bunny clip scaled to 1920x1080 by ffmpeg into a temporary raw .yuv (~120 frames,
~370 MB), so the data is real video, not noise. Prints frames/s and peak memory for the protocol used.

    python -m bench.benchmarks.read_convert [--frames 96] [--protocol BT601] [--filter nearest] [--threads 2]
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import torch

from bench.data.clips import bundled_clip_path
from bench.data.colour import FILTERS, ColourSpec, yuv420_to_rgb
from bench.data.readers import ffmpeg_exe, open_source

WIDTH, HEIGHT, MADE_FRAMES = 1920, 1080, 120


def make_sequence(folder: Path) -> Path:
    path = folder / f"bbb_{WIDTH}x{HEIGHT}_25.yuv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-i", str(bundled_clip_path()),
                    "-frames:v", str(MADE_FRAMES), "-vf", f"scale={WIDTH}:{HEIGHT}:flags=bicubic",
                    "-f", "rawvideo", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def run(path: Path, frames: int, spec: ColourSpec, device: str) -> dict:
    tracemalloc.start()
    cpu, start = time.process_time(), time.perf_counter()
    with open_source(path, width=WIDTH, height=HEIGHT, pix_fmt="yuv420p", num_frames=frames) as source:
        checksum = 0.0
        for y, u, v in source.frames():
            rgb = yuv420_to_rgb(y, u, v, spec, device=device)[None]  # (1, 3, H, W), what the codec takes
            checksum += float(rgb[0, :, 0, 0].sum())  # touches the result, and syncs on CUDA
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds, "cpu_seconds": cpu_seconds,
            "tracemalloc_peak_mb": traced_peak / 2**20, "checksum": checksum}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--protocol", choices=["BT601", "BT709"], default="BT601")
    parser.add_argument("--filter", choices=FILTERS, help="chroma filter (default: the protocol's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rss_after_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    torch.set_num_threads(args.threads)
    spec = ColourSpec.for_protocol(args.protocol)
    if args.filter:
        spec = replace(spec, filter=args.filter)
    with tempfile.TemporaryDirectory() as tmp:
        path = make_sequence(Path(tmp))
        runs = [run(path, args.frames, spec, args.device) for _ in range(args.repeats)]
    fps = sorted(r["fps"] for r in runs)
    best = max(runs, key=lambda r: r["fps"])
    print(f"read+convert {WIDTH}x{HEIGHT} yuv420p -> float32 RGB (1,3,H,W), {args.frames} frames x "
          f"{args.repeats} runs: best {fps[-1]:.1f}, median {fps[len(fps) // 2]:.1f} frames/s (wall clock)")
    print(f"CPU time {1000 * best['cpu_seconds'] / args.frames:.1f} ms/frame over all threads "
          f"(= {args.frames * args.threads / best['cpu_seconds']:.1f} frames/s if {args.threads} cores were free)")
    print(f"peak memory: ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (whole "
          f"process, {rss_after_import:.0f} MB of it after importing torch), "
          f"tracemalloc {best['tracemalloc_peak_mb']:.1f} MB (Python/numpy allocations)")
    print(f"protocol: {spec} {spec.describe()}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {args.device}")

if __name__ == "__main__":
    main()
