"""The container: round trip, the documented byte layout, every corruption class, and a fuzz test over
mutated streams (each outcome is a clean BitstreamError or exactly the original content)."""
import random
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hytip import bitstream as bs
from hytip.bitstream import BitstreamError, FrameRecord, FrameType, SequenceHeader

HEADER = SequenceHeader(width=192, height=128, frame_count=5, intra_period=3, qp=63, i_quality=0,
                        checkpoint_id=bytes.fromhex("7bcf274782c30c9e"))
HEADER_BYTES = 8 + 2 + 2 + 2 + 4 + 2 + 1 + 1 + 8 + 4


def make_frames(header=HEADER, seed=0):
    rng = random.Random(seed)
    frames = []
    for i in range(header.frame_count):
        ftype = FrameType.I if i % header.intra_period == 0 else FrameType.P
        n = bs.STRINGS_PER_FRAME[ftype]
        # 200-byte strings need 2-byte length varints; one empty string is legal for the container
        strings = tuple(rng.randbytes(rng.choice([0, 8, 12, 200])) for _ in range(n))
        frames.append(FrameRecord(ftype, strings, rng.getrandbits(32)))
    return frames


FRAMES = make_frames()
STREAM = bs.pack(HEADER, FRAMES)


def test_round_trip_and_file(tmp_path):
    assert bs.unpack(STREAM) == (HEADER, FRAMES)
    path = tmp_path / "seq.hytip"
    assert bs.write(path, HEADER, FRAMES) == len(STREAM) == path.stat().st_size
    assert bs.read(path) == (HEADER, FRAMES)


def test_documented_layout():
    """Byte offsets and encodings as docs/bitstream.md gives them, checked with struct/zlib directly."""
    assert STREAM[:8] == b"\x89HYTIP\r\n"
    assert struct.unpack(">HHHIHBB", STREAM[8:22]) == (1, 192, 128, 5, 3, 63, 0)
    assert STREAM[22:30] == HEADER.checkpoint_id
    assert struct.unpack(">I", STREAM[30:34])[0] == zlib.crc32(STREAM[:30])
    f0 = FRAMES[0]
    n0 = len(f0.strings[0])
    length_bytes = bytes([n0]) if n0 < 128 else bytes([0x80 | (n0 & 0x7F), n0 >> 7])
    rec = STREAM[HEADER_BYTES:]
    assert rec[:6] == struct.pack(">BBI", 1, 1, f0.symbols_crc)
    assert rec[6:6 + len(length_bytes)] == length_bytes
    end = 6 + len(length_bytes) + n0
    assert rec[6 + len(length_bytes):end] == f0.strings[0]
    assert struct.unpack(">I", rec[end:end + 4])[0] == zlib.crc32(rec[:end])
    # a P-frame record costs 1 + 1 + 4 + lengths + 4 bytes beyond its strings
    p = FRAMES[1]
    overhead = 10 + sum(1 if len(s) < 128 else 2 for s in p.strings)
    assert len(bs.pack_frame(HEADER, 1, p)) == overhead + sum(len(s) for s in p.strings)


def with_header_crc(data: bytes) -> bytes:
    return data[:30] + struct.pack(">I", zlib.crc32(data[:30])) + data[34:]


@pytest.mark.parametrize("data, message", [
    (b"", r"truncated: magic and version needs 10 bytes"),
    (STREAM[:5], r"truncated: magic and version"),
    (STREAM[:20], r"truncated: sequence header needs"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), r"not a HyTIP bitstream"),
    (b"RIFF\x00\x00", r"not a HyTIP bitstream"),
    (STREAM[:8] + b"\x00\x02" + STREAM[10:], r"unsupported bitstream version 2"),
    (STREAM[:12] + b"\x00\xc1" + STREAM[14:], r"sequence header checksum mismatch"),
    (with_header_crc(STREAM[:14] + b"\x00\x00\x00\x04" + STREAM[18:]), r"trailing|after the 4 frames"),
    (with_header_crc(STREAM[:14] + b"\x00\x00\x00\x06" + STREAM[18:]), r"announces 6 frames, the stream ends after 5"),
    (with_header_crc(STREAM[:20] + b"\x40" + STREAM[21:]), r"QP 64 / I-frame quality 0 outside"),
    (with_header_crc(STREAM[:10] + b"\x00\x00" + STREAM[12:]), r"frame size 0x128"),
    (STREAM[:HEADER_BYTES], r"announces 5 frames, the stream ends after 0"),
    (STREAM[:HEADER_BYTES + 3], r"truncated: frame 0 record needs 6 bytes"),
    (STREAM[:-2], r"frame 4: string lengths .* point past the end \(228 bytes needed .*, 226 left\)"),
    (STREAM[:-300], r"frame 1: string lengths .* point past the end"),
    (STREAM + b"\x00", r"1 bytes after the 5 frames"),
])
def test_corruptions_are_located(data, message):
    with pytest.raises(BitstreamError, match=message):
        bs.unpack(data, "clip.hytip")
    with pytest.raises(BitstreamError, match="^clip.hytip: "):
        bs.unpack(data, "clip.hytip")


