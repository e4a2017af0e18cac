"""A small resumable, parallel job runner.

Each job has a stable key (the same work gets the same key on every run) and a picklable function that returns a
JSON-serialisable dict. Its record `<out_dir>/<key>.json` is written atomically (temporary file, then rename) once the
job ends, so a killed run leaves either a whole record or none:
- a rerun skips every job whose record says "done" and reruns the rest (failed, killed, never started);
- a job that raises is recorded as "failed" with its error and traceback, and the other jobs go on;
- with workers > 1 the jobs run in a process pool (concurrent.futures), so encoders and metrics run in parallel.
"""
from __future__ import annotations

import json
import os
import re
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from bench.errors import InputError

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]*$")


def job_key(*parts) -> str:
    """A filesystem-safe key from parts: each part's unsafe characters become '-', parts are joined by '__'."""
    cleaned = [re.sub(r"[^A-Za-z0-9._+=-]+", "-", str(p)).strip("-") for p in parts]
    if not all(cleaned):
        raise InputError(f"job key: every part must hold a letter or digit, got {parts!r}")
    return "__".join(cleaned)


@dataclass(frozen=True)
class Job:
    key: str
    fn: Callable[..., dict]  # a module-level function, so that worker processes can unpickle it
    kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        if not _KEY.match(self.key):
            raise InputError(f"job key {self.key!r} is not filesystem-safe (letters, digits, . _ + = -); use job_key()")


@dataclass
class RunSummary:
    done: dict[str, dict]     # key -> record of every job that is done now (this run or an earlier one)
    skipped: list[str]        # done before this run
    ran: list[str]            # run by this call and done
    failed: dict[str, str]    # key -> error text

    @property
    def ok(self) -> bool:
        return not self.failed


def record_path(out_dir: Path, key: str) -> Path:
    return Path(out_dir) / f"{key}.json"


def load_record(out_dir: Path, key: str) -> dict | None:
    """The job's record, or None when there is none or it cannot be read (a torn write is treated as absent)."""
    path = record_path(out_dir, key)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def write_record(path: Path, record: dict) -> None:
    """Write JSON atomically: a reader sees the old file or the whole new one, never a part."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _execute(job: Job, out_dir: str) -> dict:
    """Run one job and write its record; runs inside the worker, so a parent crash cannot lose a finished result."""
    started = time.time()
    path = record_path(Path(out_dir), job.key)
    try:
        result = job.fn(**job.kwargs)
        record = {"key": job.key, "started": started, "seconds": time.time() - started, "status": "done",
                  "result": result}
        write_record(path, record)  # a result that is not JSON (NaN, objects) fails here, as the job's error
    except Exception as exc:  # a failing job is recorded, not raised: the others must go on
        record = {"key": job.key, "started": started, "seconds": time.time() - started, "status": "failed",
                  "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        write_record(path, record)
    return record


def run_jobs(jobs: Iterable[Job], out_dir, *, workers: int = 1, desc: str = "jobs", progress: bool = True) -> RunSummary:
    """Run every job that is not done yet; returns what is done, what ran, what failed."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = list(jobs)
    keys = [j.key for j in jobs]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise InputError(f"job key {dup!r} is given to two jobs; keys must be unique")
    if workers < 1:
        raise InputError(f"workers must be >= 1, got {workers}")
    summary = RunSummary({}, [], [], {})
    todo = []
    for job in jobs:
        record = load_record(out_dir, job.key)
        if record is not None and record.get("status") == "done":
            summary.done[job.key] = record
            summary.skipped.append(job.key)
        else:
            todo.append(job)
    bar = tqdm(total=len(todo), desc=desc, unit="job", disable=not progress or not todo)

    def settle(key: str, record: dict) -> None:
        if record.get("status") == "done":
            summary.done[key] = record
            summary.ran.append(key)
        else:
            summary.failed[key] = record.get("error", "unknown error")
            bar.write(f"{desc}: job {key} failed: {summary.failed[key]}")
        bar.update(1)

    if workers == 1:
        for job in todo:
            settle(job.key, _execute(job, str(out_dir)))
    elif todo:
        with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            pending = {pool.submit(_execute, job, str(out_dir)): job for job in todo}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = pending.pop(future)
                    try:
                        record = future.result()
                    except Exception as exc:  # the worker process died (killed, out of memory): no record written
                        record = {"status": "failed", "error": f"worker process failed: {type(exc).__name__}: {exc}"}
                    settle(job.key, record)
    bar.close()
    return summary
