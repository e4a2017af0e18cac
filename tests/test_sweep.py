"""`run_bench.py run` end to end on the CPU: the golden checkpoint (its numbers are test data, not HyTIP results) and
x264 on two tiny real sequences, two rate points, two colour transforms; resume, --force, a changed configuration,
a failing job, kill -9 at several points, two sweeps on one store, submitit's local executor, and bdrate on the table.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

import golden
import hytip
from anchor_helpers import tiny_clip
from bench import REPO_ROOT
from bench.analysis.rd_schema import load_rd_csv
from bench.cli import main
from bench.cli.run import run_sweep
from bench.codecs.base import SourceSpec, reference_rgb, summarise
from bench.data.colour import ColourSpec
from bench.data.readers import open_source
from bench.errors import InputError
from bench.measure.metrics import psnr_rgb
from bench.sweep.config import SweepConfig
from hytip.fast import uses_nnpack

W, H, FRAMES = 128, 64, 2
CATALOG = f"""\
datasets:
  Tiny:
    protocol: {{frames: {FRAMES}, intra_period: 2, crop_multiple: 64, pad_multiple: 16}}
    raw_dirs: ["{{dataset}}"]
    png_dir: "{{dataset}}/{{sequence}}{{bt709}}"
    sequences:
      a: {{files: [a_{W}x{H}.yuv], width: {W}, height: {H}, frames: {FRAMES}, fps: 25, pix_fmt: yuv420p}}
      b: {{files: [b_{W}x{H}.yuv], width: {W}, height: {H}, frames: {FRAMES}, fps: 25, pix_fmt: yuv420p}}
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "Tiny").mkdir()
    tiny_clip(root / "Tiny" / f"a_{W}x{H}.yuv", frames=FRAMES, start=60)
    tiny_clip(root / "Tiny" / f"b_{W}x{H}.yuv", frames=FRAMES, start=90)
    (root / "tiny.yaml").write_text(CATALOG)
    return root


def argv(data, out, *extra, codecs=("hytip", "x264")):
    return ["run", "--codecs", *codecs, "--checkpoint", f"golden={golden.golden_checkpoint_path()}",
            "--dataset", "Tiny", "--catalog", str(data / "tiny.yaml"), "--data-root", str(data),
            "--rate-points", "0:0", "63:63", "--qps", "24", "40", "--color-transforms", "BT601", "BT709",
            "--threads", "1", "--out", str(out), "--no-progress", *extra]


def cli(args, capsys):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().out


