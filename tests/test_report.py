"""`run_bench.py report`: the numbers in the page and its exports are bench.analysis.bdrate's, incomplete input gives
notes at the right place, unreadable input names the file.

The fixture (tests/data/report/sweep) is a sweep folder in the sweep's schema with synthetic values: VTM-17.0 (the
anchor), HyTIP-PSNR-RGB, HyTIP-MS-SSIM-RGB (UVG, BT.601 only) and x265-3.5 (no MS-SSIM; 3 points on HEVC-D), per-frame
records of HyTIP-PSNR-RGB on UVG/Beauty, one failed job, complexity.json and sweep.json.
"""
import html as html_text
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from bench.analysis.bdrate import bd_tables
from bench.analysis.intervals import bd_tables_with_intervals, interval_text
from bench.analysis.rd_schema import load_bd_table_csv, load_rd_csv, write_rd_csv
from bench.cli import main
from bench.errors import InputError
from reports import ReportOptions, build_published_report, build_report
from reports.inputs import parse_json_spec, read_complexity, read_inputs
from reports.reproduction import reproduction_verdict

FIXTURE = Path(__file__).parent / "data" / "report" / "sweep"
ROOT = Path(__file__).parent.parent
MEASURED = ROOT / "anchors" / "measured_complexity.json"
ANCHORS = Path(__file__).parent / "data" / "anchors"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["report", str(FIXTURE), "--out", str(out)]) == 0
    return out, (out / "index.html").read_text()


@pytest.fixture(scope="module")
def intervals():
    """BD-rates of HyTIP-PSNR-RGB against VTM-17.0 with their intervals, computed directly by bench.analysis (the
    report's default interval options)."""
    rd = load_rd_csv(FIXTURE / "results.csv")
    rows = rd[rd["codec_version"].isin(["17.0", "PSNR-RGB"]) & (rd["color_transform"] == "BT601")]
    table = bd_tables_with_intervals(rows, "VTM-17.0", ["psnr_rgb"]).datasets
    assert table["bd_rate_pct"].tolist() == bd_tables(rows, "VTM-17.0", ["psnr_rgb"]).datasets["bd_rate_pct"].tolist()
    return table.set_index("dataset")


@pytest.fixture(scope="module")
def expected(intervals):
    return intervals["bd_rate_pct"]


def test_table_legend_and_csv_carry_bdrate_values(report, expected, intervals):
    out, html = report
    uvg = expected["UVG"]
    assert -25 < uvg < -15   # the fixture's HyTIP saves about a fifth of the bits
    csv = pd.read_csv(out / "tables" / "bd_rate_psnr-rgb-bt601.csv", index_col="dataset")
    assert csv.loc["UVG", "HyTIP-PSNR-RGB"] == pytest.approx(uvg, abs=1e-9)
    assert csv.loc["Average", "HyTIP-PSNR-RGB"] == pytest.approx(expected["Average"], abs=1e-9)
    for bound in ("low", "high"):   # each value's interval in the CSV beside it
        assert csv.loc["UVG", f"HyTIP-PSNR-RGB {bound}"] == pytest.approx(intervals.loc["UVG", f"bd_rate_{bound}"])
    assert csv.loc["UVG", "HyTIP-PSNR-RGB low"] < uvg < csv.loc["UVG", "HyTIP-PSNR-RGB high"]
    svg = (out / "figures" / "rd_psnr-rgb-bt601-uvg.svg").read_text()
    assert f"HyTIP-PSNR-RGB ({uvg:.1f}%)" in svg and "VTM-17.0 (anchor)" in svg
    assert f"HyTIP-PSNR-RGB ({uvg:.1f}%)" in html   # the figure is inline
    shown = interval_text(uvg, intervals.loc["UVG", "bd_rate_low"], intervals.loc["UVG", "bd_rate_high"])
    assert f">{shown}</td>" in html and "bdci 0.0.5" in html and "2000 resamples, seed 0" in html
    # Interpolation and averaging are stated under the table.
    assert "pchip: piecewise cubic Hermite" in html and "mean of per-sequence BD values" in html


