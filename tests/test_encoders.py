"""bench.codecs.encoders: the ffmpeg encoders really code and decode a tiny clip; VTM command lines, log parsing, errors."""
import json
import re
import subprocess

import numpy as np
import pytest
from anchor_helpers import TINY, fake_vtm, tiny_clip

from bench.codecs.encoders import (
    ENCODERS,
    VTM,
    EncoderFailed,
    EncoderMissing,
    RawVideo,
    make_encoder,
    parse_vtm_log,
)
from bench.data.readers import ffmpeg_exe
from bench.measure.metrics import psnr_plane

FFMPEG_ENCODERS = ("x264", "x265", "svtav1", "vvenc")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    path = tiny_clip(folder / "tiny.yuv")
    raw8 = RawVideo(path, TINY["width"], TINY["height"], "yuv420p", 6, TINY["fps"])
    path10 = folder / "tiny10.yuv"
    (np.fromfile(path, np.uint8).astype("<u2") << 2).tofile(path10)
    return {"yuv420p": raw8, "yuv420p10le": raw8.with_path(path10, "yuv420p10le")}


def _frame_types(bitstream):
    log = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(bitstream), "-vf", "showinfo", "-f",
                          "null", "-"], capture_output=True, text=True).stderr
    return re.findall(r"type:(\w)", log)


@pytest.mark.parametrize("name", FFMPEG_ENCODERS)
def test_ffmpeg_encoder_codes_and_decodes(name, clip, tmp_path):
    enc = make_encoder(name)
    enc.check()
    src = clip[enc.input_format("420", 8)]
    results = {}
    for qp in (max(enc.default_rates), min(enc.default_rates)):
        coded = enc.encode(src, qp, tmp_path / f"q{qp}{enc.suffix}", tmp_path / f"q{qp}.encode.log")
        assert coded.bits == 8 * coded.bitstream.stat().st_size > 0
        log = coded.log.read_text()
        assert log.startswith("$ ") and f"-c:v {enc.library}" in log.splitlines()[0]
        assert re.search(r"\d", coded.version) and "ffmpeg" not in coded.version
        assert coded.reported["ffmpeg"].startswith("n")  # imageio-ffmpeg's build
        decoded = enc.decode(coded.bitstream, src, tmp_path / f"q{qp}.yuv", tmp_path / f"q{qp}.decode.log")
        assert decoded.pix_fmt == src.pix_fmt and decoded.path.stat().st_size == 6 * src.frame_bytes
        peak = (1 << src.bit_depth) - 1
        psnr = np.mean([psnr_plane(decoded.read(i)[0], src.read(i)[0], peak) for i in range(6)])
        results[qp] = (coded.bits, psnr)
        assert 25 < psnr < 60
    (hi_qp, lo_qp) = max(results), min(results)
    assert results[lo_qp][0] > results[hi_qp][0] and results[lo_qp][1] > results[hi_qp][1]
    # Low delay, no automatic key frames: one intra frame, then only inter frames.
    types = _frame_types(tmp_path / f"q{lo_qp}{enc.suffix}")
    assert len(types) == 6 and types[0] == "I" and "I" not in types[1:]


def test_vvenc_takes_only_10bit_and_svtav1_no_444():
    assert make_encoder("vvenc").input_format("420", 8) == "yuv420p10le"
    assert make_encoder("x264").input_format("420", 8) == "yuv420p"
    with pytest.raises(Exception, match="cannot code 444"):
        make_encoder("svtav1").input_format("444", 10)


def test_missing_ffmpeg_encoder_says_how_to_provide_one(tmp_path):
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'Encoders:'\necho ' V....D libx264  H.264'\n")
    fake.chmod(0o755)
    make_encoder("x264", ffmpeg=str(fake)).check()
    with pytest.raises(EncoderMissing, match=r"has no libsvtav1 encoder; install imageio-ffmpeg.*IMAGEIO_FFMPEG_EXE"):
        make_encoder("svtav1", ffmpeg=str(fake)).check()
    with pytest.raises(EncoderMissing, match="ffmpeg not found at"):
        make_encoder("x265", ffmpeg=str(tmp_path / "nope" / "ffmpeg")).check()


