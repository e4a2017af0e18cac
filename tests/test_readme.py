"""The README's promises that can be checked without a fresh machine."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _fenced_after(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(re.escape(marker) + r"\s*```\n(.*?)```", text, re.S)
    assert match, f"README.md has no fenced block after {marker}"
    return match.group(1).strip()


def test_ci_runs_the_readme_test_command():
    out = subprocess.run(["bash", ".ci/run", "--print"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert out == _fenced_after("<!-- test-command -->")
    assert "pytest" in out and "pip install" in out


def test_cli_help_lists_every_subcommand_with_a_description(capsys):
    out = subprocess.run([sys.executable, "run_bench.py", "--help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    from bench.cli import build_parser, main

    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert subparsers.choices, "no subcommands registered"
    for name in subparsers.choices:
        assert re.search(rf"^\s+{name}\s+\S", out, re.M), f"{name} has no one-line description in --help"
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("usage:")


def test_commands_that_code_nothing_start_without_torch(tmp_path):
    """A command imports its own subcommand's module only, and importing hytip loads nothing until used: bdrate,
    datasets and report run without importing torch or compressai (3-4 s and 0.8 GB at every start; a report counts
    HyTIP's complexity with torch only when asked to, with --measure-complexity; bdci's interpolation intervals
    need torch too, and this report has no anchor, so no BD-rates)."""
    code = f"""
import sys
from bench.cli import main
assert main(["bdrate", "anchors/compressai_uvg1080p_video.csv", "--anchor", "VTM", "--metric", "psnr_rgb",
             "-o", {str(tmp_path / "bd.csv")!r}]) == 0
assert main(["datasets", "UVG"]) == 0
assert main(["report", "anchors/compressai_uvg1080p_video.csv", "--out", {str(tmp_path / "report")!r}]) == 0
import hytip
from hytip.errors import HytipError
print("loaded:", sorted(m for m in ("torch", "compressai") if m in sys.modules))
print("on use:", hytip.Codec.__module__, hytip.fast.__name__, "torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-2:] == ["loaded: []", "on use: hytip.codec hytip.fast True"] and "Beauty" in out
    assert (tmp_path / "bd.csv").read_text().startswith("codec,anchor,dataset")
    assert (tmp_path / "report" / "index.html").stat().st_size > 0


def _links(path: Path) -> list[str]:
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", path.read_text()) if not re.match(r"[a-z]+:", t)]


def test_every_relative_link_resolves_and_every_page_is_reachable_from_the_readme():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "anchors").glob("*.md"))]
    broken = [f"{p.relative_to(ROOT)}: {t}" for p in pages for t in _links(p)
              if not (p.parent / t.split("#")[0]).exists()]
    assert not broken
    linked = {(ROOT / t.split("#")[0]).resolve() for t in _links(ROOT / "README.md")}
    assert {p.resolve() for p in pages[1:]} <= linked, "a page of docs/ or anchors/ the README does not link"
    for guide in ("reproduce-paper.md", "compare-your-codec.md", "cluster.md"):
        assert (ROOT / "docs" / guide).resolve() in linked


def test_every_run_bench_command_in_the_readme_parses():
    from bench.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    commands = [c.strip() for c in re.findall(r"^\.venv/bin/python (run_bench\.py [^\n]+)$", readme, re.M)]
    assert len(commands) >= 6
    for command in commands:
        argv = command.split()[1:]
        build_parser(argv[0]).parse_args(argv)   # exits (fails the test) on an option that no longer exists
