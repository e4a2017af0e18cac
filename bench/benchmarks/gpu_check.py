"""The prepared GPU check: one command, under 8 minutes on one GPU, one table.

    python -m bench.benchmarks.gpu_check [--device cuda:0] [--size 1920x1024] [--max-batch 32]
    python -m bench.benchmarks.gpu_check --cpu      # the same steps on the CPU at small sizes (CI runs it)

1. Golden cases A and B (the official code's vectors, tests/data/golden; the golden checkpoint, test data, not
   HyTIP's weights) coded with estimated rates on the device: each frame's estimated rate and PSNR-RGB against the
   golden values, and the reconstruction against the golden one, within the golden README's suggested tolerances
   for an independent float32 implementation (a GPU is another platform; tests/golden.py SUGGESTED).
2. A real stream coded and decoded on the device: the decoded frames equal the encoder's reconstructions (sha256 per
   frame, as the sweep's stream manifest and `run_bench.py verify-streams`).
3. Across devices: the device's stream decoded on the CPU, and the CPU's on the device. Learned codecs may not decode
   across devices (floating point in the entropy model's parameters); the row says whether they do, and where the
   first frame differs.
4. Speed and peak memory of each kernel set at --size (the bundled clip scaled; the mean P-frame time with a temporal
   prior, synchronised; CUDA: torch's peak allocated memory).
5. The largest rate-point batch (estimated rates, `rate_point_batch`) that fits at --size, by doubling up to
   --max-batch.
Exit status 0 when 1 and 2 pass (3 is reported, not judged), 1 otherwise.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import hytip
from bench import REPO_ROOT
from bench.benchmarks.codec_speed import clip_frames
from bench.codecs.hytip_codec import recon_sha256
from bench.measure.metrics import psnr_plane
from hytip.codec import KERNELS, DecodeError

CPU_SIZE, GPU_SIZE = "128x64", "1920x1024"


def _golden():
    sys.path.insert(0, str(REPO_ROOT / "tests"))   # the golden vectors and checkpoint live with the tests
    import golden
    return golden


def _sync(device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _hashes(results) -> list[str]:
    return [recon_sha256(r.recon) for r in results]


def _first_difference(got: list[str], expected: list[str]) -> str:
    for number, (a, b) in enumerate(zip(got, expected), start=1):
        if a != b:
            return f"frame {number} differs first ({sum(x != y for x, y in zip(got, expected))} of {len(got)})"
    return "all frames equal" if len(got) == len(expected) else f"{len(got)} of {len(expected)} frames decoded"


def golden_case(codec, name: str, frames: int) -> tuple[bool, str]:
    """Case `name`'s first `frames` frames: the worst rate, PSNR and reconstruction differences against golden."""
    golden = _golden()
    case, tol = golden.load_case(name), golden.SUGGESTED
    source = case["input_frames"][:frames]
    x = torch.from_numpy(source).permute(0, 3, 1, 2).float() / 255
    results = list(codec.estimate(x, qp=int(case["qp"][1]), i_quality=int(case["meta"]["iframe_q"]),
                                  intra_period=None))
    pixels = x.shape[-2] * x.shape[-1]
    rate = max(abs(r.est_bits_total / pixels - g) / g for r, g in zip(results, case["est_bpp_total"]))
    psnr = max(abs(psnr_plane(r.recon.cpu().numpy(), s.transpose(2, 0, 1) / 255, 1) - g)
               for r, s, g in zip(results, source, case["psnr_rgb"]))
    recon = min(psnr_plane(r.recon.cpu().numpy(), g, 1) for r, g in zip(results, case["recon"]))
    ok = rate <= tol.est_bpp_total_rel and psnr <= tol.psnr_rgb_abs_db and recon >= tol.recon_psnr_min_db
    return ok, (f"{frames} frames: rate within {rate:.2e} (bound {tol.est_bpp_total_rel:g}), PSNR-RGB within "
                f"{psnr:.2e} dB (bound {tol.psnr_rgb_abs_db:g}), recon >= {recon:.1f} dB against golden "
                f"(bound {tol.recon_psnr_min_db:g})")


def coded(codec, frames: torch.Tensor, folder: Path, name: str) -> tuple[Path, list[str]]:
    stream = folder / f"{name}.hytip"
    return stream, _hashes(codec.compress(frames, stream, qp=30, i_quality=30, intra_period=None))