def test_flipped_payload_byte_names_the_frame():
    start = len(bs.pack_header(HEADER)) + sum(len(bs.pack_frame(HEADER, i, f)) for i, f in enumerate(FRAMES[:2]))
    data = bytearray(STREAM)
    data[start + 12] ^= 0x10
    with pytest.raises(BitstreamError, match=r"frame 2: checksum mismatch"):
        bs.unpack(bytes(data))


def record_with(ftype, n_strings):
    body = struct.pack(">BBI", ftype, n_strings, 0) + bytes(n_strings)
    return body + struct.pack(">I", zlib.crc32(body))


@pytest.mark.parametrize("record, message", [
    (record_with(3, 7), r"frame 1: unknown frame type 3"),
    (record_with(2, 6), r"frame 1: P-frame with 6 strings, expected 7"),
    (record_with(1, 7), r"frame 1: I-frame with 7 strings, expected 1"),
])
def test_record_structure_is_checked(record, message):
    header = SequenceHeader(64, 64, 2, 32, 0, 0, bytes(8))
    with pytest.raises(BitstreamError, match=message):
        bs.unpack(bs.pack_header(header) + bs.pack_frame(header, 0, FRAMES[0]) + record)


def test_intra_period_is_enforced():
    header = SequenceHeader(64, 64, 4, 2, 0, 0, bytes(8))
    p = FrameRecord(FrameType.P, (b"",) * 7, 0)
    i = FrameRecord(FrameType.I, (b"",), 0)
    with pytest.raises(BitstreamError, match=r"frame 0 must be an I-frame"):
        bs.pack(header, [p, p, i, p])
    with pytest.raises(BitstreamError, match=r"frame 2 must be an I-frame \(intra period 2\)"):
        bs.pack(header, [i, p, p, p])
    # a scene-cut I-frame anywhere is fine, and period 0 asks only for frame 0
    bs.unpack(bs.pack(header, [i, i, i, p]))
    bs.unpack(bs.pack(SequenceHeader(64, 64, 4, 0, 0, 0, bytes(8)), [i, p, p, p]))


def test_writer_rejects_inconsistent_input():
    with pytest.raises(BitstreamError, match="announces 5 frames, 4 given"):
        bs.pack(HEADER, FRAMES[:4])
    with pytest.raises(BitstreamError, match="checkpoint id must be 8 bytes"):
        bs.pack_header(SequenceHeader(64, 64, 1, 32, 0, 0, b"abc"))
    with pytest.raises(BitstreamError, match="not a 32-bit value"):
        bs.pack_frame(HEADER, 0, FrameRecord(FrameType.I, (b"",), 1 << 32))


def test_read_rejects_foreign_file_without_loading_it(tmp_path):
    path = tmp_path / "movie.mp4"
    path.write_bytes(b"\x00\x00\x00\x20ftypisom" + bytes(1000))
    with pytest.raises(BitstreamError, match=r"movie.mp4: not a HyTIP bitstream"):
        bs.read(path)


def test_checkpoint_id_is_sha256_prefix(tmp_path):
    path = tmp_path / "ckpt.pth.tar"
    path.write_bytes(b"abc")
    # SHA-256("abc") from FIPS 180-2, appendix B.1
    assert bs.checkpoint_id(path) == bytes.fromhex("ba7816bf8f01cfea")


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, len(STREAM) - 1), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, len(STREAM) - 1), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, len(STREAM)), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, len(STREAM) - 1), st.integers(1, 16)),
)


def mutate(data: bytes, ops) -> bytes:
    out = bytearray(data)
    for kind, pos, arg in ops:
        pos = min(pos, len(out))
        if kind == "flip" and pos < len(out):
            out[pos] ^= arg
        elif kind == "truncate":
            del out[pos:]
        elif kind == "insert":
            out[pos:pos] = arg
        elif kind == "delete":
            del out[pos:pos + arg]
    return bytes(out)


@settings(max_examples=200, deadline=200, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=3))
def test_fuzz_mutated_streams(ops):
    data = mutate(STREAM, ops)
    try:
        parsed = bs.unpack(data, "fuzz")
    except BitstreamError:
        return
    assert data == STREAM and parsed == (HEADER, FRAMES)
