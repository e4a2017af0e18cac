"""The sweep on a Slurm cluster through submitit: the jobs are split over a job array; every array task runs its
share with the same resumable runner (bench.sweep.jobs) on the node's GPUs, so a preempted or timed-out task is
requeued and resumes from the store. `cluster="local"` runs the same path with submitit's local executor (tests).
"""
from __future__ import annotations

from pathlib import Path

import submitit

from bench.sweep.jobs import Job, RunSummary, run_jobs
from bench.sweep.runner import lanes


class ArrayTask(submitit.helpers.Checkpointable):
    """One array task: its jobs on this node. On preemption or timeout submitit calls `checkpoint`, which requeues
    the same task; finished jobs are skipped on the rerun."""

    def __call__(self, jobs: list[Job], records: str, encoder_jobs: int, force: bool, batch="auto") -> RunSummary:
        return run_jobs(jobs, records, lanes=lanes("auto", encoder_jobs, batch=batch), progress=False, force=force)


def shares(jobs: list[Job], tasks: int) -> list[list[Job]]:
    """The jobs of each of at most `tasks` array tasks: interleaved, so that every task gets a share of each codec and
    sequence, with a batch's jobs (the rate points of one sequence) kept in one task, so that they can run together."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.batch or job.key, []).append(job)
    ordered = list(groups.values())
    return [[job for group in ordered[i::tasks] for job in group] for i in range(min(tasks, len(ordered)))]


def run_on_slurm(jobs: list[Job], out: Path, *, tasks: int, cluster: str | None = None, partition: str | None = None,
                 gpus_per_task: int = 1, cpus_per_task: int = 8, timeout_min: int = 240, encoder_jobs: int = 1,
                 force: bool = False, batch="auto", extra: dict | None = None) -> RunSummary:
    """Submit `jobs` as an array of at most `tasks` tasks, wait for them, and merge their summaries."""
    executor = submitit.AutoExecutor(folder=str(out / "slurm" / "%j"), cluster=cluster)
    params = {"timeout_min": timeout_min, "cpus_per_task": cpus_per_task, "slurm_array_parallelism": tasks}
    if cluster != "local":
        params.update(gpus_per_node=gpus_per_task, slurm_partition=partition, slurm_additional_parameters=extra or {})
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    parts = shares(jobs, tasks)
    n = len(parts)
    submitted = executor.map_array(ArrayTask(), parts, [str(out / "records")] * n, [encoder_jobs] * n, [force] * n,
                                   [batch] * n)
    merged = RunSummary({}, [], [], {})
    for part in (s.result() for s in submitted):
        merged.done.update(part.done)
        merged.skipped += part.skipped
        merged.ran += part.ran
        merged.failed.update(part.failed)
    return merged
