"""The dataset catalogue: its facts against independent sources, schema validation, overrides, file resolution, CLI."""
from __future__ import annotations

import argparse
import csv
import dataclasses
import re
import subprocess
import textwrap
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from torchvision.transforms import CenterCrop

from bench.cli import datasets as datasets_cli
from bench.data import catalog as cat
from bench.data.catalog import DATA_ROOT_ENV, load_catalog
from bench.data.protocol import plan_frames
from bench.errors import InputError

DATA = Path(__file__).parent / "data" / "catalog"

# Facts copied from the reference SPEC (test protocol of the official code).
SPEC_SCENE_CUTS = {
    "Kimono1": [141], "Kimono1_10b_rgb": [141], "videoSRC20": [43, 81, 106], "videoSRC21": [49, 64, 90],
    "videoSRC25": [18, 84], "videoSRC26": [62], "videoSRC27": [40], "videoSRC29": [71],
}
SPEC_CROPS = {(1920, 1080): (1920, 1024), (832, 480): (832, 448), (416, 240): (384, 192), (1280, 720): (1280, 704)}
DCVC_DATASET_NAMES = {
    "UVG": "UVG", "MCL-JCV": "MCL-JCV", "HEVC_B": "HEVC-B", "HEVC_C": "HEVC-C", "HEVC_D": "HEVC-D", "HEVC_E": "HEVC-E",
}


@pytest.fixture(scope="module")
def bundled():
    return load_catalog()


