"""Benchmark: HyTIP coding speed and peak memory per frame, with our codec (hytip.Codec).

Times every frame of a short sequence (I, then P-frames) in each mode: `estimate` (forward path only, exact
kernels), `fast` (the same with the fast kernels, hytip.fast), `bf16` (the fast kernels with the inter coder's
transforms in bfloat16: fast where the CPU has native bfloat16 instructions (the protocol line says) or on a GPU),
`tf32` (CUDA only: the exact kernels with TensorFloat-32, which every other mode turns off), `batched` (the exact
estimate of the rate points BATCH_POINTS coded as one batch, one pass per frame; its throughput against one point at
a time is printed), `compress` (forward + rANS + container) and `decompress`, at each requested size. The P-frame
time is the mean over the P-frames with a temporal prior (frame 3 on); with --repeat, the fastest run's figure is
kept. With `estimate` and `fast`, `bf16` or `tf32`, their drift against the exact kernels is printed per frame
(recon, estimated rate, PSNR-RGB). The input is the bundled Big Buck Bunny clip scaled by ffmpeg to the coded size,
so the content is real video. A warm-up sequence runs first (oneDNN / cuDNN primitive creation is not part of the
per-frame cost).

    python -m bench.benchmarks.codec_speed --checkpoint PSNR-RGB.pth.tar [--sizes 448x256 1920x1024]
        [--modes estimate fast bf16 tf32 batched compress decompress] [--frames 4] [--threads 2] [--device cpu cuda]
        [--qp 0] [--i-quality 0] [--repeat 1]

Wall time per frame, and the process's CPU time (all threads), which other load on the machine distorts less;
the load average is printed with the figures. Peak memory: CPU, the process's resident high-water mark over the
mode (VmHWM, reset before each mode; includes the model, ~0.2 GB, and the freed memory the process keeps for reuse
(hytip.allocator), so a mode's figure is at least the earlier modes'; run one mode for its own peak); CUDA,
torch's peak allocated memory. The frame by which the peak was reached (to 1 %) is printed: on the CPU the kept memory
fragments and the peak grows over the first frames of a large size (1920x1024, fast kernels: 3.7-3.9 GB after 3 frames,
4.5 GB by frame 9 of 12), so a peak reached by the last frame may not be the sequence's. Weights do not change
the network's cost, but they do change the entropy coder's (symbol statistics): report which checkpoint was used.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import hytip
from bench.data.clips import bundled_clip_path
from bench.measure.metrics import psnr_rgb
from hytip.allocator import keep_freed_memory
from hytip.fast import uses_nnpack
from bench.data.readers import ffmpeg_exe


def clip_frames(width: int, height: int, count: int, start: int = 20) -> torch.Tensor:
    """``count`` frames [T,3,H,W] in [0,1] of the bundled clip, scaled to width x height (bicubic)."""
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(bundled_clip_path()),
                          "-vf", f"select=gte(n\\,{start}),scale={width}:{height}:flags=bicubic",
                          "-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(count, height, width, 3)
    return torch.from_numpy(frames.copy()).permute(0, 3, 1, 2).float().div(255)


def _native_bf16() -> str:
    """The CPU's bfloat16 instructions (without them oneDNN emulates bfloat16, slower than float32)."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    return ", ".join(f for f in ("avx512_bf16", "amx_bf16") if f in flags.split()) or "none"


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        try:
            Path("/proc/self/clear_refs").write_text("5")     # resets VmHWM (Linux)
        except OSError:
            pass


def _peak_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2 ** 30
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2 ** 20
    return float("nan")


def _timed(results, device: torch.device) -> tuple[list[tuple[str, float, float, float]], list]:
    """(frame type, wall seconds, process CPU seconds, peak memory so far in GB) per frame of a result iterator, and
    the results."""
    out, kept = [], []
    it = iter(results)
    while True:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            r = next(it)
        except StopIteration:
            return out, kept
        if device.type == "cuda":
            torch.cuda.synchronize()
        out.append(((r[0] if isinstance(r, list) else r).type, time.perf_counter() - start,
                    time.process_time() - cpu, _peak_gb(device)))
        kept.append(r)


MODES = ("estimate", "fast", "bf16", "tf32", "batched", "compress", "decompress")
KERNEL_MODES = ("fast", "bf16", "tf32")     # estimate with these kernels (hytip.codec.KERNELS); tf32 on CUDA only
# (QP, I-quality) coded as one batch in mode "batched": four points across the range (a point's cost is the network's,
# whatever the point). Not 63: the golden test checkpoint's I-frames overflow there on the bundled clip (NumericError).
BATCH_POINTS = ((0, 0), (16, 16), (32, 32), (48, 48))


