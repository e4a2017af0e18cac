"""Benchmark: what VMAF and XPSNR cost per 1080p frame on this machine, as a sweep with --metrics pays it.

The source is the bundled Big Buck Bunny clip scaled to 1920x1080 by ffmpeg (a few frames from a part with motion),
the reconstruction the same frames coded by x264 at QP 32 and decoded, so the data is real video. Each metric runs as
bench.measure.video_metrics runs it (one ffmpeg run over the sequence); "collect" is the writing of both frames to
the raw files (`FramePairs.add`), which a sweep does per frame. Prints wall and CPU seconds per frame (ffmpeg's
children's CPU time), best of --repeats, with the versions that make the numbers.

    python -m bench.benchmarks.video_metrics_cost [--frames 16] [--threads 1 2] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.argtypes import positive_int
from bench.data.clips import bundled_clip_path
from bench.data.readers import ffmpeg_exe
from bench.measure.video_metrics import VMAF_MODEL, FramePairs, ffmpeg_version, frame_size, measure_files

WIDTH, HEIGHT, FPS, START = 1920, 1080, 25, 60


def make_pair(folder: Path, frames: int) -> tuple[Path, Path]:
    reference, distorted = folder / "reference.yuv", folder / "distorted.yuv"
    quiet = [ffmpeg_exe(), "-v", "error", "-nostdin", "-y"]
    raw = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{WIDTH}x{HEIGHT}", "-framerate", str(FPS)]
    subprocess.run([*quiet, "-i", str(bundled_clip_path()), "-vf",
                    f"trim=start_frame={START},setpts=PTS-STARTPTS,scale={WIDTH}:{HEIGHT}:flags=bicubic",
                    "-frames:v", str(frames), "-f", "rawvideo", "-pix_fmt", "yuv420p", str(reference)], check=True)
    subprocess.run([*quiet, *raw, "-i", str(reference), "-c:v", "libx264", "-preset", "veryfast", "-qp", "32",
                    "-f", "h264", str(folder / "coded.264")], check=True)
    subprocess.run([*quiet, "-i", str(folder / "coded.264"), "-f", "rawvideo", "-pix_fmt", "yuv420p", str(distorted)],
                   check=True)
    return distorted, reference


def timed(fn) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process and its finished children, result)."""
    def cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    cpu0, wall0 = cpu(), time.perf_counter()
    result = fn()
    return time.perf_counter() - wall0, cpu() - cpu0, result


def planes(path: Path, frames: int):
    data = np.fromfile(path, np.uint8).reshape(frames, -1)
    y, c = WIDTH * HEIGHT, WIDTH * HEIGHT // 4
    return [(f[:y].reshape(HEIGHT, WIDTH), f[y:y + c].reshape(HEIGHT // 2, WIDTH // 2),
             f[y + c:].reshape(HEIGHT // 2, WIDTH // 2)) for f in data]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=positive_int, default=16, help="1080p frames measured (default 16)")
    parser.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2], help="libvmaf threads (1 2)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="runs of each, the best kept (default 3)")
    args = parser.parse_args()
    n = args.frames
    with tempfile.TemporaryDirectory(prefix="video-metrics-cost-") as tmp:
        distorted, reference = make_pair(Path(tmp), n)
        assert distorted.stat().st_size == n * frame_size(WIDTH, HEIGHT, 8)
        common = dict(width=WIDTH, height=HEIGHT, bit_depth=8, frames=n, fps=FPS)
        rows, protocols = [], {}
        for metric, threads in [("vmaf", t) for t in args.threads] + [("xpsnr", 1)]:
            runs = [timed(lambda: measure_files(distorted, reference, metrics=[metric], threads=threads, **common))
                    for _ in range(args.repeats)]
            wall, cpu, scores = min(runs, key=lambda r: r[0])
            protocols[metric] = scores.protocol
            label = f"{metric} ({'libvmaf n_threads=' + str(threads) if metric == 'vmaf' else 'single-threaded'})"
            rows.append((label, wall / n, cpu / n, np.mean(scores.per_frame[metric])))
        frames = list(zip(planes(distorted, n), planes(reference, n)))

        def collect():
            pairs = FramePairs(WIDTH, HEIGHT, 8, FPS, folder=tmp)
            for pair in frames:
                pairs.add(*pair)
            return pairs
        wall, cpu, _ = min((timed(collect) for _ in range(args.repeats)), key=lambda r: r[0])
        rows.append(("collect (FramePairs.add, both frames)", wall / n, cpu / n, None))
    print(f"VMAF and XPSNR per 1080p frame: {n} frames of the bundled clip scaled to {WIDTH}x{HEIGHT} (frames "
          f"{START}..{START + n - 1}), x264 QP 32 reconstruction; best of {args.repeats}; {os.cpu_count()} CPU cores")
    print(f"ffmpeg {ffmpeg_version()} (imageio-ffmpeg), VMAF model {VMAF_MODEL}")
    print(f"{'step':<42} {'wall s/frame':>12} {'CPU s/frame':>12} {'mean value':>10}")
    for label, wall, cpu, value in rows:
        print(f"{label:<42} {wall:>12.3f} {cpu:>12.3f} {'' if value is None else f'{value:.2f}':>10}")
    for metric, protocol in protocols.items():
        print(f"protocol of {metric}: {protocol}")


if __name__ == "__main__":
    main()
