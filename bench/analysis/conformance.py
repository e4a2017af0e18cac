"""Conformance of regenerated anchors with a published anchor CSV (`run_bench.py anchors --conform`).

Both inputs are RD frames in the anchor schema (bench.analysis.rd_schema). A published point is paired with the
regenerated point of the same codec, coding mode (the `yuv420:`/`rgb444:` head of codec_config), dataset, sequence,
colour transform, protocol (frames, intra period, crop, size, input format, colour conversion) and QP (rate_point
`qpNN`, or a bare number such as DCVC's `022`). An intra period of -1 (one intra frame) is the same coding as an
intra period of all the frames, which is how a regenerated row states it.

Per point: the rate difference in % of the published rate (bpp where the published curve has it, else kbps) and the
quality difference in dB of each PSNR the published curve has (QUALITY). Per curve: the largest of those differences
and the BD-rate of the regenerated curve against the published one (bench.analysis.bdrate.bd_rate, pchip, on the
paired points). Verdict rule (anchors/README.md, "Conformance table"): a point conforms when every difference is
within its tolerance; a curve conforms when every published point was regenerated and conforms and every BD-rate is
within its tolerance (a curve of fewer than 4 points is judged on its points).
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis.bdrate import MIN_POINTS, OverlapWarning, bd_rate
from bench.errors import InputError

QUALITY = ("psnr_rgb", "psnr_y", "psnr_yuv")
# What pairs a published point with a regenerated one, besides the QP.
PAIR = ("codec", "mode", "dataset", "sequence", "color_transform", "frames", "intra_period", "crop", "width", "height",
        "input_format", "color_matrix", "color_range", "color_filter")
CURVE = ("codec", "mode", "dataset", "sequence", "color_transform")
# What names a curve in the table: its protocol text and published version tell curves of one sequence apart.
CURVE_ID = CURVE + ("protocol", "published_version")
COLUMNS = ("level", "codec", "mode", "dataset", "sequence", "color_transform", "rate_point", "published_version",
           "regenerated_version", "rate_unit", "rate_published", "rate_regenerated", "rate_diff_pct",
           *(f"{m}_diff_db" for m in QUALITY), *(f"bd_rate_{m}_pct" for m in QUALITY), "verdict", "protocol",
           "tolerances", "published", "regenerated")
NUMBER_COLUMNS = ("rate_published", "rate_regenerated", *(c for c in COLUMNS if c.endswith(("_pct", "_db"))))
LEVELS = ("curve", "point")
_QP = re.compile(r"^(?:qp)?(\d+)$")


@dataclass(frozen=True)
class Tolerances:
    """Largest differences that still conform: rate in % of the published rate, quality in dB, BD-rate in %."""

    rate_pct: float = 1.0
    quality_db: float = 0.05
    bd_rate_pct: float = 1.0

    def __post_init__(self):
        for name, value in vars(self).items():
            if not value >= 0:
                raise InputError(f"conformance tolerance {name}: expected a number >= 0, found {value}")

    def text(self) -> str:
        return (f"rate {self.rate_pct:g} %, quality {self.quality_db:g} dB, BD-rate {self.bd_rate_pct:g} % "
                "(pchip, regenerated against published)")


def rate_point_qp(label: str) -> int | None:
    """The QP of a rate point label: `qp22` (this tool's) or `022` / `22` (DCVC's VTM keys); None for other labels."""
    match = _QP.match(str(label).strip())
    return int(match[1]) if match else None


def coding_mode(codec_config: str) -> str | None:
    """The coding mode a generated anchor's codec_config starts with (`yuv420: ...`), or None."""
    head, sep, _ = str(codec_config).partition(": ")
    return head if sep and head in ("yuv420", "rgb444") else None


@dataclass(frozen=True)
class Conformance:
    points: pd.DataFrame   # one row per published point (COLUMNS, level "point")
    curves: pd.DataFrame   # one row per published curve (COLUMNS, level "curve")
    tolerances: Tolerances

    @property
    def conforms(self) -> bool:
        return bool(len(self.curves)) and bool(self.curves["verdict"].str.startswith("conforms").all())

    def points_of(self, curve: pd.Series) -> pd.DataFrame:
        return self.points[(self.points[list(CURVE_ID)] == curve[list(CURVE_ID)]).all(axis=1)]

    def table(self) -> pd.DataFrame:
        """Curve rows, each followed by its points: the layout of the conformance CSV."""
        parts = []
        for _, curve in self.curves.iterrows():
            parts += [curve.to_frame().T, self.points_of(curve)]
        return pd.concat(parts, ignore_index=True).loc[:, list(COLUMNS)] if parts else pd.DataFrame(columns=COLUMNS)