def test_two_sequence_sweep_end_to_end_then_resume_and_force(data, tmp_path, capsys):
    out = tmp_path / "run"
    code, text = cli(argv(data, out), capsys)
    assert code == 0, text
    jobs = 2 * 2 * 2 * 2  # sequences x transforms x rate points x codecs
    assert f"sweep: {jobs} done, 0 skipped" in text
    table = pd.read_csv(out / "results.csv")
    assert len(table) == jobs and not table.duplicated(["codec", "sequence", "color_transform", "rate_point"]).any()
    parquet = pd.read_parquet(out / "results.parquet").set_index("job").loc[table["job"]]
    assert list(parquet.columns) == [c for c in table.columns if c != "job"]
    np.testing.assert_allclose(parquet["bpp"], table["bpp"], rtol=1e-14)  # the CSV keeps 16 digits
    np.testing.assert_allclose(parquet["psnr_rgb"], table["psnr_rgb"], rtol=1e-14)
    hy = table[table["codec"] == "HyTIP"].set_index(["sequence", "color_transform", "rate_point"])
    assert set(hy["model"]) == {"golden"} and set(hy["rate_mode"]) == {"estimated"}
    assert (hy["torch_version"] == torch.__version__).all() and hy["checkpoint_sha256"].str.len().eq(64).all()
    assert set(table["color_filter"]) == {"nearest", "bilinear"} and set(table["crop"]) == {"centre-64"}

    # The HyTIP row equals coding the same frames with the codec directly.
    row = hy.loc[("b", "BT709", "i63-qp63")]
    source = SourceSpec("Tiny", "b", str(data / "Tiny" / f"b_{W}x{H}.yuv"), W, H, "yuv420p", 25.0, 8, False, FRAMES,
                        2, ())
    spec = ColourSpec.for_protocol("BT709")
    with open_source(source.path, width=W, height=H, pix_fmt="yuv420p") as reader:
        frames = [reference_rgb(f, source, spec) for f in reader.frames(0, FRAMES)]
    coded = list(hytip.load(golden.golden_checkpoint_path()).estimate(frames, qp=63, i_quality=63, intra_period=2))
    bits = sum(f.est_bits_total for f in coded)
    assert row["bpp"] == pytest.approx(bits / (W * H * FRAMES), rel=1e-9)
    assert row["kbps"] == pytest.approx(bits * 25 / FRAMES / 1000, rel=1e-9)
    psnrs = [float(psnr_rgb(f.recon[None], x[None])[0]) for f, x in zip(coded, frames)]
    assert row["psnr_rgb"] == pytest.approx(np.mean(psnrs), abs=1e-9)  # one GOP: the mean of its frames
    assert row["psnr_rgb_from_mse"] == pytest.approx(-10 * np.log10(np.mean(10 ** (-np.array(psnrs) / 10))))
    record = json.loads((out / "records" / f"{row['job']}.json").read_text())
    assert record["result"]["per_frame"]["type"] == ["I", "P"] and len(record["result"]["per_frame"]["bits"]) == 2
    assert summarise(record["result"]["per_frame"], source)["psnr_yuv"] == pytest.approx(row["psnr_yuv"])

    x264 = table[table["codec"] == "x264"]
    assert (x264["rate_mode"] == "real").all() and (x264["bpp"] > 0).all() and x264["enc_seconds"].gt(0).all()
    complexity = json.loads((out / "complexity.json").read_text())
    hytip_cfg = next(c for c in complexity["configurations"] if c["codec"] == "HyTIP")
    assert hytip_cfg["enc_kmac_per_pixel"] == pytest.approx(1265.83, abs=0.01)  # the official ptflops figure
    assert hytip_cfg["temporal_buffer_channels"] == 7.875 and hytip_cfg["fps_encode"] > 0

    records = sorted((out / "records").glob("*.json"))
    mtimes = {p: p.stat().st_mtime_ns for p in records}
    code, text = cli(argv(data, out), capsys)
    assert code == 0 and f"0 done, {jobs} skipped" in text
    assert {p: p.stat().st_mtime_ns for p in records} == mtimes
    records[0].unlink()
    code, text = cli(argv(data, out), capsys)
    assert code == 0 and f"1 done, {jobs - 1} skipped" in text and len(pd.read_csv(out / "results.csv")) == jobs
    code, text = cli(argv(data, out, "--force", codecs=("x264",)), capsys)
    assert code == 0 and "8 done, 0 skipped" in text

    # A value out of range stops the command before anything runs; another protocol on the same store is refused,
    # not mixed in.
    with pytest.raises(SystemExit) as stop:
        main(argv(data, out, "--crop-multiple", "-1"))
    assert stop.value.code == 2
    assert "argument --crop-multiple: -1: expected a positive integer" in capsys.readouterr().err
    code = main(argv(data, out, "--crop-multiple", "32", codecs=("x264",)))
    assert code == 2 and "were made with another configuration" in capsys.readouterr().err


