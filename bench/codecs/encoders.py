"""Conventional encoder backends for anchor generation: command lines, version capture, logs, bitstream size, decoding.

Every backend encodes one headerless planar file (`RawVideo`) at one rate point into a raw elementary stream (no
container, so the file size is the bitstream size; VP9, which has no raw format, in IVF, whose headers are not
counted), keeps the encoder's and decoder's full output as log files, and decodes the stream back to a headerless
planar file. The exact command lines are documented in anchors/GENERATION.md.
`frame_bits` gives each frame's share of the stream (for frame-type BD-rate, bench.analysis.frame_types).

- x264, x265, SVT-AV1, libaom (AV1), libvpx (VP9) and VVenC run through the ffmpeg of imageio-ffmpeg (or
  $IMAGEIO_FFMPEG_EXE), constant QP, low delay (no frame reordering, no lookahead), no automatic key frames: the
  caller encodes each intra period separately.
- VTM runs the user's EncoderApp / DecoderApp with the low-delay B configuration and DCVC's documented options.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.errors import BenchError, InputError

# Planar little-endian layouts the backends exchange: bit depth and chroma subsampling (1 = none, 2 = 4:2:0).
RAW_FORMATS = {"yuv420p": (8, 2), "yuv420p10le": (10, 2), "yuv444p10le": (10, 1)}
VTM_ENV = {"encoder": "HYTIP_VTM_ENCODER", "decoder": "HYTIP_VTM_DECODER", "cfg": "HYTIP_VTM_CFG"}
VTM_HOW = ("build VTM-17.0 (https://vcgit.hhi.fraunhofer.de/jvet/VVCSoftware_VTM, tag VTM-17.0: cmake -B build "
           "-DCMAKE_BUILD_TYPE=Release && cmake --build build; the apps land in bin/) and pass --vtm-encoder "
           "bin/EncoderAppStatic --vtm-decoder bin/DecoderAppStatic --vtm-cfg cfg/encoder_lowdelay_vtm.cfg, or set "
           f"{VTM_ENV['encoder']}, {VTM_ENV['decoder']} and {VTM_ENV['cfg']}")
FFMPEG_HOW = ("install imageio-ffmpeg>=0.5, whose ffmpeg ships libx264, libx265, libsvtav1 and libvvenc, or set "
              "IMAGEIO_FFMPEG_EXE to an ffmpeg built with that library")


class EncoderMissing(BenchError):
    """An encoder binary or library is not available; the message says how to provide it."""


class EncoderFailed(BenchError):
    """An encoder or decoder ran and failed; the message names its log file."""


class FrameSizesUnknown(EncoderFailed):
    """The encoder's output does not say how the stream splits into frames; the message says what is missing."""