def _keyed(frame: pd.DataFrame, side: str) -> pd.DataFrame:
    frame = frame.assign(mode=frame["codec_config"].map(coding_mode), qp=frame["rate_point"].map(rate_point_qp))
    one_gop = frame["intra_period"].eq(-1).fillna(False)
    frame.loc[one_gop, "intra_period"] = frame.loc[one_gop, "frames"]
    missing = frame["mode"].isna() | frame["qp"].isna()
    if missing.any():
        row = frame[missing].iloc[0]
        raise InputError(f"{row.get('file', side)}: {row.get('where', '')}: {side} point {row['rate_point']!r} has no "
                         f"coding mode in codec_config or no QP in rate_point, so it cannot be paired")
    return frame


def _protocol(row) -> str:
    return (f"{row['frames']} frames, intra period {row['intra_period']}, crop {row['crop']} {row['width']}x"
            f"{row['height']}, {row['input_format']}, {row['color_transform']} ({row['color_matrix']} "
            f"{row['color_range']} {row['color_filter']})")


def _differences(published, regenerated, unit: str, metrics: list, tol: Tolerances) -> tuple[dict, list]:
    """The differences of one paired point and what exceeds its tolerance."""
    rate = (regenerated[unit] - published[unit]) / published[unit] * 100
    values, over = {"rate_diff_pct": rate}, []
    if abs(rate) > tol.rate_pct:
        over.append(f"{unit} {rate:+.2f} % (> {tol.rate_pct:g} %)")
    for metric in metrics:
        diff = regenerated[metric] - published[metric]
        values[f"{metric}_diff_db"] = diff
        if abs(diff) > tol.quality_db:
            over.append(f"{metric} {diff:+.3f} dB (> {tol.quality_db:g} dB)")
    return values, over


def _largest(values: pd.Series) -> float:
    """The difference of largest magnitude, with its sign (NaN when there is none)."""
    values = values.dropna()
    return float(values.loc[values.abs().idxmax()]) if len(values) else np.nan


def _points(rows: pd.DataFrame, lookup: dict, unit: str, metrics: list, tol: Tolerances) -> tuple[list, list]:
    """One row per published point of a curve, and the (published, regenerated) pairs found."""
    points, paired = [], []
    for _, row in rows.iterrows():
        match = lookup.get(tuple(row[list(PAIR) + ["qp"]]))
        point = {**{c: row[c] for c in CURVE}, "level": "point", "rate_point": row["rate_point"],
                 "published_version": row["codec_version"], "rate_unit": unit, "rate_published": row[unit],
                 "protocol": _protocol(row), "tolerances": tol.text(), "published": f"{row['file']} {row['where']}",
                 "verdict": "not regenerated"}
        if match is not None:
            shared = [m for m in metrics if pd.notna(match[m])]
            values, over = _differences(row, match, unit, shared, tol)
            point.update(values, regenerated_version=match["codec_version"], rate_regenerated=match[unit],
                         regenerated=match["source"])
            if not shared:
                point["verdict"] = f"not comparable: the regenerated point has no {' or '.join(metrics) or 'PSNR'}"
            else:
                point["verdict"] = "differs: " + "; ".join(over) if over else "conforms"
            paired.append((row, match))
        points.append(point)
    return points, paired


def compare(published: pd.DataFrame, regenerated: pd.DataFrame, tolerances: Tolerances = Tolerances()) -> Conformance:
    """The per-point and per-curve conformance of `regenerated` with `published` (see the module docstring)."""
    pub = _keyed(published, "published")
    lookup = {} if regenerated.empty else {
        tuple(r[list(PAIR) + ["qp"]]): r for _, r in _keyed(regenerated, "regenerated").iterrows()}
    points, curves = [], []
    for _, rows in pub.groupby(list(PAIR) + ["codec_version"], sort=False, dropna=False):
        rows = rows.sort_values("qp")
        unit = "bpp" if rows["bpp"].notna().all() else "kbps"
        metrics = [m for m in QUALITY if rows[m].notna().all()]
        mine, paired = _points(rows, lookup, unit, metrics, tolerances)
        points += mine
        curves.append(_curve(rows, mine, paired, unit, metrics, tolerances))
    return Conformance(pd.DataFrame(points, columns=COLUMNS), pd.DataFrame(curves, columns=COLUMNS), tolerances)