def test_real_mode_decodes_and_checks_every_stream(data, tmp_path, capsys):
    out = tmp_path / "real"
    code, text = cli(argv(data, out, "--rate-mode", "real", "--sequences", "a", "--color-transforms", "BT601",
                          "--rate-point-batch", "2", codecs=("hytip",)), capsys)
    assert code == 0, text
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 2 and (table["decode_check"] == "equal").all() and table["dec_seconds"].gt(0).all()
    assert (table["rate_point_batch"] == 1).all()   # --rate-point-batch 2: a stream is coded one point at a time
    loads = []
    for job in table["job"]:
        stream = out / "bitstreams" / job / "sequence.hytip"
        assert table.set_index("job").loc[job, "bpp"] == pytest.approx(8 * stream.stat().st_size / (W * H * FRAMES))
        # Frames read ahead of the model: per-frame fields as before, the model's wait for input apart.
        result = json.loads((out / "records" / f"{job}.json").read_text())["result"]
        per_frame = result["per_frame"]
        assert per_frame["number"] == [1, 2] and per_frame["type"] == ["I", "P"]
        for key in ("bits", "enc_seconds", "dec_seconds", "psnr_rgb", "psnr_y", "psnr_yuv"):
            assert len(per_frame[key]) == FRAMES and all(v > 0 for v in per_frame[key]), key
        assert result["enc_seconds"] == pytest.approx(sum(per_frame["enc_seconds"]))
        assert 0 <= result["input_wait_seconds"] < result["enc_seconds"]
        assert table.set_index("job").loc[job, "input_wait_seconds"] == pytest.approx(result["input_wait_seconds"])
        loads.append(result["load_seconds"])
    # The model is loaded once per worker process (this one on the CPU), in its first job at most.
    assert all(v >= 0 for v in loads) and sum(v > 0.05 for v in loads) <= 1


def test_rate_points_of_a_sequence_in_one_batch_each_with_its_record(data, tmp_path, capsys, monkeypatch):
    """--rate-point-batch 2: a sequence's two rate points coded as one batch (hytip.Codec.estimate_points), each with
    its own record, job and config hash as when coded one at a time (a rerun without the batch skips them), rates and
    PSNR-RGB within the golden tolerances of the unbatched run; a GPU out of memory for the batch codes its points one
    at a time."""
    single, batched = tmp_path / "single", tmp_path / "batched"
    common = ("--sequences", "a", "--color-transforms", "BT601")
    assert cli(argv(data, single, *common, codecs=("hytip",)), capsys)[0] == 0
    code, text = cli(argv(data, batched, *common, "--rate-point-batch", "2", codecs=("hytip",)), capsys)
    assert code == 0 and "2 done, 0 skipped" in text, text
    one, two = (pd.read_csv(o / "results.csv").sort_values("qp").reset_index() for o in (single, batched))
    assert list(one["rate_point_batch"]) == [1, 1] and list(two["rate_point_batch"]) == [2, 2]
    assert list(one["job"]) == list(two["job"]) and list(one["config_sha256"]) == list(two["config_sha256"])
    assert two["codec_command"].str.startswith("hytip.Codec.estimate_points(<2 points>").all()
    tol = golden.SUGGESTED
    assert (abs(two["bpp"] / one["bpp"] - 1) <= tol.est_bpp_total_rel).all()
    assert (abs(two["psnr_rgb"] - one["psnr_rgb"]) <= tol.psnr_rgb_abs_db).all()
    assert [c["rate_point_batch"] for c in json.loads((batched / "complexity.json").read_text())["configurations"]
            if c["codec"] == "HyTIP"] == [2]
    records = [json.loads((batched / "records" / f"{job}.json").read_text()) for job in two["job"]]
    assert all(sorted(r["batch"]) == sorted(two["job"]) for r in records)
    # One reader fed both points: its wait, like the model load, is on the batch's first point only.
    assert sum(r["result"]["input_wait_seconds"] > 0 for r in records) == 1
    assert "0 done, 2 skipped" in cli(argv(data, batched, *common, codecs=("hytip",)), capsys)[1]

    def out_of_memory(self, frames, points, **options):
        if len(points) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (test)")
        yield from original(self, frames, points, **options)

    original = hytip.Codec.estimate_points
    monkeypatch.setattr(hytip.Codec, "estimate_points", out_of_memory)
    split = tmp_path / "split"
    assert cli(argv(data, split, *common, "--rate-point-batch", "2", codecs=("hytip",)), capsys)[0] == 0
    three = pd.read_csv(split / "results.csv").sort_values("qp").reset_index()
    assert list(three["rate_point_batch"]) == [1, 1] and list(three["bpp"]) == list(one["bpp"])


