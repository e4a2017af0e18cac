"""Lazy frame readers for every input the benchmark accepts.

`open_source()` is the single entry point. Raw files and Y4M are read frame by frame at computed offsets, PNG
folders one file at a time, and other containers are decoded by the ffmpeg binary of imageio-ffmpeg and streamed
through a pipe, so reading a few frames of a long 1080p sequence never loads the whole file.

A frame is either YUV 4:2:0 planes, a tuple `(y, u, v)` of numpy arrays in the file's own dtype (uint8 or uint16 holding
0..1023), or an RGB array of shape (H, W, 3), uint8 for 'rgb24' and uint16 (0..1023) for 'gbrp10le'.
Pixel formats use ffmpeg's names.
"""
from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Union

import imageio_ffmpeg
import numpy as np
from PIL import Image

from bench.errors import InputError

YUV_FORMATS = {"yuv420p": 8, "yuv420p10le": 10}
RAW_SUFFIXES = {".yuv", ".rgb", ".raw"}
PNG_PATTERNS = (re.compile(r"^frame_(\d+)\.png$"), re.compile(r"^im(\d+)\.png$"))  # official layout, DCVC layout
Y4M_COLOURSPACES = {"420": "yuv420p", "420jpeg": "yuv420p", "420paldv": "yuv420p", "420mpeg2": "yuv420p",
                    "420p10": "yuv420p10le"}

