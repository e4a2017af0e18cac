"""BD-rate / BD-quality: published test vectors, invariants, the bjontegaard package as reference, tables, CLI."""
from __future__ import annotations

import argparse
import warnings

import bjontegaard
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.analysis.bdrate import (
    AVERAGE_ROW,
    METHODS,
    OverlapWarning,
    bd_quality,
    bd_rate,
    bd_rate_batch,
    bd_tables,
    msssim_to_db,
)
from bench.analysis.rd_schema import RD_COLUMNS, load_bd_table_csv, write_rd_csv
from bench.benchmarks.bdrate_speed import synthetic_rd
from bench.cli import bdrate as bdrate_cli
from bench.errors import InputError

# VCEG-M33 curves as asserted by tbr/bjontegaard_cpp example.cpp (rate, PSNR).
TV1_ANCHOR = ([90.33, 181.03, 332.99, 547.79], [27.95, 31.17, 34.44, 38.11])
TV1_TEST = ([127.1719, 186.14, 307.2924, 481.5588], [29.9286, 32.4165, 34.7013, 37.4561])
# The FAU bjontegaard README example.
FAU_ANCHOR = ([9487.76, 4593.60, 2486.44, 1358.24], [40.037, 38.615, 36.845, 34.851])
FAU_TEST = ([9787.80, 4469.00, 2451.52, 1356.24], [40.121, 38.651, 36.970, 34.987])


@pytest.mark.parametrize("method, expected", [
    ("cubic", -13.261773),  # published VCEG-M33 value
    ("pchip", -13.292524),
    ("akima", -13.343473),
])
def test_tv1_bd_rate(method, expected):
    with pytest.warns(OverlapWarning, match="74%"):  # TV1's test covers 74 % of the anchor's PSNR range
        assert round(bd_rate(*TV1_ANCHOR, *TV1_TEST, method=method), 6) == expected


def test_tv1_bd_psnr_cubic_published():
    assert round(bd_quality(*TV1_ANCHOR, *TV1_TEST, method="cubic", min_overlap=0), 6) == 0.800713


@pytest.mark.parametrize("method, expected", [("cubic", -4.420463), ("pchip", -4.417485), ("akima", -4.425245)])
def test_fau_readme_example(method, expected):
    # Points given in falling rate order, as in the README: the order must not matter.
    assert round(bd_rate(*FAU_ANCHOR, *FAU_TEST, method=method), 6) == expected


