"""bench.sweep.jobs: stable keys, atomic records, skip of finished jobs, retries of failed and killed ones, parallel
runs, batches of jobs."""
import json
import os

import pytest

from bench.errors import InputError
from bench.sweep.jobs import (
    Job,
    Lane,
    job_key,
    load_record,
    record_path,
    run_jobs,
    write_record,
)


def square(x, log):
    with open(log, "a") as f:  # one line per execution, so a test can count real work
        f.write(f"{x}\n")
    return {"x": x, "square": x * x, "pid": os.getpid()}


def fail_once(flag, log):
    with open(log, "a") as f:
        f.write("ran\n")
    if not os.path.exists(flag):
        open(flag, "w").close()
        raise RuntimeError("first attempt fails")
    return {"ok": True}


def die_once(flag):
    if not os.path.exists(flag):
        open(flag, "w").close()
        os._exit(9)  # as a killed worker: no exception, no record
    return {"ok": True}


def squares(members, fail=False):
    """batch_fn of `square` jobs: one line per call, listing its members."""
    with open(members[0]["log"], "a") as f:
        f.write(" ".join(str(m["x"]) for m in members) + "\n")
    if fail:
        raise RuntimeError("batch fails")
    return [{"x": m["x"], "square": m["x"] ** 2, "pid": os.getpid(), "batch": len(members)} for m in members]


def failing_squares(members):
    return squares(members, fail=True)


def not_json():
    return {"value": float("nan")}


def _lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_job_key_is_stable_and_filesystem_safe():
    assert job_key("x264", "UVG", "Beauty", "qp 22", "BT.601/x") == "x264__UVG__Beauty__qp-22__BT.601-x"
    assert job_key("a", 1) == job_key("a", 1)
    with pytest.raises(InputError, match="letter or digit"):
        job_key("a", "///")
    with pytest.raises(InputError, match="filesystem-safe"):
        Job("a/b", square)


def test_results_recorded_and_rerun_does_no_work(tmp_path):
    log = tmp_path / "calls.txt"
    jobs = [Job(job_key("sq", x), square, {"x": x, "log": str(log)}) for x in (2, 3, 4)]
    first = run_jobs(jobs, tmp_path / "rec", progress=False)
    assert first.ok and sorted(first.ran) == sorted(j.key for j in jobs) and not first.skipped
    assert first.done["sq__3"]["result"]["square"] == 9
    assert json.loads(record_path(tmp_path / "rec", "sq__4").read_text())["status"] == "done"
    assert len(_lines(log)) == 3
    second = run_jobs(jobs, tmp_path / "rec", progress=False)
    assert not second.ran and sorted(second.skipped) == sorted(j.key for j in jobs)
    assert second.done["sq__2"]["result"]["square"] == 4
    assert len(_lines(log)) == 3  # nothing ran again


def test_failed_job_is_recorded_others_finish_and_rerun_retries_only_it(tmp_path):
    log, flaky_log = tmp_path / "calls.txt", tmp_path / "flaky.txt"
    jobs = [Job("good1", square, {"x": 1, "log": str(log)}),
            Job("flaky", fail_once, {"flag": str(tmp_path / "flag"), "log": str(flaky_log)}),
            Job("good2", square, {"x": 2, "log": str(log)})]
    first = run_jobs(jobs, tmp_path / "rec", progress=False)
    assert not first.ok and set(first.failed) == {"flaky"} and set(first.done) == {"good1", "good2"}
    record = load_record(tmp_path / "rec", "flaky")
    assert record["status"] == "failed" and "RuntimeError: first attempt fails" in record["error"]
    assert "fail_once" in record["traceback"]
    second = run_jobs(jobs, tmp_path / "rec", progress=False)
    assert second.ok and second.ran == ["flaky"] and sorted(second.skipped) == ["good1", "good2"]
    assert len(_lines(log)) == 2 and len(_lines(flaky_log)) == 2


