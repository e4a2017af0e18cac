"""The report's "Anchor conformance" section: a conformance CSV (`run_bench.py anchors --conform`, written by
bench.analysis.conformance) as a table, one row per curve followed by its points, with the protocol, the tolerances
and the verdict rule under it."""
from __future__ import annotations

import pandas as pd

from bench.analysis.conformance import QUALITY
from reports.tables import Table

RULE = ("Verdict: a point conforms when its rate difference (% of the published rate) and the difference of every "
        "PSNR the published file has (dB) are within the tolerances; a curve conforms when every published point was "
        "regenerated and conforms and every BD-rate of the regenerated curve against the published one is within its "
        "tolerance (anchors/README.md, 'Conformance table'). Curve rows show the largest point difference.")
NAMES = {"psnr_rgb": "PSNR-RGB", "psnr_y": "PSNR-Y", "psnr_yuv": "PSNR-YUV"}


def conformance_table(path: str, frame: pd.DataFrame, index: int = 0) -> Table:
    """One conformance CSV as a table (`index` tells the tables of several sweep folders apart)."""
    names = {m: NAMES.get(m, m) for m in QUALITY}
    label = [f"{r.codec} {r.mode} {r.dataset}/{r.sequence} {r.color_transform}" + (f" {r.rate_point}" if
             r.level == "point" else "") for r in frame.itertuples(index=False)]
    data = pd.DataFrame({
        "rate": [f"{u}: {p:.6g} vs {r:.6g}" if pd.notna(p) and pd.notna(r) else u
                 for u, p, r in zip(frame["rate_unit"], frame["rate_published"], frame["rate_regenerated"])],
        "rate diff (%)": frame["rate_diff_pct"].to_numpy(float),
        **{f"{names[m]} diff (dB)": frame[f"{m}_diff_db"].to_numpy(float) for m in QUALITY},
        **{f"BD-rate {names[m]} (%)": frame[f"bd_rate_{m}_pct"].to_numpy(float) for m in QUALITY},
        "versions (published / regenerated)": [f"{p} / {r}" if pd.notna(r) and r else p for p, r in
                                               zip(frame["published_version"], frame["regenerated_version"])],
        "verdict": frame["verdict"].to_numpy()}, index=pd.Index(label, name="curve / point"))
    data = data.loc[:, [c for c in data.columns if data[c].notna().any()]]
    decimals = {c: 3 if c.endswith("(dB)") else 2 for c in data.columns}
    captions = [f"Protocol: {p}." for p in dict.fromkeys(frame["protocol"])]
    captions += [f"Tolerances: {t}." for t in dict.fromkeys(frame["tolerances"])] + [RULE, f"Source: {path}."]
    return Table(f"conformance{f'_{index + 1}' if index else ''}", "Regenerated versus published anchor points",
                 data, decimals=decimals, captions=captions, latex=False)
