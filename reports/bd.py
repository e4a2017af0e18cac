"""BD tables for the report: bench.analysis.bdrate per metric and colour transform, with problems kept as notes.

``bd_tables`` refuses a whole table when one curve cannot be compared (fewer than 4 points, a sequence the anchor
lacks, a protocol mismatch). A report must still show everything else and say, at that table, what was left out
and why: a failing setting is retried without the codec/dataset pairs that fail on their own.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import pandas as pd

from bench.analysis.bdrate import AVERAGE_ROW, OverlapWarning, bd_tables, codec_label
from bench.analysis.intervals import IntervalOptions, bd_tables_with_intervals
from bench.codecs.encoders import ENCODERS
from bench.errors import InputError

METRICS = ("psnr_rgb", "msssim_rgb")
METRIC_NAMES = {"psnr_rgb": "PSNR-RGB", "msssim_rgb": "MS-SSIM-RGB", "vmaf": "VMAF (vmaf_v0.6.1)",
                "xpsnr": "XPSNR (min of Y, U, V)"}
TRANSFORM_ORDER = ("BT601", "BT709", "native-RGB")
TRANSFORM_NAMES = {"BT601": "BT.601", "BT709": "BT.709", "native-RGB": "native RGB", "none": "no RGB",
                   "unknown": "colour conversion unknown"}
# Conventional codecs are drawn dashed. The sweep's encoders name theirs; HM and ECM appear only in published tables.
CONVENTIONAL = frozenset({cls.codec for cls in ENCODERS.values()} | {"HM", "ECM"})


def is_conventional(label: str) -> bool:
    return any(label == name or label.startswith(name + "-") for name in CONVENTIONAL)


def with_labels(rd: pd.DataFrame) -> pd.DataFrame:
    return rd.assign(label=[codec_label(c, v) for c, v in zip(rd["codec"], rd["codec_version"])])


def transforms(rd: pd.DataFrame) -> list[str]:
    found = set(rd["color_transform"])
    return [t for t in TRANSFORM_ORDER if t in found] + sorted(found - set(TRANSFORM_ORDER))


def find_anchor(rd: pd.DataFrame, anchor: str) -> str | None:
    """The label of the anchor codec (``anchor`` is CODEC-VERSION or a bare codec), or None when absent."""
    hit = rd[(rd["label"] == anchor) | (rd["codec"] == anchor)]
    return hit["label"].iloc[0] if len(hit) else None


def is_result_row(rd: pd.DataFrame) -> pd.Series:
    """Rows written by a hytip-bench run (they carry the sweep's result columns), as opposed to anchor data."""
    present = [c for c in ("job", "model", "rate_mode") if c in rd]
    if not present:
        return pd.Series(False, index=rd.index)
    return rd[present].fillna("").astype(str).ne("").any(axis=1)


@dataclass
class BDSetting:
    """One metric and colour transform: the per-dataset table (BD table schema, Average rows included), the
    per-sequence values, and notes saying what is missing and why."""

    metric: str
    transform: str
    table: pd.DataFrame
    sequences: pd.DataFrame
    notes: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)    # (label, dataset) -> why it has no BD value

    @property
    def title(self) -> str:
        return f"{METRIC_NAMES.get(self.metric, self.metric)}, {TRANSFORM_NAMES.get(self.transform, self.transform)}"

    @property
    def key(self) -> str:
        return f"{self.metric}_{self.transform}"

    def dataset_value(self, label: str, dataset: str) -> float | None:
        hit = self.table[(self.table["codec"] == label) & (self.table["dataset"] == dataset)]
        return float(hit["bd_rate_pct"].iloc[0]) if len(hit) else None


def _run(rd, anchor, metric, options, intervals: IntervalOptions | None = None) -> tuple:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if intervals is None:
            tables = bd_tables(rd, anchor, [metric], **options)
        else:
            tables = bd_tables_with_intervals(rd, anchor, [metric], intervals, **options)
    return tables, warning_notes([w.message for w in caught])


def warning_notes(caught: list) -> list:
    """One note per flagged curve pair, its overlap along quality (BD-rate) and log rate (BD-quality) on one line,
    the files and lines as the note's details (folded in the page); other warnings as they are."""
    notes, pairs = [], {}
    for warning in caught:
        if not isinstance(warning, OverlapWarning):
            notes.append(str(warning))
            continue
        along = "along quality" if "along quality" in warning.kind else "along log rate"
        for name, share in warning.pairs:
            pair, _, places = name.partition(" (test ")
            entry = pairs.setdefault(pair, {"shares": {}, "details": f"test {places.rstrip(')')}"})
            entry["shares"][along] = share
    for pair, entry in pairs.items():
        shares = ", ".join(f"{share:.0%} {along}" for along, share in entry["shares"].items())
        verdict = "no overlap: no BD value" if all(v <= 0 for v in entry["shares"].values()) else "short overlap"
        notes.append({"text": f"{pair}: {verdict} with the anchor ({shares} of the anchor's range)",
                      "details": entry["details"]})
    return notes


