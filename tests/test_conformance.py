"""`run_bench.py anchors --conform`: a published-style anchor CSV regenerated in its own protocol (real x265 on a tiny
clip), a perturbed copy flagged at the right point, refusals before anything runs, the conformance section of the
report, and VTM's decoded-picture-hash check (stand-in DecoderApp; a real VTM-17.0 log excerpt)."""
import argparse
import contextlib
import io
import json

import pandas as pd
import pytest
from anchor_helpers import fake_vtm, tiny_clip

from bench import REPO_ROOT
from bench.analysis.conformance import Tolerances, compare, load_conformance_csv
from bench.analysis.rd_schema import load_rd_csv, rd_frame
from bench.cli import anchors as anchors_cli
from bench.codecs.encoders import EncoderFailed, decoded_picture_hash, hash_sei_bytes
from bench.errors import InputError
from reports.build import ReportOptions, build_report
from reports.inputs import read_inputs

W, H, FRAMES = 128, 64, 6


def _call(argv) -> int:
    parser = argparse.ArgumentParser()
    anchors_cli.register(parser.add_subparsers())
    args = parser.parse_args(["anchors", *argv])
    return args.func(args)


def _run(argv, capsys):
    return _call(argv), capsys.readouterr().out


def _source(clip):
    return ["--input", str(clip), "--width", str(W), "--height", str(H), "--pix-fmt", "yuv420p", "--fps", "25",
            "--name", "tiny", "--no-progress"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return tiny_clip(tmp_path_factory.mktemp("clip") / "tiny.yuv", FRAMES)


@pytest.fixture(scope="module")
def published(clip, tmp_path_factory):
    """An x265 anchor CSV made by `anchors` (6 frames, intra period 3, 4 QPs), as a paper would publish it."""
    folder = tmp_path_factory.mktemp("published")
    argv = [*_source(clip), "--frames", str(FRAMES), "--intra-period", "3", "--encoders", "x265", "--rates", "22", "27",
            "32", "37", "--out", str(folder / "run"), "--csv", str(folder / "published.csv")]
    assert _call(argv) == 0
    return folder / "published.csv"


@pytest.fixture(scope="module")
def conformed(clip, published, tmp_path_factory):
    """`anchors --conform` of the published CSV into a fresh folder: (exit code, printed text, folder)."""
    folder = tmp_path_factory.mktemp("conform")
    text = io.StringIO()
    with contextlib.redirect_stdout(text):   # capsys is per test; this run is shared by several
        code = _call(["--conform", str(published), *_source(clip), "--out", str(folder)])
    return code, text.getvalue(), folder


def test_regenerated_anchor_conforms_exactly(published, conformed):
    code, text, folder = conformed
    assert code == 0 and "anchors: 4 coded, 0 already done, 0 failed" in text
    table = load_conformance_csv(folder / "conformance.csv")
    curve, points = table[table["level"] == "curve"].iloc[0], table[table["level"] == "point"]
    assert curve["verdict"] == "conforms" and curve["codec"] == "x265" and curve["mode"] == "yuv420"
    assert curve["protocol"] == ("6 frames, intra period 3, crop centre-64 128x64, yuv420p, BT601 (bt601 limited "
                                 "nearest)")
    for metric in ("psnr_rgb", "psnr_y", "psnr_yuv"):
        assert curve[f"bd_rate_{metric}_pct"] == 0.0 and (points[f"{metric}_diff_db"] == 0.0).all()
    assert list(points["rate_point"]) == ["qp22", "qp27", "qp32", "qp37"] and (points["rate_diff_pct"] == 0.0).all()
    assert (points["verdict"] == "conforms").all() and (points["rate_unit"] == "bpp").all()
    # The rates compared are the published file's and the new run's, not one read twice.
    pub = load_rd_csv(published).set_index("rate_point")
    assert list(points["rate_published"]) == list(pub.loc[points["rate_point"], "bpp"])
    assert points["regenerated"].str.startswith("hytip-bench run records/x265__yuv420__custom__tiny__qp").all()
    assert "x265 yuv420 custom/tiny [6 frames, intra period 3" in text
    assert "BD-rate psnr_rgb +0.00 %, psnr_y +0.00 %, psnr_yuv +0.00 %: conforms" in text
    assert "qp32: conforms (bpp +0.00 %, psnr_rgb +0.000 dB" in text


def test_perturbed_point_is_flagged_and_tolerances_apply(clip, published, conformed, tmp_path, capsys):
    frame = pd.read_csv(published, dtype=str, keep_default_na=False)
    qp32 = frame["rate_point"] == "qp32"
    frame.loc[qp32, "bpp"] = repr(float(frame.loc[qp32, "bpp"].iloc[0]) * 1.05)
    perturbed = tmp_path / "perturbed.csv"
    frame.to_csv(perturbed, index=False)
    # The first conformance's jobs (nothing is coded again); the table goes beside the anchor CSV named by --csv.
    base = ["--conform", str(perturbed), *_source(clip), "--out", str(conformed[2]), "--csv", str(tmp_path / "a.csv")]
    code, text = _run(base, capsys)
    assert code == 1 and "0 coded, 4 already done" in text
    table = load_conformance_csv(tmp_path / "conformance.csv").set_index("rate_point")
    point = table.loc["qp32"]
    assert point["rate_diff_pct"] == pytest.approx(100 * (1 / 1.05 - 1))   # -4.76 %: regenerated against published
    assert point["verdict"] == "differs: bpp -4.76 % (> 1 %)" and point["psnr_y_diff_db"] == 0.0
    assert (table.loc[["qp22", "qp27", "qp37"], "verdict"] == "conforms").all()
    curve = table[table["level"] == "curve"].iloc[0]
    assert curve["verdict"].startswith("differs: qp32 differs: bpp -4.76 %") and "qp22" not in curve["verdict"]
    assert curve["rate_diff_pct"] == pytest.approx(point["rate_diff_pct"])
    assert -4.76 < curve["bd_rate_psnr_y_pct"] < -0.5   # one of four points 4.76 % lower
    assert f"qp32: differs: bpp -4.76 % (> 1 %) (bpp -4.76 %, psnr_rgb +0.000 dB" in text
    # Wide enough tolerances accept the same numbers.
    code, text = _run([*base, "--rate-tolerance", "5", "--bd-tolerance", "5"], capsys)
    assert code == 0 and "tolerances: rate 5 %, quality 0.05 dB, BD-rate 5 %" in text
    assert load_conformance_csv(tmp_path / "conformance.csv")["verdict"].eq("conforms").all()


def test_rows_that_cannot_be_matched_are_refused_before_anything_runs(clip, published, tmp_path, capsys):
    frame = pd.read_csv(published, dtype=str, keep_default_na=False)
    frame.loc[0, "codec"] = "HM"                                    # line 2
    frame.loc[1, "intra_period"] = "4"                              # line 3: 6 frames are not whole periods of 4
    frame.loc[2, "crop"] = "none"                                   # line 4
    frame.loc[3, "codec_config"] = frame.loc[3, "codec_config"].replace("-preset medium", "-preset slow")  # line 5
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    out = tmp_path / "out"
    with pytest.raises(InputError) as caught:
        _run(["--conform", str(bad), *_source(clip), "--out", str(out)], capsys)
    message = str(caught.value)
    assert message.startswith(f"{bad}: 4 row(s) cannot be regenerated in their own protocol")
    assert "line 2 (HM custom/tiny qp22): codec 'HM' is not one this tool runs (x264, x265" in message
    assert "line 3 (x265 custom/tiny qp27): 6 frames are not whole intra periods of 4" in message
    assert "line 4 (x265 custom/tiny qp32): crop 'none': this tool codes centre crops only" in message
    assert "line 5 (x265 custom/tiny qp37): codec_config 'ffmpeg -c:v libx265 -preset slow" in message
    assert "is not this tool's x265 command line 'ffmpeg -c:v libx265 -preset medium" in message
    assert not (out / "records").exists()
    # A sequence the source is not, and options that the file decides.
    frame = pd.read_csv(published, dtype=str, keep_default_na=False).assign(sequence="Beauty", dataset="UVG")
    frame.to_csv(bad, index=False)
    with pytest.raises(InputError, match=r"line 2 \(x265 UVG/Beauty qp22\): no source for UVG/Beauty BT601 \(the "
                                         r"sources are custom/tiny\)"):
        _run(["--conform", str(bad), *_source(clip), "--out", str(out)], capsys)
    # A catalogued sequence whose file is not under the data root.
    frame.assign(dataset="HEVC-D", sequence="RaceHorses1").to_csv(bad, index=False)
    with pytest.raises(InputError, match=r"bad.csv: line 2, line 3, line 4, line 5: cannot be regenerated: HEVC-D: "
                                         r"1 of 1 requested sequences not found under data root [\s\S]*"
                                         r"RaceHorses_416x240_30.yuv"):
        _run(["--conform", str(bad), "--data-root", str(tmp_path), "--out", str(out), "--no-progress"], capsys)
    with pytest.raises(InputError, match="come from the file; drop --frames, --encoders"):
        _run(["--conform", str(published), *_source(clip), "--out", str(out), "--frames", "6", "--encoders", "x264"],
             capsys)


def test_dcvc_published_vtm_anchor_is_refused_with_what_differs(clip, tmp_path, capsys):
    paths = fake_vtm(tmp_path / "vtm")
    dcvc = REPO_ROOT / "anchors" / "vtm-17.0_ldb_yuv420_allframes_ip-1_dcvc.csv"
    with pytest.raises(InputError) as caught:
        _run(["--conform", str(dcvc), "--sequences", "Beauty", *_source(clip), "--out", str(tmp_path / "out"),
              "--vtm-encoder", paths["encoder_app"], "--vtm-decoder", paths["decoder_app"], "--vtm-cfg", paths["cfg"]],
             capsys)
    message = str(caught.value)
    assert message.startswith(f"{dcvc}: 10 row(s) cannot be regenerated")   # Beauty's ten QPs
    assert ("line 2 (VTM UVG/Beauty 022): codec_config 'encoder_lowdelay_vtm.cfg (low-delay B) --InputBitDepth=8 "
            "--DecodingRefreshType=2 --Level=6.2' does not start with a coding mode this tool writes (yuv420:, "
            "rgb444:); crop 'none': this tool codes centre crops only") in message
    assert "color_transform 'none': this tool measures under BT601, BT709 or native-RGB" in message


def test_report_has_a_conformance_section(conformed, tmp_path):
    inputs = read_inputs([conformed[2]])
    assert [path for path, _ in inputs.conformance] == [str(conformed[2] / "conformance.csv")]
    page = build_report(inputs, tmp_path / "report", ReportOptions(anchor="x265", drill_down=False, intervals=None))
    html = page.read_text()
    assert '<a href="#conformance">Anchor conformance</a>' in html and '<section id="conformance">' in html
    exported = pd.read_csv(tmp_path / "report" / "tables" / "conformance.csv", index_col=0)
    assert list(exported.index) == ["x265 yuv420 custom/tiny BT601"] + [
        f"x265 yuv420 custom/tiny BT601 qp{q}" for q in (22, 27, 32, 37)]
    assert (exported["verdict"] == "conforms").all() and (exported["rate diff (%)"] == 0).all()
    assert exported.loc["x265 yuv420 custom/tiny BT601", "BD-rate PSNR-Y (%)"] == 0
    assert "Protocol: 6 frames, intra period 3, crop centre-64 128x64" in html


def test_vtm_decoded_picture_hashes_are_checked_and_recorded(clip, tmp_path, capsys):
    paths = fake_vtm(tmp_path / "vtm")
    argv = [*_source(clip), "--frames", str(FRAMES), "--intra-period", "3", "--encoders", "vtm", "--rates", "22", "37",
            "--vtm-encoder", paths["encoder_app"], "--vtm-decoder", paths["decoder_app"], "--vtm-cfg", paths["cfg"]]
    code, text = _run([*argv, "--out", str(tmp_path / "ok")], capsys)
    assert code == 0 and "decoded picture hashes (VTM DecoderApp, 4 streams): 4 ok" in text
    record = json.loads(next((tmp_path / "ok" / "records").glob("*qp22*")).read_text())["result"]
    assert [s["reported"]["decoded_picture_hash"] for s in record["segments"]] == ["ok (3 pictures, MD5)"] * 2
    encodes = [json.loads(c)["argv"] for c in (tmp_path / "vtm" / "calls.jsonl").read_text().splitlines()
               if json.loads(c)["app"] == "EncoderApp"]
    assert all("--SEIDecodedPictureHash=1" in a for a in encodes)
    (tmp_path / "vtm" / "MISMATCH").write_text("1")
    code, text = _run([*argv, "--out", str(tmp_path / "bad")], capsys)
    assert code == 1 and "0 coded, 0 already done, 2 failed" in text
    assert "VTM DecoderApp: decoded picture hash mismatch at POC 1 (MD5)" in text
    failed = json.loads(next((tmp_path / "bad" / "records").glob("*qp22*")).read_text())
    assert failed["status"] == "failed" and "decoded picture hash mismatch at POC 1 (MD5)" in failed["error"]


# DecoderApp output of VTM-17.0 built from the tag (GCC 12, Linux): the first three pictures of a 416x240 stream coded
# with --SEIDecodedPictureHash=1, and the same stream with one byte of POC 0's hash SEI changed (exit status 1).
VTM17_DECODER_LOG = """
VVCSoftware: VTM Decoder Version 17.0 [Linux][GCC 12.2.0][64 bit] [SIMD=AVX2] 
POC    0 LId:  0 TId: 0 ( IDR_N_LP, I-SLICE, QP 31 ) [DT  0.010] [L0] [L1] [MD5:c30eb3de273113e2b8a4291ffc7405db,e42d2cdd441a18a0c5c89813340073cc,fcacbee22442d4c1005ff9d766a80f7e,(OK)] 
POC    1 LId:  0 TId: 0 ( TRAIL, B-SLICE, QP 41 ) [DT  0.002] [L0 0] [L1 0c] [MD5:ea3fffd6357c907bc6b86cb8ad44b0a6,e6516630740c27e09e9d228645dc6b38,041a24684560f0734022315cbfe3fcff,(OK)] 
POC    2 LId:  0 TId: 0 ( TRAIL, B-SLICE, QP 39 ) [DT  0.002] [L0 1 0] [L1 1c 0] [MD5:fa9deaeb0c20c252cf014f3b87187111,2ccca24e16ab349daa962c30612ce7ae,3340c74b6f2e403cf4ed282025127dd1,(OK)] 

 Total Time:        0.079 sec.
"""
VTM17_MISMATCH_LINE = (
    "POC    0 LId:  0 TId: 0 ( IDR_N_LP, I-SLICE, QP 31 ) [DT  0.010] [L0] [L1] [MD5:c30eb3de273113e2b8a4291ffc7405db,"
    "e42d2cdd441a18a0c5c89813340073cc,fcacbee22442d4c1005ff9d766a80f7e,(***ERROR***)] "
    "[rxMD5:c30eb3de273113e2b8a4291ffc7405db,e42d2cdd44e518a0c5c89813340073cc,fcacbee22442d4c1005ff9d766a80f7e] \n")
VTM17_UNCHECKED_LINE = "POC    0 LId:  0 TId: 0 ( IDR_N_LP, I-SLICE, QP 31 ) [DT  0.010] [L0] [L1] [:,(unk)] \n"


def test_decoded_picture_hash_status_of_vtm17_decoder_logs(tmp_path):
    log = tmp_path / "dec.log"
    assert decoded_picture_hash(VTM17_DECODER_LOG, log) == "ok (3 pictures, MD5)"
    assert decoded_picture_hash(VTM17_UNCHECKED_LINE, log) == "not checked (the stream carries no picture hash SEI)"
    lines = VTM17_DECODER_LOG.splitlines(keepends=True)
    wrong = "".join([lines[0], lines[1], VTM17_MISMATCH_LINE, *lines[3:]]) + (
        "\n\n***ERROR*** A decoding mismatch occured: signalled md5sum does not match\n")
    with pytest.raises(EncoderFailed, match=r"decoded picture hash mismatch at POC 0 \(MD5\).*see .*dec.log"):
        decoded_picture_hash(wrong, log)


def test_hash_sei_bytes_counts_only_decoded_picture_hash_suffix_seis():
    def nal(kind: int, payload: bytes, start=b"\x00\x00\x01") -> bytes:
        return start + bytes([0, (kind << 3) | 1]) + payload
    stream = (nal(14, b"\x11" * 20, b"\x00\x00\x00\x01")   # SPS, with a 4-byte start code
              + nal(8, b"\x22" * 50, b"\x00\x00\x00\x01")   # IDR slice
              + nal(24, bytes([132, 49]) + b"\x33" * 49)    # suffix SEI: decoded picture hash (payload type 132)
              + nal(23, bytes([132, 5]) + b"\x44" * 5)      # a prefix SEI is not the hash
              + nal(1, b"\x55" * 30)                         # trailing slice
              + nal(24, bytes([132, 49]) + b"\x66" * 49))   # the second picture's hash, at the end
    assert hash_sei_bytes(stream) == 2 * (3 + 2 + 2 + 49)


def test_compare_pairs_dcvc_labels_and_one_gop_and_flags_a_missing_point():
    common = {"codec": "VTM", "codec_version": "17.0", "codec_config": "yuv420: EncoderApp ...", "dataset": "HEVC-D",
              "sequence": "RaceHorses1", "color_transform": "BT601", "frames": 32, "crop": "centre-64", "width": 384,
              "height": 192, "input_format": "yuv420p", "color_matrix": "bt601", "color_range": "limited",
              "color_filter": "nearest", "yuv_weights": "6:1:1"}
    points = {22: (0.30, 38.0), 27: (0.15, 35.0), 32: (0.08, 32.0)}
    published = rd_frame([{**common, "intra_period": -1, "rate_point": f"0{qp}", "bpp": bpp, "psnr_yuv": q,
                           "source": "paper"} for qp, (bpp, q) in points.items()], "pub.csv")
    regenerated = rd_frame([{**common, "intra_period": 32, "rate_point": f"qp{qp}", "bpp": bpp * 1.002,
                             "psnr_yuv": q - 0.01, "source": f"records/{qp}.json"}
                            for qp, (bpp, q) in points.items() if qp != 32], "anchors.csv")
    result = compare(published, regenerated, Tolerances(rate_pct=0.5, quality_db=0.02))
    got = result.points.set_index("rate_point")
    assert got.loc["022", "rate_diff_pct"] == pytest.approx(0.2)
    assert got.loc["027", "psnr_yuv_diff_db"] == pytest.approx(-0.01)
    assert list(got["verdict"]) == ["conforms", "conforms", "not regenerated"]
    assert got.loc["022", "regenerated"] == "records/22.json" and pd.isna(got.loc["022", "psnr_y_diff_db"])
    curve = result.curves.iloc[0]
    assert curve["verdict"] == "differs: 032 not regenerated (on its points alone: BD-rate needs 4, 2 paired)"
    assert curve["protocol"].startswith("32 frames, intra period 32, crop centre-64 384x192") and not result.conforms