@dataclass(frozen=True)
class RawVideo:
    path: Path
    width: int
    height: int
    pix_fmt: str
    frames: int
    fps: float

    def __post_init__(self):
        if self.pix_fmt not in RAW_FORMATS:
            raise InputError(f"{self.path}: raw format {self.pix_fmt!r} is not one of {sorted(RAW_FORMATS)}")

    @property
    def bit_depth(self) -> int:
        return RAW_FORMATS[self.pix_fmt][0]

    @property
    def chroma_format(self) -> str:
        return "420" if RAW_FORMATS[self.pix_fmt][1] == 2 else "444"

    @property
    def frame_bytes(self) -> int:
        sub = RAW_FORMATS[self.pix_fmt][1]
        chroma = -(-self.width // sub) * -(-self.height // sub)
        return (self.width * self.height + 2 * chroma) * (2 if self.bit_depth > 8 else 1)

    def with_path(self, path: Path, pix_fmt: str | None = None) -> "RawVideo":
        return RawVideo(Path(path), self.width, self.height, pix_fmt or self.pix_fmt, self.frames, self.fps)

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame i (0-based) as its three planes (uint8, or uint16 holding 10-bit codes)."""
        sub = RAW_FORMATS[self.pix_fmt][1]
        cw, ch = -(-self.width // sub), -(-self.height // sub)
        dtype = np.dtype("<u2") if self.bit_depth > 8 else np.dtype(np.uint8)
        flat = np.fromfile(self.path, dtype=dtype, count=self.frame_bytes // dtype.itemsize,
                           offset=i * self.frame_bytes)
        ny = self.width * self.height
        return (flat[:ny].reshape(self.height, self.width), flat[ny:ny + cw * ch].reshape(ch, cw),
                flat[ny + cw * ch:].reshape(ch, cw))

    def check_size(self) -> None:
        size = self.path.stat().st_size
        if size != self.frames * self.frame_bytes:
            raise EncoderFailed(f"{self.path}: expected {self.frames} {self.width}x{self.height} {self.pix_fmt} frames "
                                f"({self.frames * self.frame_bytes} bytes), found {size} bytes "
                                f"({size / self.frame_bytes:.2f} frames)")


@dataclass(frozen=True)
class Encoded:
    bitstream: Path
    bits: int
    command: tuple[str, ...]
    log: Path
    version: str
    reported: dict  # what the encoder printed about the result (VTM's summary line; the ffmpeg version)


def _whole_stream(bits: list[int], bitstream: Path, where: Path, container_bytes: int = 0) -> list[int]:
    """Per-frame bits made to add up to the stream's bits (the file less its container's bytes): what the per-frame
    counts leave out goes to the first (I) frame, whose access unit starts the stream; counts adding up to more than
    the stream are an error."""
    total = 8 * (bitstream.stat().st_size - container_bytes)
    if not bits or sum(bits) > total:
        raise EncoderFailed(f"{where}: per-frame sizes of {bitstream} add up to {sum(bits)} bits over {len(bits)} "
                            f"frames; the stream has {total}")
    return [bits[0] + total - sum(bits), *bits[1:]]


def _run(cmd: list[str], log: Path, what: str) -> str:
    """Run a command with its stdout and stderr kept in `log`; a non-zero exit raises naming the log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as handle:
        handle.write("$ " + " ".join(cmd) + "\n")
        handle.flush()
        result = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    text = log.read_text(encoding="utf-8", errors="replace")
    if result.returncode:
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise EncoderFailed(f"{what} exited with status {result.returncode}; see {log} ({tail[-300:]})")
    return text


# ---------------------------------------------------------------------------------------------------- ffmpeg backends
@functools.lru_cache(maxsize=None)
def _ffmpeg_encoders(ffmpeg: str) -> frozenset[str]:
    try:
        out = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    except OSError as exc:
        raise EncoderMissing(f"ffmpeg at {ffmpeg} cannot run ({exc}); {FFMPEG_HOW}") from None
    return frozenset(m.group(1) for m in re.finditer(r"^\s*V\S*\s+(\S+)", out, re.MULTILINE))


_NOPTS = -(1 << 63)  # ffmpeg's AV_NOPTS_VALUE: a parser that gives no presentation time (VVC)


def _ffmpeg_path() -> str:
    from bench.data.readers import ffmpeg_exe

    return ffmpeg_exe()


