"""Reproduced versus published: our BD-rates next to the published tables of anchors/, the difference in percentage
points and a verdict against a tolerance. A cell whose protocol differs (frames, intra period, crop, colour matrix)
is flagged "not comparable" rather than compared; what the source does not state is listed as a caveat (no
published table states its colour range and chroma filter, which the report's caption says).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from bench import REPO_ROOT
from bench.analysis.bdrate import AVERAGE_ROW
from bench.analysis.rd_schema import load_bd_table_csv

PUBLISHED_TABLES = (REPO_ROOT / "anchors" / "published_bdrates_hytip_readme.csv",
                    REPO_ROOT / "anchors" / "published_bdrates_dcvc_readme.csv")
# The HyTIP README plots each metric with the model trained for it.
HYTIP_MODEL_FOR_METRIC = {"psnr_rgb": "PSNR-RGB", "msssim_rgb": "MS-SSIM-RGB"}
_FRAMES = re.compile(r"(\d+) frames")
_INTRA = re.compile(r"intra period (-?\d+)")


def load_published() -> pd.DataFrame:
    """The published BD tables of anchors/, with ``anchor_label``: the anchor without its configuration in brackets
    ("VTM-17.0 (LDB)" -> "VTM-17.0"), as our anchor is labelled."""
    published = pd.concat([load_bd_table_csv(p) for p in PUBLISHED_TABLES], ignore_index=True)
    return published.assign(anchor_label=published["anchor"].str.replace(r"\s*\(.*\)$", "", regex=True))


def published_name(label: str, metric: str) -> str:
    model = HYTIP_MODEL_FOR_METRIC.get(metric.removesuffix("_db"))
    return "HyTIP" if model and label == f"HyTIP-{model}" else label


def _published_protocol(text: str, transform: str) -> dict:
    """What a published table's protocol text states: frames, intra period, crop and colour matrix."""
    frames = "all" if "all frames" in text else (m[1] if (m := _FRAMES.search(text)) else "not stated")
    intra = m[1] if (m := _INTRA.search(text)) else "not stated"
    crop = "centre-64" if "centre crop to a multiple of 64" in text else ("none" if "no crop" in text else "not stated")
    matrix = {"BT601": "bt601", "BT709": "bt709"}.get(transform, "not stated")
    return {"frames": frames, "intra_period": intra, "crop": crop, "color_matrix": matrix}


def _our_protocol(rd: pd.DataFrame, label: str, dataset: str, transform: str) -> dict:
    rows = rd[(rd["label"] == label) & (rd["dataset"] == dataset) & (rd["color_transform"] == transform)]
    return {c: "/".join(sorted({str(v) for v in rows[c].dropna()})) or "unknown"
            for c in ("frames", "intra_period", "crop", "color_matrix")}


def _short_source(text: str) -> str:
    """owner/repo@commit7 file-name of a published source, the part a reader needs to find the figure."""
    match = re.match(r"(\S+?)@([0-9a-f]{7})[0-9a-f]*\s+(\S+?)(:|$)", text)
    return f"{match[1]}@{match[2]} {match[3].rsplit('/', 1)[-1]}" if match else text


def reproduction_verdict(value: float, low: float, high: float, published: float, tolerance: float) -> str:
    """consistent when the published value lies in our interval widened by ``tolerance`` on each side; otherwise
    differs, by how many of our interval's half-widths the published value lies from ours. Without an interval the
    tolerance alone decides."""
    if pd.isna(low) or pd.isna(high):
        return "consistent" if abs(value - published) <= tolerance else "differs"
    if low - tolerance <= published <= high + tolerance:
        return "consistent"
    half = high - value if published > value else value - low   # our interval on the published value's side
    return f"differs: {abs(published - value) / half:.1f} half-widths" if half > 0 else "differs"


def reproduction(ours: pd.DataFrame, rd: pd.DataFrame, tolerance: float):
    """(comparison frame, notes). ``ours``: the per-dataset BD rows of every setting (BD table schema)."""
    published = load_published()
    published = published.assign(base_metric=published["metric"])
    ours = ours[ours["dataset"] != AVERAGE_ROW]
    ours = ours.assign(published_codec=[published_name(c, m) for c, m in zip(ours["codec"], ours["metric"])],
                       base_metric=ours["metric"].str.removesuffix("_db"))
    merged = ours.merge(published, how="inner", left_on=["published_codec", "anchor", "dataset", "color_transform",
                                                         "base_metric"],
                        right_on=["codec", "anchor_label", "dataset", "color_transform", "base_metric"],
                        suffixes=("", "_pub"))
    notes = []
    if merged.empty:
        notes.append("None of the published BD-rates in anchors/ matches a codec, anchor, dataset, colour transform "
                     f"and metric of these results, so there is nothing to compare. Published: "
                     f"{', '.join(sorted(set(published['codec'])))} against "
                     f"{', '.join(sorted(set(published['anchor_label'])))}.")
    rows = []
    for row in merged.itertuples(index=False):
        theirs = _published_protocol(row.protocol_pub, row.color_transform)
        mine = _our_protocol(rd, row.codec, row.dataset, row.color_transform)
        differ = [f"{k} {mine[k]} vs {theirs[k]}" for k in theirs
                  if theirs[k] != "not stated" and mine[k] != theirs[k]]
        delta = row.bd_rate_pct - row.bd_rate_pct_pub
        low, high = getattr(row, "bd_rate_low", np.nan), getattr(row, "bd_rate_high", np.nan)
        if differ:
            verdict = "not comparable: " + "; ".join(differ)
        elif pd.isna(delta):
            verdict = "n/a"
        else:
            verdict = reproduction_verdict(row.bd_rate_pct, low, high, row.bd_rate_pct_pub, tolerance)
        caveats = [f"published {k} not stated" for k, v in theirs.items() if v == "not stated"]
        if row.metric.endswith("_db"):
            caveats.append("ours on MS-SSIM in dB; whether the source used dB is not stated")
        rows.append({"codec": row.codec, "metric": row.metric, "transform": row.color_transform,
                     "dataset": row.dataset, "published release": row.release_pub, "ours (%)": row.bd_rate_pct,
                     "ours low": low, "ours high": high,
                     "published (%)": row.bd_rate_pct_pub, "difference (pp)": delta, "verdict": verdict,
                     "caveats": "; ".join(caveats) or "-", "source": _short_source(row.source_pub)})
    return pd.DataFrame(rows), notes
