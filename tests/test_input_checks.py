"""Inputs refused before anything runs (issue 27 §4, tried as a new user would): a QP outside an encoder's range, a
HyTIP index outside 0..63, a file that is not a checkpoint in a dry run, values outside their range on every
command; a sweep whose jobs all failed says it wrote no table. And the libaom (AV1) and libvpx (VP9) encoders."""
import json
import subprocess

import pytest

import golden
from anchor_helpers import tiny_clip
from bench.cli import main
from bench.data.readers import ffmpeg_exe
from test_sweep import argv, data  # noqa: F401  (the Tiny dataset: two 128x64 sequences of 2 frames)


def _bundled(out, *extra):
    return ["run", "--input", "bundled", "--crop-size", "128x64", "--frames", "2", "--intra-period", "2",
            "--color-transforms", "BT601", "--out", str(out), "--no-progress", *extra]


def test_a_qp_the_encoder_would_clamp_is_refused(tmp_path, capsys):
    assert main(_bundled(tmp_path / "x", "--codecs", "x264", "--qps", "99")) == 2
    assert "codec x264: QP 99 outside its range 0..51" in capsys.readouterr().err
    assert main(_bundled(tmp_path / "x", "--codecs", "vvenc", "svtav1", "--qps", "0", "64", "--dry-run")) == 2
    assert "codec vvenc: QP 64 outside its range 0..63" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_hytip_index_outside_0_63_is_refused_in_a_dry_run(data, tmp_path, capsys):  # noqa: F811
    args = [a for a in argv(data, tmp_path / "x", "--dry-run") if a not in ("0:0", "63:63")]
    args[args.index("--rate-points") + 1:args.index("--rate-points") + 1] = ["70:0"]
    assert main(args) == 2
    assert "HyTIP i_quality 70 is outside 0..63" in capsys.readouterr().err


def test_a_dry_run_reads_the_checkpoint(data, tmp_path, capsys):  # noqa: F811
    fake = tmp_path / "PSNR-RGB.pth.tar"
    fake.write_bytes(b"not a checkpoint")
    args = argv(data, tmp_path / "x", "--dry-run")
    args[args.index("--checkpoint") + 1] = f"PSNR-RGB={fake}"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"HyTIP checkpoint {fake}: not a readable PyTorch checkpoint" in err
    args[args.index("--checkpoint") + 1] = f"golden={golden.golden_checkpoint_path()}"
    assert main(args) == 0   # the real one passes


def test_a_sweep_whose_jobs_all_failed_writes_and_names_no_table(data, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "failed"
    assert main(argv(data, out, "--sequences", "a", "--color-transforms", "BT601", "--kernels", "tf32",
                     codecs=("hytip",))) == 1
    text = capsys.readouterr().out
    assert f"results: none written, no job finished (the errors are in {out / 'records'}" in text
    assert "results.csv" not in text and not (out / "results.csv").exists()


@pytest.mark.parametrize("command, error", [
    (["run", "--frames", "0"], "argument --frames: 0: expected a positive integer"),
    (["run", "--encoder-jobs", "-1"], "argument --encoder-jobs: -1: expected a positive integer"),
    (["run", "--fps", "abc"], "argument --fps: 'abc': expected a positive number"),
    (["bdrate", "x.csv", "--anchor", "A", "--min-overlap", "1.5"], "argument --min-overlap: 1.5: expected a number in"),
    (["bdrate", "x.csv", "--anchor", "A", "--level", "1"], "argument --level: 1.0: expected a number strictly between"),
    (["report", "x.csv", "--out", "r", "--tolerance", "-1"], "argument --tolerance: -1.0: expected a number >= 0"),
    (["demo", "--frames", "0"], "argument --frames: 0: expected a positive integer"),
])
def test_values_outside_their_range_stop_the_command(command, error, capsys):
    with pytest.raises(SystemExit) as stop:
        main(command)
    assert stop.value.code == 2 and error in capsys.readouterr().err


def test_libaom_and_libvpx_code_low_delay_with_their_versions_and_stream_bits(tmp_path, capsys):
    clip = tiny_clip(tmp_path / "clip.yuv", frames=4)
    out = tmp_path / "av"
    assert main(["anchors", "--input", str(clip), "--width", "128", "--height", "64", "--pix-fmt", "yuv420p",
                 "--fps", "25", "--name", "tiny", "--frames", "4", "--intra-period", "4", "--encoders", "aom", "vp9",
                 "--rates", "30", "50", "--out", str(out), "--no-progress"]) == 0
    records = {r["result"]["codec"] + r["result"]["rate"].__str__(): r["result"]
               for r in (json.loads(p.read_text()) for p in (out / "records").glob("*.json"))}
    assert set(records) == {"libaom-AV130", "libaom-AV150", "libvpx-VP930", "libvpx-VP950"}
    for result in records.values():
        assert result["version"].startswith("v") and "-lag-in-frames 0" in result["command"]
        (segment,) = result["segments"]
        packets = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", segment["bitstream"], "-c", "copy", "-f",
                                  "framecrc", "-"], capture_output=True, text=True, check=True).stdout
        sizes = [int(line.split(",")[4]) for line in packets.splitlines() if line.startswith("0,")]
        # The stream's bits are its packets' (IVF's file and frame headers are not counted) and the frames' sum.
        assert result["bits"] == 8 * sum(sizes) == sum(result["per_frame"]["bits"]) and len(sizes) == 4
    assert records["libaom-AV130"]["bits"] > records["libaom-AV150"]["bits"]
    assert records["libvpx-VP930"]["metrics"]["psnr_y"] > records["libvpx-VP950"]["metrics"]["psnr_y"]