def test_latex_is_booktabs_with_fixed_decimals_and_the_best_bold(report, expected, intervals):
    out, _ = report
    tex = (out / "tables" / "bd_rate_psnr-rgb-bt601.tex").read_text()
    assert all(rule in tex for rule in (r"\toprule", r"\midrule", r"\bottomrule"))
    uvg = next(line for line in tex.splitlines() if line.startswith("UVG &"))
    cells = [c.strip() for c in uvg.rstrip("\\ ").split("&")]
    header = next(line for line in tex.splitlines() if line.startswith("dataset &"))
    columns = [c.strip() for c in header.rstrip("\\ ").split("&")]
    low, high = intervals.loc["UVG", ["bd_rate_low", "bd_rate_high"]]
    assert cells[columns.index("HyTIP-PSNR-RGB")] == rf"\textbf{{{expected['UVG']:.1f}}} [{low:.1f}, {high:.1f}]"
    assert re.fullmatch(r"\d+\.\d \[\d+\.\d, \d+\.\d\]", cells[columns.index("x265-3.5")])   # worse: not bold
    assert r"\label{tab:bd_rate_psnr-rgb-bt601}" in tex and r"\%" in tex
    # x265's average covers 1 of the 2 datasets: marked with a dagger, explained in the caption.
    summary = (out / "tables" / "summary_bd_rate.tex").read_text()
    assert re.search(r"^x265-3\.5 & \d+\.\d \[\d+\.\d, \d+\.\d\]\\textsuperscript\{\\dag\} &", summary, re.M)
    assert r"\textsuperscript{\dag} x265-3.5, PSNR-RGB, BT.601: the average covers 1 of the 2 datasets" in summary


def test_incomplete_input_gives_notes_in_place(report):
    out, html = report
    section = html[html.index('id="bd-psnr-rgb-bt601"'):html.index('id="bd-psnr-rgb-bt709"')]
    assert "No BD-rate for x265-3.5 on HEVC-D" in section and "found 3" in section
    assert "No MS-SSIM-RGB values for x265-3.5" in html
    assert "x265-3.5 (no BD-rate)" in (out / "figures" / "rd_psnr-rgb-bt601-hevc-d.svg").read_text()
    assert "the average covers 1 of the 2 datasets" in html
    assert "Job hytip-PSNR-RGB__estimated__UVG__Bosphorus__q99__f96__ip32__BT601 failed" in html
    assert "HytipError: qp 99: expected 0..63" in html


