"""Leaving rate points out (--exclude-rate-points on bdrate and report, as DCVC's --rate_exclude)."""
from pathlib import Path

import pandas as pd
import pytest

from bench import cli
from bench.analysis.bdrate import bd_tables
from bench.analysis.rate_points import exclude_rate_points
from bench.analysis.rd_schema import load_bd_table_csv, load_rd_csv
from bench.errors import InputError
from reports import ReportOptions, build_report
from reports.inputs import read_inputs

COMPRESSAI = Path(__file__).parent.parent / "anchors" / "compressai_uvg1080p_video.csv"


def test_a_point_of_every_codec_or_of_one():
    rd = load_rd_csv(COMPRESSAI)
    rest, said = exclude_rate_points(rd, ["47"])
    assert set(rest["rate_point"]) == set(rd["rate_point"]) - {"47"}
    assert len(rd) - len(rest) == 3 and "47 of every codec" in said and "(3 RD points)" in said
    rest, said = exclude_rate_points(rd, ["x265-ffmpeg3.4.8:17", "VTM:20"])
    gone = rd[~rd.index.isin(rest.index)]
    assert sorted(zip(gone["codec"], gone["rate_point"])) == [("VTM", "20"), ("x265", "17")]
    assert "17 of x265-ffmpeg3.4.8; 20 of VTM" in said
    assert exclude_rate_points(rd, []) == (rd, "")


def test_a_point_that_matches_nothing_is_an_error_naming_what_there_is():
    rd = load_rd_csv(COMPRESSAI)
    with pytest.raises(InputError, match=r"--exclude-rate-points x264:99: no rate point '99' of x264; rate points: 1, 17"):
        exclude_rate_points(rd, ["x264:99"])
    with pytest.raises(InputError, match="no rate point '17' of VTM"):
        exclude_rate_points(rd, ["VTM:17"])


def test_bdrate_and_report_leave_the_points_out_and_say_so(tmp_path, capsys):
    out = tmp_path / "bd.csv"
    assert cli.main(["bdrate", str(COMPRESSAI), "--anchor", "VTM", "--metric", "psnr_rgb", "-o", str(out),
                     "--exclude-rate-points", "47", "x264:17"]) == 0
    assert "47 of every codec; 17 of x264" in capsys.readouterr().out
    rd = load_rd_csv(COMPRESSAI)
    expected = bd_tables(rd[(rd["rate_point"] != "47") & ~((rd["codec"] == "x264") & (rd["rate_point"] == "17"))],
                         "VTM", ["psnr_rgb"]).datasets
    written = load_bd_table_csv(out)
    assert written["bd_rate_pct"].to_numpy() == pytest.approx(expected["bd_rate_pct"].to_numpy())
    assert not (written["bd_rate_pct"].to_numpy() == pytest.approx(
        bd_tables(rd, "VTM", ["psnr_rgb"]).datasets["bd_rate_pct"].to_numpy()))

    index = build_report(read_inputs([COMPRESSAI]), tmp_path / "report",
                         ReportOptions(anchor="VTM", exclude_rate_points=("47",), drill_down=False, intervals=None))
    html = index.read_text()
    assert "Rate points left out of every curve, BD value and RD figure (--exclude-rate-points): 47 of every codec" in html
    points = pd.read_csv(tmp_path / "report" / "tables" / "bd_rate_psnr-rgb-unknown.csv", index_col="dataset")
    x265 = written[(written["codec"] == "x265-ffmpeg3.4.8") & (written["dataset"] == "UVG")]["bd_rate_pct"].iloc[0]
    only_47 = bd_tables(rd[rd["rate_point"] != "47"], "VTM", ["psnr_rgb"]).datasets
    assert points.loc["UVG", "x265-ffmpeg3.4.8"] == pytest.approx(
        only_47[(only_47["codec"] == "x265-ffmpeg3.4.8") & (only_47["dataset"] == "UVG")]["bd_rate_pct"].iloc[0])
    assert x265 == pytest.approx(points.loc["UVG", "x265-ffmpeg3.4.8"])   # x264's 17 moves x264 only
