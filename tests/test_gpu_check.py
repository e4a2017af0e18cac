"""The prepared GPU check (bench.benchmarks.gpu_check) in its --cpu mode, so that it cannot rot without a GPU: every
step runs, the golden cases pass the suggested tolerances, streams decode to the encoder's frames, one table."""
import re

from bench.benchmarks import gpu_check


def test_every_step_runs_on_the_cpu_and_passes(capsys):
    assert gpu_check.main(["--cpu", "--golden-frames", "2", "--frames", "3"]) == 0
    text = capsys.readouterr().out
    rows = dict(re.findall(r"^(\S.*?\S)\s{2,}(pass|FAIL|match|differs|measured|n/a)\s", text, re.MULTILINE))
    assert rows["golden case A on cpu"] == rows["golden case B on cpu"] == "pass"
    assert rows["decode == encoder recon on cpu"] == "pass" and rows["cpu stream decoded on cpu"] == "match"
    for kernels in ("exact", "fast", "bf16"):
        assert rows[f"speed, {kernels} kernels, 128x64"] == "measured"
    assert rows["speed, tf32 kernels, 128x64"] == "n/a"
    assert re.search(r"largest rate-point batch, 128x64\s+measured\s+2 rate points", text)
    assert re.search(r"golden case A on cpu\s+pass\s+2 frames: rate within \S+ \(bound 0.01\)", text)
    assert "golden checkpoint (test data, not HyTIP's weights)" in text and "passed in" in text


def test_without_a_gpu_the_gpu_mode_says_so(capsys):
    assert gpu_check.main([]) == 2
    assert "no CUDA device here; run with --cpu" in capsys.readouterr().err
