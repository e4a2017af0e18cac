"""How far a BD-rate can move: intervals around every value of ``bench.analysis.bdrate.bd_tables``.

Three sources of uncertainty, each its own interval, and the value's interval their envelope:

* **interpolation** (per curve pair): the ``bdci`` package (Hang et al., "BD-rate confidence intervals",
  arXiv 2410.12220), whose neural estimator gives a mean and a variance of the test curve's integral. Its metric group
  is passed explicitly (``PSNR`` for PSNR metrics, ``COV`` for MS-SSIM; its default, ``GENERIC``, is the one its own
  README warns about) and its interval, ±k standard deviations, is put around *our* value (the chosen method's), not
  around bdci's own centre, which is not the JVET PCHIP value. A dataset's interval is the mean of its sequences'
  bounds (the bounds of a mean), the Average's the mean of its datasets'.
* **method** (per value): the spread of PCHIP, Akima and cubic (the spread the "Bjøntegaard Bible", arXiv 2304.12852,
  uses to show interpolation error), per sequence and through the same averages.
* **sampling** (dataset and Average values): a percentile bootstrap of the mean over the dataset's sequences, and of
  the Average over the datasets; the resamples, the seed and the level are recorded, and each group draws from its
  own generator seeded by (seed, the group's key), so that a value's interval does not depend on what else is in the
  table. A group of one has no sampling interval (it is its value).
"""
from __future__ import annotations

import importlib.metadata
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.analysis.bdrate import AVERAGE_ROW, METHODS, BDTables, OverlapWarning, bd_rate_batch, bd_tables
from bench.analysis.rd_schema import DATASET_MEAN
from bench.argtypes import open_share, positive_float, positive_int

BDCI_GROUPS = {"psnr": "PSNR", "msssim": "COV"}   # by metric family
SOURCES = ("interpolation", "method", "sampling")
INTERVAL_COLUMNS = tuple(f"{source}_{bound}" for source in ("bd_rate",) + SOURCES for bound in ("low", "high"))


@dataclass(frozen=True)
class IntervalOptions:
    resamples: int = 2000
    seed: int = 0
    level: float = 0.95
    bdci_k: float = 2.0          # bdci's interval: ± k standard deviations (2: about the bootstrap's 95 %)
    interpolation: bool = True   # bdci needs torch; without it the interval has the method and sampling parts

    @staticmethod
    def add_arguments(group) -> None:
        """The command-line options of the intervals (bdrate --ci, report)."""
        group.add_argument("--resamples", type=positive_int, default=IntervalOptions.resamples,
                           help=f"bootstrap resamples ({IntervalOptions.resamples})")
        group.add_argument("--seed", type=int, default=IntervalOptions.seed,
                           help=f"bootstrap seed ({IntervalOptions.seed})")
        group.add_argument("--level", type=open_share, default=IntervalOptions.level,
                           help=f"bootstrap level ({IntervalOptions.level})")
        group.add_argument("--bdci-k", type=positive_float, default=IntervalOptions.bdci_k,
                           help=f"bdci's interval in standard deviations ({IntervalOptions.bdci_k:g})")

    @classmethod
    def from_args(cls, args) -> "IntervalOptions":
        return cls(args.resamples, args.seed, args.level, args.bdci_k)

    def text(self) -> str:
        parts = []
        if self.interpolation:
            parts.append(f"interpolation: bdci {importlib.metadata.version('bdci')} (PSNR group for PSNR, COV for "
                         f"MS-SSIM), ±{self.bdci_k:g} standard deviations around the method's value")
        parts.append("method: the spread of " + ", ".join(METHODS))
        parts.append(f"sampling: percentile bootstrap ({self.level:.0%}, {self.resamples} resamples, seed "
                     f"{self.seed}) over a dataset's sequences, and over the datasets for the Average")
        return "[low, high] = the widest of " + "; ".join(parts)


def interval_text(value, low, high, decimals: int = 1) -> str:
    """value [low, high], as tables print a BD-rate with its interval."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:.{decimals}f}"
    return f"{value:.{decimals}f} [{low:.{decimals}f}, {high:.{decimals}f}]"


def bdci_group(metric: str) -> str:
    family = "msssim" if metric.startswith("msssim") else "psnr"
    return BDCI_GROUPS[family]


class PairColumns:
    """``pair_columns`` for bd_tables: every method's BD-rate of each pair and, with ``interpolation``, bdci's
    interval put around the pair's value."""

    def __init__(self, options: IntervalOptions):
        self.options = options
        self._estimators = {}

    def _estimator(self, group: str):
        if group not in self._estimators:
            from bdci.functional import create_estimator
            self._estimators[group] = create_estimator("neural", group, "rate")
        return self._estimators[group]

    def interpolation(self, metric, ra, qa, rt, qt, value) -> tuple[np.ndarray, np.ndarray]:
        """bdci's interval of each pair put around ``value``. bdci's BDCI_RATE is exp(c -+ k*sigma/width) - 1 with c
        its own centre and sigma the standard deviation of the test curve's integral of ln(rate) over the two
        curves' common quality range; only sigma is needed here, so the anchor's integral, which moves only the
        centre, is not estimated (half the cost; tests/test_intervals.py checks the width against BDCI_RATE)."""
        import torch

        estimator = self._estimator(bdci_group(metric))
        low, high = np.full(len(value), np.nan), np.full(len(value), np.nan)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)   # its networks are tiny: one thread is 3x faster than two here
        try:
            for i in np.flatnonzero(np.isfinite(value)):
                qa_i, qt_i = qa[i].astype(np.float32), qt[i].astype(np.float32)   # as bdci takes them
                lo, hi = max(qa_i.min(), qt_i.min()), min(qa_i.max(), qt_i.max())
                try:
                    _, variance, _ = estimator.estimate_integral_with_var(qt_i, np.log(rt[i].astype(np.float32)),
                                                                          lo, hi)
                except ValueError:   # bdci refuses an overlap narrower than one segment: no interval
                    continue
                half = self.options.bdci_k * np.sqrt(variance) / (hi - lo)
                centre = np.log1p(value[i] / 100)
                low[i], high[i] = np.expm1(centre - half) * 100, np.expm1(centre + half) * 100
        finally:
            torch.set_num_threads(threads)
        return low, high

    def __call__(self, metric, ra, qa, rt, qt, value) -> dict:
        with warnings.catch_warnings():   # bd_tables has already warned about these pairs' overlap
            warnings.simplefilter("ignore", OverlapWarning)
            columns = {f"bd_rate_{m}": bd_rate_batch(ra, qa, rt, qt, m).value for m in METHODS}
        if self.options.interpolation:
            columns["interpolation_low"], columns["interpolation_high"] = self.interpolation(metric, ra, qa, rt, qt,
                                                                                             value)
        return columns