def measure(codec: hytip.Codec, frames: torch.Tensor, qp: int, i_quality: int, folder: Path,
            modes=MODES) -> tuple[dict, dict]:
    """(figures per mode, FrameResults per mode)."""
    device = codec.device
    path = folder / "speed.hytip"
    runs = {
        "estimate": lambda: codec.estimate(iter(frames), qp=qp, i_quality=i_quality),
        **{k: (lambda k=k: codec.estimate(iter(frames), qp=qp, i_quality=i_quality, kernels=k))
           for k in KERNEL_MODES},
        "batched": lambda: codec.estimate_points(iter(frames), BATCH_POINTS),
        "compress": lambda: codec.compress(iter(frames), path, qp=qp, i_quality=i_quality),
        "decompress": lambda: codec.decompress(path),
    }
    figures, results = {}, {}
    for mode in modes:
        if mode == "decompress" and "compress" not in modes:
            raise SystemExit("decompress needs compress in --modes (it decodes that stream)")
        _reset_peak(device)
        times, results[mode] = _timed(runs[mode](), device)
        p_times = [t for k, t in enumerate(times) if t[0] == "P" and k >= 2] or [t for t in times if t[0] == "P"]
        figures[mode] = {"I_s": times[0][1], "I_cpu_s": times[0][2],
                         "P_s": statistics.mean(t[1] for t in p_times) if p_times else float("nan"),
                         "P_cpu_s": statistics.mean(t[2] for t in p_times) if p_times else float("nan"),
                         "P_frames": len(p_times), "peak_GB": times[-1][3],
                         # The CPU peak can still grow after the first frames (see the module docstring).
                         "peak_frame": 1 + next(k for k, t in enumerate(times) if t[3] >= 0.99 * times[-1][3])}
    if "compress" in modes:
        figures["stream_bytes"] = path.stat().st_size
    return figures, results


def drift(exact: list, fast: list, frames: torch.Tensor) -> list[str]:
    """Per frame: the fast or bf16 kernels against the exact ones (same frames, same rate point)."""
    lines = []
    for e, f, x in zip(exact, fast, frames):
        diff = (f.recon - e.recon).abs()
        psnr = [float(psnr_rgb(r.recon[None].cpu(), x[None])) for r in (e, f)]
        lines.append(f"frame {e.number} {e.type}: recon max|diff| {float(diff.max()):.2e} "
                     f"mean {float(diff.mean()):.2e}; est bits {f.est_bits_total / e.est_bits_total - 1:+.2e} rel; "
                     f"PSNR-RGB {psnr[1] - psnr[0]:+.2e} dB")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="HyTIP checkpoint (release or golden)")
    parser.add_argument("--sizes", nargs="+", default=["448x256"], help="WxH, multiples of 16")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--frames", type=int, default=4, help="frames per sequence (I + P-frames)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    parser.add_argument("--qp", type=int, default=0)
    parser.add_argument("--i-quality", type=int, default=0)
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the fastest figures are kept")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    print(f"protocol: torch {torch.__version__}, float32, inference mode, deterministic algorithms, "
          f"threads {torch.get_num_threads()}, freed memory kept for reuse (glibc: {keep_freed_memory()}), "
          f"{platform.processor() or platform.machine()} (native bfloat16: {_native_bf16()}), fast and bf16 kernels' "
          f"SPyNet 7x7 convolutions on the CPU by {'NNPACK FFT' if uses_nnpack('cpu') else 'oneDNN'}, "
          f"python {platform.python_version()}")
    print(f"checkpoint: {args.checkpoint}; clip: bundled Big Buck Bunny scaled with ffmpeg; "
          f"{args.frames} frames per run, QP {args.qp}, I-quality {args.i_quality}")
    with tempfile.TemporaryDirectory() as tmp:
        for device in args.device:
            # Deterministic mode: on CUDA, decoding is exact only with deterministic kernels.
            codec = hytip.load(args.checkpoint, device=device, deterministic=True, threads=args.threads)
            name = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({args.threads} threads)"
            print(f"device: {name}; checkpoint sha256 {codec.checkpoint.sha256[:16]}")
            for size in args.sizes:
                width, height = (int(v) for v in size.split("x"))
                frames = clip_frames(width, height, args.frames)
                modes = [m for m in MODES if m in args.modes and (m != "tf32" or device.startswith("cuda"))]
                if not args.no_warmup:
                    measure(codec, frames[:3], args.qp, args.i_quality, Path(tmp), modes)
                runs = [measure(codec, frames, args.qp, args.i_quality, Path(tmp), modes)
                        for _ in range(args.repeat)]
                f = {**runs[0][0], **{mode: {k: min(r[0][mode][k] for r in runs) for k in runs[0][0][mode]}
                                      for mode in modes}}
                for mode in modes:
                    m = f[mode]
                    print(f"{device:5s} {size:>10s} {mode:10s} I {m['I_s']:7.3f} s (CPU {m['I_cpu_s']:7.3f} s)  "
                          f"P {m['P_s']:7.3f} s (CPU {m['P_cpu_s']:7.3f} s, mean of {m['P_frames']})  "
                          f"peak {m['peak_GB']:.2f} GB (reached by frame {m['peak_frame']} of {args.frames})")
                if "estimate" in modes and "batched" in modes:
                    e, b = f["estimate"]["P_s"], f["batched"]["P_s"]
                    print(f"{device:5s} {size:>10s} batched: {len(BATCH_POINTS)} rate points {BATCH_POINTS} per pass, "
                          f"{b:.3f} s per P-frame pass = {b / len(BATCH_POINTS):.3f} s per coded P-frame; throughput "
                          f"{len(BATCH_POINTS) * e / b:.2f}x one point at a time (estimate)")
                for k in (k for k in KERNEL_MODES if k in modes and "estimate" in modes):
                    e, fa = f["estimate"]["P_s"], f[k]["P_s"]
                    print(f"{device:5s} {size:>10s} {k} / exact P-frame estimate: {e / fa:.2f}x; {k} kernels' "
                          "drift against the exact ones:")
                    for line in drift(runs[0][1]["estimate"], runs[0][1][k], frames):
                        print("    " + line)
                print(f"load average now: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
                if "stream_bytes" in f:
                    print(f"{device:5s} {size:>10s} stream {f['stream_bytes']} bytes for {args.frames} frames")


if __name__ == "__main__":
    main()
