"""Published complexity figures (provenance in anchors/README.md), copied, not recomputed: the tables of other codecs
(anchors/published_complexity.csv) and the values read from the HyTIP README's complexity figure, with their reading
error (anchors/hytip_readme_complexity_figure_readings.csv)."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from bench import REPO_ROOT
from bench.errors import InputError

PUBLISHED_COMPLEXITY = REPO_ROOT / "anchors" / "published_complexity.csv"
FIGURE_READINGS = REPO_ROOT / "anchors" / "hytip_readme_complexity_figure_readings.csv"
# reading_error, e.g. "kMAC/px +-4, params +-0.1, buffer +-0.5": one error per quantity
_READING_ERROR = re.compile(r"(kMAC/px|params|buffer) \+-([0-9.]+)")
_C3_MACS = re.compile(r"decode MACs/pixel min=(\d+) max=(\d+|None)")


@dataclass(frozen=True)
class PublishedComplexity:
    """One row of anchors/published_complexity.csv, copied, not recomputed."""
    codec: str
    macs_per_frame: Optional[str]          # as printed, e.g. "2642G" (resolution not printed)
    params_m: Optional[float]
    decode_mac_per_pixel_min: Optional[int]
    decode_mac_per_pixel_max: Optional[int]
    source: str
    note: str


def _rows(path: Path, expected: set, what: str) -> list:
    if not path.is_file():
        raise InputError(f"{path}: {what} CSV not found")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not expected <= set(rows[0]):
        raise InputError(f"{path}: expected columns {sorted(expected)}, found {sorted(rows[0]) if rows else 'no rows'}")
    return rows


def published_complexity(path: Path = PUBLISHED_COMPLEXITY) -> List[PublishedComplexity]:
    """The published complexity figures of other codecs (provenance in anchors/README.md)."""
    path = Path(path)
    rows = _rows(path, {"codec", "macs_per_frame", "params_M", "source", "note"}, "published complexity")
    records = []
    for line, row in enumerate(rows, start=2):
        match = _C3_MACS.search(row["note"])
        if not row["macs_per_frame"] and not match:
            raise InputError(f"{path} line {line}: neither macs_per_frame nor 'decode MACs/pixel min=.. max=..' "
                             f"in the note for {row['codec']!r}")
        records.append(PublishedComplexity(
            codec=row["codec"],
            macs_per_frame=row["macs_per_frame"] or None,
            params_m=float(row["params_M"]) if row["params_M"] else None,
            decode_mac_per_pixel_min=int(match.group(1)) if match else None,
            decode_mac_per_pixel_max=int(match.group(2)) if match and match.group(2) != "None" else None,
            source=row["source"], note=row["note"]))
    return records


@dataclass(frozen=True)
class FigureReading:
    """One codec's marker positions read from the HyTIP README's complexity figure, with the reading error."""
    codec: str
    enc_kmac_per_pixel: float
    dec_kmac_per_pixel: float
    params_m: float
    temporal_buffer: float
    avg_bd_rate_pct: float
    errors: dict             # "kMAC/px", "params", "buffer" -> half-width of the reading error
    source: str
    note: str


def figure_readings(path: Path = FIGURE_READINGS) -> List[FigureReading]:
    """The values read from the HyTIP README's complexity figure (provenance in anchors/README.md)."""
    path = Path(path)
    numeric = ("enc_kmac_per_px", "dec_kmac_per_px", "params_M", "temporal_buffer", "avg_bd_rate_pct")
    rows = _rows(path, {"codec", *numeric, "reading_error", "source", "note"}, "figure readings")
    readings = []
    for line, row in enumerate(rows, start=2):
        errors = {name: float(value) for name, value in _READING_ERROR.findall(row["reading_error"])}
        try:
            values = [float(row[c]) for c in numeric]
        except ValueError as exc:
            raise InputError(f"{path} line {line}: {row['codec']!r}: {exc}") from None
        if set(errors) != {"kMAC/px", "params", "buffer"}:
            raise InputError(f"{path} line {line}: reading_error {row['reading_error']!r}: expected "
                             "'kMAC/px +-N, params +-N, buffer +-N'")
        readings.append(FigureReading(row["codec"], *values, errors, row["source"], row["note"]))
    return readings