def test_failing_job_is_recorded_and_the_sweep_goes_on(data, tmp_path, capsys):
    root = tmp_path / "data"
    (root / "Tiny").mkdir(parents=True)
    (root / "tiny.yaml").write_text(CATALOG)
    (root / "Tiny" / f"a_{W}x{H}.yuv").write_bytes((data / "Tiny" / f"a_{W}x{H}.yuv").read_bytes())
    (root / "Tiny" / f"b_{W}x{H}.yuv").write_bytes((data / "Tiny" / f"b_{W}x{H}.yuv").read_bytes()[:1000])
    out = tmp_path / "run"
    code, text = cli(argv(root, out, "--color-transforms", "BT601", codecs=("x264",)), capsys)
    assert code == 1 and "2 done, 0 skipped (done before), 2 failed" in text
    assert f"b_{W}x{H}.yuv" in text  # the error names the file
    failed = [json.loads(p.read_text()) for p in (out / "records").glob("*__b__*.json")]
    assert len(failed) == 2 and all(r["status"] == "failed" and "b_128x64.yuv" in r["error"] for r in failed)
    assert sorted(pd.read_csv(out / "results.csv")["sequence"]) == ["a", "a"]


def test_tf32_kernels_on_the_cpu_fail_each_job_with_the_reason(data, tmp_path, capsys):
    """TensorFloat-32 exists on CUDA only: on the CPU each tf32 job fails and says why; the sweep goes on."""
    out = tmp_path / "tf32"
    code, text = cli(argv(data, out, "--sequences", "a", "--color-transforms", "BT601", "--kernels", "tf32",
                          codecs=("hytip",)), capsys)
    assert code == 1 and "0 done, 0 skipped (done before), 2 failed" in text
    failed = [json.loads(p.read_text()) for p in (out / "records").glob("*-tf32__estimated__*.json")]
    assert len(failed) == 2 and all(r["status"] == "failed" and "TensorFloat-32 exists on CUDA devices only"
                                    in r["error"] for r in failed)


