"""docs/reproduce-paper.md: what runs without weights, data, VTM or a cluster runs as written (guides.run: the
listing, the checks on an empty data root, the dry runs up to where they stop, the published report); the sweeps'
work counts the guide quotes come from dry runs on placeholder files; every command shown still parses."""
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

import guides
from anchor_helpers import fake_vtm
from golden import golden_checkpoint_path

GUIDE = guides.ROOT / "docs" / "reproduce-paper.md"
TEXT = GUIDE.read_text()
DATASETS = {"UVG": 7, "MCL-JCV": 30, "HEVC-B": 5, "HEVC-C": 4, "HEVC-D": 4, "HEVC-E": 3, "HEVC-RGB": 6}


def bench(work, *args):
    return subprocess.run([sys.executable, "run_bench.py", *map(str, args)], cwd=work, capture_output=True, text=True,
                          timeout=300)


def placeholders(root):
    """A data root with every catalogued raw file as a sparse file of the catalogued size (nothing is read in a dry
    run or a check)."""
    from bench.data.catalog import load_catalog

    for ds in load_catalog().datasets.values():
        for seq in ds.sequences.values():
            path = ds.candidates(seq.name, root)[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                f.truncate(seq.frames * seq.frame_bytes)
    return root


def flat(text):
    return " ".join(text.split())


def section(title):
    return TEXT.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_the_guide_runs_as_written(tmp_path):
    out = guides.run(GUIDE, tmp_path)
    work = tmp_path

    listing = next(v for k, v in out.items() if k.endswith("run_bench.py datasets"))
    for name, n in DATASETS.items():
        assert re.search(rf"^{name} \({n} sequences\)", listing, re.M)
    assert len(re.findall(r"^  \S+ +\d+x\d+ +\d+ frames", listing, re.M)) == 59

    # datasets --check on the empty data root: all 59 missing, exit 1 (the quoted lines are checked by guides.run)
    assert next(v for k, v in out.items() if "datasets --check" in k).strip() == "exit 1"
    check = (work / "check.txt").read_text()
    assert check.count(" MISSING  tried ") == 59
    assert check.rstrip().endswith("0 of 59 sequences present with the catalogued size under data")
    assert "`0 of 59 sequences present with the catalogued size under data`" in TEXT
    # the paper's dry run: both checkpoints and every data set named, exit 2, nothing written
    assert next(v for k, v in out.items() if "configs/paper.yaml" in k).strip() == "exit 2"
    refused = (work / "dry-run.txt").read_text()
    assert "(3 problems)" in refused and refused.count("checkpoint models/") == 2
    for name, n in DATASETS.items():
        assert f"{name}: {n} of {n} requested sequences not found" in refused
    assert not (work / "runs/paper").exists()
    # the VTM anchor's config as the guide writes it: without VTM and data its dry run names both, exit 2
    done = bench(work, "run", "vtm-anchor.yaml", "--data-root", "data", "--out", "runs/vtm", "--dry-run")
    assert done.returncode == 2 and "(2 problems)" in done.stderr
    assert "vtm: encoder VVCSoftware_VTM/bin/EncoderAppStatic does not exist; build VTM-17.0" in done.stderr
    assert "HEVC-RGB" not in done.stderr and "MCL-JCV: 30 of 30 requested sequences not found" in done.stderr

    # the published report: the HyTIP README's tables as bundled, the ones the reproduction table compares with
    index = (work / "runs/published/index.html").read_text()
    assert "Published BD-rates" in index
    table = pd.read_csv(work / "runs/published/tables/published01-bdrates-hytip-readme-8e2ea5d-psnr-rgb-bt601.csv",
                        index_col="dataset")
    assert list(table.index[:7]) == list(DATASETS)
    assert table.loc["UVG", "HyTIP"] == -34.7 and table.loc["HEVC-D", "HyTIP"] == -35.6
    assert "-34.7" in index


def rgb_anchor_jobs(work, data, monkeypatch):
    """The jobs of the guide's `anchors` command for HEVC-RGB, after its checks (anchors has no dry run)."""
    from bench.cli import build_parser
    from bench.cli.anchors import _specs, anchor_config
    from bench.sweep.config import preflight

    command = next(c for s in guides.steps(GUIDE) if s.kind == "show" for c in guides.commands(s.text)
                   if "anchors --dataset HEVC-RGB" in c)
    args = build_parser("anchors").parse_args(guides.run_bench_argv(command))
    args.data_root = str(data)
    monkeypatch.chdir(work)   # the VTM paths are relative to the checkout
    config = anchor_config(args)
    assert preflight(config) == []
    specs = _specs(config, [args.color_transform or "BT601"])
    assert {(s.codec["mode"], s.color_transform, s.colour.matrix, s.colour.range) for s in specs} == {
        ("rgb444", "native-RGB", "bt709", "full")}
    return specs


def test_the_work_the_guide_quotes(tmp_path, monkeypatch):
    """The dry-run counts of section 4 and the VTM jobs of section 3, from dry runs on placeholder files of the
    catalogued sizes: the golden test checkpoint stands in for the weights, the stand-in VTM for VTM."""
    (tmp_path / "work").mkdir()
    work = guides.workdir(tmp_path / "work")
    data = placeholders(tmp_path / "data")
    golden = golden_checkpoint_path()
    done = bench(work, "run", "configs/paper.yaml", "--data-root", data, "--dry-run",
                 "--checkpoint", f"PSNR-RGB={golden}", "--checkpoint", f"MS-SSIM-RGB={golden}")
    assert done.returncode == 0, done.stderr
    summary = done.stdout.strip().splitlines()[-2]
    assert summary.startswith("896 jobs, 86016 frames to code") and flat(summary) in flat(TEXT)
    jobs = re.findall(r"^hytip-\S+__estimated__(\S+?)__\S+  \(model, 96 frames (\d+)x(\d+)\)$", done.stdout, re.M)
    assert len(jobs) == 896
    table = section("4. Run the paper config")
    for name in DATASETS:
        mine = [(int(w), int(h)) for d, w, h in jobs if d == name]
        mpixel = sum(96 * w * h for w, h in mine) / 1e6
        row = re.search(rf"^\| {name} \| (\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \|", table, re.M)
        assert row, name
        assert (int(row[1]), int(row[2])) == (len(mine), 96 * len(mine))
        assert float(row[3]) == round(mpixel, 1) and float(row[4]) == round(mpixel * 1266 / 1e3)

    # the VTM anchor: the guide's config and its `anchors` command for HEVC-RGB, with the stand-in VTM where they
    # expect the build
    tools = fake_vtm(tmp_path / "vtm")
    bin_dir = work / "VVCSoftware_VTM" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "EncoderAppStatic").symlink_to(tools["encoder_app"])
    (bin_dir / "DecoderAppStatic").symlink_to(tools["decoder_app"])
    (work / "VVCSoftware_VTM" / "cfg").mkdir()
    (work / "VVCSoftware_VTM" / "cfg" / "encoder_lowdelay_vtm.cfg").symlink_to(tools["cfg"])
    vtm_table = section("3. Make the VTM-17.0 anchor in the HyTIP protocol")
    counted = {}
    config = next(s for s in guides.steps(GUIDE) if s.kind == "file" and s.arg == "vtm-anchor.yaml")
    (work / config.arg).write_text(config.text)
    done = bench(work, "run", config.arg, "--data-root", data, "--dry-run")
    assert done.returncode == 0, done.stderr
    for dataset, _ in re.findall(r"^vtm__yuv420__(\S+?)__\S+__(BT601|BT709)  \(", done.stdout, re.M):
        counted[dataset] = counted.get(dataset, 0) + 1
    counted["HEVC-RGB"] = len(rgb_anchor_jobs(work, data, monkeypatch))
    assert counted == {name: n * 4 * (1 if name == "HEVC-RGB" else 2) for name, n in DATASETS.items()}
    for name, n in counted.items():
        row = re.search(rf"^\| {name} \| (\d+) \| (\d+) \|", vtm_table, re.M)
        assert row and (int(row[1]), int(row[2])) == (n, 96 * n), name


