"""Bad input to hytip.codec (issue 4 §7): every case ends in a clean hytip ValueError subclass whose message
names the problem, never a crash, a hang or silently wrong frames."""
import dataclasses

import golden
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hytip
from hytip import bitstream as bs
from bench.benchmarks.codec_speed import clip_frames
from hytip.codec import CodecInputError, DecodeError, NumericError

SETTINGS = {"qp": 20, "i_quality": 20}


@pytest.fixture(scope="module")
def codec():
    return hytip.load(golden.golden_checkpoint_path())


@pytest.fixture(scope="module")
def frames():
    case = golden.load_case("A")
    x = torch.from_numpy(case["input_frames"][:2, 32:96, 64:128]).permute(0, 3, 1, 2).float() / 255
    return x.contiguous()                                 # 2 frames of 64x64


@pytest.fixture(scope="module")
def stream(codec, frames, tmp_path_factory):
    """A tiny I+P stream, its bytes and the encoder's reconstructions."""
    path = tmp_path_factory.mktemp("errors") / "tiny.hytip"
    enc = list(codec.compress(iter(frames), path, **SETTINGS))
    return path.read_bytes(), [r.recon for r in enc]


# ---- encoder input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("qp", -1), ("qp", 64), ("qp", 2.0), ("qp", True),
                                          ("i_quality", 64), ("i_quality", -3), ("i_quality", None)])
def test_quality_indexes_outside_0_63(codec, frames, field, value, tmp_path):
    kw = {**SETTINGS, field: value}
    name = "QP" if field == "qp" else "I-frame quality"
    with pytest.raises(CodecInputError, match=rf"{name}: expected an integer in 0\.\.63"):
        next(codec.estimate(iter(frames), **kw))
    with pytest.raises(CodecInputError):
        next(codec.compress(iter(frames), tmp_path / "x.hytip", **kw))
    assert not (tmp_path / "x.hytip").exists()


def _bad_frames(frames):
    x = frames[0]
    nan = x.clone()
    nan[1, 5, 7] = float("nan")
    return {
        "grey": (x[:1], r"RGB frame \[3,H,W\] or \[1,3,H,W\], found shape \[1, 64, 64\]"),
        "rgba": (torch.cat((x, x[:1])), r"found shape \[4, 64, 64\]"),
        "batch": (frames.unsqueeze(0), r"found shape \[1, 2, 3, 64, 64\]"),
        "two": (frames, r"found shape \[2, 3, 64, 64\]"),
        "uint8": ((x * 255).to(torch.uint8), "floating-point values in \\[0, 1\\], found torch.uint8"),
        "nan": (nan, "NaN or infinite"),
        "range255": (x * 255, r"values must lie in \[0, 1\], found 37\.\.228"),
        "negative": (x - 0.5, r"values must lie in \[0, 1\], found -"),
        "numpy": (x.numpy(), "expected a torch.Tensor, found ndarray"),
    }


@pytest.mark.parametrize("kind", ["grey", "rgba", "batch", "two", "uint8", "nan", "range255", "negative",
                                  "numpy"])
def test_bad_frames_are_rejected(codec, frames, kind):
    bad, message = _bad_frames(frames)[kind]
    with pytest.raises(CodecInputError, match="frame 1: .*" + message):
        list(codec.estimate(iter([bad, frames[1]]), **SETTINGS))


def test_frame_size_must_not_change(codec, frames):
    with pytest.raises(CodecInputError, match="frame 2: size 48x64 differs from the first frame's 64x64"):
        list(codec.estimate(iter([frames[0], frames[1][:, :, :48]]), **SETTINGS))


def test_an_overflowing_frame_is_refused_before_it_is_coded(codec, tmp_path):
    """The golden checkpoint's synthetic weights overflow to NaN on this clip's I-frame at quality 63 (the official
    code too, with the same NaN count at the same thread count); no NaN rate or frame comes out, and no stream is
    written."""
    x = clip_frames(448, 256, 1)
    with pytest.raises(NumericError, match=r"frame 1 \(I-frame\): the model's output is not finite \(\d+ NaN"):
        next(codec.estimate(iter(x), qp=63, i_quality=63))
    with pytest.raises(NumericError, match="frame 1"):
        list(codec.compress(iter(x), tmp_path / "nan.hytip", qp=63, i_quality=63))
    assert not (tmp_path / "nan.hytip").exists()
    assert next(codec.estimate(iter(x), qp=63, i_quality=42)).recon.isfinite().all()


def test_stream_folder_must_exist(codec, frames, tmp_path):
    with pytest.raises(CodecInputError, match="folder for the stream file does not exist"):
        next(codec.compress(iter(frames), tmp_path / "missing" / "x.hytip", **SETTINGS))


def test_empty_sequence_and_bad_intra_period(codec, frames, tmp_path):
    with pytest.raises(CodecInputError, match="empty"):
        list(codec.compress(iter([]), tmp_path / "e.hytip", **SETTINGS))
    assert not (tmp_path / "e.hytip").exists()
    with pytest.raises(CodecInputError, match="intra period"):
        list(codec.estimate(iter(frames), intra_period=0, **SETTINGS))


# ---- decoder input ---------------------------------------------------------------------------------------