def _curve(rows: pd.DataFrame, points: list, paired: list, unit: str, metrics: list, tol: Tolerances) -> dict:
    first = rows.iloc[0]
    frame = pd.DataFrame(points)
    curve = {**{c: first[c] for c in CURVE}, "level": "curve", "rate_point": "",
             "published_version": first["codec_version"], "rate_unit": unit,
             "protocol": _protocol(first), "tolerances": tol.text(),
             "published": f"{first['file']} {', '.join(rows['where'])}"}
    for column in ["rate_diff_pct"] + [f"{m}_diff_db" for m in QUALITY]:
        curve[column] = _largest(frame[column]) if column in frame else np.nan
    if paired:
        curve["regenerated_version"] = "/".join(dict.fromkeys(m["codec_version"] for _, m in paired))
        curve["regenerated"] = "; ".join(m["source"] for _, m in paired)
    problems = [f"{p['rate_point']} {p['verdict']}" for p in points if p["verdict"] != "conforms"]
    if len(paired) >= MIN_POINTS:
        for metric in metrics:
            value, why = _bd(paired, unit, metric)
            curve[f"bd_rate_{metric}_pct"] = value
            if why:
                problems.append(f"BD-rate {metric} not computed: {why}")
            elif abs(value) > tol.bd_rate_pct:
                problems.append(f"BD-rate {metric} {value:+.2f} % (> {tol.bd_rate_pct:g} %)")
    curve["verdict"] = "differs: " + "; ".join(problems) if problems else "conforms"
    if len(paired) < MIN_POINTS:
        curve["verdict"] += f" (on its points alone: BD-rate needs {MIN_POINTS}, {len(paired)} paired)"
    return curve


def _bd(paired: list, unit: str, metric: str) -> tuple[float, str]:
    """BD-rate (%) of the regenerated points against the published ones, or NaN and why it has no value."""
    both = [(p, m) for p, m in paired if pd.notna(m[metric])]
    try:
        with warnings.catch_warnings():
            # Curves that barely overlap differ point by point, which the point verdicts already say.
            warnings.simplefilter("ignore", OverlapWarning)
            value = bd_rate([p[unit] for p, _ in both], [p[metric] for p, _ in both],
                            [m[unit] for _, m in both], [m[metric] for _, m in both])
    except InputError as exc:
        return np.nan, str(exc)
    return value, "" if np.isfinite(value) else "the curves do not overlap"


# ---------------------------------------------------------------------------------------------------- the CSV
def write_conformance_csv(result: Conformance, path) -> None:
    result.table().to_csv(path, index=False, na_rep="", float_format=None)


def load_conformance_csv(path) -> pd.DataFrame:
    """Read a conformance CSV written by write_conformance_csv; a missing column, an unknown level or a non-numeric
    value is an InputError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable CSV ({exc})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: line 1: missing column(s) {', '.join(missing)} (a conformance table: "
                         "anchors/README.md)")
    for i, level in enumerate(frame["level"]):
        if level not in LEVELS:
            raise InputError(f"{path}: line {i + 2}: level {level!r} is not one of {', '.join(LEVELS)}")
    for column in NUMBER_COLUMNS:
        numbers = pd.to_numeric(frame[column].replace("", np.nan), errors="coerce")
        bad = numbers.isna() & frame[column].ne("")
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise InputError(f"{path}: line {i + 2}: column {column}: expected a number, found {frame[column][i]!r}")
        frame[column] = numbers
    return frame.loc[:, list(COLUMNS)]


def summary_lines(result: Conformance) -> list[str]:
    """The conformance as printed: the tolerances, then each curve with its protocol, BD-rates and verdict, followed
    by its points with their differences."""
    lines = [f"tolerances: {result.tolerances.text()}"]
    for _, curve in result.curves.iterrows():
        bd = ", ".join(f"{m} {curve[f'bd_rate_{m}_pct']:+.2f} %" for m in QUALITY
                       if pd.notna(curve[f"bd_rate_{m}_pct"]))
        lines.append(f"{curve['codec']} {curve['mode']} {curve['dataset']}/{curve['sequence']} "
                     f"[{curve['protocol']}]: BD-rate {bd or 'n/a'}: {curve['verdict']}")
        for _, point in result.points_of(curve).iterrows():
            rate = point["rate_diff_pct"]
            diffs = [f"{point['rate_unit']} {rate:+.2f} %"] if pd.notna(rate) else []
            diffs += [f"{m} {point[f'{m}_diff_db']:+.3f} dB" for m in QUALITY if pd.notna(point[f"{m}_diff_db"])]
            lines.append(f"  {point['rate_point']}: {point['verdict']}" + (f" ({', '.join(diffs)})" if diffs else ""))
    return lines