@dataclass(frozen=True)
class FFmpegEncoder:
    """An encoder library inside ffmpeg. Subclasses give the library, stream format and options."""

    ffmpeg: str | None = None  # None: the ffmpeg of imageio-ffmpeg (or $IMAGEIO_FFMPEG_EXE)
    threads: int = 1

    name = ""
    codec = ""
    library = ""
    muxer = ""         # raw elementary stream muxer: the file size is the bitstream size
    suffix = ""
    input_formats = ()
    default_rates = ()
    qp_range = (0, 51)  # the QPs the encoder takes (inclusive); rate matching searches within it
    container_header, container_frame = 0, 0   # bytes a container adds to the stream, once and per frame
    version_pattern = ""  # regex over the log (and the bitstream head) whose group 1 is the library version

    @property
    def exe(self) -> str:
        return self.ffmpeg or _ffmpeg_path()

    def check(self) -> None:
        exe = self.exe
        if os.sep in exe and not Path(exe).is_file() or os.sep not in exe and shutil.which(exe) is None:
            raise EncoderMissing(f"{self.name}: ffmpeg not found at {exe}; {FFMPEG_HOW}")
        if self.library not in _ffmpeg_encoders(exe):
            raise EncoderMissing(f"{self.name}: the ffmpeg at {exe} has no {self.library} encoder; {FFMPEG_HOW}")

    def input_format(self, chroma_format: str, bit_depth: int) -> str:
        """The raw format this backend is fed for a source of this chroma format and depth."""
        wanted = "yuv420p" if chroma_format == "420" and bit_depth == 8 else f"yuv{chroma_format}p10le"
        if wanted in self.input_formats:
            return wanted
        upgraded = f"yuv{chroma_format}p10le"
        if upgraded in self.input_formats:
            return upgraded
        raise InputError(f"{self.name}: cannot code {chroma_format} {bit_depth}-bit input; it takes "
                         f"{', '.join(self.input_formats)}")

    def options(self, qp) -> list[str]:
        """Encoder options at QP `qp` (an int, or a placeholder string for describe())."""
        raise NotImplementedError

    def describe(self) -> str:
        """The rate-independent command line, for the CSV's codec_config column."""
        return " ".join(["ffmpeg", "-c:v", self.library, *self.options("{qp}")])

    def encode(self, src: RawVideo, qp: int, bitstream: Path, log: Path) -> Encoded:
        cmd = [self.exe, "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", src.pix_fmt, "-s", f"{src.width}x{src.height}",
               "-r", f"{src.fps:g}", "-i", str(src.path), "-frames:v", str(src.frames), "-an", "-fps_mode", "passthrough",
               "-c:v", self.library, *self.options(qp), "-f", self.muxer, str(bitstream)]
        text = _run(cmd, log, f"{self.name} encoder")
        head = bitstream.read_bytes()[:4096].decode("latin-1")
        library = re.search(self.version_pattern, text) or re.search(self.version_pattern, head)
        ffmpeg = re.search(r"ffmpeg version (\S+)", text)
        # The library's version names the codec (x264-core 165); the ffmpeg around it goes with the configuration.
        stream_bytes = bitstream.stat().st_size - self.container_header - self.container_frame * src.frames
        return Encoded(bitstream, 8 * stream_bytes, tuple(cmd), log,
                       library.group(1) if library else "unknown", {"ffmpeg": ffmpeg.group(1) if ffmpeg else "unknown"})

    def frame_bits(self, bitstream: Path, log: Path) -> list[int]:
        """Bits of each frame in display order: the sizes of the packets ffmpeg's parser cuts the raw stream into (one
        access unit or temporal unit per frame; the stream headers ride in the first). The encoders do not reorder
        frames (see options), so decode order is display order. The listing is kept beside the encoder's `log`."""
        listing = log.with_suffix(".packets.log")
        # Quiet (-v error -nostats): ffmpeg's own messages would share the listing's file and could split its lines.
        cmd = [self.exe, "-nostdin", "-v", "error", "-nostats", "-f", self.muxer, "-i", str(bitstream), "-map", "0:v:0",
               "-c", "copy", "-f", "framecrc", "-"]
        text = _run(cmd, listing, f"{self.name} packet listing (ffmpeg)")
        # framecrc: "stream, dts, pts, duration, size, checksum" per packet
        packets = [[f.strip() for f in line.split(",")] for line in text.splitlines()
                   if re.match(r"\d+,\s*-?\d+,", line)]
        pts = [int(p[2]) for p in packets]
        if all(t != _NOPTS for t in pts) and any(b <= a for a, b in zip(pts, pts[1:])):
            raise EncoderFailed(f"{listing}: packets of {bitstream} are not in display order")
        # A raw stream's packets are its bytes cut into pieces (the sum is the file size for .264, .265, .obu and .266
        # streams of these encoders); bytes a parser skipped would go to the first (I) frame (_whole_stream).
        return _whole_stream([8 * int(p[4]) for p in packets], bitstream, listing,
                             self.container_header + self.container_frame * len(packets))

    def decode(self, bitstream: Path, like: RawVideo, out: Path, log: Path) -> RawVideo:
        """Decode to raw planes in the format that was encoded; ffmpeg's native decoder, no conversion."""
        cmd = [self.exe, "-nostdin", "-y", "-i", str(bitstream), "-fps_mode", "passthrough", "-f", "rawvideo",
               "-pix_fmt", like.pix_fmt, str(out)]
        _run(cmd, log, f"{self.name} decoder (ffmpeg)")
        decoded = like.with_path(out)
        decoded.check_size()
        return decoded


