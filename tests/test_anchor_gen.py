"""`run_bench.py anchors` end to end on a tiny real clip: protocol, metrics checked against ffmpeg, resumability."""
import argparse
import json
import re
import subprocess

import numpy as np
import pytest
from anchor_helpers import fake_vtm, tiny_clip

from bench.analysis.rd_schema import load_rd_csv
from bench.cli import anchors as anchors_cli
from bench.codecs import conventional
from bench.codecs.base import SourceSpec, psnr_from_mse, sequence_mean
from bench.codecs.encoders import EncoderMissing
from bench.data.colour import ColourSpec
from bench.data.readers import ffmpeg_exe
from bench.errors import InputError

W, H, FRAMES = 128, 64, 6


def _parse(argv):
    parser = argparse.ArgumentParser()
    anchors_cli.register(parser.add_subparsers())
    return parser.parse_args(["anchors", *argv])


def _run(argv, capsys):
    args = _parse(argv)
    code = args.func(args)
    return code, capsys.readouterr().out


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return tiny_clip(tmp_path_factory.mktemp("clip") / "tiny.yuv", FRAMES)


def _base(clip, out, *extra):
    return ["--input", str(clip), "--width", str(W), "--height", str(H), "--pix-fmt", "yuv420p", "--fps", "25",
            "--name", "tiny", "--frames", str(FRAMES), "--intra-period", "3", "--out", str(out), "--no-progress", *extra]


def _ffmpeg_psnr_y(bitstreams, clip, tmp_path):
    """Per-frame luma PSNR of the kept bitstreams against the clip, by ffmpeg's psnr filter (independent of us)."""
    values = []
    for k, stream in enumerate(sorted(bitstreams.iterdir())):
        stats = tmp_path / f"psnr{k}.log"
        ref = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{W}x{H}", "-i", str(clip)]
        subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(stream), *ref, "-lavfi",
                        f"[1:v]trim=start_frame={3 * k}:end_frame={3 * k + 3},setpts=PTS-STARTPTS[r];[0:v][r]psnr="
                        f"stats_file={stats}", "-f", "null", "-"], check=True)
        values += [float(v) for v in re.findall(r"psnr_y:([\d.]+)", stats.read_text())]
    return values