Frame = Union[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


class FrameSource:
    """A sequence of frames with known geometry. `read(i)` is 0-based; `frames(start, count)` iterates in order."""

    path: Path
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    num_frames: int
    fps: float | None

    @property
    def is_yuv(self) -> bool:
        return self.pix_fmt in YUV_FORMATS

    def __len__(self) -> int:
        return self.num_frames

    def describe(self) -> dict:
        return {"path": str(self.path), "width": self.width, "height": self.height, "pix_fmt": self.pix_fmt,
                "bit_depth": self.bit_depth, "num_frames": self.num_frames, "fps": self.fps}

    def read(self, i: int) -> Frame:
        self._check_range(i, 1)
        return self._read(i)

    def frames(self, start: int = 0, count: int | None = None) -> Iterator[Frame]:
        count = self.num_frames - start if count is None else count
        self._check_range(start, count)
        for i in range(start, start + count):
            yield self._read(i)

    def close(self) -> None:
        """Release the open file or ffmpeg pipe, if any."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_range(self, start: int, count: int) -> None:
        if start < 0 or count < 0 or start + count > self.num_frames:
            raise InputError(f"{self.path}: frames {start}..{start + count - 1} (0-based) requested, "
                             f"but the source has {self.num_frames} frames")

    def _limit(self, available: int, num_frames: int | None) -> int:
        """Frames used: all available, or the declared count, which the file must hold."""
        if num_frames is None:
            return available
        if available < num_frames:
            raise InputError(f"{self.path}: {num_frames} frames requested, found only {available}")
        return num_frames

    def _read(self, i: int) -> Frame:
        raise NotImplementedError


class _OffsetSource(FrameSource):
    """Frames at fixed byte offsets in one file (raw planes, Y4M), read one at a time with positioned reads.

    Plain reads, unlike a memory map, leave no file pages in the process's resident set after the frame is used.
    """

    def _layout(self, offset: int, frame_stride: int) -> None:
        self._dtype = np.dtype("<u2") if self.bit_depth > 8 else np.dtype(np.uint8)
        self._offset = offset
        self._stride = frame_stride
        self._file = open(self.path, "rb")

    def _bytes(self, i: int) -> np.ndarray:
        buffer = np.empty(self._stride, dtype=np.uint8)
        self._file.seek(self._offset + i * self._stride)
        if self._file.readinto(memoryview(buffer)) != buffer.size:
            raise InputError(f"{self.path}: the file ended inside frame {i}; it was shortened while open")
        return buffer

    def close(self) -> None:
        self._file.close()

    def _check_10bit(self, values: np.ndarray, i: int) -> None:
        if self.bit_depth == 10:
            top = int(values.max())
            if top > 1023:
                raise InputError(f"{self.path}: frame {i} holds a sample of {top}, above 1023; the file is not "
                                 f"{self.pix_fmt} (10-bit samples in 16-bit words); check the declared pixel format")


def _yuv420_frame_bytes(width: int, height: int, bit_depth: int) -> int:
    cw, ch = (width + 1) // 2, (height + 1) // 2
    return (width * height + 2 * cw * ch) * (2 if bit_depth > 8 else 1)


def raw_frame_bytes(path, width: int, height: int, pix_fmt: str) -> int:
    """Bytes of one frame of a headerless planar file (`path` only names the file in the error)."""
    if pix_fmt in YUV_FORMATS:
        return _yuv420_frame_bytes(width, height, YUV_FORMATS[pix_fmt])
    if pix_fmt == "gbrp10le":
        return 3 * width * height * 2
    raise InputError(f"{path}: pixel format {pix_fmt!r} is not a raw format this reader knows; "
                     f"expected one of {sorted([*YUV_FORMATS, 'gbrp10le'])}")


def split_yuv420(flat: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame's samples in file order -> (y, u, v) views; chroma is ceil(H/2) x ceil(W/2)."""
    cw, ch = (width + 1) // 2, (height + 1) // 2
    ny, nc = width * height, cw * ch
    return (flat[:ny].reshape(height, width), flat[ny:ny + nc].reshape(ch, cw),
            flat[ny + nc:ny + 2 * nc].reshape(ch, cw))


class RawSource(_OffsetSource):
    """Headerless planar file: YUV 4:2:0 (8/10-bit) or 10-bit RGB planes in G, B, R order (HEVC RExt RGB set)."""

    def __init__(self, path: Path, width: int, height: int, pix_fmt: str, num_frames: int | None = None):
        self.path, self.width, self.height, self.pix_fmt, self.fps = path, width, height, pix_fmt, None
        frame_bytes = raw_frame_bytes(path, width, height, pix_fmt)
        self.bit_depth = YUV_FORMATS.get(pix_fmt, 10)
        size = path.stat().st_size
        whole, rest = divmod(size, frame_bytes)
        if rest or not whole:
            raise InputError(f"{path}: {size} bytes is not a whole number of {width}x{height} {pix_fmt} frames "
                             f"({frame_bytes} bytes each; {whole} frames and {rest} bytes left over); "
                             f"check the declared size and pixel format")
        self.num_frames = self._limit(whole, num_frames)
        self._layout(0, frame_bytes)

    def _read(self, i: int) -> Frame:
        flat = self._bytes(i).view(self._dtype)
        self._check_10bit(flat, i)
        if self.is_yuv:
            return split_yuv420(flat, self.width, self.height)
        g, b, r = flat.reshape(3, self.height, self.width)
        return np.stack([r, g, b], axis=-1)


class Y4MSource(_OffsetSource):
    """YUV4MPEG2 file with 4:2:0 8- or 10-bit frames; every frame header is assumed to be a bare 'FRAME\\n'."""

    def __init__(self, path: Path, num_frames: int | None = None):
        self.path = path
        with open(path, "rb") as f:
            header = f.readline(4096)
        if not header.startswith(b"YUV4MPEG2 ") or not header.endswith(b"\n"):
            raise InputError(f"{path}: expected a Y4M header starting with 'YUV4MPEG2 ', found {header[:40]!r}")
        tags = {t[:1]: t[1:] for t in header[10:-1].decode("ascii", "replace").split()}
        try:
            self.width, self.height = int(tags["W"]), int(tags["H"])
        except (KeyError, ValueError):
            raise InputError(f"{path}: Y4M header has no valid W/H tags: {header.decode('ascii', 'replace')!r}")
        colour = tags.get("C", "420jpeg")
        if colour not in Y4M_COLOURSPACES:
            raise InputError(f"{path}: Y4M colour space C{colour} is not supported; expected one of "
                             f"{sorted(Y4M_COLOURSPACES)} (4:2:0, 8 or 10 bit)")
        if tags.get("I", "p") not in ("p", "?"):
            raise InputError(f"{path}: Y4M interlacing I{tags['I']} is not supported; expected progressive (Ip)")
        self.pix_fmt = Y4M_COLOURSPACES[colour]
        self.bit_depth = YUV_FORMATS[self.pix_fmt]
        num, _, den = tags.get("F", "").partition(":")
        self.fps = int(num) / int(den) if num.isdigit() and den.isdigit() and int(den) else None
        payload = _yuv420_frame_bytes(self.width, self.height, self.bit_depth)
        stride = len(b"FRAME\n") + payload
        size = path.stat().st_size - len(header)
        whole, rest = divmod(size, stride)
        if rest:
            raise InputError(f"{path}: {size} bytes after the header is not a whole number of "
                             f"{self.width}x{self.height} {self.pix_fmt} Y4M frames ({stride} bytes each with "
                             f"'FRAME\\n'; {whole} frames and {rest} bytes left over); frame headers with parameters "
                             f"are not supported")
        self.num_frames = self._limit(whole, num_frames)
        self._layout(len(header), stride)

    def _read(self, i: int) -> Frame:
        data = self._bytes(i)
        if data[:6].tobytes() != b"FRAME\n":
            raise InputError(f"{self.path}: frame {i} does not start with 'FRAME\\n' (found {data[:6].tobytes()!r})")
        flat = data[6:].view(self._dtype)
        self._check_10bit(flat, i)
        return split_yuv420(flat, self.width, self.height)


class PNGFolderSource(FrameSource):
    """A folder of 8-bit RGB PNGs named frame_<n>.png (official layout) or im<nnnnn>.png (DCVC), n from 1."""

    def __init__(self, path: Path, num_frames: int | None = None):
        self.path, self.pix_fmt, self.bit_depth, self.fps = path, "rgb24", 8, None
        for pattern in PNG_PATTERNS:
            numbered = {int(m.group(1)): p for p in path.iterdir() if (m := pattern.match(p.name))}
            if numbered:
                break
        else:
            raise InputError(f"{path}: expected PNG frames named frame_<n>.png or im<nnnnn>.png (n from 1), found none")
        self.num_frames = self._limit(max(numbered), num_frames)
        missing = [n for n in range(1, self.num_frames + 1) if n not in numbered]
        if missing:
            raise InputError(f"{path}: PNG frame number {missing[0]} is missing ({len(missing)} missing in "
                             f"1..{self.num_frames}; found e.g. {numbered[min(numbered)].name})")
        self._files = [numbered[n] for n in range(1, self.num_frames + 1)]
        first = self._load(0)
        self.height, self.width = first.shape[:2]

    def _load(self, i: int) -> np.ndarray:
        file = self._files[i]
        try:
            with Image.open(file) as image:
                # The official loader converts whatever mode the PNG has to 8-bit RGB the same way.
                return np.asarray(image.convert("RGB"))
        except (OSError, SyntaxError) as exc:
            raise InputError(f"{file}: expected a readable PNG image, the file is truncated or unreadable ({exc})")

    def _read(self, i: int) -> Frame:
        rgb = self._load(i)
        if rgb.shape[:2] != (self.height, self.width):
            raise InputError(f"{self._files[i]}: expected {self.width}x{self.height} like the first frame, "
                             f"found {rgb.shape[1]}x{rgb.shape[0]}")
        return rgb


_STREAM_RE = re.compile(r"Stream #0:\d+.*?: Video: .*?, (\w+)(?:\([^)]*\))?, (\d+)x(\d+)")
_FPS_RE = re.compile(r"Stream #0:\d+.*?: Video: .*?, ([\d.]+) (?:fps|tbr)")


class FFmpegSource(FrameSource):
    """Any container ffmpeg decodes; frames are streamed as rawvideo through a pipe.

    A 4:2:0 8- or 10-bit stream is delivered as its native planes so that the colour conversion stays explicit
    (bench.data.colour); other streams, or pix_fmt='rgb24', get ffmpeg's own conversion to 8-bit RGB.
    """

    def __init__(self, path: Path, pix_fmt: str | None = None, num_frames: int | None = None):
        self.path = path
        probe = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
        stream = _STREAM_RE.search(probe)
        if stream is None:
            raise InputError(f"{path}: expected a video file that ffmpeg can read, ffmpeg found no video stream "
                             f"({probe.strip().splitlines()[-1] if probe.strip() else 'no output'})")
        native, self.width, self.height = stream.group(1), int(stream.group(2)), int(stream.group(3))
        fps = _FPS_RE.search(probe)
        self.fps = float(fps.group(1)) if fps else None
        if pix_fmt is None:
            pix_fmt = native if native in YUV_FORMATS else "rgb24"
        if pix_fmt not in YUV_FORMATS and pix_fmt != "rgb24":
            raise InputError(f"{path}: pixel format {pix_fmt!r} cannot be requested from a container; expected one of "
                             f"{sorted([*YUV_FORMATS, 'rgb24'])}")
        self.pix_fmt = pix_fmt
        self.bit_depth = YUV_FORMATS.get(pix_fmt, 8)
        self._frame_bytes = (_yuv420_frame_bytes(self.width, self.height, self.bit_depth) if self.is_yuv
                             else 3 * self.width * self.height)
        self.num_frames = self._limit(self._count_frames(), num_frames)
        self._proc: subprocess.Popen | None = None
        self._next = 0

    def _count_frames(self) -> int:
        # Stream copy to the null muxer demuxes without decoding, so counting is fast and exact.
        log = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(self.path), "-map", "0:v:0",
                              "-c", "copy", "-f", "null", "-", "-progress", "pipe:1"],
                             capture_output=True, text=True)
        counts = re.findall(r"^frame=(\d+)$", log.stdout, re.MULTILINE)
        if log.returncode or not counts:
            raise InputError(f"{self.path}: ffmpeg could not count the video frames ({log.stderr.strip()[-200:]})")
        return int(counts[-1])

    def _start(self, first: int) -> None:
        self.close()
        cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(self.path), "-map", "0:v:0",
               "-vf", f"trim=start_frame={first}", "-fps_mode", "passthrough",  # one output frame per decoded frame
               "-f", "rawvideo", "-pix_fmt", self.pix_fmt, "-"]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._next = first

    def _read(self, i: int) -> Frame:
        if self._proc is None or i != self._next:
            self._start(i)
        data = self._proc.stdout.read(self._frame_bytes)
        if len(data) != self._frame_bytes:
            err = self._proc.stderr.read().decode(errors="replace").strip()
            self.close()
            raise InputError(f"{self.path}: ffmpeg stopped before frame {i} ({len(data)} of {self._frame_bytes} bytes; "
                             f"{err[-200:] or 'no error message'})")
        self._next = i + 1
        flat = np.frombuffer(data, dtype="<u2" if self.bit_depth > 8 else np.uint8).copy()  # writable, like the others
        if self.is_yuv:
            return split_yuv420(flat, self.width, self.height)
        return flat.reshape(self.height, self.width, 3)

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc.stdout.close()
            self._proc.stderr.close()
            self._proc = None

    def __del__(self):
        if getattr(self, "_proc", None) is not None:
            self.close()