def _decode(codec, data: bytes, tmp_path):
    path = tmp_path / "in.hytip"
    path.write_bytes(data)
    return [r.recon for r in codec.decompress(path)]


def test_reference_stream_decodes(codec, stream, tmp_path):
    data, recon = stream
    assert all(torch.equal(a, b) for a, b in zip(_decode(codec, data, tmp_path), recon))


def test_truncated_streams(codec, stream, tmp_path):
    data, _ = stream
    for n in (0, 5, 20, 40, len(data) // 2, len(data) - 1):
        with pytest.raises(bs.BitstreamError, match="truncated|ends after|point past the end|not a HyTIP"):
            _decode(codec, data[:n], tmp_path)


def test_bit_flips_are_caught_by_the_container(codec, stream, tmp_path):
    data, _ = stream
    for pos in (9, 15, 40, len(data) // 3, len(data) - 10):
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        with pytest.raises(bs.BitstreamError, match="checksum|version|string lengths|frame type|strings"):
            _decode(codec, bytes(flipped), tmp_path)


def test_foreign_files(codec, tmp_path):
    with pytest.raises(bs.BitstreamError, match="not a HyTIP bitstream"):
        _decode(codec, b"\x89PNG\r\n\x1a\n" + bytes(100), tmp_path)
    with pytest.raises(bs.BitstreamError, match="not a HyTIP bitstream"):
        _decode(codec, b"hello world, not a stream", tmp_path)


def _repack(data: bytes, header_changes=None, frame=None, string=None, new=None) -> bytes:
    """Re-encode a stream with a changed header field or string; the container checksums are then valid,
    so the decoder itself must notice."""
    header, records = bs.unpack(data)
    header = dataclasses.replace(header, **(header_changes or {}))
    if frame is not None:
        strings = list(records[frame].strings)
        strings[string] = new(strings[string])
        records[frame] = dataclasses.replace(records[frame], strings=tuple(strings))
    return bs.pack(header, records)


def test_stream_of_another_checkpoint(codec, stream, tmp_path):
    data, _ = stream
    with pytest.raises(DecodeError, match="coded with checkpoint 0000000000000000"):
        _decode(codec, _repack(data, {"checkpoint_id": bytes(8)}), tmp_path)


@pytest.mark.parametrize("change, frame", [({"width": 80}, 1), ({"height": 48}, 1), ({"qp": 21}, 2),
                                           ({"i_quality": 19}, 1)])
def test_header_that_does_not_match_the_strings(codec, stream, tmp_path, change, frame):
    """Coding parameters that the strings were not coded with: even in a consistently re-packed container
    (valid checksums), the record's check value covers them, so the first frame they touch fails."""
    data, _ = stream
    with pytest.raises(DecodeError, match=f"frame {frame}: (symbols CRC .* out of sync|cannot decode)"):
        _decode(codec, _repack(data, change), tmp_path)


@pytest.mark.parametrize("frame, string", [(0, 0), (1, 0), (1, 1), (1, 3), (1, 6)])
def test_corrupted_strings_with_valid_container(codec, stream, tmp_path, frame, string):
    data, _ = stream

    def corrupt(s: bytes) -> bytes:
        b = bytearray(s)
        b[len(b) // 2] ^= 0xFF
        return bytes(b)

    with pytest.raises(DecodeError, match=f"frame {frame + 1}: "):
        _decode(codec, _repack(data, frame=frame, string=string, new=corrupt), tmp_path)
    with pytest.raises(DecodeError, match=f"frame {frame + 1}: .*rANS string of"):
        _decode(codec, _repack(data, frame=frame, string=string, new=lambda s: s[:-1]), tmp_path)


@st.composite
def _mutation(draw, size: int):
    kind = draw(st.sampled_from(["flip", "overwrite", "truncate", "insert", "delete", "string"]))
    pos = draw(st.integers(0, size - 1))
    return kind, pos, draw(st.integers(1, 255)), draw(st.integers(0, 7))


def _mutate(data: bytes, mutation) -> bytes:
    kind, pos, byte, k = mutation
    b = bytearray(data)
    if kind == "flip":
        b[pos] ^= 1 << k
    elif kind == "overwrite":
        b[pos] = (b[pos] + byte) % 256
    elif kind == "truncate":
        del b[pos:]
    elif kind == "insert":
        b.insert(pos, byte)
    elif kind == "delete":
        del b[pos]
    else:   # change one byte inside a string and re-pack, so only the decoder can tell
        header, records = bs.unpack(data)
        f = pos % len(records)
        s = k % len(records[f].strings)
        string = bytearray(records[f].strings[s])
        string[pos % len(string)] ^= byte
        return _repack(data, frame=f, string=s, new=lambda _: bytes(string))
    return bytes(b)


def test_fuzz_mutated_streams(codec, stream, tmp_path_factory):
    data, recon = stream
    tmp = tmp_path_factory.mktemp("fuzz")

    @settings(max_examples=30, deadline=20_000, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(_mutation(len(data)))
    def check(mutation):
        try:
            out = _decode(codec, _mutate(data, mutation), tmp)
        except ValueError as e:
            assert type(e).__module__.startswith("hytip."), f"{mutation}: {type(e)} {e}"
            return
        assert len(out) == len(recon) and all(torch.equal(a, b) for a, b in zip(out, recon)), mutation

    check()
