"""A small resumable, parallel job runner.

Each job has a stable key (the same work gets the same key on every run) and a picklable function that returns a
JSON-serialisable dict. Its record `<out_dir>/<key>.json` is written atomically (temporary file, then rename) once the
job ends, so a killed run leaves either a whole record or none:
- a rerun skips every job whose record says "done" and reruns the rest (failed, killed, never started);
- a job that raises is recorded as "failed" with its error and traceback, and the other jobs go on;
- a job runs under a lock file (`<out_dir>/.locks/<key>.lock`, released by the OS when its process dies), so two
  runners on one folder never run a job twice: a job locked by another runner is put back and waited for at the end;
- a job's `config` (a hash of what its result depends on) is stored in its record; a done record of another config
  is refused rather than mixed in (`force` reruns everything);
- jobs run on lanes (`Lane`): each lane is a process pool (or this process) that takes the jobs of its kind and
  passes its device to them, so model jobs go to one worker per GPU while encoder jobs fill a CPU pool beside them.
"""
from __future__ import annotations

import json
import os
import re
import time
import traceback
from collections.abc import Callable, Iterable
import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout
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
    lane: str = "cpu"        # the kind of lane that runs it
    config: str = ""         # hash of what the result depends on; stored in the record

    def __post_init__(self):
        if not _KEY.match(self.key):
            raise InputError(f"job key {self.key!r} is not filesystem-safe (letters, digits, . _ + = -); use job_key()")


@dataclass(frozen=True)
class Lane:
    """Where jobs of kind `kind` run: `workers` processes (0: in this process), each job given `device` if set."""

    kind: str = "cpu"
    workers: int = 1
    device: str | None = None
    start_method: str | None = None  # 'spawn' for CUDA lanes: a forked child cannot use CUDA
    initializer: Callable | None = None  # run once in each worker process (e.g. set its thread count)
    initargs: tuple = ()


@dataclass
class RunSummary:
    done: dict[str, dict]     # key -> record of every job that is done now (this run, an earlier or a parallel one)
    skipped: list[str]        # done before this run, or by another runner while this one waited
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


def _is_done(record: dict | None, job: Job) -> bool:
    return record is not None and record.get("status") == "done" and record.get("config", "") == job.config


BUSY = "busy"