def open_source(path, *, width: int | None = None, height: int | None = None, pix_fmt: str | None = None,
                num_frames: int | None = None) -> FrameSource:
    """Open a video input, dispatching on what `path` is.

    - a folder: PNG frames (frame_<n>.png or im<nnnnn>.png);
    - *.y4m: YUV4MPEG2 (geometry from its header);
    - *.yuv / *.rgb / *.raw: headerless planes; width, height and pix_fmt ('yuv420p', 'yuv420p10le', 'gbrp10le')
      must be given;
    - anything else: a container decoded by ffmpeg (pix_fmt: None for the stream's 4:2:0 planes, or 'rgb24').

    num_frames, when given, is the number of frames used; the input must hold at least that many.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: expected a video file or a PNG folder, found nothing at this path")
    if path.is_dir():
        source = PNGFolderSource(path, num_frames)
    elif path.suffix.lower() == ".y4m":
        source = Y4MSource(path, num_frames)
    elif path.suffix.lower() in RAW_SUFFIXES:
        if width is None or height is None or pix_fmt is None:
            raise InputError(f"{path}: a raw {path.suffix} file needs width, height and pix_fmt "
                             f"(got width={width}, height={height}, pix_fmt={pix_fmt})")
        source = RawSource(path, width, height, pix_fmt, num_frames)
    else:
        source = FFmpegSource(path, pix_fmt, num_frames)
    for name, declared in (("width", width), ("height", height)):
        found = getattr(source, name)
        if declared is not None and declared != found:
            raise InputError(f"{path}: declared {name} {declared}, the file has {found}")
    if pix_fmt is not None and pix_fmt != source.pix_fmt:
        raise InputError(f"{path}: declared pixel format {pix_fmt}, the source delivers {source.pix_fmt}")
    return source