def test_the_check_and_the_reproduction_verdicts_read_as_the_guide_says(tmp_path):
    from reports.reproduction import reproduction, reproduction_verdict

    # a found file and a file of another size, as section 2 shows them
    root = tmp_path / "data"
    (root / "HEVC-D").mkdir(parents=True)
    with open(root / "HEVC-D/BasketballPass_416x240_50.yuv", "wb") as f:
        f.truncate(500 * 416 * 240 * 3 // 2)
    with open(root / "HEVC-D/BQSquare_416x240_60.yuv", "wb") as f:
        f.truncate(100 * 416 * 240 * 3 // 2)
    done = bench(guides.ROOT, "datasets", "HEVC-D", "--check", "--data-root", root)
    assert done.returncode == 1
    for line in ("present  HEVC-D/BasketballPass_416x240_50.yuv",
                 "WRONG SIZE  HEVC-D/BQSquare_416x240_60.yuv: 14976000 bytes, expected 600 frames x 149760 bytes "
                 "(416x240 yuv420p)"):
        assert line in done.stdout and flat(line) in flat(TEXT)
    assert done.stdout.rstrip().endswith(f"1 of 4 sequences present with the catalogued size under {root}")

    # section 5's example verdicts
    report = section("5. The report and the reproduction table")
    assert reproduction_verdict(-30.0, -31.0, -29.0, -34.7, 0.5) == "differs: 4.7 half-widths"
    assert reproduction_verdict(-35.0, -36.0, -34.0, -35.6, 0.5) == "consistent"
    assert "differs: 4.7 half-widths" in report and "consistent" in report
    # both published releases are compared; HEVC-RGB, ours labelled native-RGB, is not
    base = dict(codec="HyTIP-PSNR-RGB", anchor="VTM-17.0", metric="psnr_rgb", method="pchip", averaging="sequences",
                sequences=1, protocol="-", release="-", source="-", bd_quality=0.0)
    ours = pd.DataFrame([dict(base, dataset="UVG", color_transform="BT601", bd_rate_pct=-30.0, bd_rate_low=-31.0,
                              bd_rate_high=-29.0),
                         dict(base, dataset="HEVC-RGB", color_transform="native-RGB", bd_rate_pct=-29.0,
                              bd_rate_low=-30.0, bd_rate_high=-28.0)])
    rd = pd.DataFrame([dict(label="HyTIP-PSNR-RGB", dataset=d, color_transform=t, frames=96, intra_period=32,
                            crop="centre-64", color_matrix=m)
                       for d, t, m in (("UVG", "BT601", "bt601"), ("HEVC-RGB", "native-RGB", "bt709"))])
    compared, _ = reproduction(ours, rd, 0.5)
    assert list(compared["dataset"]) == ["UVG", "UVG"]
    assert sorted(compared["published (%)"]) == [-34.7, -32.2]
    assert set(compared["verdict"]) == {"differs: 4.7 half-widths", "differs: 2.2 half-widths"}


def test_the_fields_to_compare_are_the_columns_by_their_names():
    from bench.analysis.rd_schema import RD_COLUMNS, RESULT_COLUMNS

    named = set(re.findall(r"`([a-z][a-z0-9_]*)`", section("6. When a number differs")))
    columns = set(RD_COLUMNS) | set(RESULT_COLUMNS)
    complexity_json = {"counter", "deconv_rule"}
    assert {"frames", "intra_period", "crop", "color_matrix", "color_range", "color_filter", "rate_mode", "averaging",
            "checkpoint_sha256", "codec_config"} <= named
    assert named <= columns | complexity_json, named - columns - complexity_json


def test_a_sweep_without_any_checkpoint_names_them_and_the_data_at_once(tmp_path):
    """With no checkpoint in models/, the cache or --checkpoint, the dry run names both models and every missing
    data set in one error."""
    if list((guides.ROOT / "models").glob("*.pth.tar")):
        pytest.skip("this checkout has checkpoints in models/")
    (tmp_path / "cache").mkdir()
    (tmp_path / "data").mkdir()
    done = subprocess.run([sys.executable, "run_bench.py", "run", "configs/paper.yaml", "--data-root",
                           tmp_path / "data", "--dry-run"], cwd=guides.ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HYTIP_BENCH_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 2 and "(3 problems)" in done.stderr
    assert done.stderr.count("no checkpoint given") == 2
    for name, n in DATASETS.items():
        assert f"{name}: {n} of {n} requested sequences not found" in done.stderr


def test_every_command_shown_still_parses_and_every_link_exists():
    assert not guides.unparsed(GUIDE)
    links = re.findall(r"\]\(([^)#]+)\)", TEXT)
    assert len(links) >= 6 and all((GUIDE.parent / link).is_file() for link in links), links
    kinds = [s.kind for s in guides.steps(GUIDE)]
    assert kinds.count("run") >= 4 and kinds.count("quote") >= 2 and kinds.count("file") == 1
