"""The dense-curve check (bench.analysis.dense_check) on synthetic curves whose BD-rate is known exactly, and dense
rate points in a sweep (bench.sweep.rate_selection)."""
import numpy as np
import pandas as pd
import pytest

from bench import REPO_ROOT
from bench.analysis.bdrate import bd_rate
from bench.analysis.dense_check import dense_check
from bench.analysis.rd_schema import load_rd_csv, write_rd_csv
from bench.cli import main
from bench.codecs.base import RateAxis
from bench.errors import InputError
from bench.sweep.rate_selection import parse_rate_points

GAIN = 0.8   # the test needs 0.8 times the anchor's rate at every quality: BD-rate exactly -20 %


def log_rate(q):
    """A smooth, convex, non-polynomial RD curve (log10 bpp as a function of PSNR), which a cubic cannot fit."""
    return -2.5 + 0.04 * (q - 30) + 0.35 * (np.exp((q - 30) / 7) - 1)


def _rows(codec, qualities, protocol, scale=1.0):
    template = load_rd_csv(REPO_ROOT / "tests" / "data" / "report" / "sweep" / "results.csv").iloc[0]
    rows = []
    for i, q in enumerate(qualities):
        bpp = scale * 10 ** log_rate(q)
        rows.append({**template.to_dict(), "codec": codec, "codec_version": "1", "rate_point": f"p{i}", "bpp": bpp,
                     "kbps": bpp * 1000, "psnr_rgb": q, "msssim_rgb": 1 - 10 ** (-q / 20),
                     "rate_selection": "dense, protocol" if i in protocol else "dense"})
    return rows


def _curves():
    anchor_q = np.linspace(31, 43, 25)                         # 4 protocol points: every 8th
    test_q = np.linspace(30.2, 43.6, 25)
    protocol = {0, 8, 16, 24}
    rd = pd.DataFrame(_rows("A", anchor_q, protocol) + _rows("T", test_q, protocol, GAIN))
    return rd, anchor_q, test_q, sorted(protocol)


def test_dense_bd_is_the_exact_value_and_the_difference_is_the_protocols_interpolation_error():
    rd, anchor_q, test_q, protocol = _curves()
    table = dense_check(rd, "A", ["psnr_rgb"])
    row = table[table["dataset"] == rd["dataset"].iloc[0]].iloc[0]
    assert row["bd_rate_dense_pct"] == pytest.approx(-20.0, abs=0.02)       # dense: interpolation hardly matters
    four = bd_rate(10 ** log_rate(anchor_q[protocol]), anchor_q[protocol],
                   GAIN * 10 ** log_rate(test_q[protocol]), test_q[protocol])
    assert row["bd_rate_protocol_pct"] == pytest.approx(four, abs=1e-9)
    assert abs(four + 20) > 0.1                                             # the 4-point value is off ...
    assert row["difference_pct"] == pytest.approx(four - row["bd_rate_dense_pct"], abs=1e-9)   # ... by this
    assert row["points"] == "4 vs 25" and row["anchor_points"] == "4 vs 25"


def test_the_report_shows_the_check(tmp_path, capsys):
    rd, *_ = _curves()
    write_rd_csv(rd, tmp_path / "dense.csv")
    assert main(["report", str(tmp_path / "dense.csv"), "--anchor", "A", "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "index.html").read_text()
    check = dense_check(rd, "A", ["psnr_rgb", "msssim_rgb"])
    assert "Dense-curve check against A-1" in page
    for value in check["difference_pct"]:
        assert f"{value:.2f}" in page


def test_without_dense_rows_the_check_says_what_it_needs():
    rd, *_ = _curves()
    with pytest.raises(InputError, match="rate_points: dense"):
        dense_check(rd.assign(rate_selection="fixed"), "A", ["psnr_rgb"])


def test_dense_values_include_the_protocol_points_and_stay_in_range():
    qp = RateAxis(0, 51, more_bits_up=False)
    assert parse_rate_points("dense").dense_values(qp, [22, 27, 32, 37]) == list(range(22, 38))
    twelve = parse_rate_points({"mode": "dense", "points": 12}).dense_values(qp, [22, 27, 32, 37])
    assert {22, 27, 32, 37} <= set(twelve) and len(twelve) >= 12 and min(twelve) == 22 and max(twelve) == 37
    index = RateAxis(0, 63, more_bits_up=True, paired=True)
    values = parse_rate_points({"mode": "dense", "points": 22}).dense_values(index, [0, 21, 42, 63])
    assert values == list(range(0, 64, 3))


def test_a_dense_sweep_marks_the_protocol_points(tmp_path, capsys):
    out = tmp_path / "dense"
    assert main(["run", "--input", "bundled", "--name", "clip", "--codecs", "x264", "--crop-size", "256x176",
                 "--frames", "2", "--intra-period", "2", "--color-transforms", "BT601", "--qps", "30", "36",
                 "--rate-points", "dense:5", "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out / "results.csv").sort_values("qp")
    assert table["qp"].tolist() == [30, 32, 33, 34, 36]
    assert table["rate_selection"].tolist() == ["dense, protocol", "dense", "dense", "dense", "dense, protocol"]
