"""Anchor schema: bundled data and its provenance, loader validation, DCVC/CompressAI import and export."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.analysis.rd_schema import (
    RD_COLUMNS,
    export_dcvc_json,
    import_compressai_json,
    import_dcvc_json,
    load_bd_table_csv,
    load_rd_csv,
    load_rd_csvs,
    write_rd_csv,
)
from bench.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
ANCHORS = ROOT / "anchors"
DATA = Path(__file__).resolve().parent / "data" / "anchors"
VTM17 = ANCHORS / "vtm-17.0_ldb_yuv420_allframes_ip-1_dcvc.csv"
COMPRESSAI = ANCHORS / "compressai_uvg1080p_video.csv"
DCVC_SOURCE = "microsoft/DCVC@54e88645e1b4edac0694228ab2f44ed8818e345b anchors/vtm_17.0_yuv420_LB_allf_ip0.json"
VTM17_PROTOCOL = dict(codec="VTM", codec_version="17.0",
                      codec_config="encoder_lowdelay_vtm.cfg (low-delay B) --InputBitDepth=8 "
                                   "--DecodingRefreshType=2 --Level=6.2",
                      color_transform="none", metric_space="yuv420", intra_period=-1, crop="none",
                      input_format="yuv420p", color_matrix="n/a", color_range="n/a", color_filter="n/a")


# ---------------------------------------------------------------- bundled data
def test_bundled_vtm17_anchor_is_complete_and_labelled():
    rd = load_rd_csv(VTM17)
    assert len(rd) == 530
    counts = rd.groupby("dataset")["sequence"].nunique().to_dict()
    assert counts == {"UVG": 7, "MCL-JCV": 30, "HEVC-B": 5, "HEVC-C": 4, "HEVC-D": 4, "HEVC-E": 3}
    assert (rd.groupby(["dataset", "sequence"]).size() == 10).all()
    # A different protocol from the paper's, and labelled so: all frames, one intra frame, YUV metrics only.
    assert set(rd["intra_period"]) == {-1} and set(rd["color_transform"]) == {"none"}
    assert rd["psnr_rgb"].isna().all() and rd["msssim_rgb"].isna().all()
    assert set(rd.loc[rd["dataset"] == "UVG", "frames"]) == {600, 300}
    assert rd["source"].str.startswith(DCVC_SOURCE).all()


def test_bundled_psnr_yuv_follows_the_stated_weights():
    vtm = load_rd_csv(VTM17)
    six = (6 * vtm["psnr_y"] + vtm["psnr_u"] + vtm["psnr_v"]) / 8
    assert (vtm["yuv_weights"] == "6:1:1").all()
    np.testing.assert_allclose(vtm["psnr_yuv"], six, atol=2e-6)  # values printed to 6 decimals
    compressai = load_rd_csv(COMPRESSAI)
    with_yuv = compressai[compressai["psnr_yuv"].notna()]
    four = (4 * with_yuv["psnr_y"] + with_yuv["psnr_u"] + with_yuv["psnr_v"]) / 6
    assert (with_yuv["yuv_weights"] == "4:1:1").all()
    np.testing.assert_allclose(with_yuv["psnr_yuv"], four, rtol=1e-6)


def test_bundled_compressai_results():
    rd = load_rd_csv(COMPRESSAI)
    assert len(rd) == 37
    assert set(rd["dataset"]) == {"UVG"} and set(rd["sequence"]) == {"avg"}
    assert rd["bpp"].isna().all() and rd["kbps"].notna().all()
    assert rd["source"].str.contains("InterDigitalInc/CompressAI@869a9f5d4126d015b7de8f203fe60ee9e1608193").all()
    assert set(rd["color_transform"]) == {"unknown"}  # not stated in the results files


def test_bundled_hytip_readme_bdrates():
    table = load_bd_table_csv(ANCHORS / "published_bdrates_hytip_readme.csv")
    assert len(table) == 280
    hytip = table[(table["codec"] == "HyTIP") & (table["metric"] == "psnr_rgb") & (table["color_transform"] == "BT601")]
    current = hytip[hytip["release"].str.startswith("8e2ea5d")].set_index("dataset")["bd_rate_pct"]
    first = hytip[hytip["release"].str.startswith("0f2e0ac")].set_index("dataset")["bd_rate_pct"]
    assert current["UVG"] == -34.7 and first["UVG"] == -32.2  # SOURCES.md
    # SOURCES.md cross-check: means of the 7 per-dataset PSNR-RGB BT.601 values, also shown in the complexity plots.
    assert round(current.mean(), 1) == -26.5 and round(first.mean(), 1) == -22.4 and len(current) == 7
    bt601 = table[(table["metric"] == "psnr_rgb") & (table["color_transform"] == "BT601")
                  & table["release"].str.startswith("8e2ea5d")]
    assert round(bt601[bt601["codec"] == "DCVC-DC"]["bd_rate_pct"].mean(), 1) == -23.6
    assert round(bt601[bt601["codec"] == "DCVC-FM"]["bd_rate_pct"].mean(), 1) == -18.5
    assert set(table["method"]) == {"not stated"} and set(table["averaging"]) == {"not stated"}
    assert not (table["metric"].eq("msssim_rgb") & table["codec"].eq("DCVC-FM")).any()


def test_bundled_dcvc_readme_bdrates():
    table = load_bd_table_csv(ANCHORS / "published_bdrates_dcvc_readme.csv")
    assert len(table) == 53
    rt = table[(table["codec"] == "DCVC-RT (fp16)") & (table["dataset"] == "avg-of-6")]
    assert rt["bd_rate_pct"].tolist() == [-21.0]


# ---------------------------------------------------------------- validation
HEADER = ",".join(RD_COLUMNS)


def _line(rate_point="0", bpp="0.1", psnr="30", sequence="s", **overrides):
    values = dict.fromkeys(RD_COLUMNS, "")
    values.update(codec="HyTIP", codec_version="1", codec_config="test", dataset="UVG", sequence=sequence,
                  color_transform="BT601", frames="96", intra_period="32", crop="centre-64", width="1920",
                  height="1024", input_format="rgb24", color_matrix="bt601", color_range="limited",
                  color_filter="nearest", rate_point=rate_point, bpp=bpp, psnr_rgb=psnr, msssim_rgb="0.95", source="test")
    values.update(overrides)
    return ",".join(values[c] for c in RD_COLUMNS)


def _write(tmp_path, lines, header=HEADER):
    path = tmp_path / "results.csv"
    path.write_text("\n".join([header] + lines) + "\n")
    return path


def _good_lines():
    return [_line(str(i), str(b), str(p), msssim_rgb=str(m)) for i, (b, p, m) in
            enumerate(zip([0.05, 0.1, 0.2, 0.4], [30, 32, 34, 36], [0.93, 0.95, 0.97, 0.98]))]


def test_valid_file_loads_with_types(tmp_path):
    rd = load_rd_csv(_write(tmp_path, _good_lines()))
    assert rd["bpp"].tolist() == [0.05, 0.1, 0.2, 0.4]
    assert rd["frames"].tolist() == [96] * 4 and rd["rate_point"].tolist() == ["0", "1", "2", "3"]
    assert rd["where"].tolist() == ["line 2", "line 3", "line 4", "line 5"]


@pytest.mark.parametrize("edit, message", [
    (lambda lines: (HEADER.replace(",kbps", ""), lines), r"line 1: missing column\(s\) kbps"),
    (lambda lines: (HEADER + ",extra", [l + ",1" for l in lines]), r"line 1: unknown column\(s\) extra"),
    (lambda lines: (HEADER, lines[:2] + [lines[2].replace(",34,", ",abc,")] + lines[3:]),
     r"line 4: column psnr_rgb: expected a number, found 'abc'"),
    (lambda lines: (HEADER, lines + [lines[1]]), r"results.csv line 3, .*results.csv line 6: duplicate rate point '1'"),
    (lambda lines: (HEADER, lines[:3] + [_line("3", "0.4", "33", msssim_rgb="0.98")]),
     r"line 5: curve .* is not monotonic: psnr_rgb 33.0 at bpp 0.4 is not above 34.0"),
    (lambda lines: (HEADER, lines[:3] + [_line("3", "0.2", "36", msssim_rgb="0.98")]),
     r"line 4 and line 5: curve .* has two points with the same bpp 0.2"),
    (lambda lines: (HEADER, lines[:3] + [_line("3", "0.4", "", msssim_rgb="0.98")]),
     r"line 5: column psnr_rgb is empty on some points"),
    (lambda lines: (HEADER, lines[:3] + [_line("3", "0.4", "36", msssim_rgb="1.5")]),
     r"line 5: column msssim_rgb: expected a value in \(0, 1\], found 1.5"),
    (lambda lines: (HEADER, lines[:3] + [_line("3", "", "36", msssim_rgb="0.98")]), r"line 5: neither bpp nor kbps"),
    (lambda lines: (HEADER, lines[:3] + [_line("3", "0.4", "36", msssim_rgb="0.98", crop="")]),
     r"line 5: column crop is empty"),
    (lambda lines: (HEADER, lines[:3] + [_line("3", "0.4", "36", msssim_rgb="0.98", frames="96.5")]),
     r"line 5: column frames: expected an integer"),
    (lambda lines: (HEADER, lines[:3] + [_line("3", "0.4", "36", msssim_rgb="0.98", psnr_yuv="40")]),
     r"line 5: column yuv_weights: expected Y:U:V weights"),
    (lambda lines: (HEADER, lines[:3] + [lines[3] + ",1"]), r"line 5: expected 30 fields, found 31"),
])
def test_validation_errors_name_file_and_line(tmp_path, edit, message):
    header, lines = edit(_good_lines())
    path = _write(tmp_path, lines, header)
    with pytest.raises(InputError, match=message) as error:
        load_rd_csv(path)
    assert str(error.value).startswith(str(path)) or f"{path} line" in str(error.value)


def test_missing_file_and_cross_file_duplicates(tmp_path):
    with pytest.raises(InputError, match="nothing.csv: file not found"):
        load_rd_csv(tmp_path / "nothing.csv")
    first = _write(tmp_path, _good_lines())
    second = tmp_path / "again.csv"
    second.write_text(first.read_text())
    with pytest.raises(InputError, match=r"results.csv line 2, .*again.csv line 2: duplicate rate point '0'"):
        load_rd_csvs([first, second])


def test_write_and_load_round_trip(tmp_path):
    original = load_rd_csv(VTM17)
    path = tmp_path / "copy.csv"
    write_rd_csv(original, path)
    again = load_rd_csv(path)
    pd.testing.assert_frame_equal(original.drop(columns=["file", "where"]), again.drop(columns=["file", "where"]))


# ---------------------------------------------------------------- importers and exporter
def _catalogue_names():
    return {"Beauty_1920x1080_120fps_420_8bit_YUV.yuv": "Beauty", "BQSquare_416x240_60.yuv": "BQSquare"}


def test_dcvc_import_reproduces_bundled_anchor():
    imported = import_dcvc_json(DATA / "dcvc_vtm17_excerpt.json", **VTM17_PROTOCOL,
                                dataset_names={"HEVC_D": "HEVC-D"}, sequence_names=_catalogue_names(),
                                source=DCVC_SOURCE)
    assert len(imported) == 20
    bundled = load_rd_csv(VTM17)
    bundled = bundled[bundled["sequence"].isin(["Beauty", "BQSquare"])]
    key = ["dataset", "sequence", "rate_point"]
    pd.testing.assert_frame_equal(imported.drop(columns=["file", "where"]).sort_values(key).reset_index(drop=True),
                                  bundled.drop(columns=["file", "where"]).sort_values(key).reset_index(drop=True))
    beauty = imported.set_index(["sequence", "rate_point"]).loc[("Beauty", "022")]
    assert (beauty["bpp"], beauty["psnr_yuv"], beauty["frames"]) == (0.057281, 40.086706, 600)
    assert (beauty["width"], beauty["height"]) == (1920, 1080)


def test_dcvc_export_round_trip(tmp_path):
    source = DATA / "dcvc_vtm17_excerpt.json"
    imported = import_dcvc_json(source, **VTM17_PROTOCOL)
    exported = tmp_path / "out.json"
    export_dcvc_json(imported, exported, metric_space="yuv420")
    again = import_dcvc_json(exported, **VTM17_PROTOCOL)
    columns = [c for c in RD_COLUMNS if c != "source"]
    pd.testing.assert_frame_equal(imported[columns], again[columns])
    # Every field written equals DCVC's own file (which also files all frames as I-frames).
    original, written = json.loads(source.read_text()), json.loads(exported.read_text())
    for dataset, sequences in written.items():
        for sequence, points in sequences.items():
            for rate_point, point in points.items():
                reference = original[dataset][sequence][rate_point]
                assert {k: reference[k] for k in point} == point


def test_dcvc_export_needs_frame_size(tmp_path):
    rd = load_rd_csv(COMPRESSAI)
    with pytest.raises(InputError, match="column frames is empty; DCVC's JSON needs it"):
        export_dcvc_json(rd, tmp_path / "x.json", metric_space="rgb")


def test_dcvc_import_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"UVG": {"Beauty": {"000": {"frame_pixel_num": 4}}}}')
    with pytest.raises(InputError, match=r"bad.json: \[UVG\]\[Beauty\]\[000\]: missing field 'i_frame_num'"):
        import_dcvc_json(bad, **VTM17_PROTOCOL)
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json: line 1: not valid JSON"):
        import_dcvc_json(bad, **VTM17_PROTOCOL)


def test_compressai_import_reproduces_bundled_rows():
    imported = import_compressai_json(
        DATA / "compressai_VTM-v15.0-lowdelay.json", dataset="UVG", codec="VTM", codec_version="15.0",
        codec_config="low-delay (configuration file not stated)")
    bundled = load_rd_csv(COMPRESSAI)
    bundled = bundled[bundled["codec"] == "VTM"].reset_index(drop=True)
    numbers = ["kbps", "psnr_rgb", "msssim_rgb", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv"]
    pd.testing.assert_frame_equal(imported[numbers], bundled[numbers])
    assert imported["rate_point"].tolist() == ["20", "22", "27", "32", "37", "42", "47"]
    assert (imported["yuv_weights"] == "4:1:1").all() and (imported["sequence"] == "avg").all()


def test_dcvc_rgb_export_round_trip(tmp_path):
    rd = load_rd_csv(_write(tmp_path, _good_lines()))
    exported = tmp_path / "rgb.json"
    export_dcvc_json(rd, exported, metric_space="rgb")
    point = json.loads(exported.read_text())["UVG"]["s"]["2"]
    assert point["frame_pixel_num"] == 1920 * 1024 and point["i_frame_num"] == 96
    assert (point["ave_all_frame_bpp"], point["ave_all_frame_psnr"], point["ave_all_frame_msssim"]) == (0.2, 34.0, 0.97)
    again = import_dcvc_json(exported, codec="HyTIP", codec_version="1", codec_config="test", color_transform="BT601",
                             metric_space="rgb", intra_period=32, crop="centre-64", input_format="rgb24",
                             color_matrix="bt601", color_range="limited", color_filter="nearest")
    columns = [c for c in RD_COLUMNS if c not in ("source", "width", "height")]
    pd.testing.assert_frame_equal(rd[columns], again[columns])
