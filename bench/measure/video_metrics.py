"""VMAF and XPSNR of a reconstruction against its source, per frame, by ffmpeg's `libvmaf` and `xpsnr` filters.

Both sides are raw YUV 4:2:0 planar files of one size, bit depth and frame count (`measure_files`), or frames
collected into such files (`FramePairs`). Both metrics have temporal terms (VMAF's motion feature, XPSNR's temporal
activity of the source), so a sequence is measured whole, in display order, in one ffmpeg run per metric:
- `vmaf`: libvmaf with its model named explicitly (`VMAF_MODEL`; the model clips its score to [0, 100]); the protocol
  gives the model, libvmaf's version as its JSON log states it, and ffmpeg's version;
- `xpsnr_y`, `xpsnr_u`, `xpsnr_v`: ffmpeg's xpsnr filter, per frame and plane, from its stats file. ffmpeg weights no
  plane against another: each plane's XPSNR is 10 log10 of peak^2 over its own squared errors, block-weighted by the
  visual activity of the source's luma (the chroma blocks take the weights of the co-located luma blocks), and the
  only cross-plane figure it prints is the minimum of the three (its summary line). `xpsnr` is that minimum, per
  frame. XPSNR's temporal activity is a first-order difference of the source's frames below 32 fps (integer part of
  the rate) and a second-order one from 32 fps, so the source's frame rate is passed.
"""
from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from bench.data.readers import ffmpeg_exe
from bench.errors import BenchError, InputError

VIDEO_METRICS = ("vmaf", "xpsnr")
VMAF_MODEL = "vmaf_v0.6.1"
COLUMNS = {"vmaf": ("vmaf",), "xpsnr": ("xpsnr_y", "xpsnr_u", "xpsnr_v", "xpsnr")}
FILTERS = {"vmaf": "libvmaf", "xpsnr": "xpsnr"}
_XPSNR_LINE = re.compile(r"^n:\s*(\d+)\s+XPSNR y:\s*(\S+)\s+XPSNR u:\s*(\S+)\s+XPSNR v:\s*(\S+)\s*$")


class MetricFailed(BenchError):
    """ffmpeg could not measure: a filter it lacks, a run that failed, or fewer frames measured than given."""


def check_metrics(names) -> tuple[str, ...]:
    """The metrics asked for, each once, in VIDEO_METRICS order; anything else is refused with the list."""
    if names is None:
        return ()
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise InputError(f"metrics: expected a list of {', '.join(VIDEO_METRICS)}, found {names!r}")
    unknown = [n for n in names if n not in VIDEO_METRICS]
    if unknown:
        raise InputError(f"metrics: unknown metric(s) {', '.join(map(repr, unknown))}; expected some of "
                         f"{', '.join(VIDEO_METRICS)}")
    return tuple(m for m in VIDEO_METRICS if m in names)