def bd_setting(rd: pd.DataFrame, anchor: str, metric: str, transform: str, intervals: IntervalOptions | None = None,
               **options) -> BDSetting:
    """BD table of ``metric`` on ``transform`` against ``anchor``; options go to bd_tables (method, averaging,
    msssim_db, min_overlap, allow_protocol_mismatch), ``intervals`` to bench.analysis.intervals (computed once, for
    what can be compared). ``rd`` carries the ``label`` column (with_labels)."""
    here = rd[rd["color_transform"] == transform]
    rows = here[here[metric].notna()]
    empty = BDSetting(metric, transform, pd.DataFrame(columns=["codec", "dataset", "bd_rate_pct"]), pd.DataFrame())
    lacking = sorted(set(here["label"]) - set(rows["label"]))
    if lacking:
        empty.notes.append(f"No {METRIC_NAMES.get(metric, metric)} values for {', '.join(lacking)}: not compared, not drawn.")
    is_anchor = rows["label"] == anchor
    if not is_anchor.any():
        empty.notes.append(f"The anchor {anchor} has no {METRIC_NAMES.get(metric, metric)} values on "
                           f"{TRANSFORM_NAMES.get(transform, transform)}: no BD-rates here.")
        return empty
    if is_anchor.all():
        empty.notes.append(f"Only the anchor {anchor} has {METRIC_NAMES.get(metric, metric)} values here.")
        return empty
    failed = {}
    try:
        tables, warned = _run(rows, anchor, metric, options, intervals)
    except InputError:
        # Find the codec/dataset pairs that fail on their own, then compare everything else.
        for (label, dataset), _ in rows[~is_anchor].groupby(["label", "dataset"], sort=False):
            pair = rows[((rows["label"] == label) | is_anchor) & (rows["dataset"] == dataset)]
            try:
                _run(pair, anchor, metric, options)
            except InputError as exc:
                failed[label, dataset] = str(exc)
        rest = rows[~rows.set_index(["label", "dataset"]).index.isin(list(failed))]
        try:
            tables, warned = _run(rest, anchor, metric, options, intervals)
        except InputError as exc:
            empty.notes.append(str(exc))
            empty.failed = failed
            return empty
    notes = empty.notes + [f"No BD-rate for {label} on {dataset}: {why}" for (label, dataset), why in failed.items()]
    notes += list(dict.fromkeys(tables.notes)) + [w for i, w in enumerate(warned) if w not in warned[:i]]
    return BDSetting(metric, transform, tables.datasets, tables.sequences, notes, failed)


def bd_settings(rd: pd.DataFrame, anchor: str | None, intervals: IntervalOptions | None = None,
                **options) -> list[BDSetting]:
    """Every metric and colour transform that has values, in report order. Without an anchor the settings are
    there (their RD curves are still drawn) but hold no BD values."""
    settings = []
    for metric in METRICS:
        for transform in transforms(rd[rd[metric].notna()]):
            if anchor is None:
                settings.append(BDSetting(metric, transform, pd.DataFrame(columns=["codec", "dataset", "bd_rate_pct"]),
                                          pd.DataFrame()))
            else:
                settings.append(bd_setting(rd, anchor, metric, transform, intervals, **options))
    return settings


def averages(setting: BDSetting) -> pd.DataFrame:
    """The Average rows of a setting: codec, bd_rate_pct with its interval where computed (bd_rate_low,
    bd_rate_high), and how many of the setting's datasets it covers."""
    table = setting.table
    if table.empty:
        return pd.DataFrame(columns=["codec", "bd_rate_pct", "bd_rate_low", "bd_rate_high", "datasets", "of"])
    per_dataset = table[table["dataset"] != AVERAGE_ROW]
    counts = per_dataset.groupby("codec")["dataset"].nunique()
    rows = table[table["dataset"] == AVERAGE_ROW].reindex(columns=["codec", "bd_rate_pct", "bd_rate_low",
                                                                    "bd_rate_high"])
    return rows.assign(datasets=rows["codec"].map(counts).to_numpy(), of=per_dataset["dataset"].nunique())

