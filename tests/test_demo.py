"""`run_bench.py demo` (the README's first command) on a shortened protocol: offline without a checkpoint, a failed
fetch, a rerun that reuses every job, and HyTIP joining with the golden checkpoint (test data, not HyTIP results)."""
import json

import pandas as pd
import pytest

import golden
from bench.analysis.rd_schema import load_rd_csv
from bench.cli import main
from bench.codecs import weights


@pytest.mark.slow
def test_demo_offline_then_refetch_failure_then_hytip_joins(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(weights, "REPO_ROOT", tmp_path / "checkout")  # no models/ folder
    monkeypatch.setattr(weights, "cache_dir", lambda: tmp_path / "cache")  # an empty weights cache
    out = tmp_path / "demo"
    assert main(["demo", "--offline", "--frames", "2", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "448x256 centre crop, 2 frames" in text
    assert "HyTIP: not run (offline and no PSNR-RGB checkpoint in models/ or the cache)" in text
    table = load_rd_csv(out / "sweep" / "results.csv")  # the schema's loader keeps 'n/a' as text
    assert sorted(table["codec"].unique()) == ["SVT-AV1", "VVenC", "x264", "x265"] and len(table) == 4 * 4 * 2
    assert (table["decode_check"] == "n/a").all() and (table["crop"] == "centre-448x256").all()
    assert set(table["color_transform"]) == {"BT601", "BT709"} and (table["width"] == 448).all()
    for line in (f"results table: {out / 'sweep' / 'results.csv'}", f"report of this run: {out / 'report' / 'index.html'}",
                 f"report of the published data: {out / 'published' / 'index.html'}"):
        assert line in text
    page = (out / "report" / "index.html").read_text()
    assert "VVenC stands in as the anchor" in page and "HyTIP: not run (offline" in page
    published = (out / "published" / "index.html").read_text()
    architecture = json.loads((out / "sweep" / "complexity.json").read_text())["hytip_architecture"]
    assert architecture["enc_kmac_per_pixel"] == pytest.approx(1265.83, abs=0.01)  # measured without weights
    assert "HyTIP" in published

    # Online, the fetch fails (nothing listens there): one line, and every finished job is reused.
    monkeypatch.setenv(weights.URL_ENV, "http://127.0.0.1:9/ModelWeights")
    assert main(["demo", "--frames", "2", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "HyTIP: not run (no checkpoint, and fetching it failed: cannot fetch http://127.0.0.1:9" in text
    assert "sweep: 0 done, 32 skipped" in text

    # A checkpoint: HyTIP joins the same sweep; the conventional jobs are reused.
    ckpt = golden.golden_checkpoint_path()
    assert main(["demo", "--checkpoint", str(ckpt), "--frames", "2", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert f"HyTIP: {ckpt} (given); estimated rates" in text and "sweep: 8 done, 32 skipped" in text
    hytip_rows = pd.read_csv(out / "sweep" / "results.csv").query("codec == 'HyTIP'")
    assert len(hytip_rows) == 8 and (hytip_rows["rate_mode"] == "estimated").all()
    assert "HyTIP-PSNR-RGB" in (out / "report" / "index.html").read_text()
