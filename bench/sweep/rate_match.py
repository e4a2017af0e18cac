"""Rate points matched to the anchor (`rate_points: match`, `run --match-anchor`): each codec's points are chosen
so that its RD curve covers the anchor's along both BD axes, log rate (BD-quality) and quality (BD-rate).

The anchor's own jobs run first, as ordinary jobs of the sweep. Then, for every other codec and every sequence (or
dataset: `per: dataset`, the mean over its sequences) and colour transform, a probe codes the first GOP (HyTIP with
estimated rates, a conventional encoder with real streams, measured as the sweep measures) at values of the codec's
rate axis (bench.codecs.base.RateAxis: HyTIP's index 0..63, an encoder's QP range). A galloping search from the
protocol's own end points, then bisection, finds the two ends:
- the low end: the value with the most bits whose probe is still at or below the anchor's lowest rate and lowest
  quality in every matched metric (PSNR-RGB and MS-SSIM-RGB by default);
- the high end: the value with the fewest bits at or above the anchor's highest rate and quality.
`points` values evenly spaced between the ends (4 by default) are the codec's rate points. An end the codec cannot
reach within its range is its extreme value and is said so. Every probe (resumed from there when the sweep is rerun),
the anchor's range and each choice go to OUT/rate_match.json, which the report shows; the results table says
`matched to ...` in its rate_selection column.
"""
from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from bench.codecs.base import SourceSpec
from bench.errors import InputError
from bench.sweep.config import JobSpec, SweepConfig, codec_plans, colour_of, sources, transforms_of
from bench.sweep.jobs import Lane, run_jobs
from bench.sweep.runner import make_jobs, spec_config, spec_key

FILE = "rate_match.json"
ALL_SEQUENCES = "(all)"


def first_gop(source: SourceSpec) -> SourceSpec:
    """The source cut to its first independently coded stream: what a probe codes."""
    _, count = source.segments()[0]
    return replace(source, frames=count, intra_period=count, scene_cuts=())


def anchor_range(rows: pd.DataFrame, metrics, where: str) -> dict:
    """The anchor's range: {"bpp": [low, high], metric: [low, high]} over its rate points (per dataset: each point
    averaged over the sequences first). A metric the anchor has nowhere (MS-SSIM of frames under 161 pixels) is
    left out: no BD value will be computed on it."""
    metrics = [m for m in metrics if m in rows and rows[m].notna().any()]
    missing = [m for m in metrics if rows[m].isna().any()]
    if rows.empty or missing:
        raise InputError(f"rate matching: the anchor has no {'results' if rows.empty else ', '.join(missing)} for "
                         f"{where}; see its records (a failed anchor job is redone by rerunning)")
    points = rows.groupby("rate_point")[["bpp", *metrics]].mean()
    return {c: [float(points[c].min()), float(points[c].max())] for c in ["bpp", *metrics]}


def _last_true(pred, start: int, n: int) -> int:
    """The largest p in 0..n-1 with pred(p) true, for a pred true up to a point and false after it (-1: none);
    a galloping search from `start`, then bisection, so that probes stay near the protocol's own values."""
    step = 1
    if pred(start):
        good = start
        while good < n - 1:
            nxt = min(good + step, n - 1)
            if not pred(nxt):
                bad = nxt
                break
            good, step = nxt, step * 2
        else:
            return n - 1
    else:
        bad = start
        while bad > 0:
            nxt = max(bad - step, 0)
            if pred(nxt):
                good = nxt
                break
            bad, step = nxt, step * 2
        else:
            return -1
    while bad - good > 1:
        mid = (good + bad) // 2
        if pred(mid):
            good = mid
        else:
            bad = mid
    return good


def choose(evaluate, axis, protocol_values, target: dict, points: int) -> dict:
    """Rate values whose curve covers ``target`` (anchor_range): ``evaluate(value)`` gives a probe's
    {"bpp": ..., metric: ...}. Positions count along the axis in the order of more bits."""
    n = axis.high - axis.low + 1

    def value(p: int) -> int:
        return axis.low + p if axis.more_bits_up else axis.high - p

    def position(v: int) -> int:
        return v - axis.low if axis.more_bits_up else axis.high - v

    def below(p: int) -> bool:
        got = evaluate(value(p))
        return all(got[k] <= low for k, (low, _) in target.items())

    def above(p: int) -> bool:
        got = evaluate(value(p))
        return all(got[k] >= high for k, (_, high) in target.items())

    start_low, start_high = _starts(evaluate, value, sorted(position(v) for v in protocol_values), target, n)
    low = _last_true(below, start_low, n)
    high = _last_true(lambda p: not above(p), start_high, n) + 1
    reached = {"low": low >= 0, "high": high <= n - 1}
    low, high = sorted((max(low, 0), min(high, n - 1)))
    while high - low + 1 < points and (low > 0 or high < n - 1):   # a BD curve needs `points` distinct values
        low, high = max(low - 1, 0), min(high + 1, n - 1)
    chosen = sorted({value(int(p)) for p in np.rint(np.linspace(low, high, points))}, key=position)
    return {"values": chosen, "reached": reached}


