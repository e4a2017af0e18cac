"""The results store of a sweep folder OUT:

    OUT/records/<job>.json     one per job, written atomically by bench.sweep.jobs
    OUT/results.csv, .parquet  one row per (codec, model, dataset, sequence, colour transform, rate point): the RD CSV
                               schema plus the result columns (anchors/README.md), rebuilt from the records
    OUT/complexity.json        per codec configuration: kMAC/pixel, parameters, temporal buffer, peak memory, fps
    OUT/sweep.json             the config, protocol and the last run's summary

Tables are rebuilt from the records under a lock and replaced atomically, so sweeps killed at any moment or run side
by side never leave a half-written or duplicated table.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
from filelock import FileLock

from bench.analysis.rd_schema import RD_COLUMNS, RESULT_COLUMNS, write_rd_csv
from bench.measure.complexity_summary import hytip_summary
from bench.sweep.jobs import Job, load_record, write_record

COMPLEXITY_SIZE = (256, 448)  # kMAC/pixel is the same at every multiple of 64; this size keeps the count quick


def _replace(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_results(out: Path, jobs: list[Job]) -> pd.DataFrame:
    """results.csv and results.parquet from the done records of `jobs` (this sweep's configuration only)."""
    rows = []
    for job in jobs:
        record = load_record(out / "records", job.key)
        if record and record.get("status") == "done" and record.get("config") == job.config:
            # How the point was chosen is the sweep's, not the record's: a record may predate the choice.
            rows.append({**record["result"]["row"], "rate_selection": job.kwargs.get("rate_selection", "fixed")})
    columns = list(RD_COLUMNS) + list(RESULT_COLUMNS)
    table = pd.DataFrame(rows, columns=columns)
    with FileLock(str(out / ".results.lock")):
        if rows:
            # Curves of an untrained or broken model need not rise with rate: they are results, written as they are.
            _replace(out / "results.csv", lambda p: write_rd_csv(table, p, check_curves=False))
            _replace(out / "results.parquet", lambda p: table.to_parquet(p, index=False))
    return table


def write_complexity(out: Path, codecs: list, table: pd.DataFrame, counters=("ptflops",),
                     architecture: bool = False) -> dict:
    """Per codec configuration: HyTIP's architecture figures (measured once, weights do not matter; also without
    HyTIP in the sweep when `architecture`) and, for every codec, peak memory and frames per second from this
    sweep's records."""
    path = out / "complexity.json"
    known = json.loads(path.read_text()) if path.is_file() else {}
    arch = known.get("hytip_architecture")
    if arch and any(f"enc_kmac_per_pixel{'' if c == 'ptflops' else '_' + c}" not in arch for c in counters):
        arch = None  # a counter was added since
    if arch is None and (architecture or any(c.name == "HyTIP" for c, _ in codecs)):
        arch = hytip_summary(counters, *COMPLEXITY_SIZE)
    configurations = []
    for codec, _ in codecs:
        hytip = codec.name == "HyTIP"
        model = codec.model if hytip else "n/a"
        rows = table[(table["codec"] == codec.name) & (table["model"].fillna("n/a") == model)] if len(table) else table
        frames = rows["frames"].sum() if len(rows) else 0
        enc, dec = (rows[c].sum(min_count=1) if len(rows) else None for c in ("enc_seconds", "dec_seconds"))
        entry = {"codec": codec.name, "model": model if hytip else codec.encoder,
                 "fps_encode": float(frames / enc) if enc else None,
                 "fps_decode": float(frames / dec) if dec and not pd.isna(dec) else None,
                 "fps_protocol": "coded frames / summed per-frame seconds over the sweep's jobs, on its devices"}
        if hytip:
            entry.update(arch)
            entry["peak_memory_bytes"] = _peak(out, rows)
            # Rate points coded as one batch: the peak is the batch's, and fps its throughput (seconds per point).
            entry["rate_point_batch"] = int(rows["rate_point_batch"].max()) if len(rows) else None
        configurations.append(entry)
    doc = {"hytip_architecture": arch, "configurations": configurations}
    _replace(path, lambda p: p.write_text(json.dumps(doc, indent=1, default=str) + "\n"))
    return doc


def _peak(out: Path, rows: pd.DataFrame):
    peaks = [load_record(out / "records", key)["result"].get("peak_memory_bytes") for key in rows.get("job", [])]
    peaks = [p for p in peaks if p]
    return max(peaks) if peaks else None


def write_sweep(out: Path, config: dict, summary: dict) -> None:
    write_record(out / "sweep.json", {"config": config, "summary": summary})


def remove_empty_work(out: Path) -> None:
    """Jobs remove their own temporaries; the folder that held them goes once it is empty."""
    work = out / "work"
    if work.is_dir() and not any(work.iterdir()):
        work.rmdir()
