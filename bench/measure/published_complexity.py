"""Published complexity figures of other codecs (anchors/published_complexity.csv; provenance in anchors/README.md),
copied, not recomputed."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from bench import REPO_ROOT
from bench.errors import InputError

PUBLISHED_COMPLEXITY = REPO_ROOT / "anchors" / "published_complexity.csv"
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


def published_complexity(path: Path = PUBLISHED_COMPLEXITY) -> List[PublishedComplexity]:
    """The published complexity figures of other codecs (provenance in anchors/README.md)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: published complexity CSV not found")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    expected = {"codec", "macs_per_frame", "params_M", "source", "note"}
    if not rows or not expected <= set(rows[0]):
        raise InputError(f"{path}: expected columns {sorted(expected)}, found {sorted(rows[0]) if rows else 'no rows'}")
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