@lru_cache(maxsize=4)
def _ffmpeg_text(exe: str, *args: str) -> str:
    try:
        done = subprocess.run([exe, "-hide_banner", *args], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise MetricFailed(f"ffmpeg not found at {exe} ({exc.strerror}); the metrics need the ffmpeg of "
                           "imageio-ffmpeg (pip install imageio-ffmpeg)") from None
    return done.stdout + done.stderr


def ffmpeg_version(exe: str | None = None) -> str:
    found = re.search(r"ffmpeg version (\S+)", _ffmpeg_text(exe or ffmpeg_exe(), "-version"))
    return found.group(1) if found else "unknown"


def check_ffmpeg(metrics, exe: str | None = None) -> None:
    """Raise MetricFailed naming the ffmpeg and the filter when a metric asked for cannot be measured by it."""
    if not metrics:
        return
    exe = exe or ffmpeg_exe()
    listed = {line.split()[1] for line in _ffmpeg_text(exe, "-filters").splitlines() if len(line.split()) > 2}
    missing = [FILTERS[m] for m in metrics if FILTERS[m] not in listed]
    if missing:
        raise MetricFailed(f"the ffmpeg at {exe} has no {', '.join(missing)} filter; --metrics "
                           f"{' '.join(metrics)} needs an ffmpeg built with them (imageio-ffmpeg's has both)")


def pix_fmt(bit_depth: int) -> str:
    return "yuv420p" if bit_depth == 8 else f"yuv420p{bit_depth}le"


def frame_size(width: int, height: int, bit_depth: int) -> int:
    """Bytes of one raw 4:2:0 frame."""
    return (width * height + 2 * ((width + 1) // 2) * ((height + 1) // 2)) * (1 if bit_depth == 8 else 2)


@dataclass(frozen=True)
class Scores:
    """Per-frame values of the metrics measured (COLUMNS), and how they were made."""

    per_frame: dict[str, list[float]]
    protocol: str                  # the results column video_metrics_protocol
    commands: tuple[str, ...]      # the ffmpeg command lines, run in a temporary folder that held the logs

    def record(self) -> dict:
        return {"protocol": self.protocol, "commands": list(self.commands)}


def measure_files(distorted, reference, *, width: int, height: int, bit_depth: int, frames: int, fps: float,
                  metrics, threads: int = 1, exe: str | None = None) -> Scores:
    """Per-frame VMAF and/or XPSNR of raw 4:2:0 `distorted` (the reconstruction) against `reference` (the source)."""
    metrics = check_metrics(metrics)
    exe = exe or ffmpeg_exe()
    distorted, reference = Path(distorted).resolve(), Path(reference).resolve()
    expected = frames * frame_size(width, height, bit_depth)
    for path in (distorted, reference):
        size = path.stat().st_size if path.is_file() else None
        if size != expected:
            raise InputError(f"{path}: {'missing' if size is None else f'{size} bytes'}, expected {frames} frames "
                             f"of {width}x{height} {pix_fmt(bit_depth)} ({expected} bytes)")

    def source(path: Path) -> list[str]:
        return ["-f", "rawvideo", "-pix_fmt", pix_fmt(bit_depth), "-s", f"{width}x{height}", "-framerate", f"{fps:g}",
                "-i", str(path)]

    per_frame, protocol, commands = {}, [], []
    with tempfile.TemporaryDirectory(prefix="video-metrics-") as folder:
        for metric in metrics:
            if metric == "vmaf":
                # libvmaf: the first input ("main") is the distorted video, the second the reference (ffmpeg-filters,
                # libvmaf; `ffmpeg -h filter=libvmaf` names them main and reference).
                graph = (f"libvmaf=model=version={VMAF_MODEL}:log_fmt=json:log_path=vmaf.json:"
                         f"n_threads={max(1, int(threads))}")
                inputs = source(distorted) + source(reference)
            else:
                # xpsnr: the first input is the original, whose visual activity weights the errors, the second the
                # reconstruction (vf_xpsnr.c computes the weights from its first input; its pads are misleadingly
                # named main and reference, and swapping them changes the values).
                graph = "xpsnr=stats_file=xpsnr.log"
                inputs = source(reference) + source(distorted)
            cmd = [exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", *inputs, "-lavfi", graph,
                   "-f", "null", "-"]
            done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
            if done.returncode:
                raise MetricFailed(f"ffmpeg {FILTERS[metric]} failed on {distorted} against {reference}: "
                                   f"{done.stderr.strip()[-500:]}")
            commands.append(" ".join(cmd))
            if metric == "vmaf":
                values, version = _vmaf_log(Path(folder) / "vmaf.json")
                per_frame["vmaf"] = values
                protocol.append(f"vmaf: model {VMAF_MODEL}, libvmaf {version}")
            else:
                per_frame.update(_xpsnr_log(Path(folder) / "xpsnr.log"))
                protocol.append(f"xpsnr: ffmpeg xpsnr filter at {fps:g} fps; xpsnr = min(Y, U, V) per frame "
                                "(ffmpeg weights no plane against another)")
            found = len(per_frame[COLUMNS[metric][-1]])
            if found != frames:
                raise MetricFailed(f"ffmpeg {FILTERS[metric]} measured {found} frames of {distorted}, expected "
                                   f"{frames}")
    how = (f"ffmpeg {ffmpeg_version(exe)}; {'; '.join(protocol)}; reconstruction as YUV 4:2:0 {pix_fmt(bit_depth)} "
           "against the source's planes, the whole sequence in display order")
    return Scores(per_frame, how, tuple(commands))


def _vmaf_log(path: Path) -> tuple[list[float], str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        frames = sorted(doc["frames"], key=lambda f: f["frameNum"])
        return [float(f["metrics"]["vmaf"]) for f in frames], str(doc.get("version", "unknown"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MetricFailed(f"{path}: not a libvmaf JSON log with per-frame vmaf ({exc})") from None


def _xpsnr_log(path: Path) -> dict[str, list[float]]:
    rows = [m.groups() for line in path.read_text(encoding="utf-8").splitlines() if (m := _XPSNR_LINE.match(line))]
    if [int(r[0]) for r in rows] != list(range(1, len(rows) + 1)):
        raise MetricFailed(f"{path}: the xpsnr stats file does not number its frames 1, 2, ...")
    planes = [[float(r[i]) for r in rows] for i in (1, 2, 3)]
    out = dict(zip(COLUMNS["xpsnr"], planes))
    out["xpsnr"] = [min(values) for values in zip(*planes)]
    return out


class FramePairs:
    """Reconstructed and source frames ((y, u, v) integer planes: numpy arrays or CPU tensors) written to two raw files
    in a temporary folder (under `folder` if given), measured whole by `measure`, which removes them; a FramePairs
    dropped unmeasured removes them when collected."""

    def __init__(self, width: int, height: int, bit_depth: int, fps: float, folder=None):
        self.width, self.height, self.bit_depth, self.fps, self.frames = width, height, bit_depth, fps, 0
        self._folder = tempfile.TemporaryDirectory(prefix="video-metrics-", dir=folder)
        self.paths = (Path(self._folder.name) / "distorted.yuv", Path(self._folder.name) / "reference.yuv")
        self._files = [open(p, "wb") for p in self.paths]

    def add(self, distorted, reference) -> None:
        for planes, out in zip((distorted, reference), self._files):
            out.write(self._bytes(planes))
        self.frames += 1

    def _bytes(self, planes) -> bytes:
        chroma = ((self.height + 1) // 2, (self.width + 1) // 2)
        peak = (1 << self.bit_depth) - 1
        data = []
        for plane, shape in zip(planes, ((self.height, self.width), chroma, chroma)):
            array = np.asarray(plane)
            if array.shape != shape or array.min() < 0 or array.max() > peak:
                raise ValueError(f"{self.width}x{self.height} {self.bit_depth}-bit 4:2:0 frames need planes of "
                                 f"{shape} in 0..{peak}, got {array.shape} in {array.min()}..{array.max()}")
            data.append(array.astype(np.uint8 if self.bit_depth == 8 else "<u2").tobytes())
        return b"".join(data)

    def measure(self, metrics, threads: int = 1) -> Scores:
        try:
            for handle in self._files:
                handle.close()
            return measure_files(*self.paths, width=self.width, height=self.height, bit_depth=self.bit_depth,
                                 frames=self.frames, fps=self.fps, metrics=metrics, threads=threads)
        finally:
            self._folder.cleanup()
