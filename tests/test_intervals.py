"""BD-rate intervals (bench.analysis.intervals): bootstrap against an exact enumeration, bdci with the right group
on real curves, the method spread, the dataset and Average aggregation, and `run_bench.py bdrate --ci`."""
import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import cli
from bench.analysis.bdrate import METHODS, bd_rate
from bench.analysis.intervals import (
    IntervalOptions,
    PairColumns,
    bd_tables_with_intervals,
    bdci_group,
    bootstrap,
    interval_text,
)
from bench.analysis.rd_schema import load_bd_table_csv, load_rd_csv

ROOT = Path(__file__).parent.parent
COMPRESSAI = ROOT / "anchors" / "compressai_uvg1080p_video.csv"


def test_bootstrap_matches_the_exact_distribution_of_the_resampled_mean():
    """Six values, so every one of the 6**6 equally likely resamples can be enumerated: the bounds of the seeded
    bootstrap sit at the exact distribution's 5th and 95th percentiles, within a percentile point (its Monte Carlo
    error with 40000 resamples is a tenth of that)."""
    values = np.array([0.0, 1.0, 2.5, 4.0, 10.0, 11.3])
    exact = np.array([np.mean(c) for c in itertools.product(values, repeat=6)])
    options = IntervalOptions(resamples=40000, seed=7, level=0.9)
    low, high = bootstrap(values, options, "a/key")
    for bound, share in ((low, 0.05), (high, 0.95)):
        assert (exact < bound).mean() - 0.01 <= share <= (exact <= bound).mean() + 0.01, bound
    assert high - low > 5
    assert bootstrap(values, options, "a/key") == (low, high)                 # reproducible
    assert bootstrap(values, options, "another/key") != (low, high)           # each group its own stream
    assert bootstrap(values, IntervalOptions(resamples=40000, seed=8, level=0.9), "a/key") != (low, high)
    assert bootstrap(np.array([3.5]), options, "k") == (3.5, 3.5)              # one sequence: no sampling spread
    assert all(math.isnan(v) for v in bootstrap(np.array([1.0, np.nan]), options, "k"))


def _curves(codec: str, metric: str):
    rd = load_rd_csv(COMPRESSAI)
    rows = rd[rd["codec"] == codec].sort_values("kbps")
    return rows["kbps"].to_numpy(float), rows[metric].to_numpy(float)


@pytest.mark.parametrize("metric, group", [("psnr_rgb", "PSNR"), ("msssim_rgb", "COV")])
def test_bdci_interval_is_its_groups_put_around_our_value(metric, group):
    """x265 against VTM-15.0 on UVG (CompressAI's published curves): the interval's width in log rate is bdci's own
    BDCI_RATE with the metric's group (PSNR for PSNR, COV for MS-SSIM), not its generic default's, and that raw
    interval holds bdci's own estimate; ours is centred on the PCHIP value instead."""
    from bdci.functional import BDCI_RATE, BD_RATE

    ra, qa = _curves("VTM", metric)
    rt, qt = _curves("x265", metric)
    value = bd_rate(ra, qa, rt, qt)
    k = 2.0
    columns = PairColumns(IntervalOptions(bdci_k=k))(metric, ra[None], qa[None], rt[None], qt[None], np.array([value]))
    low, high = columns["interpolation_low"][0], columns["interpolation_high"][0]
    assert bdci_group(metric) == group and low < value < high

    def width(lo, hi):
        return math.log1p(hi / 100) - math.log1p(lo / 100)

    raw = BDCI_RATE(ra, qa, rt, qt, weight_group=group, k=k)
    generic = BDCI_RATE(ra, qa, rt, qt, weight_group="GENERIC", k=k)
    assert width(low, high) == pytest.approx(width(*raw), rel=1e-6)
    assert width(*generic) != pytest.approx(width(*raw), rel=1e-3)
    assert raw[0] < BD_RATE(ra, qa, rt, qt, weight_group=group) < raw[1]
    # around our value: equal halves in log rate
    assert math.log1p(high / 100) - math.log1p(value / 100) == pytest.approx(
        math.log1p(value / 100) - math.log1p(low / 100), rel=1e-9)
    for method in METHODS:
        assert columns[f"bd_rate_{method}"][0] == pytest.approx(bd_rate(ra, qa, rt, qt, method=method))


def _rd(shifts: dict) -> pd.DataFrame:
    """An anchor and codec X on two datasets: per sequence, X's curve is the anchor's with every rate scaled by
    ``shifts[(dataset, sequence)]``, so its BD-rate is exactly (scale - 1) * 100 by every method."""
    rd = load_rd_csv(ROOT / "tests" / "data" / "report" / "sweep" / "results.csv")
    anchor = rd[(rd["codec"] == "VTM") & (rd["color_transform"] == "BT601")]
    rows = []
    for (dataset, sequence), scale in shifts.items():
        mine = anchor[(anchor["dataset"] == dataset) & (anchor["sequence"] == sequence)]
        rows += [mine, mine.assign(codec="X", codec_version="1", bpp=mine["bpp"] * scale, kbps=mine["kbps"] * scale)]
    return pd.concat(rows, ignore_index=True)


