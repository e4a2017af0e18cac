"""docs/compare-your-codec.md end to end: every command of its walk-through, verbatim, on the files it shows (its own
RD CSV and DCVC JSON), in a fresh work folder; then what a user reads off the results."""
import re

import pandas as pd

import guides

GUIDE = guides.ROOT / "docs" / "compare-your-codec.md"


def test_the_walk_through_runs_as_written_and_gives_what_it_says(tmp_path):
    out = guides.run(GUIDE, tmp_path)
    work = tmp_path

    anchor = pd.read_csv(work / "runs/anchor/results.csv")
    assert sorted(anchor["codec"].unique()) == ["VVenC", "x265"] and len(anchor) == 8
    assert set(anchor["crop"]) == {"centre-448x256"} and set(anchor["frames"]) == {8}

    # bdrate: MyCodec against VVenC with an interval; the imaginary codec lies below VVenC's rates at equal PSNR
    bd = pd.read_csv(work / "bd.csv")
    mine = bd[(bd["codec"] == "MyCodec-0.1") & (bd["metric"] == "psnr_rgb") & (bd["dataset"] == "custom")].iloc[0]
    assert mine["bd_rate_pct"] < 0 and mine["bd_rate_low"] <= mine["bd_rate_pct"] <= mine["bd_rate_high"]
    assert mine["protocol"].startswith("8 frames, intra period 8, crop centre-448x256")
    printed = next(v for k, v in out.items() if "bdrate mycodec.csv" in k and "--ci" in k)
    assert "MyCodec-0.1" in printed and re.search(r"-\d+\.\d+ \[-\d+\.\d+, -?\d+\.\d+\]", printed)

    # the report and its exports
    html = (work / "runs/report/index.html").read_text()
    assert "MyCodec-0.1" in html and "x265" in html
    listed = next(v for k, v in out.items() if k.startswith("ls runs/report"))
    assert ".tex" in listed and ".pdf" in listed and ".svg" in listed
    latex = (work / "runs/report/tables/bd_rate_psnr-rgb-bt601.tex").read_text()
    assert "\\textbf{" + f"{mine['bd_rate_pct']:.1f}" + "}" in latex   # MyCodec's value, best in its row

    # the refused mismatch exited 2 (the quoted message itself is checked by guides.run)
    assert next(v for k, v in out.items() if "mycodec-bilinear.csv runs" in k).strip() == "exit 2"

    # the DCVC JSON gives the same curve as the CSV, paired with the anchor under the same protocol
    json_html = (work / "runs/report-json/index.html").read_text()
    assert "MyCodec-0.1-dcvc" in json_html and "differ in protocol" not in json_html
    json_bd = pd.read_csv(work / "runs/report-json/tables/bd_rate_psnr-rgb-bt601.csv", index_col="dataset")
    csv_bd = pd.read_csv(work / "runs/report/tables/bd_rate_psnr-rgb-bt601.csv", index_col="dataset")
    assert json_bd.loc["custom", "MyCodec-0.1-dcvc"] == csv_bd.loc["custom", "MyCodec-0.1"] == mine["bd_rate_pct"]


def test_every_command_shown_still_parses():
    assert not guides.unparsed(GUIDE)
    assert [s.kind for s in guides.steps(GUIDE)].count("run") >= 5