def test_missing_checkpoint_and_file_are_reported_together_before_anything_runs(data, tmp_path, capsys):
    args = argv(data, tmp_path / "x") + ["--checkpoint", "MS-SSIM-RGB=/nonexistent/MS-SSIM-RGB.pth.tar",
                                         "--sequences", "a", "zz"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "2 problems" in err and "/nonexistent/MS-SSIM-RGB.pth.tar not found" in err and "'zz'" in err
    assert not (tmp_path / "x").exists()


def test_dry_run_lists_jobs_and_work(data, tmp_path, capsys):
    code, text = cli(argv(data, tmp_path / "dry", "--dry-run"), capsys)
    assert code == 0 and "16 jobs, 32 frames to code" in text
    assert "hytip-golden__estimated__Tiny__a__i0-qp0__f2__ip2__BT601" in text and not (tmp_path / "dry").exists()
    assert "HyTIP rate points of a sequence per batch: 1 on cpu" in text   # auto: a batch is slower on the CPU
    code, text = cli(argv(data, tmp_path / "dry", "--dry-run", "--devices", "cpu", "--rate-point-batch", "3"), capsys)
    assert code == 0 and "per batch: 3 on cpu" in text


def _sweep_process(data, out):
    """The CLI in a process of its own, as a user runs it (for kill -9 and concurrency)."""
    return subprocess.Popen([sys.executable, str(REPO_ROOT / "run_bench.py"), *argv(data, out, codecs=("hytip",))],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


@pytest.mark.slow
def test_kill_9_at_random_points_then_rerun_completes_exactly_once(data, tmp_path):
    out = tmp_path / "run"
    rng = random.Random(7)
    for _ in range(3):
        proc = _sweep_process(data, out)
        time.sleep(rng.uniform(4, 9))  # start-up takes ~4 s, the 8 jobs ~5 s more
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done_before = {p: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")
                   if json.loads(p.read_text())["status"] == "done"}
    proc = _sweep_process(data, out)
    text = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, text
    records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert len(records) == 8 and all(r["status"] == "done" for r in records)
    assert {p: p.stat().st_mtime_ns for p in done_before} == done_before  # finished jobs were not redone
    assert f"{8 - len(done_before)} done, {len(done_before)} skipped" in text
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 8 and not table["job"].duplicated().any()
    assert not list(out.rglob("*.tmp"))


@pytest.mark.slow
def test_two_sweeps_on_one_store_run_each_job_once(data, tmp_path):
    out = tmp_path / "run"
    procs = [_sweep_process(data, out) for _ in range(2)]
    texts = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), texts
    ran = [int(t.split("sweep: ")[1].split(" done")[0]) for t in texts]
    assert sum(ran) == 8  # a job run by both would be counted twice
    pids = {json.loads(p.read_text())["pid"] for p in (out / "records").glob("*.json")}
    assert len(pd.read_csv(out / "results.csv")) == 8 and len(pids) >= 1


@pytest.mark.slow
def test_submitit_local_executor_runs_the_sweep_and_table_feeds_bdrate(data, tmp_path, capsys):
    out = tmp_path / "slurm"
    config = SweepConfig(codecs=[{"codec": "x264", "qps": [22, 27, 32, 37]}, {"codec": "x265", "qps": [22, 27, 32, 37]}],
                         datasets=["Tiny"], catalogs=[str(data / "tiny.yaml")], data_root=str(data),
                         color_transforms=["BT601"])
    assert run_sweep(config, out, executor="slurm", progress=False,
                     slurm={"tasks": 2, "cluster": "local", "timeout_min": 10}) == 0
    assert len(list((out / "slurm").rglob("*_result.pkl"))) == 2  # two array tasks ran
    text = capsys.readouterr().out
    assert "16 done, 0 skipped" in text
    assert len(load_rd_csv(out / "results.csv")) == 16
    assert main(["bdrate", str(out / "results.csv"), "--anchor", "x264", "--metric", "psnr_rgb", "psnr_y",
                 "-o", str(tmp_path / "bd.csv")]) == 0
    bd = pd.read_csv(tmp_path / "bd.csv")
    assert bd["codec"].str.startswith("x265-").all() and np.isfinite(bd["bd_rate_pct"]).all()
    assert sorted(zip(bd["metric"], bd["dataset"])) == [("psnr_rgb", "Average"), ("psnr_rgb", "Tiny"),
                                                        ("psnr_y", "Average"), ("psnr_y", "Tiny")]
    assert "x265" in capsys.readouterr().out


def test_example_configs_expand_to_the_paper_table(tmp_path, capsys):
    from bench.data.catalog import load_catalog

    catalog = load_catalog()
    for ds in catalog.datasets.values():  # every catalogued file present (empty: a dry run reads none)
        for name in ds.sequences:
            path = ds.candidates(name, tmp_path)[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    models = tmp_path / "models"
    models.mkdir()
    for model in ("PSNR-RGB", "MS-SSIM-RGB"):
        (models / f"{model}.pth.tar").symlink_to(golden.golden_checkpoint_path())  # a dry run loads it (strictly)
    config = REPO_ROOT / "configs" / "paper.yaml"
    args = ["run", str(config), "--data-root", str(tmp_path), "--dry-run", "--checkpoint",
            f"PSNR-RGB={models / 'PSNR-RGB.pth.tar'}", "--checkpoint", f"MS-SSIM-RGB={models / 'MS-SSIM-RGB.pth.tar'}"]
    code, text = cli(args, capsys)
    # 53 YUV sequences x 2 transforms + 6 native-RGB sequences, x 4 rate points x 2 models, 96 frames each.
    assert code == 0 and f"{(53 * 2 + 6) * 4 * 2} jobs, {(53 * 2 + 6) * 4 * 2 * 96} frames to code" in text
    assert "hytip-MS-SSIM-RGB__estimated__HEVC-RGB__DucksAndLegs__i63-qp63__f96__ip32__native-RGB" in text
    assert "hytip-PSNR-RGB__estimated__HEVC-B__Kimono1__i0-qp0__f96__ip32__BT709" in text
    code, text = cli(["run", str(REPO_ROOT / "configs" / "anchors.yaml"), "--data-root", str(tmp_path), "--dry-run",
                      "--codecs", "x264", "x265"], capsys)
    assert code == 0 and f"{53 * 2 * 4 * 2} jobs" in text


def test_colour_filter_override_reaches_every_job_and_its_config_hash(data):
    from bench.sweep.config import expand
    from bench.sweep.runner import spec_config

    base = dict(codecs=[{"codec": "x264"}], datasets=["Tiny"], catalogs=[str(data / "tiny.yaml")],
                data_root=str(data))
    plain = expand(SweepConfig(**base))
    ffmpeg = expand(SweepConfig(**base, protocol={"color_filter": "ffmpeg"}))
    assert {j.colour.filter for j in plain} == {"nearest", "bilinear"}  # BT601's and BT709's own
    assert {j.colour.filter for j in ffmpeg} == {"ffmpeg"} and len(ffmpeg) == len(plain) == 2 * 2 * 4
    assert all(spec_config(a, "real") != spec_config(b, "real") for a, b in zip(plain, ffmpeg))
    with pytest.raises(InputError, match="protocol color_filter 'cubic'"):
        expand(SweepConfig(**base, protocol={"color_filter": "cubic"}))


@pytest.mark.parametrize("execution, error", [
    ({"rate_point_batch": 0}, "execution rate_point_batch: expected auto or a positive integer, found 0"),
    ({"rate_point_batch": "all"}, "execution rate_point_batch: expected auto or a positive integer, found 'all'"),
    ({"gpus": 2}, "execution: unknown key(s) gpus; expected complexity_counters, devices,")])
def test_execution_settings_are_checked(data, execution, error):
    config = SweepConfig(codecs=[{"codec": "x264"}], datasets=["Tiny"], catalogs=[str(data / "tiny.yaml")],
                         data_root=str(data), execution=execution)
    with pytest.raises(InputError) as raised:
        config.validate()
    assert error in str(raised.value)


@pytest.mark.parametrize("kernels", ["fast", "bf16"])
def test_fast_kernels_are_their_own_jobs_and_estimated_only(data, tmp_path, capsys, kernels):
    """--kernels fast / bf16: own job keys, config hash and curve (codec_config says which kernels); rates and
    PSNR-RGB within the golden tolerances (bf16: golden.BF16) of the exact kernels' on the same frames; refused with
    real bitstreams before anything runs."""
    exact_out, fast_out = tmp_path / "exact", tmp_path / kernels
    common = ("--sequences", "a", "--color-transforms", "BT601")
    assert cli(argv(data, exact_out, *common, codecs=("hytip",)), capsys)[0] == 0
    code, text = cli(argv(data, fast_out, *common, "--kernels", kernels, codecs=("hytip",)), capsys)
    assert code == 0, text
    exact, fast = (pd.read_csv(o / "results.csv").sort_values("qp").reset_index() for o in (exact_out, fast_out))
    assert all(f"-{kernels}__estimated__" in j for j in fast["job"]) and not any("-" + kernels in j for j in exact["job"])
    assert set(fast["config_sha256"]).isdisjoint(exact["config_sha256"])
    assert fast["codec_config"].str.contains(f"{kernels} kernels").all() and exact["codec_config"].str.contains(
        "exact kernels").all()
    # which kernels SPyNet ran on (their last bits differ)
    assert (fast["codec_config"].str.contains("SPyNet's 7x7 convolutions by NNPACK's FFT") == uses_nnpack("cpu")).all()
    assert not exact["codec_config"].str.contains("NNPACK").any()
    tol = golden.BF16 if kernels == "bf16" else golden.SUGGESTED
    assert (abs(fast["bpp"] / exact["bpp"] - 1) <= tol.est_bpp_total_rel).all()
    assert (abs(fast["psnr_rgb"] - exact["psnr_rgb"]) <= tol.psnr_rgb_abs_db).all()
    assert main(argv(data, tmp_path / "real", *common, "--kernels", kernels, "--rate-mode", "real",
                     codecs=("hytip",))) == 2
    assert f"{kernels} kernels are for estimated rates" in capsys.readouterr().err
    assert not (tmp_path / "real").exists()