def _execute(job: Job, out_dir: str, device: str | None = None, wait_for_lock: bool = False,
             force: bool = False) -> dict:
    """Run one job under its lock and write its record; runs inside the worker, so a parent crash cannot lose a
    finished result. Returns {"status": "busy"} when another runner holds the lock and `wait_for_lock` is off."""
    out = Path(out_dir)
    lock = FileLock(str(out / ".locks" / f"{job.key}.lock"))
    try:
        lock.acquire(timeout=-1 if wait_for_lock else 0)
    except Timeout:
        return {"status": BUSY}
    try:
        record = load_record(out, job.key)
        if _is_done(record, job) and (not force or wait_for_lock):
            return {**record, "skipped": True}  # finished by another runner meanwhile
        started = time.time()
        path = record_path(out, job.key)
        kwargs = job.kwargs if device is None else {**job.kwargs, "device": device}
        try:
            result = job.fn(**kwargs)
            record = {"key": job.key, "config": job.config, "started": started, "seconds": time.time() - started,
                      "status": "done", "pid": os.getpid(), "result": result}
            write_record(path, record)  # a result that is not JSON (NaN, objects) fails here, as the job's error
        except Exception as exc:  # a failing job is recorded, not raised: the others must go on
            record = {"key": job.key, "config": job.config, "started": started, "seconds": time.time() - started,
                      "status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            write_record(path, record)
        return record
    finally:
        lock.release()


def check_configs(jobs: list[Job], out_dir: Path) -> None:
    stale = [(j, r) for j in jobs if (r := load_record(out_dir, j.key)) is not None and r.get("status") == "done"
             and r.get("config", "") != j.config]
    if stale:
        job, record = stale[0]
        raise InputError(f"{record_path(out_dir, job.key)}: {len(stale)} finished job(s) in {out_dir} were made with "
                         f"another configuration (config {record.get('config') or 'none'}, now {job.config}); "
                         "results are never mixed silently: use another output folder, or --force to redo them")


def run_jobs(jobs: Iterable[Job], out_dir, *, workers: int = 1, lanes: Iterable[Lane] | None = None,
             desc: str = "jobs", progress: bool = True, force: bool = False) -> RunSummary:
    """Run every job that is not done yet; returns what is done, what ran, what failed.

    `lanes` default: one CPU lane of `workers` processes (in this process when workers is 1)."""
    out_dir = Path(out_dir)
    (out_dir / ".locks").mkdir(parents=True, exist_ok=True)
    jobs = list(jobs)
    keys = [j.key for j in jobs]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise InputError(f"job key {dup!r} is given to two jobs; keys must be unique")
    if workers < 1:
        raise InputError(f"workers must be >= 1, got {workers}")
    lanes = list(lanes) if lanes is not None else [Lane("cpu", 0 if workers == 1 else workers)]
    missing = sorted({j.lane for j in jobs} - {lane.kind for lane in lanes})
    if missing:
        raise InputError(f"no lane runs jobs of kind {', '.join(missing)}")
    if not force:
        check_configs(jobs, out_dir)
    summary = RunSummary({}, [], [], {})
    todo: dict[str, list[tuple[Job, bool]]] = {}
    for job in jobs:
        record = load_record(out_dir, job.key)
        if not force and _is_done(record, job):
            summary.done[job.key] = record
            summary.skipped.append(job.key)
        else:
            todo.setdefault(job.lane, []).append((job, False))
    total = sum(map(len, todo.values()))
    bar = tqdm(total=total, desc=desc, unit="job", disable=not progress or not total)

    def settle(job: Job, waited: bool, record: dict) -> None:
        if record.get("status") == BUSY:  # another runner has it: come back to it last, then wait for its lock
            todo[job.lane].append((job, True))
            return
        if record.get("skipped"):
            summary.done[job.key] = record
            summary.skipped.append(job.key)
        elif record.get("status") == "done":
            summary.done[job.key] = record
            summary.ran.append(job.key)
        else:
            summary.failed[job.key] = record.get("error", "unknown error")
            bar.write(f"{desc}: job {job.key} failed: {summary.failed[job.key]}")
        bar.update(1)

    pools = {}
    try:
        for i, lane in enumerate(lanes):
            if lane.workers > 0:
                context = multiprocessing.get_context(lane.start_method) if lane.start_method else None
                pools[i] = ProcessPoolExecutor(max_workers=lane.workers, mp_context=context,
                                               initializer=lane.initializer, initargs=lane.initargs)
        pending: dict = {}
        busy = {i: 0 for i in range(len(lanes))}
        # A lane alone for its kind gets its whole queue at once (the pool queues it); lanes that share a kind (one
        # per GPU) get a job per worker at a time, so that none idles while another has a backlog.
        shared = {lane.kind for lane in lanes if sum(other.kind == lane.kind for other in lanes) > 1}

        def collect(finished) -> None:
            for future in finished:
                job, waited, i = pending.pop(future)
                busy[i] -= 1
                try:
                    record = future.result()
                except Exception as exc:  # the worker process died (killed, out of memory): no record written
                    record = {"status": "failed", "error": f"worker process failed: {type(exc).__name__}: {exc}"}
                settle(job, waited, record)

        while any(todo.values()) or pending:
            for i, lane in enumerate(lanes):
                queue = todo.get(lane.kind, [])
                while queue and lane.workers and (lane.kind not in shared or busy[i] < lane.workers):
                    job, waited = queue.pop(0)
                    future = pools[i].submit(_execute, job, str(out_dir), lane.device, waited, force)
                    pending[future] = (job, waited, i)
                    busy[i] += 1
            local = next((lane for lane in lanes if lane.workers == 0 and todo.get(lane.kind)), None)
            if local is not None:  # pools work on while this process runs one of its own jobs
                job, waited = todo[local.kind].pop(0)
                settle(job, waited, _execute(job, str(out_dir), local.device, waited, force))
                collect([f for f in list(pending) if f.done()])
            elif pending:
                collect(wait(pending, return_when=FIRST_COMPLETED)[0])
    finally:
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return summary