def read_csv(name):
    with open(DATA / name, newline="") as f:
        return list(csv.DictReader(f))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def touch(root: Path, rel: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


# A complete small dataset, as a user would add one.
TINY = """\
datasets:
  Tiny:
    protocol: {frames: 2, intra_period: 2, crop_multiple: 8, pad_multiple: 4}
    raw_dirs: ["{dataset}"]
    png_dir: "{dataset}/{sequence}{bt709}"
    sequences:
      clip: {files: [clip_16x16.yuv], width: 16, height: 16, frames: 2, fps: 25, pix_fmt: yuv420p}
"""


# --- catalogue facts against independent sources ---------------------------------------------------------------------

def test_datasets_and_sequence_counts(bundled):
    counts = {name: len(ds.sequences) for name, ds in bundled.datasets.items()}
    assert counts == {"UVG": 7, "MCL-JCV": 30, "HEVC-B": 5, "HEVC-C": 4, "HEVC-D": 4, "HEVC-E": 3, "HEVC-RGB": 6}


def test_matches_official_dataloader(bundled):
    rows = read_csv("official_dataloader_datasets.csv")
    assert len(rows) == 59
    for ds_name in bundled.datasets:
        expected = sorted((r for r in rows if r["dataset"] == ds_name), key=lambda r: int(r["test_order"]))
        assert list(bundled.datasets[ds_name].sequences) == [r["sequence"] for r in expected], ds_name
    for r in rows:
        seq = bundled.datasets[r["dataset"]].sequences[r["sequence"]]
        expected = tuple(int(r[k]) for k in ("width", "height", "frames", "fps"))
        assert (seq.width, seq.height, seq.frames, seq.fps) == expected, seq.name
        # The official code's name for the file is one of the stems we try.
        assert r["vi_name"] in [Path(f).stem for f in seq.files], seq.name


def test_yuv_sets_match_dcvc_anchor(bundled):
    rows = read_csv("dcvc_anchor_sequences.csv")
    for dcvc_name, ds_name in DCVC_DATASET_NAMES.items():
        expected = {r["sequence"]: r for r in rows if r["dataset"] == dcvc_name}
        seqs = {s.files[0]: s for s in bundled.datasets[ds_name].sequences.values()}
        assert set(seqs) == set(expected), ds_name
        for file, r in expected.items():
            s = seqs[file]
            assert s.frames == int(r["frames"]), file
            assert s.width * s.height == int(r["frame_pixel_num"]), file
            assert (s.pix_fmt, s.bit_depth, s.chroma) == ("yuv420p", 8, "420")


def test_hevc_rgb_is_10bit_444_rgb(bundled):
    for s in bundled.datasets["HEVC-RGB"].sequences.values():
        assert (s.pix_fmt, s.bit_depth, s.chroma, s.is_rgb) == ("gbrp10le", 10, "444", True)
        assert s.frame_bytes == 1920 * 1080 * 3 * 2


def test_scene_cuts_match_spec(bundled):
    cuts = {s.name: list(s.scene_cuts) for s in bundled.select() if s.scene_cuts}
    assert cuts == SPEC_SCENE_CUTS


def test_protocol_defaults(bundled):
    for ds in bundled.datasets.values():
        assert ds.protocol == cat.Protocol(frames=96, intra_period=32, crop_multiple=64, pad_multiple=16)


def intra_frames(seq):
    p = seq.protocol
    return [f.number for f in plan_frames(p.frames, p.intra_period, seq.scene_cuts) if f.type == "I"]


def test_catalogue_drives_the_frame_plan(bundled):
    assert intra_frames(bundled.datasets["MCL-JCV"].sequences["videoSRC21"]) == [1, 33, 49, 64, 65, 90]
    assert intra_frames(bundled.datasets["HEVC-B"].sequences["Kimono1"]) == [1, 33, 65]  # its cut (141) is past 96


@pytest.mark.parametrize("size", sorted(SPEC_CROPS))
def test_crop_per_resolution(bundled, size):
    width, height = size
    seq = next(s for ds in bundled.datasets.values() for s in ds.sequences.values() if (s.width, s.height) == size)
    box = seq.crop_box
    assert (box.width, box.height) == SPEC_CROPS[size]
    # torchvision's CenterCrop (what the official code calls) on a frame of pixel indices gives the same window.
    frame = torch.arange(height * width).reshape(1, height, width)
    cropped = CenterCrop((box.height, box.width))(frame)
    assert torch.equal(cropped, frame[:, box.top:box.top + box.height, box.left:box.left + box.width])
    # The cropped size is already a multiple of the padding unit.
    assert box.width % seq.protocol.pad_multiple == 0 and box.height % seq.protocol.pad_multiple == 0


def test_every_catalogued_resolution_is_in_spec(bundled):
    sizes = {(s.width, s.height) for ds in bundled.datasets.values() for s in ds.sequences.values()}
    assert sizes == set(SPEC_CROPS)


def ffmpeg_pix_fmts() -> dict[str, tuple[int, int]]:
    """pix_fmt -> (components, bits per pixel) as `ffmpeg -pix_fmts` reports them."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    out = subprocess.run([ffmpeg, "-hide_banner", "-pix_fmts"], capture_output=True, text=True, check=True).stdout
    return {m[1]: (int(m[2]), int(m[3])) for m in re.finditer(r"^[IOHPB.]{5}\s+(\S+)\s+(\d+)\s+(\d+)", out, re.M)}


@pytest.mark.parametrize("pix_fmt", sorted(cat.PIX_FMTS))
def test_frame_bytes_and_bit_depth_match_ffmpeg(bundled, pix_fmt, tmp_path):
    seq = dataclasses.replace(bundled.datasets["HEVC-D"].sequences["BQSquare"], width=64, height=48, pix_fmt=pix_fmt)
    out = tmp_path / "two.raw"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25",
         "-frames:v", "2", "-pix_fmt", pix_fmt, "-f", "rawvideo", str(out)],
        check=True,
    )
    assert out.stat().st_size == 2 * seq.frame_bytes
    components, bits_per_pixel = ffmpeg_pix_fmts()[pix_fmt]
    assert components == 3
    assert bits_per_pixel == seq.bit_depth * (1.5 if seq.chroma == "420" else 3)


# --- schema validation ------------------------------------------------------------------------------------------------

def edit(*pairs: str) -> str:
    """TINY with each (old, new) pair replaced once."""
    text = TINY
    for old, new in zip(pairs[::2], pairs[1::2]):
        assert old in text
        text = text.replace(old, new, 1)
    return text


# (catalogue text, fragments the error message must contain besides the file name)
BAD = {
    "unknown top-level key": ("datasets: {}\nextra: 1\n", ["single key 'datasets'", "'extra'"]),
    "top level not a mapping": ("- a\n- b\n", ["single key 'datasets'", "list"]),
    "empty datasets": ("datasets: {}\n", ["'datasets' must be a non-empty mapping"]),
    "unknown dataset key": (edit("    png_dir:", "    protocl: {}\n    png_dir:"),
                            ["dataset 'Tiny'", "unknown key(s) 'protocl'"]),
    "unknown protocol key": (edit("pad_multiple: 4", "pad_multiple: 4, gop: 3"), ["dataset 'Tiny', protocol", "'gop'"]),
    "unknown sequence key": (edit("fps: 25", "fps: 25, framez: 3"), ["sequence 'clip'", "unknown key(s) 'framez'"]),
    "missing sequence field": (edit(", fps: 25", ""), ["dataset 'Tiny', sequence 'clip'", "missing field(s) 'fps'"]),
    "missing dataset field": (edit('    png_dir: "{dataset}/{sequence}{bt709}"\n', ""),
                              ["dataset 'Tiny'", "missing field(s) 'png_dir'"]),
    "missing protocol field": (edit(", pad_multiple: 4", ""), ["dataset 'Tiny', protocol", "'pad_multiple'"]),
    "width as a string": (edit("width: 16", "width: '16'"),
                          ["sequence 'clip'", "'width' must be a positive integer", "'16' (str)"]),
    "frames as a bool": (edit("frames: 2, fps", "frames: true, fps"),
                         ["sequence 'clip'", "'frames' must be a positive integer", "True (bool)"]),
    "negative fps": (edit("fps: 25", "fps: -25"), ["'fps' must be a positive number"]),
    "unknown pix_fmt": (edit("pix_fmt: yuv420p", "pix_fmt: yuv420"), ["'pix_fmt' must be one of", "'yuv420' (str)"]),
    "files not a list": (edit("files: [clip_16x16.yuv]", "files: clip_16x16.yuv"),
                         ["'files' must be a non-empty list"]),
    "file name with a folder": (edit("files: [clip_16x16.yuv]", "files: [a/clip.yuv]"),
                                ["'files' must be a non-empty list of file names"]),
    "scene cut past the end": (edit("pix_fmt: yuv420p}", "pix_fmt: yuv420p, scene_cuts: [3]}"),
                               ["sequence 'clip'", "scene_cuts", "[3]"]),
    "scene cuts out of order": (edit("frames: 2, fps", "frames: 9, fps",
                                     "pix_fmt: yuv420p}", "pix_fmt: yuv420p, scene_cuts: [5, 4]}"),
                                ["scene_cuts must increase"]),
    "unknown template field": (edit('["{dataset}"]', '["{seq}"]'), ["dataset 'Tiny'", "'raw_dirs' must be"]),
    "absolute raw dir": (edit('["{dataset}"]', '["/data"]'), ["'raw_dirs' must be"]),
    "odd width for 4:2:0": (edit("width: 16", "width: 17"), ["sequence 'clip'", "even width", "17x16"]),
    "fewer frames than the protocol": (edit("frames: 2, fps", "frames: 1, fps"),
                                       ["sequence 'clip'", "fewer than the protocol's 2"]),
    "protocol frames not a multiple": (edit("frames: 2, intra_period: 2", "frames: 3, intra_period: 2"),
                                       ["protocol", "multiple of intra_period"]),
    "duplicate sequence": (TINY + "      clip: {files: [x.yuv]}\n", ["not valid YAML", "duplicate key 'clip'"]),
    "syntax error": (edit("fps: 25,", "fps: [25,"), ["not valid YAML"]),
    "sequence name not a string": (edit("      clip:", "      2020:"), ["sequence name 2020 must be a string"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_schema_errors_name_the_file(tmp_path, case):
    text, fragments = BAD[case]
    path = write(tmp_path / "user_catalog.yaml", text)
    with pytest.raises(InputError) as err:
        load_catalog([path], bundled=False)
    message = str(err.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_missing_catalogue_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.yaml: cannot read the catalogue"):
        load_catalog([tmp_path / "nope.yaml"])


def test_tiny_catalogue_loads(tmp_path):
    c = load_catalog([write(tmp_path / "tiny.yaml", TINY)], bundled=False)
    seq = c.datasets["Tiny"].sequences["clip"]
    assert (seq.width, seq.height, seq.frames, seq.fps, seq.pix_fmt, seq.scene_cuts) == (16, 16, 2, 25, "yuv420p", ())
    assert seq.frame_bytes == 16 * 16 * 3 // 2
    assert (seq.crop_box.top, seq.crop_box.left, seq.crop_box.height, seq.crop_box.width) == (0, 0, 16, 16)


# --- user catalogues: overrides and additions -------------------------------------------------------------------------

def test_override_merges_field_by_field(tmp_path, bundled):
    extra = write(tmp_path / "local.yaml", """\
        datasets:
          UVG:
            protocol: {frames: 64}
            sequences:
              Beauty: {files: [beauty_local.yuv], frames: 500}
        """)
    c = load_catalog([extra])
    beauty = c.datasets["UVG"].sequences["Beauty"]
    assert beauty.files == ("beauty_local.yuv",)
    assert beauty.frames == 500
    assert (beauty.width, beauty.height, beauty.fps, beauty.pix_fmt) == (1920, 1080, 120, "yuv420p")
    assert beauty.sources == (cat.BUNDLED_CATALOG, extra)
    assert c.datasets["UVG"].protocol == cat.Protocol(64, 32, 64, 16)
    assert beauty.protocol.frames == 64
    jockey = bundled.datasets["UVG"].sequences["Jockey"]
    assert c.datasets["UVG"].sequences["Jockey"] == dataclasses.replace(jockey, protocol=cat.Protocol(64, 32, 64, 16))
    assert c.datasets["HEVC-B"] == bundled.datasets["HEVC-B"]


def test_user_catalogue_adds_datasets_and_sequences(tmp_path):
    extra = write(tmp_path / "tiny.yaml", TINY)
    more = write(tmp_path / "more.yaml", """\
        datasets:
          HEVC-B:
            sequences:
              Tennis:
                files: [Tennis_1920x1080_24.yuv]
                width: 1920
                height: 1080
                frames: 240
                fps: 24
                pix_fmt: yuv420p
        """)
    c = load_catalog([extra, more])
    assert list(c.datasets)[-1] == "Tiny"
    assert list(c.datasets["HEVC-B"].sequences)[-1] == "Tennis"
    assert len(c.datasets["HEVC-B"].sequences) == 6
    assert c.files == (cat.BUNDLED_CATALOG, extra, more)


def test_incomplete_addition_names_the_user_file(tmp_path):
    extra = write(tmp_path / "partial.yaml", """\
        datasets:
          HEVC-C:
            sequences:
              NewOne: {files: [n.yuv], width: 832}
        """)
    with pytest.raises(InputError) as err:
        load_catalog([extra])
    assert str(extra) in str(err.value)
    assert "sequence 'NewOne': missing field(s) 'height', 'frames', 'fps', 'pix_fmt'" in str(err.value)


def test_override_error_names_the_user_file_not_the_bundled_one(tmp_path):
    extra = write(tmp_path / "bad.yaml", "datasets:\n  UVG:\n    sequences:\n      Beauty: {width: 1919}\n")
    with pytest.raises(InputError) as err:
        load_catalog([extra])
    assert f"{cat.BUNDLED_CATALOG} + {extra}: dataset 'UVG', sequence 'Beauty'" in str(err.value)
    assert "even width" in str(err.value)


# --- resolution under a data root ------------------------------------------------------------------------------------

UVG_FILE = "{0}_1920x1080_120fps_420_8bit_YUV.yuv"


@pytest.fixture
def uvg_root(tmp_path):
    """A data root with 3 of the 7 UVG sequences, each in a different accepted place."""
    root = tmp_path / "data"
    touch(root, "UVG/" + UVG_FILE.format("Beauty"))
    touch(root, "UVG/Beauty_1920x1080_120.yuv")  # the second name: the first one wins
    touch(root, "UVG/Bosphorus_1920x1080_120fps_420_8bit_YUV_RAW/" + UVG_FILE.format("Bosphorus"))
    touch(root, "HoneyBee_1920x1080_120.yuv")  # flat in the root, under the official code's name
    return root


def test_resolve_finds_each_accepted_layout(bundled, uvg_root):
    found = bundled.resolve("UVG", ["HoneyBee", "Beauty", "Bosphorus"], data_root=uvg_root)
    assert [(x.sequence.name, x.path.relative_to(uvg_root).as_posix(), x.form) for x in found] == [
        ("Beauty", "UVG/" + UVG_FILE.format("Beauty"), "raw"),
        ("Bosphorus", "UVG/Bosphorus_1920x1080_120fps_420_8bit_YUV_RAW/" + UVG_FILE.format("Bosphorus"), "raw"),
        ("HoneyBee", "HoneyBee_1920x1080_120.yuv", "raw"),
    ]


def test_resolve_reports_all_missing_in_one_error(bundled, uvg_root):
    touch(uvg_root, "HEVC_B/BQTerrace_1920x1080_60.yuv")
    with pytest.raises(InputError) as err:
        bundled.resolve(["UVG", "HEVC-B"], data_root=uvg_root)
    message = str(err.value)
    assert message.startswith(f"8 of 12 requested sequences not found under data root {uvg_root}")
    missing = re.findall(r"^  (\S+): tried", message, re.M)
    assert missing == ["UVG/Jockey", "UVG/ReadySteadyGo", "UVG/ShakeNDry", "UVG/YachtRide",
                       "HEVC-B/Kimono1", "HEVC-B/Cactus", "HEVC-B/BasketballDrive", "HEVC-B/ParkScene"]
    jockey = message.split("UVG/Jockey: tried ")[1].splitlines()[0].split(", ")
    assert jockey == [
        "UVG/Jockey_1920x1080_120fps_420_8bit_YUV.yuv",
        "UVG/Jockey_1920x1080_120fps_420_8bit_YUV_RAW/Jockey_1920x1080_120fps_420_8bit_YUV.yuv",
        "Jockey_1920x1080_120fps_420_8bit_YUV.yuv",
        "UVG/Jockey_1920x1080_120.yuv",
        "UVG/Jockey_1920x1080_120_RAW/Jockey_1920x1080_120.yuv",
        "Jockey_1920x1080_120.yuv",
    ]
    kimono = "HEVC-B/Kimono1_1920x1080_24.yuv, HEVC_B/Kimono1_1920x1080_24.yuv, Kimono1_1920x1080_24.yuv"
    assert f"HEVC-B/Kimono1: tried {kimono}\n" in message


def test_resolve_png_layout(bundled, tmp_path):
    root = tmp_path / "png"
    touch(root, "UVG/Beauty_BT709/frame_1.png")
    touch(root, "HEVC-RGB/DucksAndLegs/frame_1.png")
    (found,) = bundled.resolve("UVG", ["Beauty"], data_root=root, form="png", color_transform="BT709")
    assert found.path == root / "UVG/Beauty_BT709" and found.form == "png"
    # HEVC-RGB is native RGB: the same folder serves either transform.
    for ct in cat.COLOR_TRANSFORMS:
        (rgb,) = bundled.resolve("HEVC-RGB", ["DucksAndLegs"], data_root=root, form="png", color_transform=ct)
        assert rgb.path == root / "HEVC-RGB/DucksAndLegs"
    with pytest.raises(InputError, match=r"UVG/Beauty: tried UVG/Beauty$"):
        bundled.resolve("UVG", ["Beauty"], data_root=root, form="png", color_transform="BT601")


def test_resolve_png_folder_needs_frame_1(bundled, tmp_path):
    (tmp_path / "UVG" / "Beauty").mkdir(parents=True)
    with pytest.raises(InputError, match="PNG folders with frame_1.png"):
        bundled.resolve("UVG", ["Beauty"], data_root=tmp_path, form="png")


def test_resolve_rejects_bad_choices(bundled, uvg_root):
    with pytest.raises(InputError, match="form must be one of raw, png, found 'mp4'"):
        bundled.resolve("UVG", data_root=uvg_root, form="mp4")
    with pytest.raises(InputError, match="color_transform must be one of BT601, BT709, found 'BT2020'"):
        bundled.resolve("UVG", data_root=uvg_root, color_transform="BT2020")


def test_unknown_names_list_the_valid_ones(bundled):
    with pytest.raises(InputError) as err:
        bundled.select("HEVC-F")
    assert "unknown dataset 'HEVC-F'" in str(err.value)
    assert "UVG, MCL-JCV, HEVC-B, HEVC-C, HEVC-D, HEVC-E, HEVC-RGB" in str(err.value)
    with pytest.raises(InputError) as err:
        bundled.select("HEVC-D", ["RaceHorses", "BQSquare"])
    assert "unknown sequence(s) 'RaceHorses' in HEVC-D" in str(err.value)
    assert "HEVC-D: BasketballPass, BQSquare, BlowingBubbles, RaceHorses1" in str(err.value)


def test_select_keeps_catalogue_order(bundled):
    chosen = bundled.select("HEVC-E", ["KristenAndSara", "FourPeople"])
    assert [s.name for s in chosen] == ["FourPeople", "KristenAndSara"]
    assert len(bundled.select()) == 59


def test_data_root_argument_wins_over_environment(bundled, uvg_root, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(DATA_ROOT_ENV, str(uvg_root))
    assert [x.path.parent for x in bundled.resolve("UVG", ["Beauty"])] == [uvg_root / "UVG"]
    with pytest.raises(InputError, match=f"under data root {re.escape(str(empty))}"):
        bundled.resolve("UVG", ["Beauty"], data_root=empty)
    monkeypatch.setenv(DATA_ROOT_ENV, str(empty))
    assert bundled.resolve("UVG", ["Beauty"], data_root=uvg_root)[0].path.is_file()


def test_data_root_missing_or_not_a_folder(bundled, tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    with pytest.raises(InputError, match=f"no data root: pass --data-root or set {DATA_ROOT_ENV}"):
        bundled.resolve("UVG")
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "gone"))
    with pytest.raises(InputError, match=rf"gone \(from \${DATA_ROOT_ENV}\) is not an existing folder"):
        bundled.resolve("UVG")


# --- opening with the reader -----------------------------------------------------------------------------------------

def test_open_passes_the_catalogue_geometry(tmp_path, monkeypatch):
    readers = pytest.importorskip("bench.data.readers")
    calls = []
    monkeypatch.setattr(readers, "open_source", lambda path, **kw: calls.append((path, kw)))
    seq = load_catalog([write(tmp_path / "tiny.yaml", TINY)], bundled=False).datasets["Tiny"].sequences["clip"]
    raw = touch(tmp_path, "Tiny/clip_16x16.yuv")
    seq.open(raw)
    seq.open(raw, num_frames=1)
    seq.open(tmp_path / "Tiny")
    assert calls == [
        (raw, dict(width=16, height=16, pix_fmt="yuv420p", num_frames=2)),
        (raw, dict(width=16, height=16, pix_fmt="yuv420p", num_frames=1)),
        (tmp_path / "Tiny", dict(width=16, height=16, pix_fmt="rgb24", num_frames=None)),
    ]


def test_open_reads_the_file_with_the_catalogue_geometry(tmp_path):
    pytest.importorskip("bench.data.readers")
    seq = load_catalog([write(tmp_path / "tiny.yaml", TINY)], bundled=False).datasets["Tiny"].sequences["clip"]
    frames = np.arange(2 * seq.frame_bytes, dtype=np.uint64).astype(np.uint8).reshape(2, seq.frame_bytes)
    raw = tmp_path / "Tiny/clip_16x16.yuv"
    raw.parent.mkdir()
    raw.write_bytes(frames.tobytes())
    source = seq.open(raw)
    assert len(source) == 2
    y, u, v = source.read(1)
    assert np.array_equal(y, frames[1, :256].reshape(16, 16))
    assert np.array_equal(v, frames[1, 256 + 64:].reshape(8, 8))
    raw.write_bytes(frames[0].tobytes())
    with pytest.raises(InputError):  # the catalogue says 2 frames; a 1-frame file is caught
        seq.open(raw)


# --- CLI: run_bench.py datasets --------------------------------------------------------------------------------------

def run_cli(argv):
    parser = argparse.ArgumentParser()
    datasets_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_lists_datasets(capsys):
    assert run_cli(["datasets"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  Beauty\s+1920x1080\s+600 frames\s+120 fps\s+yuv420p$", out, re.M)
    assert re.search(r"^  RaceHorses1\s+416x240\s+300 frames\s+30 fps\s+yuv420p$", out, re.M)
    assert re.search(r"^  DucksAndLegs\s+1920x1080\s+300 frames\s+30 fps\s+gbrp10le$", out, re.M)
    assert len(re.findall(r"^  \S+ +\d+x\d+ ", out, re.M)) == 59
    assert out.count("  protocol: 96 frames, intra period 32, crop to a multiple of 64, pad to a multiple of 16\n") == 7


def test_cli_check_reports_present_missing_and_wrong_size(uvg_root, tmp_path, capsys):
    extra = write(tmp_path / "tiny.yaml", TINY)
    (uvg_root / "Tiny").mkdir()
    (uvg_root / "Tiny/clip_16x16.yuv").write_bytes(bytes(2 * 16 * 16 * 3 // 2))  # 2 frames of 16x16 yuv420p
    assert run_cli(["datasets", "UVG", "Tiny", "--check", "--data-root", str(uvg_root), "--catalog", str(extra)]) == 1
    out = capsys.readouterr().out
    # The UVG stand-ins are empty files: found, but not 600 frames of 1920x1080 yuv420p (3110400 bytes each).
    bosphorus = "UVG/Bosphorus_1920x1080_120fps_420_8bit_YUV_RAW/Bosphorus_1920x1080_120fps_420_8bit_YUV.yuv"
    assert f"WRONG SIZE  {bosphorus}: 0 bytes, expected 600 frames x 3110400 bytes (1920x1080 yuv420p)\n" in out
    assert re.search(r"^  Jockey .* MISSING  tried UVG/Jockey_1920x1080_120fps_420_8bit_YUV.yuv, ", out, re.M)
    assert re.search(r"^  clip .* present  Tiny/clip_16x16.yuv$", out, re.M)
    assert f"1 of 8 sequences present with the catalogued size under {uvg_root}" in out
    assert run_cli(["datasets", "Tiny", "--check", "--data-root", str(uvg_root), "--catalog", str(extra)]) == 0


def test_cli_check_needs_a_data_root(monkeypatch):
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    with pytest.raises(InputError, match="no data root"):
        run_cli(["datasets", "--check"])
    with pytest.raises(InputError, match="unknown dataset 'uvg'"):
        run_cli(["datasets", "uvg"])


def test_cli_contract_through_bench_cli(capsys):
    from bench import cli

    assert cli.main(["datasets", "HEVC-E"]) == 0
    assert "KristenAndSara" in capsys.readouterr().out
    assert cli.main(["datasets", "HEVC-F"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown dataset 'HEVC-F'")
