"""Our container for HyTIP bitstreams (layout in docs/bitstream.md).

A sequence header (frame size, frame count, intra period, QP, I-frame quality, checkpoint id) followed by one
record per frame (type, its rANS strings, a CRC32 of the symbols it codes). The header and every record end
with a CRC32, so corruption is reported with its location; ``unpack`` either returns exactly what ``pack``
was given or raises ``BitstreamError``. It never reads past the data or loops on a length it has not checked.
"""
from __future__ import annotations

import enum
import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from .errors import HytipError

MAGIC = b"\x89HYTIP\r\n"        # non-ASCII first byte and CR LF catch text-mode transfers, as in PNG
VERSION = 1
CHECKPOINT_ID_BYTES = 8
MAX_DIMENSION = 65535
MAX_INDEX = 63                   # QP and I-frame quality are 0..63

# magic, version, width, height, frame count, intra period, QP, I-frame quality, checkpoint id
_HEADER = struct.Struct(f">{len(MAGIC)}sHHHIHBB{CHECKPOINT_ID_BYTES}s")
_CRC = struct.Struct(">I")
_RECORD_HEAD = struct.Struct(">BBI")    # frame type, string count, symbols CRC32
_MAX_VARINT_BYTES = 5


class BitstreamError(HytipError):
    """The data is not a valid HyTIP bitstream of a supported version."""


class FrameType(enum.IntEnum):
    I = 1
    P = 2


STRINGS_PER_FRAME = {FrameType.I: 1, FrameType.P: 7}


@dataclass(frozen=True)
class SequenceHeader:
    """``width`` × ``height``: the coded frame size before the codec's own padding. ``intra_period``: every
    frame whose index is a multiple of it is an I-frame (0: only frame 0 must be; scene cuts may add more)."""

    width: int
    height: int
    frame_count: int
    intra_period: int
    qp: int
    i_quality: int
    checkpoint_id: bytes


@dataclass(frozen=True)
class FrameRecord:
    """One coded frame: its strings in coding order, and the CRC32 of its symbols (see
    ``hytip.entropy_coding.StreamEncoder.crc``) with which the decoder proves it stayed in sync."""

    frame_type: FrameType
    strings: tuple[bytes, ...]
    symbols_crc: int


