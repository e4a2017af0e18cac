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
  passes its device to them, so model jobs go to one worker per GPU while encoder jobs fill a CPU pool beside them;
- jobs that share a `batch` tag (the rate points of one sequence) may run as one call of their `batch_fn` on a lane
  whose `batch` allows it: only those not done yet, each still under its own lock and with its own record.
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
    batch: str = ""          # jobs with one tag may run together: batch_fn(members=[kwargs, ...]) -> [result, ...]
    batch_fn: Callable[..., list[dict]] | None = None

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
    batch: int = 1           # at most this many jobs of one batch tag per call


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


def _execute(jobs: list[Job], out_dir: str, device: str | None = None, wait_for_lock: bool = False,
             force: bool = False) -> list[dict]:
    """Run jobs under their locks and write their records: one job with its `fn`, several (one batch tag) with one
    call of their `batch_fn`. Runs inside the worker, so a parent crash cannot lose a finished result. A job whose lock
    another runner holds (and `wait_for_lock` is off) gets {"status": "busy"}; one done meanwhile its record."""
    out = Path(out_dir)
    records: dict[str, dict] = {}
    todo, locks = [], []
    try:
        for job in jobs:
            lock = FileLock(str(out / ".locks" / f"{job.key}.lock"))
            try:
                lock.acquire(timeout=-1 if wait_for_lock else 0)
            except Timeout:
                records[job.key] = {"status": BUSY}
                continue
            locks.append(lock)
            record = load_record(out, job.key)
            if _is_done(record, job) and (not force or wait_for_lock):
                records[job.key] = {**record, "skipped": True}  # finished by another runner meanwhile
            else:
                todo.append(job)
        if todo:
            started = time.time()
            extra = {} if device is None else {"device": device}
            try:
                if len(todo) == 1:
                    results = [todo[0].fn(**todo[0].kwargs, **extra)]
                else:
                    results = todo[0].batch_fn(members=[job.kwargs for job in todo], **extra)
                    if len(results) != len(todo):
                        raise RuntimeError(f"batch of {len(todo)} jobs returned {len(results)} results")
                failure = None
            except Exception as exc:  # a failing job is recorded, not raised: the others must go on
                results, failure = [None] * len(todo), exc
            seconds = time.time() - started
            for job, result in zip(todo, results):
                head = {"key": job.key, "config": job.config, "started": started, "seconds": seconds}
                if len(todo) > 1:
                    head["batch"] = [other.key for other in todo]   # seconds are the batch's
                records[job.key] = _write(out, head, result, failure)
    finally:
        for lock in locks:
            lock.release()
    return [records[job.key] for job in jobs]


def _write(out: Path, head: dict, result: dict | None, failure: Exception | None) -> dict:
    path = record_path(out, head["key"])
    if failure is None:
        try:
            record = {**head, "status": "done", "pid": os.getpid(), "result": result}
            write_record(path, record)  # a result that is not JSON (NaN, objects) fails here, as the job's error
            return record
        except Exception as exc:
            failure, trace = exc, traceback.format_exc()
    else:
        trace = "".join(traceback.format_exception(failure))
    record = {**head, "status": "failed", "error": f"{type(failure).__name__}: {failure}", "traceback": trace}
    write_record(path, record)
    return record


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

        def take(lane: Lane) -> tuple[list[Job], bool]:
            # The next job, with up to lane.batch - 1 more of its batch tag. A job waited for (its lock held by another
            # runner) runs alone: waiting on several locks at once could deadlock two runners.
            job, waited = todo[lane.kind].pop(0)
            unit = [job]
            if lane.batch > 1 and job.batch and not waited:
                for item in [item for item in todo[lane.kind] if item[0].batch == job.batch and not item[1]]:
                    if len(unit) == lane.batch:
                        break
                    todo[lane.kind].remove(item)
                    unit.append(item[0])
            return unit, waited

        def collect(finished) -> None:
            for future in finished:
                unit, waited, i = pending.pop(future)
                busy[i] -= 1
                try:
                    records = future.result()
                except Exception as exc:  # the worker process died (killed, out of memory): no record written
                    records = [{"status": "failed", "error": f"worker process failed: {type(exc).__name__}: {exc}"}]
                    records *= len(unit)
                for job, record in zip(unit, records):
                    settle(job, waited, record)

        while any(todo.values()) or pending:
            for i, lane in enumerate(lanes):
                queue = todo.get(lane.kind, [])
                while queue and lane.workers and (lane.kind not in shared or busy[i] < lane.workers):
                    unit, waited = take(lane)
                    future = pools[i].submit(_execute, unit, str(out_dir), lane.device, waited, force)
                    pending[future] = (unit, waited, i)
                    busy[i] += 1
            local = next((lane for lane in lanes if lane.workers == 0 and todo.get(lane.kind)), None)
            if local is not None:  # pools work on while this process runs one of its own jobs
                unit, waited = take(local)
                for job, record in zip(unit, _execute(unit, str(out_dir), local.device, waited, force)):
                    settle(job, waited, record)
                collect([f for f in list(pending) if f.done()])
            elif pending:
                collect(wait(pending, return_when=FIRST_COMPLETED)[0])
    finally:
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return summary

