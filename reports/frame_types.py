"""The report's frame-type view: BD-rate of the I-frames only and of the P-frames only beside all frames (as DCVC's
--compare_frame_type), per metric and colour transform, for the codecs whose per-frame records are among the inputs
(sweep and anchors folders; bench.analysis.frame_types). Values only: `bdrate --frame-type I P all --ci` gives their
intervals."""
from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from bench.analysis.bdrate import AVERAGE_ROW, AVERAGING, METHOD_TEXT, bd_tables
from bench.analysis.frame_types import (
    FRAME_TYPE_METHOD,
    FRAME_TYPE_TEXT,
    FRAME_TYPES,
    frame_type_tables,
    record_path,
)
from bench.errors import InputError
from reports import sections
from reports.bd import METRIC_NAMES, METRICS, TRANSFORM_NAMES, transforms, warning_notes
from reports.tables import Table


def _has_record(row: dict) -> bool:
    try:
        record_path(row)
    except InputError:
        return False
    return True


def frame_type_view(rd: pd.DataFrame, anchor: str | None, order: list, bd_options: dict, out_dir: Path) -> dict | None:
    """Tables of codec x frame type by dataset, or None when no input has per-frame records. ``rd`` carries the
    ``label`` column; ``bd_options`` go to bd_tables (method, averaging, msssim_db, min_overlap, ...)."""
    if anchor is None:
        return None
    recorded = rd[[_has_record(row) for row in rd.to_dict("records")]]
    if recorded.empty:
        return None
    if not (recorded["label"] == anchor).any():
        return {"tables": [], "notes": [f"No frame-type BD-rates: the anchor {anchor}'s per-frame records are not "
                                        "among the inputs (give its sweep or anchors folder)."]}
    lacking = sorted(set(rd["label"]) - set(recorded["label"]))
    notes = [f"Not here, as they have no per-frame records among the inputs: {', '.join(lacking)}."] if lacking else []
    points = recorded.drop(columns="label")
    tables = []
    for metric in METRICS:
        for transform in transforms(points[points[metric].notna()]):
            here = points[(points["color_transform"] == transform) & points[metric].notna()]
            title = f"{METRIC_NAMES[metric]}, {TRANSFORM_NAMES.get(transform, transform)}"
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    bd = frame_type_tables(here, FRAME_TYPES,
                                           lambda p: bd_tables(p, anchor, [metric], **bd_options)).datasets
            except InputError as exc:
                notes.append(f"{title}: no frame-type BD-rates: {exc}")
                continue
            notes += [n if isinstance(n, str) else {**n, "text": f"{title}: {n['text']}"}
                      for n in warning_notes([w.message for w in caught])]
            tables.append(_table(bd, metric, transform, title, anchor, order, bd_options))
    views = [sections.view_table(t, out_dir) for t in tables]
    return {"tables": views, "notes": notes} if views or notes else None


def _row_name(codec: str, frame_type: str) -> str:
    return f"{codec}, {FRAME_TYPE_TEXT[frame_type]}"


def _table(bd: pd.DataFrame, metric: str, transform: str, title: str, anchor: str, order: list,
           bd_options: dict) -> Table:
    datasets = [d for d in dict.fromkeys(bd["dataset"]) if d != AVERAGE_ROW] + [AVERAGE_ROW]
    names = [_row_name(c, t) for c in order for t in FRAME_TYPES]
    bd = bd.assign(row=[_row_name(c, t) for c, t in zip(bd["codec"], bd["frame_type"])])
    data = bd.pivot(index="row", columns="dataset", values="bd_rate_pct")
    data = data.reindex(index=[n for n in names if n in data.index], columns=datasets)
    data.index.name, data.columns.name = "codec, frames", None
    return Table(f"bd_rate_frame_types_{sections.slug(metric, transform)}", f"BD-rate by frame type, {title}", data,
                 signed=True, captions=[
                     f"BD-rate (%) against {anchor}, each frame type against the anchor's same frame type; negative = "
                     "fewer bits at equal quality.", f"{FRAME_TYPE_METHOD[0].upper()}{FRAME_TYPE_METHOD[1:]}.",
                     f"Interpolation: {METHOD_TEXT[bd_options['method']]}. Per dataset: "
                     f"{AVERAGING[bd_options['averaging']]}. {AVERAGE_ROW}: mean of the per-dataset values.",
                     "Values only; `run_bench.py bdrate --frame-type I P all --ci` gives their intervals."])