class X264(FFmpegEncoder):
    name, codec, library, muxer, suffix = "x264", "x264", "libx264", "h264", ".264"
    input_formats = ("yuv420p", "yuv420p10le", "yuv444p10le")
    default_rates = (22, 27, 32, 37)
    version_pattern = r"x264 - (core \d+(?: r\d+ \w+)?)"

    def options(self, qp):
        return ["-preset", "medium", "-tune", "psnr", "-qp", str(qp), "-threads", str(self.threads),
                "-x264-params", "keyint=infinite:scenecut=0:bframes=0"]


class X265(FFmpegEncoder):
    name, codec, library, muxer, suffix = "x265", "x265", "libx265", "hevc", ".265"
    input_formats = ("yuv420p", "yuv420p10le", "yuv444p10le")
    default_rates = (22, 27, 32, 37)
    version_pattern = r"HEVC encoder version (\S+)"

    def options(self, qp):
        return ["-preset", "medium", "-tune", "psnr", "-x265-params",
                f"qp={qp}:keyint=-1:scenecut=0:bframes=0:pools={self.threads}:frame-threads={self.threads}"]


class SVTAV1(FFmpegEncoder):
    name, codec, library, muxer, suffix = "svtav1", "SVT-AV1", "libsvtav1", "obu", ".obu"
    input_formats = ("yuv420p", "yuv420p10le")
    default_rates = (27, 35, 43, 51)  # AV1 qindex-scaled QP 0..63; spans about the bitrates of VTM QP 22..37
    qp_range = (1, 63)
    version_pattern = r"SVT-AV1 Encoder Lib (v\S+)"

    def options(self, qp):
        return ["-preset", "6", "-svtav1-params", f"pred-struct=1:rc=0:qp={qp}:keyint=-1:scd=0:lp={self.threads}"]


class AOM(FFmpegEncoder):
    """libaom, the AV1 reference encoder, low delay: no lag (no future frames, no alternate reference), one fixed
    quantiser (min = max = the constant-quality level, no adaptive quantisation)."""

    name, codec, library, muxer, suffix = "aom", "libaom-AV1", "libaom-av1", "obu", ".obu"
    input_formats = ("yuv420p", "yuv420p10le", "yuv444p10le")
    default_rates = (27, 35, 43, 51)  # the 0..63 quantiser scale of SVT-AV1's QPs
    qp_range = (0, 63)
    version_pattern = r"\[libaom-av1 @ \S+\] (v\d\S*)"

    def options(self, qp):
        return ["-cpu-used", "4", "-threads", str(self.threads), "-lag-in-frames", "0", "-g", "100000",
                "-keyint_min", "100000", "-crf", str(qp), "-qmin", str(qp), "-qmax", str(qp), "-b:v", "0",
                "-aq-mode", "0"]


class VP9(FFmpegEncoder):
    """libvpx, the VP9 reference encoder, low delay as libaom; VP9 has no raw stream format, so the stream is in IVF,
    whose 32-byte file header and 12-byte frame headers are not counted."""

    name, codec, library, muxer, suffix = "vp9", "libvpx-VP9", "libvpx-vp9", "ivf", ".ivf"
    input_formats = ("yuv420p", "yuv420p10le", "yuv444p10le")
    default_rates = (27, 35, 43, 51)
    qp_range = (0, 63)
    container_header, container_frame = 32, 12
    version_pattern = r"\[libvpx-vp9 @ \S+\] (v\d\S*)"

    def options(self, qp):
        return ["-deadline", "good", "-cpu-used", "2", "-threads", str(self.threads), "-lag-in-frames", "0",
                "-auto-alt-ref", "0", "-g", "100000", "-keyint_min", "100000", "-crf", str(qp), "-qmin", str(qp),
                "-qmax", str(qp), "-b:v", "0", "-aq-mode", "0"]