def test_missing_vtm_says_how_to_provide_it(tmp_path, monkeypatch):
    for var in ("HYTIP_VTM_ENCODER", "HYTIP_VTM_DECODER", "HYTIP_VTM_CFG"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(EncoderMissing, match=r"no VTM encoder, decoder, cfg given; build VTM-17.0 .*--vtm-encoder"):
        VTM().check()
    paths = fake_vtm(tmp_path / "vtm")
    with pytest.raises(EncoderMissing, match=r"decoder .*missing.* does not exist"):
        VTM(paths["encoder_app"], str(tmp_path / "missing"), paths["cfg"]).check()
    monkeypatch.setenv("HYTIP_VTM_ENCODER", paths["encoder_app"])
    monkeypatch.setenv("HYTIP_VTM_DECODER", paths["decoder_app"])
    monkeypatch.setenv("HYTIP_VTM_CFG", paths["cfg"])
    VTM().check()  # the environment provides all three


def test_vtm_command_lines_follow_dcvc_and_decode_is_checked(clip, tmp_path):
    paths = fake_vtm(tmp_path / "vtm")
    vtm = make_encoder("vtm", threads=4, **paths)
    src = clip["yuv420p"]
    coded = vtm.encode(src, 27, tmp_path / "s.bin", tmp_path / "enc.log")
    decoded = vtm.decode(coded.bitstream, src, tmp_path / "d.yuv", tmp_path / "dec.log")
    calls = [json.loads(line) for line in (tmp_path / "vtm" / "calls.jsonl").read_text().splitlines()]
    assert calls[0]["argv"] == [
        "-c", paths["cfg"], "-f", "6", "-q", "27", "--IntraPeriod=-1", f"--InputFile={src.path}", "--SourceWidth=128",
        "--SourceHeight=64", "--FrameRate=25", "--Level=6.2", "--InputBitDepth=8", "--DecodingRefreshType=2",
        "--SEIDecodedPictureHash=1", "-b", str(tmp_path / "s.bin")]
    assert calls[1]["argv"] == ["-b", str(tmp_path / "s.bin"), "-o", str(tmp_path / "d.yuv"), "-d", "10"]
    assert coded.version == "17.0" and coded.reported["frames"] == 6 and coded.bits > 0
    assert decoded.pix_fmt == "yuv420p10le" and decoded.frames == 6
    # 4:4:4 10-bit input adds DCVC's RGB-content options.
    src444 = RawVideo(tmp_path / "s444.yuv", 128, 64, "yuv444p10le", 2, 25.0)
    (np.arange(2 * 3 * 128 * 64) % 1024).astype("<u2").tofile(src444.path)
    vtm.encode(src444, 32, tmp_path / "s444.bin", tmp_path / "enc444.log")
    argv = json.loads((tmp_path / "vtm" / "calls.jsonl").read_text().splitlines()[-1])["argv"]
    assert "--InputBitDepth=10" in argv and "--InputChromaFormat=444" in argv and "--ChromaFormatIDC=444" in argv
    # A decoder that writes the wrong amount is caught.
    with pytest.raises(EncoderFailed, match="expected 3 128x64"):
        vtm.decode(coded.bitstream, RawVideo(src.path, 128, 64, "yuv420p", 3, 25.0), tmp_path / "e.yuv",
                   tmp_path / "e.log")


# The end of a real VTM-17.0 EncoderApp log (built from tag VTM-17.0, GCC 12, on a 128x64 test clip).
VTM17_LOG = """
VVCSoftware: VTM Encoder Version 17.0 [Linux][GCC 12.2.0][64 bit] [SIMD=AVX2] 

 started @ Tue Nov 24 06:51:25 2026
POC    0 LId:  0 TId: 0 ( IDR_N_LP, I-SLICE, QP 21 )       8328 bits [Y 45.1470 dB    U 48.2602 dB    V 50.6591 dB] [ET     4 ] [L0] [L1]
POC    1 LId:  0 TId: 0 ( TRAIL, B-SLICE, QP 28 )        296 bits [Y 43.6352 dB    U 47.6801 dB    V 49.2431 dB] [ET     1 ] [L0 0] [L1 0c]
POC    2 LId:  0 TId: 0 ( TRAIL, B-SLICE, QP 26 )        664 bits [Y 43.2648 dB    U 47.2148 dB    V 49.3809 dB] [ET     1 ] [L0 1 0] [L1 1c 0]

LayerId  0
\tTotal Frames |  Bitrate      Y-PSNR   U-PSNR   V-PSNR   YUV-PSNR 
\t3            a  77.4000      44.0156  47.7184  49.7611  45.0161  

 finished @ Tue Nov 24 06:51:33 2026
"""


def test_parse_vtm_log_reads_the_all_frames_summary():
    got = parse_vtm_log(VTM17_LOG)
    assert got == {"version": "17.0", "frames": 3, "kbps": 77.4, "psnr_y": 44.0156, "psnr_u": 47.7184,
                   "psnr_v": 49.7611, "psnr_yuv": 45.0161}
    # At higher verbosity VTM adds per-slice-type tables (rows i, p, b) after the all-frames one.
    verbose = VTM17_LOG + "\tTotal Frames |  Bitrate      Y-PSNR   U-PSNR   V-PSNR   YUV-PSNR \n\t1     i  9.0  1.0  2.0  3.0  4.0\n"
    assert parse_vtm_log(verbose)["frames"] == 3
    with pytest.raises(EncoderFailed, match="no 'Total Frames' summary line"):
        parse_vtm_log(VTM17_LOG.split("LayerId")[0])


def test_failing_encoder_names_its_log(clip, tmp_path):
    paths = fake_vtm(tmp_path / "vtm")
    (tmp_path / "vtm" / "FAIL").touch()
    with pytest.raises(EncoderFailed, match=r"exited with status 3; see .*enc.log .*failing on purpose"):
        make_encoder("vtm", **paths).encode(clip["yuv420p"], 27, tmp_path / "s.bin", tmp_path / "enc.log")


def test_registry():
    assert set(ENCODERS) == {"x264", "x265", "svtav1", "aom", "vp9", "vvenc", "vtm"}
    with pytest.raises(Exception, match="unknown encoder 'hm'"):
        make_encoder("hm")
