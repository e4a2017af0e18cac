"""HyTIP as a sweep codec: one checkpoint (one metric model), loaded once per worker process.

Frames are read, converted with the run's ColourSpec and centre-cropped a few frames ahead of the model, in a
background thread (bench.data.prefetch), then coded with `hytip.Codec` in one of two rate modes: `estimated`
(Σ −log2 p, the paper's tables) or `real` (entropy-coded stream written under the job's bitstream folder, then
decoded; the record says whether every decoded frame equals the encoder's reconstruction). Encode and decode seconds
are per frame, synchronised on CUDA and without the time the model waited for its input, which the result gives
apart (`input_wait_seconds`: a stall shows there). On a GPU, per-frame metrics are computed in another thread, behind the
model. Estimated rates may code several rate points of a sequence as one batch (`code_points`): a frame's seconds are
then the batch's divided by its points (`rate_point_batch`), and the rates move in the last bits (tests/test_batch.py).
"""
from __future__ import annotations

import hashlib
import resource
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from tqdm import tqdm

import hytip
from bench.codecs.base import (
    RateAxis,
    SourceSpec,
    frame_metrics,
    json_number,
    reference_planes,
    reference_rgb,
    summarise,
)
from bench.data.colour import ColourSpec, rgb_to_yuv420
from bench.data.prefetch import Prefetch
from bench.errors import InputError
from bench.measure.video_metrics import FramePairs
from hytip.bitstream import MAX_INDEX
from hytip.checkpoint import load_checkpoint
from hytip.codec import KERNELS
from hytip.errors import HytipError
from hytip.fast import FAST_KERNELS, uses_nnpack
from hytip.model import HyTIP

METRICS_BEHIND = 2       # frames whose metrics may still be computing while the model codes the next one
MODELS = ("PSNR-RGB", "MS-SSIM-RGB")  # the release's two checkpoints; any other name labels a user's model
RATE_MODES = ("estimated", "real")
# Rate points of the published curves: not stated by the release (README, scripts) or the paper text we could read;
# the DCVC family, whose 0..63 quality indexes HyTIP shares, samples its curves at I-frame quality = P-frame QP in
# {0, 21, 42, 63} (microsoft/DCVC issue 128).
DEFAULT_RATE_POINTS = tuple((q, q) for q in (0, 21, 42, 63))


# Where a sweep job needs a value of the model's output on the host, beside hytip.codec's HOST_POINTS: the metrics
# of each reconstruction (a thread beside the model on a GPU), with VMAF/XPSNR asked for its 4:2:0 planes, and in
# real mode its hash. Real mode also hashes each reconstruction on the host
# and entropy codes there (hytip.entropy_coding). tests/test_fake_cuda.py runs a job on fake CUDA with these replaced.
HOST_POINTS = ("frame_metrics", "_yuv_planes", "recon_sha256")


def recon_sha256(recon: torch.Tensor) -> str:
    """The stream manifest's hash of one reconstructed frame (its float32 values' bytes), by which a stream's decoded
    frames are compared with the encoder's, here and on another device (bench.sweep.verify)."""
    return hashlib.sha256(recon.cpu().numpy().tobytes()).hexdigest()


def _yuv_planes(recon: torch.Tensor, spec: ColourSpec, source: SourceSpec):
    """The reconstruction's 4:2:0 planes for VMAF/XPSNR, made on the host as the PSNR-Y/U/V columns take them."""
    return rgb_to_yuv420(recon.float().cpu(), spec, bit_depth=source.bit_depth)


@lru_cache(maxsize=4)
def _loaded(checkpoint: str, device: str, threads: int | None) -> hytip.Codec:
    # On CUDA, real-mode streams decode exactly only with deterministic kernels; on the CPU the fixed thread count
    # is enough, and set_deterministic's single thread would waste the cores.
    return hytip.load(checkpoint, device=device, deterministic=device.startswith("cuda"), threads=threads)


@lru_cache(maxsize=8)
def _check_checkpoint(path: str, size: int, mtime_ns: int) -> None:
    """A checkpoint HyTIP loads strictly (before any job runs, also in a dry run); the file's size and time key the
    cache, so a replaced file is checked again."""
    try:
        load_checkpoint(HyTIP(), Path(path))
    except HytipError as exc:
        raise InputError(f"HyTIP checkpoint {exc}") from None


