"""Rate points matched to the anchor (bench.sweep.rate_match): the search on analytic curves, the bundled clip's
x264 and x265 covering VVenC, a per-dataset choice, HyTIP's probes (golden checkpoint: test data, not HyTIP
results), resuming from the probes, and the refusals."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import golden
from bench.analysis.bdrate import OverlapWarning, bd_tables
from bench.analysis.rd_schema import load_rd_csv
from bench.cli import main
from bench.codecs.base import RateAxis
from bench.codecs.conventional import ConventionalCodec
from bench.errors import InputError
from bench.sweep.rate_match import _last_true, choose, coverage
from bench.sweep.rate_selection import parse_rate_points
from test_sweep import data  # noqa: F401  (the Tiny dataset: two 128x64 sequences of 2 frames)

QP_AXIS = RateAxis(0, 51, more_bits_up=False)


def test_galloping_search_finds_the_boundary_with_few_probes():
    for boundary in (-1, 0, 7, 30, 51):
        calls = []

        def pred(p, boundary=boundary, calls=calls):
            calls.append(p)
            return p <= boundary
        assert _last_true(pred, 20, 52) == boundary
        assert len(calls) <= 2 * np.log2(52) + 2


def _codec(gain_db):
    """An analytic codec on the QP axis: rate halves every 6 QPs, PSNR falls 0.5 dB per QP; `gain_db` better."""
    def evaluate(qp):
        return {"bpp": 0.4 * 2 ** (-qp / 6), "psnr_rgb": 50 - 0.5 * qp + gain_db}
    return evaluate


def test_choose_covers_the_anchor_on_both_axes_and_is_the_tightest_choice():
    anchor = _codec(1.5)   # 1.5 dB better at every rate
    points = [anchor(q) for q in (22, 27, 32, 37)]
    target = {k: [min(p[k] for p in points), max(p[k] for p in points)] for k in ("bpp", "psnr_rgb")}
    probed = []
    test = _codec(0.0)

    def evaluate(qp):
        probed.append(qp)
        return test(qp)
    got = choose(evaluate, QP_AXIS, [22, 27, 32, 37], target, 4)
    # By hand: the low end needs bpp <= 0.4*2^(-37/6) (qp >= 37) and PSNR <= 50 - 18.5 + 1.5 = 33 dB (qp >= 34):
    # qp37; the high end needs bpp >= 0.4*2^(-22/6) (qp <= 22) and PSNR >= 40 dB (qp <= 19): qp19.
    assert got == {"values": [37, 31, 25, 19], "reached": {"low": True, "high": True}}
    assert len(set(probed)) <= 8          # the straight-line start saves most of a 52-value walk
    cover = coverage(test(37), test(19), target)
    assert cover == {"bpp": 1.0, "psnr_rgb": 1.0}


def test_an_end_beyond_the_codec_range_is_said():
    weak = _codec(-30.0)   # never reaches the anchor's top quality
    points = [_codec(0)(q) for q in (22, 37)]
    target = {k: [min(p[k] for p in points), max(p[k] for p in points)] for k in ("bpp", "psnr_rgb")}
    got = choose(weak, QP_AXIS, [22, 27, 32, 37], target, 4)
    assert got["reached"] == {"low": True, "high": False} and got["values"][-1] == 0


@pytest.mark.parametrize("value, error", [
    ("fast", "mode 'fast': expected match or dense"),
    ({"mode": "match", "points": 3}, "points 3: expected an integer of at least 4"),
    ({"mode": "match", "per": "frame"}, "per 'frame': expected one of sequence, dataset"),
    ({"mode": "dense", "per": "dataset"}, "per apply to mode match only"),
    ({"mode": "match", "ancor": "vtm"}, "unknown key(s) ancor"),
    ([{"i_quality": 70, "qp": 0}], "HyTIP i_quality 70 is outside 0..63"),
])
def test_rate_points_values_are_checked(value, error):
    with pytest.raises(InputError, match=error.replace("(", r"\(").replace(")", r"\)")):
        parse_rate_points(value)


def _bundled(out, *extra, size="448x256", frames="32"):
    """The demo's protocol on the bundled clip, BT601 only."""
    return ["run", "--input", "bundled", "--name", "BigBuckBunny", "--dataset-label", "bundled-clip",
            "--crop-size", size, "--frames", frames, "--intra-period", frames, "--color-transforms", "BT601",
            "--encoder-jobs", "2", "--out", str(out), "--no-progress", *extra]