def _starts(evaluate, value, ends: list[int], target: dict, n: int) -> tuple[int, int]:
    """Where the two searches start: the ends predicted by a straight line (log10 for rate) through the probes at
    the protocol's own end points; it saves most of the galloping."""
    p0, p1 = ends[0], ends[-1]
    if p0 == p1:
        return p0, p1
    f0, f1 = evaluate(value(p0)), evaluate(value(p1))
    guess = {}
    for key, (lo, hi) in target.items():
        a, b, lo, hi = (np.log10([f0[key], f1[key], lo, hi]) if key == "bpp" else (f0[key], f1[key], lo, hi))
        slope = (b - a) / (p1 - p0)
        guess[key] = (p0 + (lo - a) / slope, p0 + (hi - a) / slope) if slope > 0 else (p0, p1)
    low = int(np.clip(np.floor(min(g[0] for g in guess.values())), 0, n - 1))
    high = int(np.clip(np.ceil(max(g[1] for g in guess.values())), 0, n - 1))
    return low, high


def coverage(probe_low: dict, probe_high: dict, target: dict) -> dict:
    """The share of the anchor's range, per axis, that the probes at the two ends span (log10 for rate)."""
    out = {}
    for key, (lo, hi) in target.items():
        a, b, t_lo, t_hi = probe_low[key], probe_high[key], lo, hi
        if key == "bpp":
            a, b, t_lo, t_hi = np.log10([a, b, t_lo, t_hi])
        span = t_hi - t_lo
        out[key] = float(max(min(b, t_hi) - max(a, t_lo), 0.0) / span) if span > 0 else 1.0
    return out


class Prober:
    """Probes of the first GOP, kept in OUT/rate_match.json (written after each, so an interrupted sweep resumes).
    A sequence of one GOP is probed by its own job of the sweep (its record is reused when the point is chosen)."""

    def __init__(self, out: Path, device: str, rate_mode: str):
        self.out, self.path, self.device, self.rate_mode = Path(out), Path(out) / FILE, device, rate_mode
        self.lock = threading.Lock()
        try:
            self.doc = json.loads(self.path.read_text()) if self.path.is_file() else {}
        except json.JSONDecodeError as exc:
            raise InputError(f"{self.path}: not valid JSON ({exc}); delete it to probe again") from None
        self.doc.setdefault("probes", {})
        self.doc["choices"] = []
        self.jobs = set()   # keys of the sweep's jobs run as probes

    def probe(self, codec, source: SourceSpec, transform: str, colour, value: int, metrics) -> dict:
        rate = codec.rate_axis.point(value)
        spec = JobSpec(codec.spec(), first_gop(source), rate, transform, colour, codec.identity())
        mode = "estimated" if codec.name == "HyTIP" else "real"   # a HyTIP probe needs rates, not streams
        key, config = spec_key(spec, mode), spec_config(spec, mode)
        with self.lock:
            known = self.doc["probes"].get(key)
        if known and known["config"] == config:
            return known
        started = time.perf_counter()
        if spec.source == source and mode == (self.rate_mode if codec.name == "HyTIP" else "real"):
            result = self._as_job(spec, mode)
        else:
            folder = self.out / "probes" / key
            folders = {k: str(folder / k) for k in ("work", "logs", "bitstreams")}
            try:
                result = codec.code(spec.source, rate, colour, rate_mode=mode, folders=folders, device=self.device)
            finally:
                shutil.rmtree(folder, ignore_errors=True)   # the numbers are what a probe is for
        entry = {"codec": codec.name, "model": getattr(codec, "model", "n/a"), "dataset": source.dataset,
                 "sequence": source.name, "color_transform": transform, "rate_point": rate.label, "value": value,
                 "frames": spec.source.frames, "rate_mode": mode, "bpp": result["bpp"],
                 **{m: result["metrics"][m] for m in metrics}, "seconds": time.perf_counter() - started,
                 "config": config}
        with self.lock:
            self.doc["probes"][key] = entry
            self.save()
        return entry

    def _as_job(self, spec: JobSpec, mode: str) -> dict:
        (job,) = make_jobs([spec], self.out, mode)
        summary = run_jobs([job], self.out / "records", lanes=[Lane(job.lane, 0, self.device)], progress=False)
        self.jobs.update(summary.ran)
        if not summary.ok:
            raise InputError(f"rate matching: the probe {job.key} failed: {summary.failed[job.key]} (record "
                             f"{self.out / 'records' / (job.key + '.json')})")
        return summary.done[job.key]["result"]

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, indent=1))
        tmp.replace(self.path)


