"""export-png through the CLI, on a user-catalogued tiny crop of the bundled clip."""
import subprocess

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.data.clips import bundled_clip_path
from bench.data.readers import ffmpeg_exe

W, H, FRAMES = 128, 72, 4


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "Tiny").mkdir()
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(bundled_clip_path()), "-frames:v", str(FRAMES),
                    "-vf", f"crop={W}:{H}:560:300", "-pix_fmt", "yuv420p", "-f", "rawvideo",
                    str(root / "Tiny" / "Bunny_128x72.yuv")], check=True)
    catalog = root / "tiny.yaml"
    catalog.write_text(f"""
datasets:
  Tiny:
    protocol: {{frames: 4, intra_period: 4, crop_multiple: 64, pad_multiple: 16}}
    raw_dirs: ["{{dataset}}"]
    png_dir: "{{dataset}}/{{sequence}}{{bt709}}"
    sequences:
      Bunny: {{files: [Bunny_128x72.yuv], width: {W}, height: {H}, frames: {FRAMES}, fps: 25, pix_fmt: yuv420p}}
""")
    return root


def _export(data_root, out, *extra):
    return main(["export-png", str(out), "--dataset", "Tiny", "--catalog", str(data_root / "tiny.yaml"),
                 "--data-root", str(data_root), "--frames", "3", *extra])


def _ffmpeg_png_frame(data_root, index):
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{W}x{H}",
                          "-i", str(data_root / "Tiny" / "Bunny_128x72.yuv"), "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(FRAMES, H, W, 3)[index]


def test_export_writes_official_layout_matching_ffmpeg(data_root, tmp_path, capsys):
    assert _export(data_root, tmp_path) == 0
    folder = tmp_path / "Tiny" / "Bunny"
    assert sorted(p.name for p in folder.glob("*.png")) == ["frame_1.png", "frame_2.png", "frame_3.png"]
    ours = np.asarray(Image.open(folder / "frame_2.png"))
    # BT.601 limited with nearest chroma is ffmpeg's default conversion up to its fixed-point rounding (3 levels).
    assert ours.shape == (H, W, 3)
    assert np.abs(ours.astype(int) - _ffmpeg_png_frame(data_root, 1)).max() <= 3
    assert "3 written" in capsys.readouterr().out


def test_export_in_ffmpeg_mode_is_bit_exact(data_root, tmp_path):
    assert _export(data_root, tmp_path, "--filter", "ffmpeg") == 0
    ours = np.asarray(Image.open(tmp_path / "Tiny" / "Bunny" / "frame_3.png"))
    np.testing.assert_array_equal(ours, _ffmpeg_png_frame(data_root, 2))


def test_bt709_goes_to_its_own_folder_and_differs(data_root, tmp_path):
    assert _export(data_root, tmp_path, "--color-transform", "BT709") == 0
    assert _export(data_root, tmp_path) == 0
    bt709 = np.asarray(Image.open(tmp_path / "Tiny" / "Bunny_BT709" / "frame_1.png")).astype(int)
    bt601 = np.asarray(Image.open(tmp_path / "Tiny" / "Bunny" / "frame_1.png")).astype(int)
    assert np.abs(bt709 - bt601).mean() > 1


def test_export_resumes_and_keeps_existing_frames(data_root, tmp_path, capsys):
    assert _export(data_root, tmp_path) == 0
    folder = tmp_path / "Tiny" / "Bunny"
    kept = (folder / "frame_1.png").stat().st_mtime_ns
    (folder / "frame_3.png").unlink()
    capsys.readouterr()
    assert _export(data_root, tmp_path) == 0
    assert "1 written" in capsys.readouterr().out
    assert (folder / "frame_1.png").stat().st_mtime_ns == kept and (folder / "frame_3.png").is_file()


def test_missing_sequence_is_reported_with_the_paths_tried(data_root, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["export-png", str(tmp_path / "out"), "--dataset", "Tiny", "--catalog", str(data_root / "tiny.yaml"),
                 "--data-root", str(empty)])
    assert code == 2
    assert "Tiny/Bunny_128x72.yuv" in capsys.readouterr().err


def test_more_frames_than_the_file_holds_is_an_error(data_root, tmp_path, capsys):
    assert _export(data_root, tmp_path, "--frames", "9") == 2  # the later --frames wins
    err = capsys.readouterr().err
    assert "Bunny_128x72.yuv" in err and "9" in err