def test_complexity_reproduction_and_drilldown(report, expected, intervals):
    out, html = report
    complexity = pd.read_csv(out / "tables" / "complexity.csv")
    measured = complexity[complexity["x values"] == "measured here"].set_index("codec")
    read = complexity[complexity["x values"] == "read from figure"].set_index("codec")
    # HyTIP from the fixture's complexity.json, at its own BD-rate; peers from the bundled counts, at the published
    # BD-rate over the same datasets and transform (the run's anchor is VTM-17.0, the published one's too)
    assert measured.loc["HyTIP-PSNR-RGB", "enc kMAC/px"] == pytest.approx(1265.834515625)
    assert measured.loc["HyTIP-PSNR-RGB", "avg BD-rate (%)"] == pytest.approx(expected["Average"])
    assert measured.loc["HyTIP-PSNR-RGB", "BD-rate from"] == "this run"
    bundled = {c["codec"]: c for c in json.loads(MEASURED.read_text())["configurations"]}
    assert measured.loc["DCVC-DC", "enc kMAC/px"] == pytest.approx(bundled["DCVC-DC"]["enc_kmac_per_pixel"])
    assert measured.loc["DCVC-DC", "temporal buffer (channels)"] == 55.75
    legends = load_bd_table_csv(ROOT / "anchors" / "published_bdrates_hytip_readme.csv")
    legends = legends[(legends["metric"] == "psnr_rgb") & (legends["color_transform"] == "BT601")
                      & legends["release"].str.contains("current")].set_index(["codec", "dataset"])["bd_rate_pct"]
    for codec in ("DCVC-DC", "MaskCRT"):
        value = (legends[codec, "UVG"] + legends[codec, "HEVC-D"]) / 2   # the fixture's PSNR-RGB BT.601 datasets
        assert read.loc[codec, "avg BD-rate (%)"] == pytest.approx(value)
    assert read.loc["DCVC-DC", "enc kMAC/px"] == 1343 and read.loc["HyTIP", "dec kMAC/px"] == 872
    assert measured.loc["DCVC-DC", "avg BD-rate (%)"] == read.loc["DCVC-DC", "avg BD-rate (%)"]
    assert "x265-3.5</b>: no complexity values" in html
    assert "ssf2020</b>: no average BD-rate" in html   # counted, but no BD-rate in the HyTIP protocol
    speed = pd.read_csv(out / "tables" / "speed.csv", index_col="codec")
    rd = load_rd_csv(FIXTURE / "results.csv")
    x265 = rd[rd["codec"] == "x265"]
    assert speed.loc["x265-3.5", "encode (s/frame)"] == pytest.approx(x265["enc_seconds"].sum() / x265["frames"].sum())
    assert speed.loc["VTM-17.0", "avg BD-rate (%)"] == 0 and speed.loc["x265-3.5", "device"] == "cuda:0 NVIDIA H200"
    vtm = rd[rd["codec"] == "VTM"]
    assert speed.loc["x265-3.5", "decode vs anchor"] == pytest.approx(
        x265["dec_seconds"].sum() / x265["frames"].sum() / (vtm["dec_seconds"].sum() / vtm["frames"].sum()))
    assert speed.loc["VTM-17.0", "encode vs anchor"] == 1
    assert (out / "figures" / "complexity_speed.svg").is_file()
    reproduction = pd.read_csv(out / "tables" / "reproduction.csv")
    row = reproduction[(reproduction["dataset"] == "UVG") & (reproduction["transform"] == "BT601")
                       & reproduction["published release"].str.startswith("8e2ea5d")
                       & (reproduction["codec"] == "HyTIP-PSNR-RGB")].iloc[0]
    assert row["published (%)"] == -34.7
    assert row["difference (pp)"] == pytest.approx(expected["UVG"] + 34.7)
    half = expected["UVG"] - intervals.loc["UVG", "bd_rate_low"]   # the published value lies below ours
    assert row["verdict"] == f"differs: {(expected['UVG'] + 34.7) / half:.1f} half-widths"
    assert (row["ours low"], row["ours high"]) == pytest.approx(tuple(intervals.loc["UVG", ["bd_rate_low",
                                                                                         "bd_rate_high"]]))
    assert (out / "figures" / "frames-hytip-psnr-rgb-uvg-beauty-bt-601.svg").is_file()
    assert "I-frames 1, 33, 65" in html
    assert (out / "figures" / "frames-hytip-psnr-rgb-uvg-beauty-bt-601.pdf").read_bytes().startswith(b"%PDF")


def _rd(**changes) -> pd.DataFrame:
    rd = load_rd_csv(FIXTURE / "results.csv").drop(columns=["file", "where"])
    return rd[(rd["color_transform"] == "BT601") & rd["codec_version"].isin(["17.0", "PSNR-RGB"])].assign(**changes)


def test_protocol_mismatch_with_published_is_flagged_not_compared(tmp_path):
    write_rd_csv(_rd(frames=64), tmp_path / "results.csv")
    build_report(read_inputs([tmp_path / "results.csv"]), tmp_path / "r", ReportOptions(drill_down=False))
    verdicts = set(pd.read_csv(tmp_path / "r" / "tables" / "reproduction.csv")["verdict"])
    assert verdicts == {"not comparable: frames 64 vs 96"}


