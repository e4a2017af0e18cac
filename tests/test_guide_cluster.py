"""docs/cluster.md as a user follows it, in a fresh work folder: the dry run and the submitit-local trial of the Slurm
path, the lock probe and two runners side by side on one store, then the merge of two stores and the refusal of a
store made with another configuration; what the guide says of each is checked on the work folder."""
import json
import re

import pytest

import guides

GUIDE = guides.ROOT / "docs" / "cluster.md"
SUMMARY = re.compile(r"^sweep: (\d+) done, (\d+) skipped \(done before\), (\d+) failed of (\d+) jobs", re.M)


def _printed(outputs: dict, *parts: str) -> str:
    """The stdout of the one command of the guide that holds every part."""
    found = [text for command, text in outputs.items() if all(part in command for part in parts)]
    assert len(found) == 1, f"{len(found)} commands hold {parts}"
    return found[0]


@pytest.mark.slow
def test_the_guide_runs_as_written_and_gives_what_it_says(tmp_path):
    import pandas as pd

    out = guides.run(GUIDE, tmp_path)
    work = tmp_path

    # 1. The dry run lists the 4 jobs of the trial and writes nothing of its own.
    dry = _printed(out, "--dry-run")
    assert len(re.findall(r"^x264__\S+  \(encoder, 4 frames 128x64\)$", dry, re.M)) == 4
    assert "4 jobs, 16 frames to code" in dry
    # The submitit-local trial: 2 array tasks ran the 4 jobs; each task has its folder and logs under OUT/slurm.
    assert SUMMARY.findall(_printed(out, "submitit-local")) == [("4", "0", "0", "4")]
    tasks = sorted(d for d in (work / "runs/trial/slurm").iterdir() if d.name != "%j")
    assert len(tasks) == 2
    for task in tasks:
        assert "Job completed successfully" in (task / f"{task.name}_0_log.out").read_text()
        assert (task / f"{task.name}_0_log.err").is_file()
    assert _printed(out, "grep -l", "runs/trial").strip() == "4"
    assert "_0_log.out" in _printed(out, "ls runs/trial/slurm")

    # 2. The lock probe: the lock held by one process kept the other out.
    assert "ok: the lock is held elsewhere" in _printed(out, "lockprobe.py")
    # Two runners on one store: each saw the 4 jobs, none failed, and between them they ran each job once.
    runners = SUMMARY.findall(_printed(out, "xargs -P 2"))
    assert len(runners) == 2
    assert all(total == "4" and failed == "0" and int(done) + int(skipped) == 4
               for done, skipped, failed, total in runners)
    assert sum(int(done) for done, *_ in runners) == 4

    # 3. The merge: the rerun coded nothing and rebuilt the tables from all 8 records.
    assert SUMMARY.findall(_printed(out, "--crop-size 128x64", "--codecs x264 x265")) == [("0", "8", "0", "8")]
    records = work / "runs/shared/records"
    table = pd.read_csv(work / "runs/shared/results.csv")
    assert len(table) == 8 and table["codec"].value_counts().to_dict() == {"x264": 4, "x265": 4}
    assert set(table["job"]) == {p.stem for p in records.glob("*.json")}
    assert len(pd.read_parquet(work / "runs/shared/results.parquet")) == 8
    for record in (work / "runs/trial/records").glob("*.json"):   # the trial's records, as copied: none recoded
        assert (records / record.name).read_bytes() == record.read_bytes()
    summary = json.loads((work / "runs/shared/sweep.json").read_text())["summary"]
    assert (summary["jobs"], summary["ran"], summary["skipped"], summary["failed"]) == (8, 0, 8, {})
    complexity = json.loads((work / "runs/shared/complexity.json").read_text())["configurations"]
    assert sorted(c["codec"] for c in complexity) == ["x264", "x265"] and all(c["fps_encode"] > 0 for c in complexity)
    # Another crop on the same keys is refused (exit 2) before anything is written: the tables above are the merge's.
    refused = _printed(out, "--crop-size 64x64")
    assert "8 finished job(s)" in refused and "were made with another configuration" in refused
    assert refused.strip().endswith("exit 2")


def test_every_command_shown_still_parses():
    from bench.cli import build_parser

    assert not guides.unparsed(GUIDE)
    kinds = [step.kind for step in guides.steps(GUIDE)]
    assert kinds.count("run") >= 5 and kinds.count("file") == 1
    shown = [command for step in guides.steps(GUIDE) if step.kind == "show" for command in guides.commands(step.text)]
    slurm = [guides.run_bench_argv(command) for command in shown if "--executor slurm" in command]
    assert len(slurm) == 1
    args = build_parser("run").parse_args(slurm[0])
    assert (args.executor, args.slurm_tasks, args.slurm_gpus, args.slurm_partition, args.slurm_time) == \
        ("slurm", 16, 1, "gpu", 240)
