"""Frame-type BD-rate: RD points of the I-frames only, the P-frames only or all frames of a sweep, from its per-frame
records (as DCVC's --compare_frame_type).

A results table (`run_bench.py run`'s results.csv, `run_bench.py anchors`' anchors.csv) has its jobs' records beside it,
in records/<job>.json. For each row, the frames of one type give:
- bpp: their bits / (width * height * their count); kbps: the row's kbps scaled by their bits per frame over the row's;
- each quality column: the mean over their frames within each GOP, then over GOPs (the results table's rule,
  bench.codecs.base.summarise).
A frame's bits are the record's per_frame "bits". What the record's bits hold beyond their sum (HyTIP's container:
sequence header, each frame's record head and checksum) is put on the sequence's first frame, an I-frame, so that "all"
is the table's row exactly; a table that disagrees with its records is refused. Each frame type's BD values are
bench.analysis.bdrate's bd_tables on its points; every BD row names its frame type (`frame_type`, the protocol text).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis.bdrate import BDTables, codec_label
from bench.analysis.rd_schema import QUALITY_COLUMNS, RESULT_FLOAT_COLUMNS
from bench.errors import InputError

FRAME_TYPES = ("I", "P", "all")
FRAME_TYPE_TEXT = {"I": "I-frames only", "P": "P-frames only", "all": "all frames"}
FRAME_TYPE_METHOD = ("frame types: bpp = the type's bits / (width * height * its frames); quality = mean over its "
                     "frames in each GOP, then over GOPs; from the per-frame records (records/ beside each table)")
REBUILD = "rerun the `run_bench.py run` or `anchors` command that wrote it (it rebuilds the table from the records)"
RERUN = "rerun this job (`run_bench.py run ... --force`, or delete the record and rerun the sweep)"
_SOURCE = re.compile(r"hytip-bench run records/(.+)\.json$")
# Whole-sequence values that are not recomputed per frame type (left empty on I and P points).
_NOT_PER_TYPE = [c for c in RESULT_FLOAT_COLUMNS if c.endswith("_from_mse")]


def record_path(row: dict) -> Path:
    """The record of a results-table row: records/<job>.json beside the table, the job named by the `job` column or,
    in anchors.csv (RD columns only), by the `source` the sweep writes ("hytip-bench run records/<job>.json")."""
    where = f"{row['file']}: {row['where']}"
    job = row.get("job") if isinstance(row.get("job"), str) and row["job"] else None
    named = _SOURCE.match(row["source"])
    if job is None and named is None:
        raise InputError(f"{where}: {codec_label(row['codec'], row['codec_version'])} names no job (source "
                         f"{row['source']!r}): it is not a sweep result, so it has no per-frame records; frame-type "
                         f"BD-rate needs results tables of `run_bench.py run` or `anchors` with their records/ folder "
                         f"(only --frame-type all works with this file)")
    path = Path(row["file"]).parent / "records" / f"{job or named.group(1)}.json"
    if not path.is_file():
        raise InputError(f"{where}: its record {path} does not exist; frame-type BD-rate reads the per-frame records "
                         f"beside the table")
    return path


def load_result(path: Path, row: dict) -> dict:
    """The done result of a record, checked to be the one the table's row was made from."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read the record ({exc})") from None
    if record.get("status") != "done":
        raise InputError(f"{path}: the job is {record.get('status')!r}, not done; {RERUN}")
    if row.get("config_sha256") and record.get("config") != row["config_sha256"]:
        raise InputError(f"{path}: configuration {record.get('config')} differs from {row['config_sha256']} of "
                         f"{row['file']} {row['where']}; the table is stale: {REBUILD}")
    return record["result"]


