"""The dense-curve check: the 4-point protocol's interpolation error, measured (`rate_points: dense` sweeps).

A dense sweep codes each codec at many rate points over its protocol's span, the protocol's own among them (marked
`dense, protocol` in the results' rate_selection column, bench.sweep.rate_selection). The same records then give two
BD values per curve pair: from the protocol's 4 points of test and anchor (what a paper reports) and from all the
points (a curve dense enough that interpolation hardly matters). Their difference is the interpolation error of the
4-point protocol on this content, in BD-rate points: a number to hold next to a claimed gain, and beside the method
spread of bench.analysis.intervals, which only estimates it.
"""
from __future__ import annotations

import warnings

import pandas as pd

from bench.analysis.bdrate import bd_tables, codec_label
from bench.errors import InputError

PROTOCOL, DENSE = "dense, protocol", "dense"
KEY = ["codec", "anchor", "dataset", "color_transform", "metric"]


def dense_rows(rd: pd.DataFrame) -> pd.DataFrame:
    """The rows of dense sweeps (rate_selection dense or dense, protocol)."""
    if "rate_selection" not in rd:
        return rd.iloc[:0]
    return rd[rd["rate_selection"].isin([PROTOCOL, DENSE])]


def dense_check(rd: pd.DataFrame, anchor: str, metrics=("psnr_rgb", "msssim_rgb"), **options) -> pd.DataFrame:
    """Per test codec, dataset (and Average), colour transform and metric: the BD-rate from the protocol points
    (`bd_rate_protocol_pct`), from all points (`bd_rate_dense_pct`), their difference (protocol - dense) and the
    points per curve. ``options`` go to bd_tables (method, averaging, ...)."""
    dense = dense_rows(rd)
    if dense.empty:
        raise InputError("no dense curves: the dense-curve check needs a sweep with rate_points: dense "
                         "(run_bench.py run --rate-points dense)")
    protocol = dense[dense["rate_selection"] == PROTOCOL]
    with warnings.catch_warnings():   # the overlap is the same question for both; the BD tables report it
        warnings.simplefilter("ignore")
        four = bd_tables(protocol, anchor, metrics, **options).datasets
        many = bd_tables(dense, anchor, metrics, **options).datasets
    points = {"protocol": _points(protocol), "dense": _points(dense)}
    out = four[KEY + ["bd_rate_pct"]].rename(columns={"bd_rate_pct": "bd_rate_protocol_pct"}).merge(
        many[KEY + ["bd_rate_pct"]].rename(columns={"bd_rate_pct": "bd_rate_dense_pct"}), on=KEY)
    out["difference_pct"] = out["bd_rate_protocol_pct"] - out["bd_rate_dense_pct"]
    out["points"] = out["codec"].map(
        lambda label: f"{points['protocol'].get(label, '?')} vs {points['dense'].get(label, '?')}")
    out["anchor_points"] = out["anchor"].map(
        lambda label: f"{points['protocol'].get(label, '?')} vs {points['dense'].get(label, '?')}")
    return out


def _points(rows: pd.DataFrame) -> dict:
    """Points per curve of each codec label (the fewest over its curves)."""
    labels = [codec_label(c, v) for c, v in zip(rows["codec"], rows["codec_version"])]
    counts = rows.assign(label=labels).groupby(["label", "dataset", "sequence", "color_transform"]).size()
    return counts.groupby(level="label").min().to_dict()
