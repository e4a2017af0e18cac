"""VMAF and XPSNR (bench.measure.video_metrics): per-frame values against ffmpeg run by hand on the same files, a tiny
sweep with --metrics whose table feeds bdrate, the config refusal, reruns that redo jobs measured without them, and
HyTIP (the golden checkpoint: test data, not HyTIP results) measured on its reconstruction converted to YUV 4:2:0."""
import json
import subprocess

import numpy as np
import pandas as pd
import pytest
import torch

import golden
import hytip
from bench.analysis.rd_schema import load_rd_csv
from bench.cli import main
from bench.codecs.base import RatePoint, SourceSpec, reference_rgb
from bench.codecs.hytip_codec import HytipCodec
from bench.data.clips import bundled_clip_path
from bench.data.colour import ColourSpec, rgb_to_yuv420
from bench.data.readers import ffmpeg_exe, open_source
from bench.errors import InputError
from bench.measure.video_metrics import VMAF_MODEL, FramePairs, measure_files
from bench.sweep.config import SweepConfig

W, H, FPS = 192, 128, 25
LEFT, TOP = 544, 296   # the centre 192x128 crop of the bundled 1280x720 clip, as --crop-size 192x128 takes it


def _ffmpeg(*args, cwd=None) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *map(str, args)], check=True, cwd=cwd)


def _source_crop(path, frames: int, start: int = 0, pix_fmt: str = "yuv420p"):
    """The crop window of the bundled clip as raw planes, cut by ffmpeg itself (not by our readers)."""
    _ffmpeg("-i", bundled_clip_path(), "-vf",
            f"trim=start_frame={start},setpts=PTS-STARTPTS,crop={W}:{H}:{LEFT}:{TOP}", "-frames:v", frames,
            "-f", "rawvideo", "-pix_fmt", pix_fmt, path)
    return path


def _raw(path, pix_fmt="yuv420p"):
    return ["-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{W}x{H}", "-framerate", FPS, "-i", path]


def vmaf_by_hand(distorted, reference, folder, pix_fmt="yuv420p") -> list[float]:
    """ffmpeg -f rawvideo -pix_fmt yuv420p -s 192x128 -framerate 25 -i DISTORTED
              -f rawvideo -pix_fmt yuv420p -s 192x128 -framerate 25 -i REFERENCE
              -lavfi libvmaf=model=version=vmaf_v0.6.1:log_fmt=json:log_path=hand_vmaf.json -f null -"""
    _ffmpeg(*_raw(distorted, pix_fmt), *_raw(reference, pix_fmt), "-lavfi",
            "libvmaf=model=version=vmaf_v0.6.1:log_fmt=json:log_path=hand_vmaf.json", "-f", "null", "-", cwd=folder)
    return [f["metrics"]["vmaf"] for f in json.loads((folder / "hand_vmaf.json").read_text())["frames"]]