class VVenC(FFmpegEncoder):
    name, codec, library, muxer, suffix = "vvenc", "VVenC", "libvvenc", "vvc", ".266"
    input_formats = ("yuv420p10le",)  # the ffmpeg wrapper accepts only 10-bit 4:2:0
    default_rates = (22, 27, 32, 37)
    qp_range = (0, 63)
    version_pattern = r"libvvenc version: (\S+)"

    def options(self, qp):
        # Low delay as far as the wrapper allows: no reordering (PicReordering=0) needs DecodingRefreshType=none and
        # an auto GOP of 8, which gives low-delay B; IntraPeriod=-1 keeps the only intra frame the first one.
        return ["-preset", "medium", "-qpa", "0", "-qp", str(qp), "-vvenc-params",
                f"PicReordering=0:DecodingRefreshType=none:GOPSize=8:IntraPeriod=-1:Threads={self.threads}"]


# ---------------------------------------------------------------------------------------------------- VTM
_VTM_VERSION = re.compile(r"VTM Encoder Version (\S+)")
# EncoderApp ends with a "Total Frames | Bitrate Y-PSNR U-PSNR V-PSNR YUV-PSNR" header and a row marked "a" (all
# frames); rows marked i/p/b (per slice type, at higher verbosity) are not matched.
_VTM_SUMMARY = re.compile(r"Total Frames \|.*\n\s*(\d+)\s+a\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)")


# EncoderApp's line per coded picture: "POC    3 LId:  0 TId: 0 ( TRAIL, B-SLICE, QP 28 )        296 bits [Y ...".
_VTM_POC = re.compile(r"^POC\s+(\d+)\s+LId:.*?\)\s+(\d+) bits", re.MULTILINE)


def parse_vtm_log(text: str) -> dict:
    """EncoderApp's version and its all-frames summary (frames, kbps, Y/U/V/YUV PSNR at the coding bit depth)."""
    version = _VTM_VERSION.search(text)
    summary = _VTM_SUMMARY.search(text)
    if version is None or summary is None:
        raise EncoderFailed("VTM EncoderApp log has no " + ("'VTM Encoder Version'" if version is None else
                                                            "'Total Frames' summary") + " line; is it VTM's EncoderApp?")
    frames, kbps, y, u, v, yuv = summary.groups()
    return {"version": version.group(1), "frames": int(frames), "kbps": float(kbps), "psnr_y": float(y),
            "psnr_u": float(u), "psnr_v": float(v), "psnr_yuv": float(yuv)}


# DecoderApp's line per picture ends with the check of the picture's hash SEI (VTM-17.0 calcAndPrintHashStatus):
# "POC    1 LId:  0 TId: 0 ( TRAIL, B-SLICE, QP 28 ) [DT  0.004] [L0 0] [L1 0c] [MD5:<Y>,<U>,<V>,(OK)] ", with
# "(***ERROR***)" for a mismatch and "[:,(unk)]" for a picture that has no hash SEI.
_VTM_HASH = re.compile(r"^POC\s+(\d+)\s+LId:.*\[(\w*):[0-9a-f,]*,\((OK|unk|\*\*\*ERROR\*\*\*)\)\]", re.MULTILINE)
_SUFFIX_SEI, _DECODED_PICTURE_HASH = 24, 132   # VVC's SUFFIX_SEI_NUT nal_unit_type; the SEI's payloadType


def decoded_picture_hash(text: str, log: Path) -> str:
    """What DecoderApp's log `text` says of the decoded picture hashes: "ok (N pictures, MD5)" or "not checked
    (why)"; a mismatch raises EncoderFailed naming the POCs and the `log`."""
    checks = _VTM_HASH.findall(text)
    wrong = [(poc, method) for poc, method, status in checks if status.startswith("*")]
    if wrong:
        raise EncoderFailed(f"VTM DecoderApp: decoded picture hash mismatch at POC {', '.join(p for p, _ in wrong)} "
                            f"({wrong[0][1]}): the decoded pictures differ from the encoder's; see {log}")
    ok = [method for _, method, status in checks if status == "OK"]
    unchecked = [poc for poc, _, status in checks if status == "unk"]
    if not checks:
        return "not checked (DecoderApp printed no per-picture lines)"
    if not ok:
        return "not checked (the stream carries no picture hash SEI)"
    return f"ok ({len(ok)} pictures, {ok[0]})" + (f"; POC {', '.join(unchecked)} not checked" if unchecked else "")


