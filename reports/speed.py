"""The run's own codecs against their measured encoding and decoding time per frame: the complexity that every codec
has, conventional encoders included. Seconds per coded frame are the sweep's summed seconds over its summed frames,
per codec label, with the devices, threads and frame sizes they ran at."""
from __future__ import annotations

import pandas as pd

from reports.bd import is_result_row
from reports.figures import ComplexityPoint

COLUMNS = ("enc_seconds", "dec_seconds", "frames", "device", "threads", "width", "height")


def _distinct(values) -> str:
    found = [str(v) for v in dict.fromkeys(values) if not pd.isna(v) and str(v) != ""]
    return " / ".join(found) if found else "not stated"


def speed_view(rd: pd.DataFrame, bd: dict, intervals: dict, anchor: str) -> tuple[list, pd.DataFrame]:
    """(points, table): one point per codec label run here with a measured time and an average BD-rate in ``bd``
    (the anchor at 0 %, by definition), with its interval from ``intervals`` (label -> (low, high))."""
    run = rd[is_result_row(rd)] if len(rd) else rd
    if run.empty or not set(COLUMNS) <= set(run.columns):
        return [], pd.DataFrame()
    points, rows = [], []
    for label, mine in run.groupby("label", sort=False):
        frames = mine["frames"].sum()
        seconds = {c: mine[c].sum(min_count=1) / frames if frames else None for c in ("enc_seconds", "dec_seconds")}
        seconds = {c: None if v is None or pd.isna(v) else float(v) for c, v in seconds.items()}
        y = 0.0 if label == anchor else bd.get(label)
        rows.append({"codec": label, "encode (s/frame)": seconds["enc_seconds"],
                     "decode (s/frame)": seconds["dec_seconds"], "avg BD-rate (%)": y,
                     "device": _distinct(mine["device"]), "threads": _distinct(mine["threads"]),
                     "frame size": _distinct(f"{w}x{h}" for w, h in zip(mine["width"], mine["height"])),
                     "coded frames": int(frames)})
        if y is not None and any(v is not None for v in seconds.values()):
            points.append(ComplexityPoint(label, label, seconds, y, measured=True, y_interval=intervals.get(label)))
    table = pd.DataFrame(rows).set_index("codec")
    if anchor in table.index:   # AWCY's columns: each codec's time as a multiple of the anchor's
        for path in ("encode", "decode"):
            table.insert(table.columns.get_loc(f"{path} (s/frame)") + 1, f"{path} vs anchor",
                         table[f"{path} (s/frame)"] / table.loc[anchor, f"{path} (s/frame)"])
    return points, table