def test_matched_x264_and_x265_cover_vvenc_on_the_bundled_clip(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(_bundled(out, "--codecs", "x264", "x265", "vvenc", "--match-anchor")) == 0
    text = capsys.readouterr().out
    assert "rate match: x264 bundled-clip/BigBuckBunny BT601:" in text and "rate matching: " in text
    table = pd.read_csv(out / "results.csv")
    assert set(table.loc[table.codec == "VVenC", "rate_point"]) == {"qp22", "qp27", "qp32", "qp37"}
    assert (table.loc[table.codec == "VVenC", "rate_selection"] == "fixed").all()
    assert (table.loc[table.codec != "VVenC", "rate_selection"] ==
            "matched to vvenc per sequence (probe: first GOP)").all()
    doc = json.loads((out / "rate_match.json").read_text())
    assert {c["codec"] for c in doc["choices"]} == {"x264", "x265"} and doc["anchor"] == "vvenc"
    for choice in doc["choices"]:
        assert choice["probe_frames"] == 32 and len(choice["rate_points"]) == 4
        probes = [p for p in doc["probes"].values() if p["codec"] == choice["codec"]]
        assert sorted(p["rate_point"] for p in probes) == sorted(choice["probed"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", OverlapWarning)
        bd = bd_tables(load_rd_csv(out / "results.csv"), "VVenC", ["psnr_rgb", "msssim_rgb"]).sequences
    # The bar: every pair's overlap, as the BD tables measure it, is at least 90 % (both BD directions:
    # bd_tables' overlap is BD-rate's along quality; BD-quality's along log rate is checked from the points).
    assert (bd["overlap"] >= 0.9).all() and len(bd) == 4
    # The report shows the choice and flags no pair.
    assert main(["report", str(out), "--anchor", "VVenC", "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Rate points matched to the anchor" in page and "short overlap" not in page and "no overlap" not in page
    for choice in doc["choices"]:
        assert " ".join(choice["rate_points"]) in page
    anchor = table[table.codec == "VVenC"]
    for codec in ("x264", "x265"):
        rows = table[table.codec == codec]
        lo, hi = np.log10(anchor.bpp.min()), np.log10(anchor.bpp.max())
        covered = min(np.log10(rows.bpp.max()), hi) - max(np.log10(rows.bpp.min()), lo)
        assert covered / (hi - lo) >= 0.9


def test_rerun_takes_the_probes_from_rate_match_json(tmp_path, capsys, monkeypatch):
    out = tmp_path / "m"
    small = dict(size="256x176", frames="4")
    args = ("--codecs", "x264", "vvenc", "--match-anchor", "vvenc", "--qps", "24", "40")
    assert main(_bundled(out, *args, **small)) == 0
    first = json.loads((out / "rate_match.json").read_text())

    def refuse(*args, **kwargs):
        raise AssertionError("coded again")
    monkeypatch.setattr(ConventionalCodec, "code", refuse)
    assert main(_bundled(out, *args, **small)) == 0
    again = json.loads((out / "rate_match.json").read_text())
    assert again["choices"] == first["choices"] and again["probes"] == first["probes"]


def _tiny(data, out, *extra):  # noqa: F811
    return ["run", "--dataset", "Tiny", "--catalog", str(data / "tiny.yaml"), "--data-root", str(data),
            "--color-transforms", "BT601", "--threads", "1", "--out", str(out), "--no-progress", *extra]


def test_per_dataset_one_choice_for_all_sequences_against_the_dataset_mean(data, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "d"
    assert main(_tiny(data, out, "--codecs", "x264", "x265", "--match-anchor", "x265", "--match-per",
                      "dataset")) == 0
    doc = json.loads((out / "rate_match.json").read_text())
    (choice,) = doc["choices"]
    assert choice["sequence"] == "(all)" and choice["codec"] == "x264"
    table = pd.read_csv(out / "results.csv")
    x264 = table[table.codec == "x264"]
    assert sorted(set(x264.rate_point)) == sorted(choice["rate_points"])
    assert x264.groupby("sequence").size().to_dict() == {"a": 4, "b": 4}
    anchor = table[table.codec == "x265"].groupby("rate_point")["bpp"].mean()
    assert choice["anchor_range"]["bpp"] == pytest.approx([anchor.min(), anchor.max()])
    # Each probe of the choice was made on both sequences, and the choice used their mean.
    probes = pd.DataFrame(doc["probes"].values())
    assert probes.groupby("rate_point")["sequence"].apply(lambda names: sorted(names) == ["a", "b"]).all()


def test_hytip_probes_estimated_rates_on_its_index(data, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "h"
    assert main(_tiny(data, out, "--codecs", "hytip", "x264", "--checkpoint",
                      f"golden={golden.golden_checkpoint_path()}", "--match-anchor", "x264",
                      "--sequences", "a")) == 0
    doc = json.loads((out / "rate_match.json").read_text())
    (choice,) = doc["choices"]
    probes = [p for p in doc["probes"].values() if p["codec"] == "HyTIP"]
    assert probes and all(p["rate_mode"] == "estimated" and p["frames"] == 2 for p in probes)
    assert all(p["rate_point"] == f"i{p['value']}-qp{p['value']}" for p in probes)
    table = pd.read_csv(out / "results.csv")
    assert sorted(table.loc[table.codec == "HyTIP", "rate_point"]) == sorted(choice["rate_points"])


def test_dry_run_lists_the_anchor_jobs_and_says_what_follows(tmp_path, capsys):
    assert main(_bundled(tmp_path / "x", "--codecs", "x264", "vvenc", "--match-anchor", "--dry-run")) == 0
    text = capsys.readouterr().out
    assert "4 jobs" in text and "vvenc__yuv420__bundled-clip__BigBuckBunny__qp22" in text and "x264__" not in text
    assert "other codecs' rate points are chosen after them" in text


def test_a_missing_anchor_is_refused_before_anything_runs(tmp_path, capsys):
    assert main(_bundled(tmp_path / "x", "--codecs", "x264", "--match-anchor", "vtm")) == 2
    assert "the anchor 'vtm' is not among the sweep's codecs (x264)" in capsys.readouterr().err
    assert main(_bundled(tmp_path / "x", "--codecs", "x264", "x265", "--match-anchor")) == 2
    assert "no anchor among the sweep's codecs" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