def decoded(codec, stream: Path) -> tuple[list[str], str]:
    try:
        return _hashes(codec.decompress(stream)), ""
    except DecodeError as exc:
        return [], f"decode failed: {exc}"


def speed(codec, device: str, kernels: str, frames: torch.Tensor) -> str:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    times, started = [], _sync(device)
    for _ in codec.estimate(frames, qp=30, i_quality=30, intra_period=None, kernels=kernels):
        now = _sync(device)
        times.append(now - started)
        started = now
    peak = (f", peak {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB allocated"
            if device.startswith("cuda") else "")
    return f"{1000 * float(np.mean(times[2:])):.1f} ms per P-frame{peak}"


def largest_batch(codec, device: str, frames: torch.Tensor, limit: int) -> str:
    fits, batch = 0, 1
    while batch <= limit:
        try:
            for _ in codec.estimate_points(frames[:2], [(30, 30)] * batch, intra_period=None):
                pass
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            break
        fits, batch = batch, batch * 2
    return f"{fits} rate points" + (" (the limit tried)" if fits == limit else "")


def run(args) -> int:
    device = "cpu" if args.cpu else args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA device here; run with --cpu for the CPU steps", file=sys.stderr)
        return 2
    size = args.size or (CPU_SIZE if args.cpu else GPU_SIZE)
    width, height = map(int, size.split("x"))
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    print(f"gpu_check on {device} ({name}), torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}; golden "
          "checkpoint (test data, not HyTIP's weights)")
    started = time.perf_counter()
    ckpt = _golden().golden_checkpoint_path()
    # As the sweep loads it: deterministic kernels on CUDA, where streams decode exactly only with them.
    codec = hytip.load(ckpt, device=device, deterministic=device.startswith("cuda"))
    cpu = codec if device == "cpu" else hytip.load(ckpt, device="cpu")
    rows, ok = [], True
    for case in ("A", "B"):
        passed, text = golden_case(codec, case, args.golden_frames)
        rows.append((f"golden case {case} on {device}", "pass" if passed else "FAIL", text))
        ok &= passed
    frames = clip_frames(width, height, args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        stream, hashes = coded(codec, frames[:3], Path(tmp), "device")
        got, error = decoded(codec, stream)
        same = got == hashes
        rows.append((f"decode == encoder recon on {device}", "pass" if same else "FAIL",
                     error or _first_difference(got, hashes)))
        ok &= same
        cpu_stream, cpu_hashes = coded(cpu, frames[:3], Path(tmp), "cpu")
        for label, decoder, what, expected in ((f"{device} stream decoded on cpu", cpu, stream, hashes),
                                               (f"cpu stream decoded on {device}", codec, cpu_stream, cpu_hashes)):
            got, error = decoded(decoder, what)
            rows.append((label, "match" if got == expected else "differs", error or _first_difference(got, expected)))
    for kernels in KERNELS:
        if kernels == "tf32" and not device.startswith("cuda"):
            rows.append((f"speed, {kernels} kernels, {size}", "n/a", "TensorFloat-32 exists on CUDA only"))
            continue
        rows.append((f"speed, {kernels} kernels, {size}", "measured", speed(codec, device, kernels, frames)))
    rows.append((f"largest rate-point batch, {size}", "measured",
                 largest_batch(codec, device, frames, args.max_batch or (32 if device.startswith("cuda") else 2))))
    width_check = max(len(r[0]) for r in rows)
    for check, verdict, text in rows:
        print(f"{check:<{width_check}}  {verdict:<8}  {text}")
    print(f"{'passed' if ok else 'FAILED'} in {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="the GPU (default cuda)")
    parser.add_argument("--cpu", action="store_true", help="every step on the CPU at small sizes (CI)")
    parser.add_argument("--size", help=f"WxH of the speed and batch steps (default {GPU_SIZE}; --cpu {CPU_SIZE})")
    parser.add_argument("--frames", type=int, default=5, help="frames of the speed step (default 5: I, P, 3 timed)")
    parser.add_argument("--golden-frames", type=int, default=6, help="frames of each golden case (1-6, default 6)")
    parser.add_argument("--max-batch", type=int, help="largest batch tried (default 32 on CUDA, 2 on the CPU)")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