def match_rates(config: SweepConfig, out: Path, anchor_table: pd.DataFrame, device: str = "cpu",
                log=print) -> tuple[dict, set]:
    """{(codec index, dataset, sequence, colour transform): rate points} for every matched codec, from probes
    against the anchor's results (`anchor_table`: the results rows of its jobs), and the keys of the jobs that ran
    as probes. Encoders are probed in
    `execution: encoder_jobs` threads (their work is in subprocesses and torch), HyTIP in this thread."""
    selection, anchor = config.selection, config.match_anchor()
    prober = Prober(out, device, config.rate_mode)
    anchor_name = config.codecs[anchor]["codec"]
    prober.doc.update(anchor=anchor_name, per=selection.per, points=selection.points, metrics=list(selection.metrics))
    groups = {}   # (dataset, sequence or ALL_SEQUENCES, transform) -> sources
    for source in sources(config):
        for transform in transforms_of(config, source):
            name = source.name if selection.per == "sequence" else ALL_SEQUENCES
            groups.setdefault((source.dataset, name, transform), []).append(source)
    tasks = [(index, codec, protocol, group, members)
             for index, (codec, _, protocol) in enumerate(codec_plans(config))
             if index != anchor and (not selection.codecs or config.codecs[index]["codec"] in selection.codecs)
             for group, members in groups.items()]

    def one(task):
        index, codec, protocol, group, members = task
        return _match_group(prober, config, codec, protocol, group, members, anchor_table, anchor_name)

    encoders = [t for t in tasks if t[1].name != "HyTIP"]
    with ThreadPoolExecutor(max(1, config.execution.get("encoder_jobs", 1))) as pool:
        done = dict(zip(map(id, encoders), pool.map(one, encoders)))
        done.update({id(t): one(t) for t in tasks if t[1].name == "HyTIP"})
    chosen = {}
    for task in tasks:   # in the sweep's order, whatever finished first
        record, rates = done[id(task)]
        prober.doc["choices"].append(record)
        for source in task[4]:
            chosen[(task[0], source.dataset, source.name, record["color_transform"])] = rates
        short = [end for end, ok in record["reached"].items() if not ok]
        log(f"rate match: {record['codec']} {record['dataset']}/{record['sequence']} {record['color_transform']}: "
            f"{len(record['probed'])} probes of {record['probe_frames']} frames -> {' '.join(record['rate_points'])}; "
            f"covers {min(record['coverage'].values()):.0%} of {anchor_name}'s range on the probe"
            + (f" ({' and '.join(short)} end beyond the codec's range)" if short else ""))
    with prober.lock:
        prober.save()
    return chosen, prober.jobs


def _match_group(prober: Prober, config: SweepConfig, codec, protocol, group, members, anchor_table, anchor_name):
    """The choice for one codec and one sequence (or dataset) and colour transform: (record, rate points)."""
    dataset, name, transform = group
    here = anchor_table[(anchor_table["dataset"] == dataset) & (anchor_table["color_transform"] == transform)]
    if name != ALL_SEQUENCES:
        here = here[here["sequence"] == name]
    metrics = list(config.selection.metrics)
    target = anchor_range(here, metrics, f"{dataset}/{name} {transform}")
    colour, axis, tried = colour_of(config, transform), codec.rate_axis, []

    def evaluate(value):
        probes = [prober.probe(codec, s, transform, colour, value, metrics) for s in members]
        if value not in tried:
            tried.append(value)
        return {k: float(np.mean([p[k] for p in probes])) for k in target}

    pick = choose(evaluate, axis, [axis.value(r) for r in protocol], target, config.selection.points)
    rates = [axis.point(v) for v in pick["values"]]
    ends = (evaluate(pick["values"][0]), evaluate(pick["values"][-1]))
    return ({"codec": codec.name, "model": getattr(codec, "model", "n/a"), "dataset": dataset, "sequence": name,
             "color_transform": transform, "anchor": anchor_name, "anchor_range": target,
             "probed": [axis.point(v).label for v in tried], "probe_frames": first_gop(members[0]).frames,
             "reached": pick["reached"], "rate_points": [r.label for r in rates], "ends": list(ends),
             "coverage": coverage(*ends, target)}, rates)