def test_x264_and_svtav1_anchor_csv_in_protocol_and_resumable(clip, tmp_path, capsys):
    out = tmp_path / "run"
    argv = _base(clip, out, "--encoders", "x264", "svtav1", "--rates", "24", "40", "--jobs", "2")
    code, text = _run(argv, capsys)
    assert code == 0 and "4 coded, 0 already done, 0 failed; 4 points" in text
    frame = load_rd_csv(out / "anchors.csv")
    assert sorted(frame["codec"].unique()) == ["SVT-AV1", "x264"] and len(frame) == 4
    assert (frame["frames"] == FRAMES).all() and (frame["intra_period"] == 3).all()
    assert (frame["width"] == W).all() and (frame["height"] == H).all() and (frame["crop"] == "centre-64").all()
    assert (frame["color_transform"] == "BT601").all() and (frame["color_matrix"] == "bt601").all()
    assert (frame["color_range"] == "limited").all() and (frame["color_filter"] == "nearest").all()
    assert (frame["yuv_weights"] == "6:1:1").all()
    assert frame["msssim_rgb"].isna().all()  # 64 rows is below pytorch-msssim's 161-pixel minimum
    for codec, curve in frame.groupby("codec"):
        hi, lo = curve.set_index("rate_point").loc["qp24"], curve.set_index("rate_point").loc["qp40"]
        assert hi["bpp"] > lo["bpp"] > 0
        for metric in ("psnr_rgb", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv"):
            assert hi[metric] > lo[metric] > 20, (codec, metric)
        assert hi["psnr_yuv"] == pytest.approx((6 * hi["psnr_y"] + hi["psnr_u"] + hi["psnr_v"]) / 8)
    key = "x264__yuv420__custom__tiny__qp24__f6__ip3__BT601"
    record = json.loads((out / "records" / f"{key}.json").read_text())
    result = record["result"]
    streams = out / "bitstreams" / key
    bits = 8 * sum(p.stat().st_size for p in streams.iterdir())
    assert result["bits"] == bits and [s["frames"] for s in result["segments"]] == [3, 3]
    assert result["bpp"] == pytest.approx(bits / (W * H * FRAMES))
    assert result["kbps"] == pytest.approx(bits * 25 / FRAMES / 1000)
    assert len(list((out / "logs" / key).glob("*.encode.log"))) == 2
    np.testing.assert_allclose(result["per_frame"]["psnr_y"], _ffmpeg_psnr_y(streams, clip, tmp_path), atol=0.01)
    assert not (out / "work").exists()  # per-job temporaries (cropped input, decoded frames) are removed

    mtimes = {p: p.stat().st_mtime_ns for p in (out / "records").iterdir()}
    code, text = _run(argv, capsys)
    assert code == 0 and "0 coded, 4 already done" in text
    assert {p: p.stat().st_mtime_ns for p in (out / "records").iterdir()} == mtimes
    (out / "records" / f"{key}.json").unlink()
    code, text = _run(argv, capsys)
    assert code == 0 and "1 coded, 3 already done" in text
    assert len(load_rd_csv(out / "anchors.csv")) == 4


def test_vtm_yuv420_failed_job_is_retried(clip, tmp_path, capsys):
    paths = fake_vtm(tmp_path / "vtm")
    out = tmp_path / "run"
    argv = _base(clip, out, "--encoders", "vtm", "--rates", "22", "37", "--vtm-encoder", paths["encoder_app"],
                 "--vtm-decoder", paths["decoder_app"], "--vtm-cfg", paths["cfg"])
    (tmp_path / "vtm" / "FAIL").touch()
    code, text = _run(argv, capsys)
    assert code == 1 and "0 coded, 0 already done, 2 failed" in text and "rerun the same command to retry" in text
    assert "failing on purpose" in text
    (tmp_path / "vtm" / "FAIL").unlink()
    code, text = _run(argv, capsys)
    assert code == 0 and "2 coded, 0 already done, 0 failed" in text
    frame = load_rd_csv(out / "anchors.csv").set_index("rate_point")
    assert frame.loc["qp22", "codec"] == "VTM" and frame.loc["qp22", "codec_version"] == "17.0"
    assert frame.loc["qp22", "psnr_y"] > frame.loc["qp37", "psnr_y"] and frame.loc["qp22", "bpp"] > frame.loc["qp37", "bpp"]
    calls = [json.loads(c) for c in (tmp_path / "vtm" / "calls.jsonl").read_text().splitlines()]
    encodes = [c["argv"] for c in calls if c["app"] == "EncoderApp"]
    # Two failed calls (one per QP, the first GOP), then two QPs x two GOPs of 3 frames, each its own stream.
    assert len(encodes) == 2 + 4 and all("--IntraPeriod=-1" in a and a[a.index("-f") + 1] == "3" for a in encodes)
    # The stand-in's own luma PSNR (10-bit, before rounding to 8 bits) is close to what we measure at 8 bits.
    record = json.loads(next((out / "records").glob("*qp22*")).read_text())["result"]
    reported = np.mean([s["reported"]["psnr_y"] for s in record["segments"]])
    assert record["metrics"]["psnr_y"] == pytest.approx(reported, abs=0.5)


def test_vtm_rgb444_mode_codes_rgb_and_measures_rgb_only(clip, tmp_path, capsys):
    paths = fake_vtm(tmp_path / "vtm")
    out = tmp_path / "run"
    argv = _base(clip, out, "--encoders", "vtm", "--rates", "4", "37", "--mode", "rgb444", "--color-transform",
                 "BT709", "--vtm-encoder", paths["encoder_app"], "--vtm-decoder", paths["decoder_app"],
                 "--vtm-cfg", paths["cfg"])
    code, _ = _run(argv, capsys)
    assert code == 0
    frame = load_rd_csv(out / "anchors.csv").set_index("rate_point")
    assert frame["psnr_y"].isna().all() and frame["yuv_weights"].eq("").all()
    # QP 4 is a quantiser step of 4 ten-bit codes: a wrong matrix, range or plane order on either side of the
    # codec would cost far more than the ~55 dB this leaves.
    assert frame.loc["qp4", "psnr_rgb"] > 50 and frame.loc["qp37", "psnr_rgb"] < 30
    assert frame["codec_config"].str.startswith("rgb444: ").all() and frame["color_matrix"].eq("bt709").all()
    argv0 = json.loads((tmp_path / "vtm" / "calls.jsonl").read_text().splitlines()[0])["argv"]
    assert "--InputChromaFormat=444" in argv0 and "--InputBitDepth=10" in argv0


def test_missing_encoder_and_bad_protocol_are_clear_errors(clip, tmp_path, monkeypatch, capsys):
    for var in ("HYTIP_VTM_ENCODER", "HYTIP_VTM_DECODER", "HYTIP_VTM_CFG"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(EncoderMissing, match="--vtm-encoder"):
        _run(_base(clip, tmp_path / "a", "--encoders", "vtm"), capsys)
    with pytest.raises(InputError, match="multiple of the intra period 4"):
        _run(_base(clip, tmp_path / "b", "--encoders", "x264", "--intra-period", "4"), capsys)
    with pytest.raises(InputError, match="give --dataset"):
        _run(["--out", str(tmp_path / "c"), "--encoders", "x264"], capsys)


def test_depth_change_rounds_like_vtm_and_protocol_average():
    ten = np.array([0, 1, 2, 3, 4, 1021, 1022, 1023], dtype="<u2")
    assert conventional._to_depth(ten, 10, 8).tolist() == [0, 0, 1, 1, 1, 255, 255, 255]
    assert conventional._to_depth(np.array([0, 255], np.uint8), 8, 10).tolist() == [0, 1020]
    # Mean over each GOP, then over GOPs; the other convention: PSNR of the mean MSE (10 and 20 dB: MSE 0.1, 0.01).
    assert sequence_mean([1, 2, 3, 10], [0, 0, 0, 1]) == pytest.approx((2 + 10) / 2)
    assert sequence_mean([None, None], [0, 0]) is None
    assert psnr_from_mse([10.0, 20.0, None]) == pytest.approx(-10 * np.log10(0.055))


def test_segments_follow_the_frame_plan_with_scene_cuts():
    source = SourceSpec("d", "s", "x", 128, 64, "yuv420p", 25.0, 8, False, 96, 32, (40, 81))
    assert source.segments() == [(0, 32), (32, 7), (39, 25), (64, 16), (80, 16)]


def test_png_rgb_source_needs_rgb444_and_codes_with_x265(clip, tmp_path, capsys):
    from PIL import Image

    from bench.data.colour import yuv420_to_rgb
    from bench.data.readers import open_source

    folder = tmp_path / "png"
    folder.mkdir()
    with open_source(clip, width=W, height=H, pix_fmt="yuv420p") as reader:
        for i in range(2):
            rgb = yuv420_to_rgb(*reader.read(i), ColourSpec.for_protocol("BT601"))
            Image.fromarray((rgb.permute(1, 2, 0) * 255).round().byte().numpy()).save(folder / f"frame_{i + 1}.png")
    argv = ["--input", str(folder), "--fps", "25", "--frames", "2", "--intra-period", "2", "--encoders", "x265",
            "--rates", "22", "37", "--out", str(tmp_path / "run"), "--no-progress"]
    with pytest.raises(InputError, match="use --mode rgb444"):
        _run(argv, capsys)
    code, _ = _run([*argv, "--mode", "rgb444"], capsys)
    frame = load_rd_csv(tmp_path / "run" / "anchors.csv").set_index("rate_point")
    assert code == 0 and frame.loc["qp22", "psnr_rgb"] > frame.loc["qp37", "psnr_rgb"] > 25
    assert frame["input_format"].eq("rgb24").all() and frame["codec_config"].str.contains("libx265").all()