def test_parallel_run_with_a_killed_worker_is_completed_by_a_rerun(tmp_path):
    log = tmp_path / "calls.txt"
    jobs = [Job("dies", die_once, {"flag": str(tmp_path / "flag")})]
    jobs += [Job(job_key("sq", x), square, {"x": x, "log": str(log)}) for x in range(4)]
    first = run_jobs(jobs, tmp_path / "rec", workers=2, progress=False)
    assert "dies" in first.failed and "worker process failed" in first.failed["dies"]
    assert load_record(tmp_path / "rec", "dies") is None  # a killed job leaves no record
    second = run_jobs(jobs, tmp_path / "rec", workers=2, progress=False)
    assert second.ok and set(second.done) == {j.key for j in jobs}
    assert "dies" in second.ran and not set(second.ran) & set(first.ran)
    counts = {x: _lines(log).count(str(x)) for x in range(4)}
    # a square finished in the first run is never redone; one whose result the broken pool lost (it may have run
    # to its end in the other worker) is redone once
    assert all(counts[x] == 1 for x in range(4) if f"sq__{x}" in first.done)
    assert all(1 <= counts[x] <= 2 for x in range(4))
    assert all(second.done[f"sq__{x}"]["result"]["pid"] != os.getpid() for x in range(4))  # ran in worker processes


def test_torn_record_counts_as_not_done_and_non_json_result_fails(tmp_path):
    log = tmp_path / "calls.txt"
    rec = tmp_path / "rec"
    rec.mkdir()
    record_path(rec, "sq__5").write_text('{"status": "done", "res')  # a torn write from an old, non-atomic writer
    summary = run_jobs([Job("sq__5", square, {"x": 5, "log": str(log)}), Job("nan", not_json)], rec, progress=False)
    assert summary.ran == ["sq__5"] and "Out of range float" in summary.failed["nan"]
    assert load_record(rec, "nan")["status"] == "failed"


def test_write_record_is_atomic_and_keys_must_be_unique(tmp_path):
    path = tmp_path / "r.json"
    write_record(path, {"a": 1})
    write_record(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2} and [p.name for p in tmp_path.iterdir()] == ["r.json"]
    with pytest.raises(InputError, match="given to two jobs"):
        run_jobs([Job("k", square), Job("k", square)], tmp_path, progress=False)


@pytest.mark.parametrize("workers", [0, 1])
def test_jobs_of_one_batch_tag_run_together_each_with_its_own_record(tmp_path, workers):
    """A lane of batch 3 runs 3 jobs of one tag in one batch_fn call, the 4th (and an untagged job) alone with their
    fn; each has its own done record. A rerun batches only the jobs not done; a failing batch fails each member."""
    log, rec = tmp_path / "calls.txt", tmp_path / "rec"
    jobs = [Job(job_key("sq", x), square, {"x": x, "log": str(log)}, batch="g", batch_fn=squares) for x in range(4)]
    jobs.append(Job("alone", square, {"x": 9, "log": str(log)}))
    lane = [Lane("cpu", workers, batch=3)]
    first = run_jobs(jobs, rec, lanes=lane, progress=False)
    assert first.ok and sorted(first.ran) == sorted(j.key for j in jobs)
    assert _lines(log) == ["0 1 2", "3", "9"]
    for x in range(4):
        record = load_record(rec, f"sq__{x}")
        assert record["status"] == "done" and record["result"]["square"] == x * x
        assert record["result"].get("batch") == (3 if x < 3 else None)
        assert record.get("batch") == (["sq__0", "sq__1", "sq__2"] if x < 3 else None)
    record_path(rec, "sq__0").unlink()
    record_path(rec, "sq__3").unlink()
    second = run_jobs(jobs, rec, lanes=lane, progress=False)
    assert sorted(second.ran) == ["sq__0", "sq__3"] and len(second.skipped) == 3
    assert _lines(log)[3:] == ["0 3"]
    failing = [Job(job_key("f", x), square, {"x": x, "log": str(log)}, batch="h", batch_fn=failing_squares)
               for x in range(2)]
    third = run_jobs(failing + jobs, rec, lanes=lane, progress=False)
    assert set(third.failed) == {"f__0", "f__1"} and len(third.skipped) == 5
    assert all("RuntimeError: batch fails" in third.failed[k] and "failing_squares" in load_record(rec, k)["traceback"]
               for k in third.failed)


def test_slurm_array_tasks_keep_each_batch_together():
    from bench.sweep.slurm import shares

    jobs = [Job(f"j{i}", square, batch="" if i in (1, 4) else f"seq{i % 2}") for i in range(6)]
    assert [[job.key for job in part] for part in shares(jobs, 2)] == [["j0", "j2", "j3", "j5"], ["j1", "j4"]]
    assert [[job.key for job in part] for part in shares(jobs, 8)] == [["j0", "j2"], ["j1"], ["j3", "j5"], ["j4"]]