def hash_sei_bytes(stream: bytes) -> int:
    """Bytes of the decoded-picture-hash SEI NAL units of an Annex-B VVC `stream`, start codes included: what the
    stream would be shorter by without --SEIDecodedPictureHash."""
    starts = [m.start() for m in re.finditer(b"\x00\x00\x01", stream)]
    begins = [at - 1 if at and stream[at - 1] == 0 else at for at in starts]   # a 4-byte start code's zero_byte
    total = 0
    for at, begin, end in zip(starts, begins, begins[1:] + [len(stream)]):
        header = stream[at + 3:at + 6]   # two NAL header bytes, then the first SEI's payloadType
        if len(header) == 3 and header[1] >> 3 == _SUFFIX_SEI and header[2] == _DECODED_PICTURE_HASH:
            total += end - begin
    return total


@dataclass(frozen=True)
class VTM:
    """VTM's EncoderApp and DecoderApp with the low-delay B configuration file (encoder_lowdelay_vtm.cfg)."""

    encoder_app: str | None = None
    decoder_app: str | None = None
    cfg: str | None = None
    threads: int = 1  # VTM is single-threaded; kept for the common interface
    # encode()'s `reported` of each stream, which decode() completes with its hash check, so that the job record
    # keeps it per GOP stream (segments[k].reported.decoded_picture_hash)
    _reports: dict = field(default_factory=dict, compare=False, repr=False)

    name = "vtm"
    codec = "VTM"
    suffix = ".bin"
    input_formats = ("yuv420p", "yuv420p10le", "yuv444p10le")
    default_rates = (22, 27, 32, 37)
    qp_range = (0, 63)

    def _paths(self) -> dict[str, str | None]:
        return {"encoder": self.encoder_app or os.environ.get(VTM_ENV["encoder"]),
                "decoder": self.decoder_app or os.environ.get(VTM_ENV["decoder"]),
                "cfg": self.cfg or os.environ.get(VTM_ENV["cfg"])}

    def check(self) -> None:
        paths = self._paths()
        unset = [k for k, v in paths.items() if not v]
        if unset:
            raise EncoderMissing(f"vtm: no VTM {', '.join(unset)} given; {VTM_HOW}")
        for what, path in paths.items():
            if not Path(path).is_file():
                raise EncoderMissing(f"vtm: {what} {path} does not exist; {VTM_HOW}")
            if what != "cfg" and not os.access(path, os.X_OK):
                raise EncoderMissing(f"vtm: {what} {path} is not executable; {VTM_HOW}")

    def input_format(self, chroma_format: str, bit_depth: int) -> str:
        return "yuv420p" if chroma_format == "420" and bit_depth == 8 else f"yuv{chroma_format}p10le"

    def options(self, src: RawVideo, qp: int) -> list[str]:
        """DCVC's documented low-delay options (DCVC-family/test_conditions.md) for YUV420 or YUV444 10-bit input.

        The caller codes each GOP as its own stream, so the intra period is -1 (only the first frame is intra): VTM
        accepts no other value for a stream shorter than the period, or a period that is not a multiple of GOPSize 8.
        Each picture gets an MD5 hash SEI (--SEIDecodedPictureHash=1) that DecoderApp checks; it is not counted in
        the rate (encode), as VTM's own bitrate counts no SEI.
        """
        opts = ["-c", str(self._paths()["cfg"]), "-f", str(src.frames), "-q", str(qp), "--IntraPeriod=-1",
                f"--InputFile={src.path}", f"--SourceWidth={src.width}", f"--SourceHeight={src.height}",
                f"--FrameRate={round(src.fps)}", "--Level=6.2", f"--InputBitDepth={src.bit_depth}"]
        if src.chroma_format == "444":
            opts += ["--InputChromaFormat=444", "--ChromaFormatIDC=444"]
        return opts + ["--DecodingRefreshType=2", "--SEIDecodedPictureHash=1"]

    def describe(self) -> str:
        return (f"EncoderApp -c {Path(str(self._paths()['cfg'])).name} -q {{qp}} --IntraPeriod=-1 "
                "--Level=6.2 --InputBitDepth={8|10} [--InputChromaFormat=444 --ChromaFormatIDC=444] "
                "--DecodingRefreshType=2 --SEIDecodedPictureHash=1")

    def encode(self, src: RawVideo, qp: int, bitstream: Path, log: Path) -> Encoded:
        cmd = [str(self._paths()["encoder"]), *self.options(src, qp), "-b", str(bitstream)]
        reported = parse_vtm_log(_run(cmd, log, "VTM EncoderApp"))
        if reported["frames"] != src.frames:
            raise EncoderFailed(f"VTM EncoderApp coded {reported['frames']} frames, expected {src.frames}; see {log}")
        self._reports[bitstream] = reported
        # The rate is that of the stream without the hash SEI, which only checks decoding.
        stream_bytes = bitstream.stat().st_size - hash_sei_bytes(bitstream.read_bytes())
        return Encoded(bitstream, 8 * stream_bytes, tuple(cmd), log, reported.pop("version"), reported)

    def frame_bits(self, bitstream: Path, log: Path) -> list[int]:
        """Bits of each picture in display (POC) order from EncoderApp's per-picture lines in its `log`. VTM counts a
        picture's NAL units without the Annex-B start codes and without SEI messages (its analyser's rule), so the
        file's remaining bytes, all frames' start codes and SEI but the uncounted hash SEI (encode), are put on the
        first (I) frame (_whole_stream)."""
        pictures = {}
        for poc, bits in _VTM_POC.findall(log.read_text(encoding="utf-8", errors="replace")):
            if int(poc) in pictures:
                raise EncoderFailed(f"{log}: POC {poc} is reported twice; one EncoderApp run per log is expected")
            pictures[int(poc)] = int(bits)
        if not pictures:
            raise FrameSizesUnknown(f"{log}: VTM EncoderApp printed no per-picture 'POC ... bits' lines (run at its "
                                    "default verbosity), so the frames' sizes are unknown")
        if sorted(pictures) != list(range(len(pictures))):
            raise EncoderFailed(f"{log}: per-picture lines have POCs {sorted(pictures)}, "
                                f"expected 0..{len(pictures) - 1}")
        return _whole_stream([pictures[poc] for poc in range(len(pictures))], bitstream, log,
                             hash_sei_bytes(bitstream.read_bytes()))

    def decode(self, bitstream: Path, like: RawVideo, out: Path, log: Path) -> RawVideo:
        """DecoderApp writes 10-bit planes (-d 10) of the coded chroma format and checks each picture's hash SEI: a
        mismatch is an error naming the POCs; the outcome completes the stream's report from encode()."""
        cmd = [str(self._paths()["decoder"]), "-b", str(bitstream), "-o", str(out), "-d", "10"]
        try:
            text = _run(cmd, log, "VTM DecoderApp")
        except EncoderFailed:
            # DecoderApp exits with 1 on a mismatch; the mismatching POCs say more than the exit status.
            decoded_picture_hash(log.read_text(encoding="utf-8", errors="replace"), log)
            raise
        self._reports.pop(bitstream, {})["decoded_picture_hash"] = decoded_picture_hash(text, log)
        decoded = like.with_path(out, f"yuv{like.chroma_format}p10le")
        decoded.check_size()
        return decoded


ENCODERS = {cls.name: cls for cls in (X264, X265, SVTAV1, AOM, VP9, VVenC, VTM)}


def make_encoder(name: str, **options):
    """An encoder backend by name (ENCODERS: x264, x265, svtav1, aom, vp9, vvenc, vtm) with its options (threads; VTM
    paths)."""
    if name not in ENCODERS:
        raise InputError(f"unknown encoder {name!r}; expected one of {', '.join(ENCODERS)}")
    cls = ENCODERS[name]
    accepted = set(cls.__dataclass_fields__)
    return cls(**{k: v for k, v in options.items() if k in accepted})
