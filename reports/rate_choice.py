"""The report's "Rate points" section: how each curve's points were chosen (matched to the anchor: the probes, the
anchor's range and the choice, from a sweep's rate_match.json) and, for dense sweeps, the dense-curve check (the
4-point protocol's BD-rate next to the dense curve's, bench.analysis.dense_check)."""
from __future__ import annotations

import warnings

import pandas as pd

from bench.analysis.dense_check import dense_check, dense_rows
from bench.errors import InputError
from reports.tables import Table

METRIC_TEXT = {"psnr_rgb": "PSNR-RGB", "msssim_rgb": "MS-SSIM-RGB"}


def matching_table(matches: list) -> Table | None:
    """One row per matched codec, sequence (or dataset) and colour transform."""
    rows = []
    for _, doc in matches:
        for choice in doc.get("choices", []):
            target = choice["anchor_range"]
            quality = "; ".join(f"{METRIC_TEXT.get(m, m)} {lo:.4g}-{hi:.4g}" for m, (lo, hi) in target.items()
                                if m != "bpp")
            short = [end for end, ok in choice["reached"].items() if not ok]
            rows.append({
                "codec": choice["codec"] + ("" if choice.get("model", "n/a") == "n/a" else f"-{choice['model']}"),
                "sequence": f"{choice['dataset']}/{choice['sequence']}", "transform": choice["color_transform"],
                "anchor range": f"{target['bpp'][0]:.4g}-{target['bpp'][1]:.4g} bpp; {quality}",
                "probes": f"{len(choice['probed'])} of {choice['probe_frames']} frames: {' '.join(choice['probed'])}",
                "rate points": " ".join(choice["rate_points"]),
                "covered on the probe": min(choice["coverage"].values()) * 100,
                "ends": "both reached" if not short else f"{' and '.join(short)} beyond the codec's range"})
    if not rows:
        return None
    data = pd.DataFrame(rows).set_index("codec")
    anchors = sorted({doc.get("anchor", "?") for _, doc in matches})
    return Table("rate_matching", "Rate points matched to the anchor", data, decimals={"covered on the probe": 0},
                 latex=False, captions=[
                     f"Anchor: {', '.join(anchors)} at its own rate points. Each codec's ends were found by probing the "
                     "first GOP (galloping search, then bisection on its QP or HyTIP's index): the low end at or below "
                     "the anchor's lowest rate and quality, the high end at or above its highest; the points are "
                     "evenly spaced between them (bench.sweep.rate_match).",
                     "Covered on the probe: the least share, over log rate and each matched metric, of the anchor's "
                     "range that the probes at the two ends span (%). The full sequence's curve can differ a little."])


def dense_table(rd: pd.DataFrame, anchor: str | None, options: dict) -> tuple[Table | None, list]:
    """The dense-curve check of the dense sweeps among the inputs, when the anchor has dense curves too."""
    if anchor is None or dense_rows(rd).empty:
        return None, []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check = dense_check(rd, anchor, ["psnr_rgb", "msssim_rgb"], **options)
    except InputError as exc:
        return None, [f"Dense-curve check not made: {exc}"]
    data = check.assign(metric=check["metric"].map(lambda m: METRIC_TEXT.get(m, m))).set_index("codec")[
        ["dataset", "color_transform", "metric", "bd_rate_protocol_pct", "bd_rate_dense_pct", "difference_pct",
         "points", "anchor_points"]]
    data.columns = ["dataset", "transform", "metric", "BD-rate, 4 points (%)", "BD-rate, dense (%)",
                    "difference (points)", "points per curve", "anchor points per curve"]
    return Table("dense_check", f"Dense-curve check against {anchor}", data, default=2, captions=[
        "The same records twice: BD-rate from the protocol's own points of test and anchor (what a paper reports) and "
        "from every point of the dense sweep (rate_points: dense). The difference is the 4-point protocol's "
        "interpolation error on this content, in BD-rate points (bench.analysis.dense_check)."]), []