@lru_cache(maxsize=16)
def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sync(device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    return time.perf_counter()


def peak_memory(device: str) -> tuple[int, str]:
    """The job's peak memory and what it is: CUDA allocator peak, or the worker process's peak RSS."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(device), "CUDA max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process peak RSS"


def _converted(source: SourceSpec, spec: ColourSpec):
    """(RGB, reference planes) of each source frame; runs in the read-ahead thread."""
    with source.open() as reader:
        for frame in reader.frames(0, source.frames):
            rgb = reference_rgb(frame, source, spec)
            yield rgb, reference_planes(frame, rgb, source, spec)


def _computed(fn, *args) -> Future:
    """``fn(*args)`` run now, as a finished Future."""
    done = Future()
    done.set_result(fn(*args))
    return done


class _Reader:
    """Source frames as [3,h,w] RGB, read, converted and cropped ahead of the codec in a background thread, with their
    reference planes kept for the metrics; `wait_seconds`, the time the codec waited for a frame, is not the codec's."""

    def __init__(self, source: SourceSpec, spec: ColourSpec):
        self.refs = []
        self._frames = Prefetch(_converted(source, spec), name=f"read {source.name}")

    @property
    def wait_seconds(self) -> float:
        return self._frames.wait_seconds

    def __iter__(self):
        for rgb, planes in self._frames:
            self.refs.append((rgb, planes))
            yield rgb

    def __enter__(self) -> "_Reader":
        return self

    def __exit__(self, *exc) -> None:
        self._frames.close()


@dataclass(frozen=True)
class HytipCodec:
    checkpoint: str
    model: str = "PSNR-RGB"
    threads: int | None = None
    kernels: str = "exact"          # or "fast" / "bf16" / "tf32" (hytip.codec.KERNELS): estimated rates only

    name = "HyTIP"

    def spec(self) -> dict:
        return {"kind": "hytip", "checkpoint": self.checkpoint, "model": self.model, "threads": self.threads,
                "kernels": self.kernels}

    def identity(self) -> dict:
        # kernels only when not the default: the hashes of existing exact-kernel jobs stay as they were
        extra = {"kernels": self.kernels} if self.kernels != "exact" else {}
        return {"kind": "hytip", "model": self.model, "checkpoint_sha256": file_sha256(self.checkpoint), **extra}

    def check(self) -> None:
        if self.kernels not in KERNELS:
            raise InputError(f"HyTIP {self.model}: kernels {self.kernels!r} is not one of {', '.join(KERNELS)}")
        path = Path(self.checkpoint)
        if not path.is_file():
            raise InputError(f"HyTIP {self.model}: checkpoint {self.checkpoint} not found (run_bench.py "
                             f"fetch-weights gets the release's {self.model}.pth.tar; docs/reproduce-paper.md)")
        stat = path.stat()
        _check_checkpoint(str(path), stat.st_size, stat.st_mtime_ns)

    def check_source(self, source: SourceSpec) -> None:
        pass  # HyTIP codes RGB from any source

    @property
    def rate_axis(self) -> RateAxis:
        return RateAxis(0, MAX_INDEX, more_bits_up=True, paired=True)

    def code(self, source: SourceSpec, rate, spec: ColourSpec, *, rate_mode: str, folders: dict,
             device: str = "cpu", metrics: tuple = ()) -> dict:
        return self.code_points(source, [rate], spec, rate_mode=rate_mode, folders=folders, device=device,
                                metrics=metrics)[0]

    def code_points(self, source: SourceSpec, rates: list, spec: ColourSpec, *, rate_mode: str, folders: dict,
                    device: str = "cpu", metrics: tuple = ()) -> list[dict]:
        """A result per rate point of ``rates``, coded as one batch (``hytip.Codec.estimate_points``; estimated
        rates only). A GPU out of memory for the batch codes it again in two halves, down to one point at a time;
        each result says the batch it was coded in (``rate_point_batch``)."""
        if rate_mode not in RATE_MODES:
            raise InputError(f"rate mode {rate_mode!r} is not one of {', '.join(RATE_MODES)}")
        if rate_mode == "real" and self.kernels != "exact":
            raise InputError(f"HyTIP {self.model}: the {self.kernels} kernels are for estimated rates; real "
                             "bitstreams are coded with the exact kernels (a decoder must run the encoder's)")
        if rate_mode == "real" and len(rates) > 1:
            raise InputError(f"HyTIP {self.model}: real bitstreams are coded one rate point at a time (a stream coded "
                             "in a batch would decode exactly only in the same batch)")
        try:
            return self._code(source, rates, spec, rate_mode, folders, device, metrics)
        except torch.cuda.OutOfMemoryError:
            if len(rates) == 1:
                raise
        torch.cuda.empty_cache()
        half = len(rates) // 2
        return [result for part in (rates[:half], rates[half:])
                for result in self.code_points(source, part, spec, rate_mode=rate_mode, folders=folders,
                                               device=device, metrics=metrics)]

    def _code(self, source: SourceSpec, rates: list, spec: ColourSpec, rate_mode: str, folders: dict,
              device: str, video_metrics: tuple = ()) -> list[dict]:
        loading = time.perf_counter()
        codec = _loaded(self.checkpoint, device, self.threads)
        load_seconds = time.perf_counter() - loading      # a worker's first job only: the model is then cached
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(device)
        plan = dict(intra_period=source.intra_period, scene_cuts=source.scene_cuts)
        stream = None
        if rate_mode == "real":
            Path(folders["bitstreams"]).mkdir(parents=True, exist_ok=True)
            stream = Path(folders["bitstreams"]) / "sequence.hytip"
        n = len(rates)
        per_frame = [{"number": [], "type": [], "bits": [], "enc_seconds": [], "dec_seconds": []} for _ in rates]
        recon_hashes, metrics = [], [[] for _ in rates]
        # VMAF/XPSNR (bench.measure.video_metrics): the sequence's frames collected, measured once after coding.
        pairs = [FramePairs(source.crop.width, source.crop.height, source.bit_depth, source.fps)
                 for _ in rates] if video_metrics else []
        # On a GPU the metrics (MS-SSIM, the recon's YUV conversion) run beside the model, a few frames behind it at
        # most; on the CPU the model's threads already use every core, so they run in turn with it, as they do with
        # the tf32 kernels, which turn TensorFloat-32 on (process-wide) for their frames only.
        with _Reader(source, spec) as reader, ThreadPoolExecutor(1, thread_name_prefix="metrics") as pool:
            beside = device.startswith("cuda") and self.kernels != "tf32"
            submit = pool.submit if beside else _computed
            if stream:
                coded = ([r] for r in codec.compress(reader, stream, qp=rates[0].qp, i_quality=rates[0].i_quality,
                                                     **plan))
            else:
                coded = codec.estimate_points(reader, [(r.qp, r.i_quality) for r in rates], kernels=self.kernels,
                                              **plan)
            started, waited_before = _sync(device), 0.0
            label = rates[0].label if n == 1 else f"{n} rate points"
            # Inside a long job a bar per frame (shown on a terminal only, so logs and tests stay clean).
            for results in tqdm(coded, total=source.frames, desc=f"{source.name} {label}", unit="frame",
                                leave=False, disable=None):
                now = _sync(device)
                # The codec pulls its next frame inside the call: the time it waited for one is not coding time.
                seconds = (now - started - (reader.wait_seconds - waited_before)) / n
                rgb, planes = reader.refs.pop(0)
                for frame, result, done in zip(per_frame, results, metrics):
                    frame["enc_seconds"].append(seconds)
                    frame["number"].append(result.number)
                    frame["type"].append(result.type)
                    frame["bits"].append(8 * result.bytes_total if stream else result.est_bits_total)
                    if len(done) > METRICS_BEHIND and not done[-METRICS_BEHIND - 1].done():
                        done[-METRICS_BEHIND - 1].result()
                    done.append(submit(frame_metrics, result.recon, rgb, planes, source, spec))
                    if stream:
                        recon_hashes.append(recon_sha256(result.recon))
                for pair, result in zip(pairs, results):
                    pair.add(_yuv_planes(result.recon, spec, source), planes)
                waited_before, started = reader.wait_seconds, _sync(device)
            for frame, done in zip(per_frame, metrics):
                for future in done:
                    for key, value in future.result().items():
                        frame.setdefault(key, []).append(json_number(value))
        scores = [pair.measure(video_metrics, self.threads or torch.get_num_threads()) for pair in pairs]
        for frame, score in zip(per_frame, scores):
            frame.update(score.per_frame)
        decode_check = "n/a"
        if stream:
            decoded, started = [], _sync(device)
            for result in codec.decompress(stream):
                decoded.append(recon_sha256(result.recon))
                now = _sync(device)
                per_frame[0]["dec_seconds"].append(now - started)
                started = now
            decode_check = "equal" if decoded == recon_hashes else "differs"
            per_frame[0]["recon_sha256"] = recon_hashes   # the stream's manifest, with bitstream_sha256
        else:
            for frame in per_frame:
                frame["dec_seconds"] = [None] * len(frame["number"])
        peak, peak_what = peak_memory(device)
        # A batch's one-time costs (the model load, the waits for input: one reader feeds every point) are on its
        # first point, so that sums over records count them once.
        results = [self._result(source, rate, frame, rate_mode, stream, decode_check, peak, peak_what, n,
                                load_seconds if i == 0 else 0.0, reader.wait_seconds if i == 0 else 0.0, device)
                   for i, (rate, frame) in enumerate(zip(rates, per_frame))]
        for result, score in zip(results, scores):
            result["video_metrics"] = score.record()
        return results

    def _result(self, source: SourceSpec, rate, per_frame: dict, rate_mode: str, stream: Path | None,
                decode_check: str, peak: int, peak_what: str, batch: int, load_seconds: float,
                input_wait_seconds: float, device: str) -> dict:
        crop = source.crop
        pixels = crop.width * crop.height * source.frames
        bits = 8 * stream.stat().st_size if stream else sum(per_frame["bits"])
        call = (f"compress(qp={rate.qp}, i_quality={rate.i_quality}, " if stream else
                f"estimate(qp={rate.qp}, i_quality={rate.i_quality}, " if batch == 1 else
                f"estimate_points(<{batch} points>, point (qp={rate.qp}, i_quality={rate.i_quality}), ")
        kernels = f"{self.kernels} kernels" + (" (SPyNet's 7x7 convolutions by NNPACK's FFT)"
                                               if self.kernels in FAST_KERNELS and uses_nnpack(device) else "")
        return {
            "codec": self.name, "version": self.model, "model": self.model, "rate": rate.label,
            "config": f"{self.model} checkpoint {Path(self.checkpoint).name} sha256 {file_sha256(self.checkpoint)}; "
                      f"rate mode {rate_mode}; {kernels}; i_quality {{i_quality}} qp {{qp}} "
                      "(columns i_quality, qp)",
            "checkpoint_sha256": file_sha256(self.checkpoint), "input_format": "rgb (float32)",
            "bits": bits, "bpp": bits / pixels, "kbps": bits * source.fps / source.frames / 1000,
            "width": crop.width, "height": crop.height, "frames": source.frames,
            "metrics": summarise(per_frame, source), "per_frame": per_frame, "decode_check": decode_check,
            "enc_seconds": sum(per_frame["enc_seconds"]),
            "dec_seconds": sum(per_frame["dec_seconds"]) if stream else None,
            "input_wait_seconds": input_wait_seconds, "load_seconds": load_seconds,
            "rate_point_batch": batch, "peak_memory_bytes": peak, "peak_memory": peak_what, "yuv_weights": "6:1:1",
            "bitstream": str(stream) if stream else None,
            # Not file_sha256: it caches by path, and a rerun rewrites the stream in place.
            "bitstream_sha256": hashlib.sha256(stream.read_bytes()).hexdigest() if stream else None,
            "command": f"hytip.Codec.{call}intra_period={source.intra_period}, "
                       f"scene_cuts={list(source.scene_cuts)})",
        }