def bootstrap(values: np.ndarray, options: IntervalOptions, key: str) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` over resamples with replacement; NaN if a value is."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2 or not np.isfinite(values).all():
        value = float(values.mean()) if len(values) and np.isfinite(values).all() else np.nan
        return value, value
    rng = np.random.default_rng([options.seed, zlib.crc32(key.encode())])
    means = values[rng.integers(0, len(values), size=(options.resamples, len(values)))].mean(axis=1)
    tail = (1 - options.level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def _envelope(lows: pd.DataFrame, highs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise the lowest of ``lows`` and the highest of ``highs``, missing parts ignored."""
    with np.errstate(invalid="ignore"):
        return (np.fmin.reduce(lows.to_numpy(float), axis=1), np.fmax.reduce(highs.to_numpy(float), axis=1))


def with_intervals(sequences: pd.DataFrame, datasets: pd.DataFrame, options: IntervalOptions) -> pd.DataFrame:
    """``datasets`` (bd_tables' per-dataset and Average rows) with INTERVAL_COLUMNS, from ``sequences`` (bd_tables'
    per-sequence rows made with PairColumns)."""
    keys = ["codec", "anchor", "dataset", "color_transform", "metric"]
    per_method = [f"bd_rate_{m}" for m in METHODS]
    rows = []
    for key, group in sequences.groupby(keys, sort=False):
        row = dict(zip(keys, key))
        for m in per_method:
            row[m] = group[m].mean(skipna=False)
        for bound in ("low", "high"):
            column = f"interpolation_{bound}"
            row[column] = group[column].mean(skipna=False) if column in group else np.nan
        real = group[group["sequence"] != DATASET_MEAN]   # a dataset-mean curve ('curve' averaging) has no sample
        row["sampling_low"], row["sampling_high"] = (bootstrap(real["bd_rate_pct"].to_numpy(), options, "/".join(key))
                                                     if len(real) else (np.nan, np.nan))
        rows.append(row)
    per_dataset = pd.DataFrame(rows)
    means = datasets.set_index(keys)["bd_rate_pct"]
    average = []
    for key, group in per_dataset.groupby(["codec", "anchor", "color_transform", "metric"], sort=False):
        row = dict(zip(["codec", "anchor", "color_transform", "metric"], key), dataset=AVERAGE_ROW)
        for column in per_method + ["interpolation_low", "interpolation_high"]:
            row[column] = group[column].mean(skipna=False)
        values = [means[(key[0], key[1], d, key[2], key[3])] for d in group["dataset"]]
        row["sampling_low"], row["sampling_high"] = bootstrap(np.array(values), options, "/".join(map(str, key)))
        average.append(row)
    found = pd.concat([per_dataset, pd.DataFrame(average)], ignore_index=True)
    found["method_low"], found["method_high"] = found[per_method].min(axis=1), found[per_method].max(axis=1)
    merged = datasets.merge(found.drop(columns=per_method), how="left", on=keys)
    merged["bd_rate_low"], merged["bd_rate_high"] = _envelope(merged[[f"{s}_low" for s in SOURCES] + ["bd_rate_pct"]],
                                                              merged[[f"{s}_high" for s in SOURCES] + ["bd_rate_pct"]])
    undefined = merged["bd_rate_pct"].isna()
    merged.loc[undefined, list(INTERVAL_COLUMNS)] = np.nan
    merged["interval"] = options.text()
    return merged


def bd_tables_with_intervals(rd: pd.DataFrame, anchor: str, metrics, options: IntervalOptions = IntervalOptions(),
                             **bd_options) -> BDTables:
    """bd_tables (``bd_options``: method, averaging, msssim_db, min_overlap, allow_protocol_mismatch) with the
    intervals: the per-sequence table gains every method's value, bdci's interval and their envelope (bd_rate_low,
    bd_rate_high), the per-dataset table INTERVAL_COLUMNS and an ``interval`` column saying how they were made."""
    tables = bd_tables(rd, anchor, metrics, pair_columns=PairColumns(options), **bd_options)
    sequences = tables.sequences
    # a sequence's interval: its interpolation interval and the method spread
    parts = sequences[[f"bd_rate_{m}" for m in METHODS] + ["bd_rate_pct"]
                      + (["interpolation_low", "interpolation_high"] if options.interpolation else [])]
    low, high = _envelope(parts, parts)
    sequences = sequences.assign(bd_rate_low=low, bd_rate_high=high)
    sequences.loc[sequences["bd_rate_pct"].isna(), ["bd_rate_low", "bd_rate_high"]] = np.nan
    return BDTables(sequences, with_intervals(sequences, tables.datasets, options), tables.notes)