def checkpoint_id(path) -> bytes:
    """First 8 bytes of the SHA-256 of a checkpoint file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.digest()[:CHECKPOINT_ID_BYTES]


def _check_header(h: SequenceHeader, where: str) -> None:
    problems = []
    if not 1 <= h.width <= MAX_DIMENSION or not 1 <= h.height <= MAX_DIMENSION:
        problems.append(f"frame size {h.width}x{h.height} outside 1..{MAX_DIMENSION}")
    if not 1 <= h.frame_count < 1 << 32:
        problems.append(f"frame count {h.frame_count} outside 1..2^32-1")
    if not 0 <= h.intra_period <= 0xFFFF:
        problems.append(f"intra period {h.intra_period} outside 0..65535")
    if not 0 <= h.qp <= MAX_INDEX or not 0 <= h.i_quality <= MAX_INDEX:
        problems.append(f"QP {h.qp} / I-frame quality {h.i_quality} outside 0..{MAX_INDEX}")
    if not isinstance(h.checkpoint_id, bytes) or len(h.checkpoint_id) != CHECKPOINT_ID_BYTES:
        problems.append(f"checkpoint id must be {CHECKPOINT_ID_BYTES} bytes")
    if problems:
        raise BitstreamError(f"{where}: invalid sequence header: " + "; ".join(problems))


def _check_frame(h: SequenceHeader, index: int, frame_type: int, n_strings: int, where: str) -> None:
    if frame_type not in STRINGS_PER_FRAME:
        raise BitstreamError(f"{where}: frame {index}: unknown frame type {frame_type} (expected 1 = I or 2 = P)")
    expected = STRINGS_PER_FRAME[FrameType(frame_type)]
    if n_strings != expected:
        raise BitstreamError(f"{where}: frame {index}: {FrameType(frame_type).name}-frame with {n_strings} "
                             f"strings, expected {expected}")
    if frame_type != FrameType.I and (index == 0 or (h.intra_period and index % h.intra_period == 0)):
        raise BitstreamError(f"{where}: frame {index} must be an I-frame (intra period {h.intra_period}), "
                             f"found {FrameType(frame_type).name}")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def pack_header(header: SequenceHeader) -> bytes:
    _check_header(header, "pack")
    body = _HEADER.pack(MAGIC, VERSION, header.width, header.height, header.frame_count, header.intra_period,
                        header.qp, header.i_quality, header.checkpoint_id)
    return body + _CRC.pack(zlib.crc32(body))


def pack_frame(header: SequenceHeader, index: int, frame: FrameRecord) -> bytes:
    """Record of frame ``index`` (needed to check the intra period)."""
    _check_frame(header, index, frame.frame_type, len(frame.strings), "pack")
    if not 0 <= frame.symbols_crc < 1 << 32:
        raise BitstreamError(f"pack: frame {index}: symbols CRC {frame.symbols_crc} is not a 32-bit value")
    body = _RECORD_HEAD.pack(frame.frame_type, len(frame.strings), frame.symbols_crc) \
        + b"".join(_varint(len(s)) for s in frame.strings) + b"".join(frame.strings)
    return body + _CRC.pack(zlib.crc32(body))


def pack(header: SequenceHeader, frames) -> bytes:
    frames = list(frames)
    if len(frames) != header.frame_count:
        raise BitstreamError(f"pack: header announces {header.frame_count} frames, {len(frames)} given")
    return pack_header(header) + b"".join(pack_frame(header, i, f) for i, f in enumerate(frames))


def _check_magic(head: bytes, name: str) -> None:
    """A foreign start is rejected at once; a short prefix of the magic is left to the truncation checks."""
    if head[:len(MAGIC)] != MAGIC[:len(head)]:
        raise BitstreamError(f"{name}: not a HyTIP bitstream (starts with {head[:len(MAGIC)]!r}, "
                             f"expected {MAGIC!r})")


class _Reader:
    def __init__(self, data: bytes, where: str):
        self.data, self.pos, self.where = data, 0, where

    def take(self, n: int, what: str) -> bytes:
        if n > len(self.data) - self.pos:
            raise BitstreamError(f"{self.where}: truncated: {what} needs {n} bytes at offset {self.pos}, "
                                 f"{len(self.data) - self.pos} left")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def varint(self, what: str) -> int:
        value = 0
        for k in range(_MAX_VARINT_BYTES):
            byte = self.take(1, what)[0]
            value |= (byte & 0x7F) << (7 * k)
            if not byte & 0x80:
                return value
        raise BitstreamError(f"{self.where}: {what} at offset {self.pos} is longer than {_MAX_VARINT_BYTES} bytes")


def unpack(data: bytes, name: str = "<bytes>") -> tuple[SequenceHeader, list[FrameRecord]]:
    """Parse and verify a whole stream; ``name`` (e.g. the file path) prefixes every error message."""
    data = bytes(data)
    _check_magic(data, name)
    r = _Reader(data, name)
    # The version decides the layout, so it is read before anything it governs (the header checksum too).
    start = r.take(len(MAGIC) + 2, "magic and version")
    version = int.from_bytes(start[len(MAGIC):], "big")
    if version != VERSION:
        raise BitstreamError(f"{name}: unsupported bitstream version {version} (this reader knows {VERSION})")
    body = start + r.take(_HEADER.size - len(start), "sequence header")
    (crc,) = _CRC.unpack(r.take(_CRC.size, "sequence header checksum"))
    if zlib.crc32(body) != crc:
        raise BitstreamError(f"{name}: sequence header checksum mismatch (stored {crc:08x}, "
                             f"computed {zlib.crc32(body):08x}): corrupted header")
    _, _, width, height, frame_count, intra_period, qp, i_quality, ckpt = _HEADER.unpack(body)
    header = SequenceHeader(width, height, frame_count, intra_period, qp, i_quality, ckpt)
    _check_header(header, name)

    frames = []
    for index in range(frame_count):
        if r.pos == len(data):
            raise BitstreamError(f"{name}: header announces {frame_count} frames, the stream ends after {index}")
        start = r.pos
        frame_type, n_strings, symbols_crc = _RECORD_HEAD.unpack(r.take(_RECORD_HEAD.size, f"frame {index} record"))
        _check_frame(header, index, frame_type, n_strings, name)
        lengths = [r.varint(f"frame {index} string length") for _ in range(n_strings)]
        need = sum(lengths) + _CRC.size
        if need > len(data) - r.pos:
            raise BitstreamError(f"{name}: frame {index}: string lengths {lengths} point past the end "
                                 f"({need} bytes needed at offset {r.pos}, {len(data) - r.pos} left)")
        strings = tuple(r.take(n, f"frame {index} string") for n in lengths)
        end = r.pos
        (crc,) = _CRC.unpack(r.take(_CRC.size, f"frame {index} checksum"))
        if zlib.crc32(data[start:end]) != crc:
            raise BitstreamError(f"{name}: frame {index}: checksum mismatch at bytes {start}..{end}: "
                                 "corrupted record")
        frames.append(FrameRecord(FrameType(frame_type), strings, symbols_crc))
    if r.pos != len(data):
        raise BitstreamError(f"{name}: {len(data) - r.pos} bytes after the {frame_count} frames the header "
                             "announces")
    return header, frames


def write(path, header: SequenceHeader, frames) -> int:
    """Write a stream file; returns its size in bytes."""
    data = pack(header, frames)
    Path(path).write_bytes(data)
    return len(data)


def read(path) -> tuple[SequenceHeader, list[FrameRecord]]:
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
        _check_magic(head, str(path))   # before loading what may be a large foreign file
        return unpack(head + f.read(), str(path))