def test_missing_anchor_and_disjoint_curves_are_notes(tmp_path):
    rd = _rd()
    hytip = rd["codec"] == "HyTIP"
    rd.loc[hytip, "psnr_rgb"] += 20          # quality far above the anchor's: no overlap
    rd.loc[hytip, "msssim_rgb"] = None
    falling = (rd["codec"] == "VTM") & (rd["rate_point"] == "qp37")
    rd.loc[falling, "msssim_rgb"] = 0.5      # an untrained or broken model's curve need not rise: a note, not a refusal
    write_rd_csv(rd, tmp_path / "results.csv", check_curves=False)
    html = build_report(read_inputs([tmp_path / "results.csv"]), tmp_path / "r",
                        ReportOptions(drill_down=False)).read_text()
    assert "HyTIP-PSNR-RGB (no BD-rate)" in html
    # one line per flagged curve pair, the files folded away
    flagged = re.findall(r"<li>(HyTIP-PSNR-RGB [^<]*) <details><summary>files</summary>test ([^<]*)</details></li>",
                         html_text.unescape(html))
    pairs = {(d, s, t) for d, s, t in zip(rd.loc[hytip, "dataset"], rd.loc[hytip, "sequence"],
                                           rd.loc[hytip, "color_transform"])}
    assert sorted(text for text, _ in flagged) == sorted(
        f"HyTIP-PSNR-RGB {d}/{q} {t} psnr_rgb: no overlap: no BD value with the anchor (0% along quality of the "
        f"anchor's range)" for d, q, t in pairs)   # 20 dB above the anchor at the same rates: disjoint along quality
    assert all("results.csv line" in files for _, files in flagged)
    assert "is not monotonic: msssim_rgb 0.5" in html
    html = build_report(read_inputs([tmp_path / "results.csv"]), tmp_path / "s",
                        ReportOptions(anchor="VVenC", drill_down=False)).read_text()
    assert "The anchor VVenC is not in the inputs" in html and "--anchor" in html
    assert not list((tmp_path / "s" / "tables").glob("bd_rate_*"))


def test_unreadable_inputs_name_the_file(tmp_path, capsys):
    binary = tmp_path / "results.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match=re.escape(str(binary))):
        read_inputs([binary])
    folder = tmp_path / "sweep"
    (folder / "records").mkdir(parents=True)
    (folder / "results.csv").write_text((FIXTURE / "results.csv").read_text())
    (folder / "records" / "broken.json").write_text("{not json")
    with pytest.raises(InputError, match=re.escape(str(folder / "records" / "broken.json"))):
        read_inputs([folder])
    assert main(["report", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "r")]) == 2
    assert f"{tmp_path / 'missing.csv'}: file not found" in capsys.readouterr().err


def test_parquet_results_read_as_the_csv(tmp_path):
    rd = load_rd_csv(FIXTURE / "results.csv").drop(columns=["file", "where"])
    rd.to_parquet(tmp_path / "results.parquet", index=False)
    parquet = read_inputs([tmp_path / "results.parquet"]).rd.drop(columns=["file", "where"])
    pd.testing.assert_frame_equal(parquet, rd)


def test_json_results_come_in_with_their_protocol(tmp_path):
    spec = [str(ANCHORS / "dcvc_vtm17_excerpt.json"), "codec=VTM", "codec_version=17.0", "codec_config=LDB",
            "color_transform=none", "metric_space=yuv420", "intra_period=-1"]
    path, options = parse_json_spec("dcvc", spec)
    assert options["intra_period"] == -1 and options["codec"] == "VTM"
    inputs = read_inputs([], [("dcvc", spec)])
    assert set(inputs.rd["codec"]) == {"VTM"} and inputs.files[0].path == str(path)
    # DCVC's raw file names become the catalogue's sequence names, so the points pair with our runs and anchors
    assert "Beauty" in set(inputs.rd["sequence"]) and not inputs.rd["sequence"].str.contains("_").any()
    with pytest.raises(InputError, match="'sequence_names=x' is not KEY=VALUE"):
        parse_json_spec("dcvc", spec + ["sequence_names=x"])
    with pytest.raises(InputError, match="missing dataset=..."):
        parse_json_spec("compressai", [str(ANCHORS / "compressai_VTM-v15.0-lowdelay.json"), "codec_version=15.0"])