def test_dataset_and_average_intervals_aggregate_their_parts():
    rd = load_rd_csv(ROOT / "tests" / "data" / "report" / "sweep" / "results.csv")
    sequences = rd[(rd["codec"] == "VTM") & (rd["color_transform"] == "BT601")].drop_duplicates(
        ["dataset", "sequence"])[["dataset", "sequence"]]
    scales = {key: s for key, s in zip(map(tuple, sequences.to_numpy()), np.linspace(0.7, 0.95, len(sequences)))}
    options = IntervalOptions(resamples=500, seed=3)
    tables = bd_tables_with_intervals(_rd(scales), "VTM-17.0", ["psnr_rgb"], options)
    per_sequence = tables.sequences
    assert per_sequence["bd_rate_pct"].to_numpy() == pytest.approx(
        [(scales[d, s] - 1) * 100 for d, s in zip(per_sequence["dataset"], per_sequence["sequence"])], abs=1e-9)
    for method in METHODS:   # an exact scaling: every method agrees, so the spread is the value itself
        assert per_sequence[f"bd_rate_{method}"].to_numpy() == pytest.approx(per_sequence["bd_rate_pct"], abs=1e-9)
    datasets = tables.datasets.set_index("dataset")
    for dataset, rows in per_sequence.groupby("dataset"):
        row = datasets.loc[dataset]
        assert (row["method_low"], row["method_high"]) == pytest.approx((row["bd_rate_pct"],) * 2, abs=1e-9)
        assert row["interpolation_low"] == pytest.approx(rows["interpolation_low"].mean())
        assert row["interpolation_high"] == pytest.approx(rows["interpolation_high"].mean())
        expected = bootstrap(rows["bd_rate_pct"].to_numpy(), options,
                             "/".join(["X-1", "VTM-17.0", dataset, "BT601", "psnr_rgb"]))
        assert (row["sampling_low"], row["sampling_high"]) == pytest.approx(expected)
        assert row["bd_rate_low"] == min(row[["interpolation_low", "method_low", "sampling_low"]])
        assert row["bd_rate_high"] == max(row[["interpolation_high", "method_high", "sampling_high"]])
    average = datasets.loc["Average"]
    per_dataset = datasets.drop("Average")
    assert average["interpolation_low"] == pytest.approx(per_dataset["interpolation_low"].mean())
    assert (average["sampling_low"], average["sampling_high"]) == pytest.approx(
        bootstrap(per_dataset["bd_rate_pct"].to_numpy(), options, "X-1/VTM-17.0/BT601/psnr_rgb"))
    assert "2000" not in average["interval"] and "500 resamples, seed 3" in average["interval"]


def test_interval_text():
    assert interval_text(-12.345, -14.0, -10.55) == "-12.3 [-14.0, -10.6]"
    assert interval_text(5.0, float("nan"), 6.0) == "5.0"
    assert interval_text(float("nan"), 1.0, 2.0) == "n/a"


def test_bdrate_ci_prints_and_writes_every_part(tmp_path, capsys):
    out = tmp_path / "bd.csv"
    assert cli.main(["bdrate", str(COMPRESSAI), "--anchor", "VTM", "--metric", "psnr_rgb", "--ci", "--seed", "5",
                     "-o", str(out), "--per-sequence", str(tmp_path / "seq.csv")]) == 0
    printed = capsys.readouterr().out
    table = load_bd_table_csv(out)
    x265 = table[(table["codec"] == "x265-ffmpeg3.4.8") & (table["dataset"] == "UVG")].iloc[0]
    assert interval_text(x265["bd_rate_pct"], x265["bd_rate_low"], x265["bd_rate_high"]) in printed
    assert x265["bd_rate_low"] < x265["bd_rate_pct"] < x265["bd_rate_high"]
    assert "seed 5" in x265["interval"] and "seed 5" in printed and "bdci" in printed
    sequences = pd.read_csv(tmp_path / "seq.csv")
    assert {"bd_rate_pchip", "bd_rate_akima", "bd_rate_cubic", "interpolation_low"} <= set(sequences.columns)
    plain = tmp_path / "plain.csv"
    assert cli.main(["bdrate", str(COMPRESSAI), "--anchor", "VTM", "--metric", "psnr_rgb", "-o", str(plain)]) == 0
    assert "bd_rate_low" not in plain.read_text().splitlines()[0]


def test_curve_averaging_has_no_sampling_interval_but_the_others():
    """With 'curve' averaging a dataset's value is one BD of its mean curve: no sequences to resample."""
    rd = load_rd_csv(ROOT / "tests" / "data" / "report" / "sweep" / "results.csv")
    rd = rd[rd["codec_version"].isin(["17.0", "PSNR-RGB"])]
    tables = bd_tables_with_intervals(rd, "VTM-17.0", ["psnr_rgb"], IntervalOptions(resamples=200), averaging="curve")
    uvg = tables.datasets[(tables.datasets["dataset"] == "UVG") & (tables.datasets["color_transform"] == "BT601")]
    assert uvg["sampling_low"].isna().all() and uvg["interpolation_low"].notna().all()
    assert (uvg["bd_rate_low"] < uvg["bd_rate_pct"]).all() and (uvg["bd_rate_pct"] < uvg["bd_rate_high"]).all()