def xpsnr_by_hand(first, second, folder, pix_fmt="yuv420p") -> list[list[float]]:
    """ffmpeg -f rawvideo ... -i FIRST -f rawvideo ... -i SECOND -lavfi xpsnr=stats_file=hand_xpsnr.log -f null -;
    per frame [Y, U, V] from its lines 'n: 1  XPSNR y: 36.3547  XPSNR u: 40.3592  XPSNR v: 46.8418'."""
    _ffmpeg(*_raw(first, pix_fmt), *_raw(second, pix_fmt), "-lavfi", "xpsnr=stats_file=hand_xpsnr.log",
            "-f", "null", "-", cwd=folder)
    lines = [line.split() for line in (folder / "hand_xpsnr.log").read_text().splitlines() if line.startswith("n:")]
    return [[float(w[4]), float(w[7]), float(w[10])] for w in lines]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Three frames of the clip (from a part with motion) and their x264 reconstruction at QP 37."""
    folder = tmp_path_factory.mktemp("pair")
    reference = _source_crop(folder / "reference.yuv", 3, start=60)
    _ffmpeg(*_raw(reference), "-c:v", "libx264", "-qp", 37, "-bf", 0, folder / "coded.264")
    _ffmpeg("-i", folder / "coded.264", "-f", "rawvideo", "-pix_fmt", "yuv420p", folder / "distorted.yuv")
    return folder / "distorted.yuv", reference


@pytest.mark.parametrize("bit_depth", [8, 10])
def test_per_frame_values_equal_ffmpeg_run_by_hand(pair, tmp_path, bit_depth):
    distorted, reference = pair
    pix_fmt = "yuv420p" if bit_depth == 8 else "yuv420p10le"
    if bit_depth == 10:   # the same frames as 10-bit files (samples shifted up 2 bits by ffmpeg)
        for name, src in (("distorted10.yuv", distorted), ("reference10.yuv", reference)):
            _ffmpeg(*_raw(src), "-f", "rawvideo", "-pix_fmt", pix_fmt, tmp_path / name)
        distorted, reference = tmp_path / "distorted10.yuv", tmp_path / "reference10.yuv"
    got = measure_files(distorted, reference, width=W, height=H, bit_depth=bit_depth, frames=3, fps=FPS,
                        metrics=["xpsnr", "vmaf"])
    assert list(got.per_frame) == ["vmaf", "xpsnr_y", "xpsnr_u", "xpsnr_v", "xpsnr"]
    np.testing.assert_allclose(got.per_frame["vmaf"], vmaf_by_hand(distorted, reference, tmp_path, pix_fmt),
                               rtol=0, atol=1e-6)
    by_hand = xpsnr_by_hand(reference, distorted, tmp_path, pix_fmt)   # the source first: its activity weights
    for i, plane in enumerate("yuv"):
        np.testing.assert_allclose(got.per_frame[f"xpsnr_{plane}"], [f[i] for f in by_hand], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.per_frame["xpsnr"], [min(f) for f in by_hand], rtol=0, atol=1e-6)
    # The order matters: the reconstruction first would weight the errors by its own activity.
    swapped = xpsnr_by_hand(distorted, reference, tmp_path, pix_fmt)
    assert all(abs(a[0] - b[0]) > 0.1 for a, b in zip(swapped, by_hand))
    assert all(30 < v < 90 for v in got.per_frame["vmaf"]) and all(25 < v < 45 for v in got.per_frame["xpsnr_y"])
    assert f"model {VMAF_MODEL}, libvmaf " in got.protocol and got.protocol.startswith("ffmpeg n")
    assert f"xpsnr filter at {FPS} fps" in got.protocol and len(got.commands) == 2


def test_frame_pairs_measure_the_frames_given(pair):
    distorted, reference = pair
    pairs = FramePairs(W, H, 8, FPS)
    frame = W * H * 3 // 2
    for i in range(3):
        planes = []
        for path in (distorted, reference):
            data = np.fromfile(path, np.uint8, frame, offset=i * frame)
            planes.append((data[:W * H].reshape(H, W), data[W * H:W * H * 5 // 4].reshape(H // 2, W // 2),
                           torch.from_numpy(data[W * H * 5 // 4:].reshape(H // 2, W // 2).astype(np.int16))))
        pairs.add(*planes)
    folder = pairs.paths[0].parent
    got = pairs.measure(["vmaf", "xpsnr"])
    assert not folder.exists()   # its files go once measured
    want = measure_files(distorted, reference, width=W, height=H, bit_depth=8, frames=3, fps=FPS,
                         metrics=["vmaf", "xpsnr"])
    assert got.per_frame == want.per_frame


def test_bad_input_is_refused(pair, tmp_path):
    distorted, reference = pair
    short = tmp_path / "short.yuv"
    short.write_bytes(distorted.read_bytes()[:-1])
    with pytest.raises(InputError, match=r"short.yuv: 110591 bytes, expected 3 frames of 192x128 yuv420p"):
        measure_files(short, reference, width=W, height=H, bit_depth=8, frames=3, fps=FPS, metrics=["vmaf"])
    with pytest.raises(InputError, match=r"metrics: unknown metric\(s\) 'ssim'; expected some of vmaf, xpsnr"):
        measure_files(distorted, reference, width=W, height=H, bit_depth=8, frames=3, fps=FPS, metrics=["ssim"])
    pairs = FramePairs(W, H, 8, FPS)
    y = np.zeros((H, W), np.uint8)
    with pytest.raises(ValueError, match=r"need planes of \(64, 96\) in 0..255, got \(128, 192\)"):
        pairs.add((y, y, y), (y, y, y))
    with pytest.raises(ValueError, match=r"need planes of \(64, 96\) in 0..255, got \(64, 96\) in 256..256"):
        pairs.add((y, np.full((H // 2, W // 2), 256), y[::2, ::2]), (y, y[::2, ::2], y[::2, ::2]))


# ---------------------------------------------------------------------------------------------------- the sweep
def sweep(out, *extra, codecs=("x264", "x265")):
    return ["run", "--input", "bundled", "--crop-size", f"{W}x{H}", "--frames", 2, "--intra-period", 2,
            "--color-transforms", "BT601", "--codecs", *codecs, "--out", out, "--no-progress", *extra]


def cli(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_sweep_with_metrics_fills_the_columns_and_bdrate_takes_them(tmp_path, capsys):
    out = tmp_path / "run"
    code, text = cli(sweep(out, "--metrics", "vmaf", "xpsnr"), capsys)
    assert code == 0 and "8 done, 0 skipped" in text, text
    table = load_rd_csv(out / "results.csv")
    columns = ["vmaf", "xpsnr_y", "xpsnr_u", "xpsnr_v", "xpsnr"]
    assert len(table) == 8 and table[columns].notna().all().all()
    assert table["video_metrics_protocol"].str.contains(f"vmaf: model {VMAF_MODEL}, libvmaf ").all()
    assert table["video_metrics_protocol"].str.contains("xpsnr = min").all()

    # x264 at QP 22: the record's per-frame VMAF and XPSNR are ffmpeg's on the decoded stream against the source crop.
    row = table[(table["codec"] == "x264") & (table["rate_point"] == "qp22")].iloc[0]
    record = json.loads((out / "records" / f"{row['job']}.json").read_text())["result"]
    decoded, reference = tmp_path / "decoded.yuv", _source_crop(tmp_path / "reference.yuv", 2)
    _ffmpeg("-i", record["segments"][0]["bitstream"], "-f", "rawvideo", "-pix_fmt", "yuv420p", decoded)
    vmaf = vmaf_by_hand(decoded, reference, tmp_path)
    np.testing.assert_allclose(record["per_frame"]["vmaf"], vmaf, rtol=0, atol=1e-6)
    xpsnr = xpsnr_by_hand(reference, decoded, tmp_path)
    np.testing.assert_allclose(record["per_frame"]["xpsnr_y"], [f[0] for f in xpsnr], rtol=0, atol=1e-6)
    np.testing.assert_allclose(record["per_frame"]["xpsnr"], [min(f) for f in xpsnr], rtol=0, atol=1e-6)
    assert row["vmaf"] == pytest.approx(np.mean(vmaf), abs=1e-9)     # one GOP: the mean of its frames
    assert row["xpsnr"] == pytest.approx(np.mean([min(f) for f in xpsnr]), abs=1e-9)
    assert record["video_metrics"]["commands"][0].count(" -i ") == 2

    code, text = cli(["bdrate", out / "results.csv", "--anchor", "x265", "--metric", "vmaf", "xpsnr",
                      "-o", tmp_path / "bd.csv"], capsys)
    assert code == 0, text
    bd = pd.read_csv(tmp_path / "bd.csv")
    assert sorted(zip(bd["metric"], bd["dataset"])) == [("vmaf", "Average"), ("vmaf", "custom"),
                                                        ("xpsnr", "Average"), ("xpsnr", "custom")]
    assert bd["codec"].str.startswith("x264-").all() and np.isfinite(bd["bd_rate_pct"]).all()


def test_unknown_metrics_are_refused(tmp_path, capsys):
    config = tmp_path / "sweep.yaml"
    config.write_text("codecs: [{codec: x264}]\ninput: {path: bundled}\nmetrics: [vmaf, psnr]\n")
    code, text = cli(["run", config, "--out", tmp_path / "out"], capsys)
    assert code == 2
    assert f"error: {config}: metrics: unknown metric(s) 'psnr'; expected some of vmaf, xpsnr" in text
    with pytest.raises(InputError, match="metrics: expected a list of vmaf, xpsnr, found 'vmaf'"):
        SweepConfig(codecs=[{"codec": "x264"}], input={"path": "bundled"}, metrics="vmaf").validate()
    with pytest.raises(SystemExit) as stop:
        main(["run", "--input", "bundled", "--codecs", "x264", "--metrics", "ssim"])
    assert stop.value.code == 2 and "invalid choice: 'ssim'" in capsys.readouterr().err


def test_a_rerun_with_metrics_redoes_the_jobs_done_without_them(tmp_path, capsys):
    out = tmp_path / "run"
    base = sweep(out, "--qps", 22, 37, codecs=("x264",))
    code, text = cli(base, capsys)
    assert code == 0 and "2 done, 0 skipped" in text
    before = load_rd_csv(out / "results.csv")
    assert before["vmaf"].isna().all()

    code, text = cli(base + ["--metrics", "vmaf"], capsys)
    assert code == 0 and "2 finished job(s) measured without some of the metrics vmaf are redone" in text
    assert "2 done, 0 skipped" in text
    table = load_rd_csv(out / "results.csv")
    assert table["vmaf"].notna().all() and table["xpsnr"].isna().all()
    assert (table["config_sha256"] != before["config_sha256"]).all()
    np.testing.assert_allclose(table["psnr_y"], before["psnr_y"], rtol=0, atol=0)   # the same coding

    code, text = cli(base + ["--metrics", "vmaf"], capsys)
    assert code == 0 and "0 done, 2 skipped" in text and "redone" not in text
    code, text = cli(base + ["--metrics", "xpsnr", "vmaf"], capsys)
    assert code == 0 and "2 done, 0 skipped" in text and load_rd_csv(out / "results.csv")["xpsnr"].notna().all()
    # A record with more metrics than asked for is another configuration: refused, never mixed in.
    code, text = cli(base, capsys)
    assert code == 2 and "were made with another configuration" in text


# ---------------------------------------------------------------------------------------------------- HyTIP
def test_hytip_vmaf_is_ffmpegs_on_the_converted_reconstruction(tmp_path):
    source = SourceSpec("clip", "bbb", str(bundled_clip_path()), 1280, 720, "yuv420p", 25.0, 8, False, 2, 2, (),
                        crop_size=(W, H))
    spec = ColourSpec.for_protocol("BT601")
    codec = HytipCodec(str(golden.golden_checkpoint_path()), "golden", threads=1)
    result = codec.code(source, RatePoint(42, 42), spec, rate_mode="estimated", folders={},
                        metrics=("vmaf", "xpsnr"))

    # The same frames coded directly, the reconstruction converted with the run's colour spec and written out.
    with open_source(source.path, width=1280, height=720, pix_fmt="yuv420p", num_frames=2) as reader:
        frames = [reference_rgb(f, source, spec) for f in reader.frames(0, 2)]
    coded = list(hytip.load(golden.golden_checkpoint_path(), threads=1).estimate(frames, qp=42, i_quality=42,
                                                                                  intra_period=2))
    with open(tmp_path / "recon.yuv", "wb") as out:
        for frame in coded:
            for plane in rgb_to_yuv420(frame.recon, spec, bit_depth=8):
                out.write(plane.numpy().astype(np.uint8).tobytes())
    reference = _source_crop(tmp_path / "reference.yuv", 2)
    vmaf = vmaf_by_hand(tmp_path / "recon.yuv", reference, tmp_path)
    per_frame = result["per_frame"]
    np.testing.assert_allclose(per_frame["vmaf"], vmaf, rtol=0, atol=1e-6)
    xpsnr = xpsnr_by_hand(reference, tmp_path / "recon.yuv", tmp_path)
    np.testing.assert_allclose(per_frame["xpsnr_u"], [f[1] for f in xpsnr], rtol=0, atol=1e-6)
    assert result["metrics"]["vmaf"] == pytest.approx(np.mean(vmaf), abs=1e-9)
    assert result["metrics"]["xpsnr"] == pytest.approx(np.mean([min(f) for f in xpsnr]), abs=1e-9)
    assert f"model {VMAF_MODEL}" in result["video_metrics"]["protocol"]