def test_published_report(tmp_path):
    # HyTIP's complexity from the fixture's complexity.json rather than counted again (ptflops: test_complexity).
    html = build_published_report(tmp_path, complexity=read_complexity(FIXTURE / "complexity.json")).read_text()
    tables = tmp_path / "tables"
    current = pd.read_csv(next(tables.glob("published*-bdrates-hytip-readme-8e2ea5d-psnr-rgb-bt601.csv")),
                          index_col="dataset")
    assert current.loc["UVG", "HyTIP"] == -34.7
    # anchors/README.md: the mean of the 7 per-dataset values is -26.5 for HyTIP and -23.6 for DCVC-DC.
    assert round(current.loc["Mean (computed here)", "HyTIP"], 1) == -26.5
    assert round(current.loc["Mean (computed here)", "DCVC-DC"], 1) == -23.6
    assert len(list(tables.glob("published*-bdrates-dcvc-readme-*.csv"))) == 4   # DCVC-RT table, DCVC-DC and DCVC-FM bars
    complexity = pd.read_csv(tables / "complexity.csv")
    assert set(complexity["x values"]) == {"measured here", "read from figure"}
    for kind in ("measured here", "read from figure"):
        rows = complexity[complexity["x values"] == kind].set_index("codec")
        assert math.isclose(rows.loc["HyTIP", "avg BD-rate (%)"], current.loc["Mean (computed here)", "HyTIP"])
        assert rows.loc["DCVC-FM", "avg BD-rate (%)"] == pytest.approx(current.loc["Mean (computed here)", "DCVC-FM"])
    measured = complexity[complexity["x values"] == "measured here"].set_index("codec")
    assert measured.loc["HyTIP", "enc kMAC/px"] == pytest.approx(1265.834515625)   # the fixture's, not the bundle's
    assert "Complexity trade-off" in html and (tmp_path / "figures" / "complexity_tradeoff.pdf").is_file()
    assert not (tmp_path / "figures" / "complexity_speed.svg").exists()   # nothing was run
    assert "none was run here" in html and "read from figure" in html


@pytest.mark.parametrize("published, verdict", [
    (-22.4, "consistent"), (-17.6, "consistent"), (-20.0, "consistent"),
    (-23.0, "differs: 1.5 half-widths"),          # 3 below ours, whose interval reaches 2 below
    (-17.4, "differs: 1.3 half-widths"),          # 2.6 above ours, whose interval reaches 2 above
])
def test_reproduction_verdict_uses_our_interval_widened_by_the_tolerance(published, verdict):
    assert reproduction_verdict(-20.0, -22.0, -18.0, published, 0.5) == verdict


def test_reproduction_verdict_without_an_interval_uses_the_tolerance():
    assert reproduction_verdict(-20.0, float("nan"), float("nan"), -20.4, 0.5) == "consistent"
    assert reproduction_verdict(-20.0, float("nan"), float("nan"), -20.6, 0.5) == "differs"


def test_dcvc_json_without_a_size_in_its_names_takes_width_and_height_that_match_its_pixels(tmp_path):
    point = {"frame_pixel_num": 114688, "i_frame_num": 1, "p_frame_num": 7, "ave_all_frame_bpp": 0.1,
             "ave_all_frame_psnr": 35.0, "ave_all_frame_msssim": 0.98}
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"custom": {"clip": {"000": point}}}))
    spec = [str(path), "codec=Mine", "codec_version=1", "codec_config=x", "color_transform=BT601", "metric_space=rgb"]
    rd = read_inputs([], [("dcvc", spec + ["width=448", "height=256"])]).rd
    assert (rd["width"].iloc[0], rd["height"].iloc[0], rd["frames"].iloc[0]) == (448, 256, 8)
    with pytest.raises(InputError, match=r"mine.json: \[custom\]\[clip\]\[000\]: frame_pixel_num 114688 is not "
                                         r"width x height 448x240"):
        read_inputs([], [("dcvc", spec + ["width=448", "height=240"])])