def type_points(result: dict, path: Path, frame_types=FRAME_TYPES) -> dict[str, dict]:
    """{frame type: {"bits", "frames", quality column: value}} of one record (see the module docstring)."""
    # Here, not at the top: `bdrate` imports this module at its start and must not load torch (README).
    from bench.codecs.base import sequence_mean
    from bench.data.protocol import plan_frames

    per_frame = result["per_frame"]
    if "bits" not in per_frame:
        reason = result.get("frame_bits_unknown")
        raise InputError(f"{path}: no per-frame bits" + (f": {reason}" if reason else
                         f" (written before the conventional encoders recorded them); {RERUN}"))
    plan = plan_frames(result["frames"], result["intra_period"], result["scene_cuts"])
    bits = list(per_frame["bits"])
    if (per_frame["number"], per_frame["type"]) != ([p.number for p in plan], [p.type for p in plan]) \
            or len(bits) != len(plan):
        raise InputError(f"{path}: per-frame numbers, types or bits do not follow the frame plan of {result['frames']} "
                         f"frames, intra period {result['intra_period']}, scene cuts {result['scene_cuts']}; {RERUN}")
    overhead = result["bits"] - sum(bits)
    if overhead < 0:
        raise InputError(f"{path}: per-frame bits add up to {sum(bits)}, more than the record's {result['bits']}; "
                         f"{RERUN}")
    bits[0] += overhead   # the first frame is an I-frame (every plan opens with one)
    types = np.array(per_frame["type"])
    gops = np.array([p.gop for p in plan])
    points = {}
    for frame_type in frame_types:
        chosen = np.ones(len(plan), bool) if frame_type == "all" else types == frame_type
        if not chosen.any():
            raise InputError(f"{path}: no {frame_type}-frames (intra period {result['intra_period']})")
        # "all" takes the record's own total: a float sum of estimated bits could differ from it in the last digit.
        point = {"bits": result["bits"] if frame_type == "all" else sum(b for b, c in zip(bits, chosen) if c),
                 "frames": int(chosen.sum())}
        for column in QUALITY_COLUMNS:
            if column in per_frame:
                values = [v for v, c in zip(per_frame[column], chosen) if c]
                point[column] = sequence_mean(values, gops[chosen])
        points[frame_type] = point
    return points


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(a, b) -> bool:
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    return math.isclose(a, b, rel_tol=1e-12)


def frame_type_rd(rd: pd.DataFrame, frame_types=FRAME_TYPES) -> pd.DataFrame:
    """The rows of `rd` (results tables as bench.analysis.rd_schema loads them) as RD points of each frame type, with a
    `frame_type` column; `where` also names the record."""
    out = []
    for row in rd.to_dict("records"):
        path = record_path(row)
        result = load_result(path, row)
        points = type_points(result, path, frame_types)
        pixels = result["width"] * result["height"]
        bits_per_frame = result["bits"] / result["frames"]
        for frame_type in frame_types:
            point = points[frame_type]
            values = {"bpp": point["bits"] / (pixels * point["frames"]),
                      "kbps": row["kbps"] * ((point["bits"] / point["frames"]) / bits_per_frame),
                      **{c: point.get(c) for c in QUALITY_COLUMNS}}
            if frame_type == "all":
                differs = [c for c, v in values.items() if not _same(v, row[c])]
                if differs:
                    raise InputError(f"{row['file']}: {row['where']}: {', '.join(differs)} differ from the record "
                                     f"{path} ({', '.join(f'{values[c]} vs {row[c]}' for c in differs)}); the table "
                                     f"is stale: {REBUILD}")
            else:
                values.update({c: np.nan for c in _NOT_PER_TYPE if c in row})
            out.append({**row, **values, "frame_type": frame_type,
                        "where": f"{row['where']} (records/{path.name}, {FRAME_TYPE_TEXT[frame_type]})"})
    return pd.DataFrame(out, columns=list(rd.columns) + ["frame_type"]).astype(
        {c: float for c in ("bpp", "kbps", *QUALITY_COLUMNS)})


def frame_type_tables(rd: pd.DataFrame, frame_types, compute) -> BDTables:
    """BD tables per frame type: `compute(points)` (bd_tables, or bd_tables_with_intervals, with the anchor and
    options bound) on each type's points of frame_type_rd. Both tables gain `frame_type`; the per-dataset rows' protocol
    text names it, so that the rows of several types stay distinct in one BD table CSV."""
    points = frame_type_rd(rd, frame_types)
    sequences, datasets, notes = [], [], []
    for frame_type in frame_types:
        text = FRAME_TYPE_TEXT[frame_type]
        tables = compute(points[points["frame_type"] == frame_type].drop(columns="frame_type"))
        sequences.append(tables.sequences.assign(frame_type=frame_type))
        protocol = tables.datasets["protocol"] + f"; {text}"
        datasets.append(tables.datasets.assign(frame_type=frame_type, protocol=protocol))
        notes += [f"{text}: {note}" for note in tables.notes]
    return BDTables(pd.concat(sequences, ignore_index=True), pd.concat(datasets, ignore_index=True), notes)