def test_default_method_is_pchip():
    assert bd_rate(*TV1_ANCHOR, *TV1_TEST, min_overlap=0) == bd_rate(*TV1_ANCHOR, *TV1_TEST, "pchip", 0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("factor", [1.1, 0.8])
def test_scaled_rate_gives_exact_bd_rate(method, factor):
    rate, psnr = TV1_ANCHOR
    assert bd_rate(rate, psnr, np.multiply(rate, factor), psnr, method) == pytest.approx((factor - 1) * 100, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_shifted_quality_gives_exact_bd_quality(method):
    rate, psnr = TV1_ANCHOR
    assert bd_quality(rate, psnr, rate, np.add(psnr, 0.5), method) == pytest.approx(0.5, abs=1e-12)


curve = st.lists(st.floats(0.05, 1.0), min_size=4, max_size=8, unique=True)


@settings(max_examples=60, deadline=None)
@given(anchor_steps=curve, test_steps=curve, shift=st.floats(-0.3, 0.3), method=st.sampled_from(METHODS))
def test_matches_bjontegaard_package(anchor_steps, test_steps, shift, method):
    """Random monotone curves with different point counts: same values as bjontegaard 1.3.0 (per-call reference)."""
    ra = 0.01 * np.cumprod(1 + np.array(anchor_steps))
    qa = 30 + 8 * np.log10(ra / ra[0]) - np.cumsum(anchor_steps) * 0.1
    rt = 0.01 * np.cumprod(1 + np.array(test_steps)) * (1 + shift)
    qt = 30.2 + 8 * np.log10(rt / rt[0]) - np.cumsum(test_steps) * 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected_rate = bjontegaard.bd_rate(ra, qa, rt, qt, method, require_matching_points=False)
        expected_q = bjontegaard.bd_psnr(ra, qa, rt, qt, method, require_matching_points=False)
        ours_rate, ours_q = bd_rate(ra, qa, rt, qt, method), bd_quality(ra, qa, rt, qt, method)
    if np.isnan(expected_rate):
        assert np.isnan(ours_rate)
    else:
        assert ours_rate == pytest.approx(expected_rate, rel=1e-8, abs=1e-8)
    if np.isnan(expected_q):
        assert np.isnan(ours_q)
    else:
        assert ours_q == pytest.approx(expected_q, rel=1e-8, abs=1e-8)


def test_batch_equals_single_calls():
    rng = np.random.default_rng(3)
    ra = np.sort(rng.uniform(0.01, 0.5, (20, 5)), axis=1)
    qa = 30 + 3 * np.log2(ra / 0.01)
    rt = ra * rng.uniform(0.8, 1.2, (20, 1))
    qt = qa + rng.normal(0, 0.05, qa.shape)
    batch = bd_rate_batch(ra, qa, rt, qt).value
    single = [bd_rate(ra[i], qa[i], rt[i], qt[i]) for i in range(20)]
    np.testing.assert_allclose(batch, single, rtol=0, atol=1e-12)


def test_small_overlap_warns_and_disjoint_is_nan():
    rate, psnr = np.array(TV1_ANCHOR[0]), np.array(TV1_ANCHOR[1])
    # Shifted by 2/3 of the quality range: the test covers 1/3 of the anchor's range.
    shifted = psnr + (psnr[-1] - psnr[0]) * 2 / 3
    with pytest.warns(OverlapWarning, match="cover less than 75% of the anchor's range"):
        result = bd_rate_batch(rate, psnr, rate, shifted)
    assert result.overlap[0] == pytest.approx(1 / 3)
    # A test reaching 1 dB beyond the anchor at both ends covers all of it: the integral runs over the anchor's range.
    wider = (np.concatenate([[rate[0] * 0.8], rate, [rate[-1] * 1.25]]),
             np.concatenate([[psnr[0] - 1], psnr, [psnr[-1] + 1]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bd_rate_batch(rate, psnr, *wider).overlap[0] == pytest.approx(1.0)
    assert np.isfinite(result.value[0])
    with pytest.warns(OverlapWarning, match="do not overlap"):
        assert np.isnan(bd_rate(rate, psnr, rate, psnr + 20))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bd_rate(rate, psnr, rate, shifted, min_overlap=0.2)  # above the threshold: silent


def test_fewer_than_four_points_is_explained():
    with pytest.raises(InputError, match="at least 4 rate points.*found 3"):
        bd_rate(TV1_ANCHOR[0][:3], TV1_ANCHOR[1][:3], *TV1_TEST)


def test_repeated_quality_and_bad_method_are_errors():
    with pytest.raises(InputError, match="same value"):
        bd_rate([1, 2, 3, 4], [30, 31, 31, 33], [1, 2, 3, 4], [30, 31, 32, 33])
    with pytest.raises(InputError, match="unknown BD interpolation method"):
        bd_rate(*TV1_ANCHOR, *TV1_TEST, method="spline")
    with pytest.raises(InputError, match="positive"):
        bd_rate([0, 2, 3, 4], [30, 31, 32, 33], [1, 2, 3, 4], [30, 31, 32, 33])


def test_msssim_db():
    np.testing.assert_allclose(msssim_to_db([0.9, 0.99, 0.999]), [10, 20, 30])


# ---------------------------------------------------------------- tables
def _rows(codec, sequence, frames, rates, psnrs, dataset="SetA", version="1", **protocol):
    base = dict.fromkeys(RD_COLUMNS, None)
    base.update(codec=codec, codec_version=version, codec_config="test", dataset=dataset, sequence=sequence,
                color_transform="BT601", frames=frames, intra_period=32, crop="centre-64", width=64, height=64,
                input_format="rgb24", color_matrix="bt601", color_range="limited", color_filter="nearest",
                source="hand-made")
    base.update(protocol)
    return [{**base, "rate_point": str(i), "bpp": r, "psnr_rgb": q, "msssim_rgb": 1 - 10 ** (-q / 10)}
            for i, (r, q) in enumerate(zip(rates, psnrs))]


ANCHOR_RATES, ANCHOR_PSNR = [0.02, 0.05, 0.1, 0.2], [30.0, 32.5, 34.5, 36.0]


def _two_sequence_example(tmp_path):
    """Two sequences with the same anchor curve; the test needs 1.1x the rate on A (100 frames) and 1.3x on B
    (300 frames). Mean of per-sequence BD-rates: (10 + 30) / 2 = 20 %. Dataset-mean curve: rates averaged with
    frame weights, (1.1 * 100 + 1.3 * 300) / 400 = 1.25 times the anchor's at the same PSNR: 25 %."""
    rows = (_rows("VTM", "A", 100, ANCHOR_RATES, ANCHOR_PSNR, version="17.0")
            + _rows("VTM", "B", 300, ANCHOR_RATES, ANCHOR_PSNR, version="17.0")
            + _rows("HyTIP", "A", 100, np.multiply(ANCHOR_RATES, 1.1), ANCHOR_PSNR)
            + _rows("HyTIP", "B", 300, np.multiply(ANCHOR_RATES, 1.3), ANCHOR_PSNR))
    frame = pd.DataFrame(rows)
    path = tmp_path / "rd.csv"
    write_rd_csv(frame, path)
    return path


@pytest.mark.parametrize("method", METHODS)
def test_both_averaging_conventions_by_hand(tmp_path, method):
    from bench.analysis.rd_schema import load_rd_csv

    rd = load_rd_csv(_two_sequence_example(tmp_path))
    by_sequence = bd_tables(rd, "VTM-17.0", ["psnr_rgb"], method=method, averaging="sequences")
    per_seq = by_sequence.sequences.set_index("sequence")["bd_rate_pct"]
    assert per_seq["A"] == pytest.approx(10, abs=1e-9) and per_seq["B"] == pytest.approx(30, abs=1e-9)
    data = by_sequence.datasets.set_index("dataset")
    assert data.loc["SetA", "bd_rate_pct"] == pytest.approx(20, abs=1e-9)
    assert data.loc["SetA", "averaging"] == "mean of per-sequence BD values"
    assert data.loc["SetA", "sequences"] == 2
    by_curve = bd_tables(rd, "VTM-17.0", ["psnr_rgb"], method=method, averaging="curve").datasets.set_index("dataset")
    assert by_curve.loc["SetA", "bd_rate_pct"] == pytest.approx(25, abs=1e-9)
    assert by_curve.loc["SetA", "averaging"].startswith("BD of the dataset-mean curve")
    assert by_curve.loc[AVERAGE_ROW, "bd_rate_pct"] == pytest.approx(25, abs=1e-9)


def test_average_row_is_mean_of_datasets():
    rows = []
    for dataset, factor in (("SetA", 1.1), ("SetB", 0.8)):
        rows += _rows("VTM", "s", 96, ANCHOR_RATES, ANCHOR_PSNR, dataset=dataset, version="17.0")
        rows += _rows("HyTIP", "s", 96, np.multiply(ANCHOR_RATES, factor), ANCHOR_PSNR, dataset=dataset)
    rd = pd.DataFrame(rows).assign(file="mem", where="row")
    table = bd_tables(rd, "VTM", ["psnr_rgb"]).datasets.set_index("dataset")
    assert list(table.index) == ["SetA", "SetB", AVERAGE_ROW]
    assert table.loc[AVERAGE_ROW, "bd_rate_pct"] == pytest.approx((10 - 20) / 2, abs=1e-9)
    assert table.loc[AVERAGE_ROW, "averaging"].startswith("mean over 2 datasets")


def test_protocol_mismatch_is_refused_unless_allowed():
    rows = (_rows("VTM", "s", 600, ANCHOR_RATES, ANCHOR_PSNR, version="17.0", intra_period=-1)
            + _rows("HyTIP", "s", 96, np.multiply(ANCHOR_RATES, 0.9), ANCHOR_PSNR))
    rd = pd.DataFrame(rows).assign(file="results.csv", where="line 2")
    with pytest.raises(InputError, match=r"results.csv: line 2: .*differ in protocol.*frames 96 vs 600.*intra_period"):
        bd_tables(rd, "VTM-17.0", ["psnr_rgb"])
    tables = bd_tables(rd, "VTM-17.0", ["psnr_rgb"], allow_protocol_mismatch=True)
    assert tables.datasets["bd_rate_pct"].iloc[0] == pytest.approx(-10, abs=1e-9)
    assert any("protocol mismatch allowed" in n for n in tables.notes)


def test_missing_sequence_and_unknown_anchor_are_errors():
    rows = (_rows("VTM", "A", 96, ANCHOR_RATES, ANCHOR_PSNR, version="17.0")
            + _rows("VTM", "B", 96, ANCHOR_RATES, ANCHOR_PSNR, version="17.0")
            + _rows("HyTIP", "A", 96, ANCHOR_RATES, ANCHOR_PSNR))
    rd = pd.DataFrame(rows).assign(file="r.csv", where="line 2")
    with pytest.raises(InputError, match="HyTIP-1 on SetA BT601 lacks the anchor's sequence"):
        bd_tables(rd, "VTM-17.0", ["psnr_rgb"])
    with pytest.raises(InputError, match="anchor 'HM-16.25' is in none of the inputs"):
        bd_tables(rd, "HM-16.25", ["psnr_rgb"])


def test_table_uses_per_pair_values_with_uneven_point_counts():
    rd = synthetic_rd(n_codecs=2, points=5, anchor_points=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tables = bd_tables(rd, "VTM-17.0", ["psnr_rgb"], method="akima")
    row = tables.sequences.iloc[17]
    pick = (rd["dataset"] == row["dataset"]) & (rd["sequence"] == row["sequence"]) & (
        rd["color_transform"] == row["color_transform"])
    anchor = rd[pick & (rd["codec"] == "VTM")]
    test = rd[pick & (rd["codec"] + "-" + rd["codec_version"] == row["codec"])]
    assert len(anchor) == 6 and len(test) == 5
    expected = bjontegaard.bd_rate(anchor["bpp"], anchor["psnr_rgb"], test["bpp"], test["psnr_rgb"], "akima",
                                   require_matching_points=False, min_overlap=0)
    assert row["bd_rate_pct"] == pytest.approx(expected, rel=1e-9)


def test_benchmark_sized_table_is_complete():
    # Speed is measured by bench/benchmarks/bdrate_speed.py, not asserted here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tables = bd_tables(synthetic_rd(), "VTM-17.0", ["psnr_rgb", "msssim_rgb"])
    assert len(tables.sequences) == 60 * 10 * 4
    assert np.isfinite(tables.sequences["bd_rate_pct"]).all()


# ---------------------------------------------------------------- CLI
def _run_cli(argv):
    parser = argparse.ArgumentParser()
    bdrate_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bdrate"] + argv)
    return args.func(args)


def test_cli_prints_table_and_writes_csv(tmp_path, capsys):
    rd_path = _two_sequence_example(tmp_path)
    out = tmp_path / "bd.csv"
    assert _run_cli(["--anchor", "VTM-17.0", str(rd_path), "--metric", "psnr_rgb", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mean of per-sequence BD values" in printed and "pchip" in printed
    assert "psnr_rgb, colour transform BT601 (BD-rate %, negative = fewer bits than the anchor)" in printed
    table_lines = [line.split() for line in printed.splitlines()]
    assert ["SetA", "20.0"] in table_lines and [AVERAGE_ROW, "20.0"] in table_lines
    written = load_bd_table_csv(out)
    assert written["bd_rate_pct"].tolist() == pytest.approx([20, 20])
    assert set(written["codec"]) == {"HyTIP-1"} and set(written["anchor"]) == {"VTM-17.0"}


def test_cli_states_the_unit_of_bd_quality(tmp_path, capsys):
    rd_path = _two_sequence_example(tmp_path)
    args = ["--anchor", "VTM-17.0", str(rd_path), "--show", "quality", "-o", str(tmp_path / "bd.csv")]
    assert _run_cli(args + ["--metric", "psnr_rgb", "msssim_rgb"]) == 0
    printed = capsys.readouterr().out
    assert "psnr_rgb, colour transform BT601 (BD-quality dB)" in printed
    assert "msssim_rgb, colour transform BT601 (BD-quality, MS-SSIM units)" in printed
    assert _run_cli(args + ["--metric", "msssim_rgb", "--msssim-db"]) == 0
    assert "msssim_rgb_db, colour transform BT601 (BD-quality dB)" in capsys.readouterr().out
    from bench.cli.bdrate import _unit

    assert (_unit("vmaf", "quality"), _unit("xpsnr", "quality")) == ("BD-quality, VMAF points", "BD-quality dB")


def test_cli_help_lists_options(capsys):
    with pytest.raises(SystemExit):
        _run_cli(["--help"])
    text = capsys.readouterr().out
    for option in ("--anchor", "--method", "--average", "--msssim-db", "--output"):
        assert option in text


def test_msssim_in_db_is_labelled_and_used():
    rows = (_rows("VTM", "s", 96, ANCHOR_RATES, ANCHOR_PSNR, version="17.0")
            + _rows("HyTIP", "s", 96, np.multiply(ANCHOR_RATES, [0.9, 0.95, 1.0, 1.05]), ANCHOR_PSNR))
    rd = pd.DataFrame(rows).assign(file="mem", where="row")
    row = bd_tables(rd, "VTM-17.0", ["msssim_rgb"], msssim_db=True).sequences.iloc[0]
    anchor, test = rd[rd["codec"] == "VTM"], rd[rd["codec"] == "HyTIP"]
    expected = bd_rate(anchor["bpp"], msssim_to_db(anchor["msssim_rgb"]), test["bpp"], msssim_to_db(test["msssim_rgb"]))
    linear = bd_rate(anchor["bpp"], anchor["msssim_rgb"], test["bpp"], test["msssim_rgb"])
    assert row["metric"] == "msssim_rgb_db"
    assert row["bd_rate_pct"] == pytest.approx(expected, abs=1e-12) and abs(expected - linear) > 1e-3


def test_a_vmaf_tie_at_100_refuses_only_vmaf_and_says_how_to_leave_it_out(tmp_path):
    """VMAF saturates at 100: a file whose best points tie there is still read, and BD values on its other metrics
    are computed; a VMAF BD value is refused naming the curve, with the way out."""
    rows = (_rows("VTM", "A", 96, ANCHOR_RATES, ANCHOR_PSNR, version="17.0")
            + _rows("HyTIP", "A", 96, [*np.multiply(ANCHOR_RATES, 1.1), 0.4], [*ANCHOR_PSNR, 37.0]))
    for row, vmaf in zip(rows, [60, 80, 95, 99, 62, 81, 96, 100, 100], strict=True):
        row["vmaf"] = vmaf
    path = tmp_path / "rd.csv"
    write_rd_csv(pd.DataFrame(rows), path, check_curves=False)
    args = ["--anchor", "VTM-17.0", str(path), "-o", str(tmp_path / "bd.csv")]
    assert _run_cli(args + ["--metric", "psnr_rgb"]) == 0
    assert load_bd_table_csv(tmp_path / "bd.csv")["bd_rate_pct"].iloc[0] == pytest.approx(10, abs=0.1)
    with pytest.raises(InputError, match=r"rd.csv: line 9 and line 10: curve HyTIP/1/test/SetA/A/BT601 is not "
                                         r"monotonic: vmaf 100.0 at bpp 0.4 .*--exclude-rate-points"):
        _run_cli(args + ["--metric", "vmaf"])
    assert _run_cli(args + ["--metric", "vmaf", "--exclude-rate-points", "HyTIP:4"]) == 0
