"""Run the task guides of docs/ as a user would, so a guide cannot rot.

A guide marks its fenced blocks with an HTML comment on the line before the fence:

    <!-- guide: file NAME -->   the block is a file the user writes: the test writes it to NAME in the work folder
    <!-- guide: run -->         the block's commands are run in order, in bash, in the work folder; each must exit 0
    <!-- guide: quote NAME -->  the block is what the steps before it wrote to the file NAME (its text is in the file;
                                `...` in it stands for text that varies, such as a version)
    (no mark)                   shown only (it needs weights, data, VTM or a cluster): every `run_bench.py` command in
                                it must still parse, so no option it names can disappear

The work folder holds what a checkout holds for a user (run_bench.py, configs/, anchors/, datasets.yaml, links to
the checkout) and `.venv/bin/python`, which runs this interpreter, so commands are run verbatim.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"(?:<!-- guide: (?P<mark>[^>]*?) -->\n)?```[^\n]*\n(?P<body>.*?)```", re.S)


@dataclass
class Step:
    kind: str    # "file", "run", "quote" or "show"
    arg: str     # the file name of a "file" or "quote" step
    text: str
    line: int    # 1-based line of the fence in the guide


def steps(guide: Path) -> list[Step]:
    text = guide.read_text()
    out = []
    for match in _BLOCK.finditer(text):
        mark = (match.group("mark") or "show").split(maxsplit=1)
        assert mark[0] in ("file", "run", "quote", "show"), f"{guide}: unknown guide mark {mark}"
        out.append(Step(mark[0], mark[1] if len(mark) > 1 else "", match.group("body"),
                        text.count("\n", 0, match.start("body"))))
    return out


def commands(block: str) -> list[str]:
    """One command per logical line: continuations joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def run_bench_argv(command: str) -> list[str] | None:
    """The arguments after `run_bench.py` in a command, or None when it does not call it."""
    words = shlex.split(re.split(r"\s(?:\d?>>?|<|\|\|?|&&?|;)", command)[0], comments=True)  # up to a redirect
    return words[words.index("run_bench.py") + 1:] if "run_bench.py" in words else None


def workdir(tmp: Path) -> Path:
    for name in ("run_bench.py", "configs", "anchors", "datasets.yaml", "bench", "hytip", "reports"):
        (tmp / name).symlink_to(ROOT / name)
    python = tmp / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    python.chmod(0o755)
    return tmp


def run(guide: Path, tmp: Path, env: dict | None = None, timeout: int = 600) -> dict[str, str]:
    """Every step of `guide` in a fresh work folder under `tmp`; returns each run command's stdout."""
    work = workdir(tmp)
    outputs = {}
    for step in steps(guide):
        if step.kind == "file":
            path = work / step.arg
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(step.text)
        elif step.kind == "run":
            for command in commands(step.text):
                done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=work, env=env,
                                      capture_output=True, text=True, timeout=timeout)
                assert done.returncode == 0, (f"{guide.name} line {step.line}: `{command}` exited "
                                              f"{done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
                outputs[command] = done.stdout
        elif step.kind == "quote":
            written = (work / step.arg).read_text()
            pattern = ".*?".join(re.escape(part) for part in step.text.strip().split("..."))
            assert re.search(pattern, written), (f"{guide.name} line {step.line}: {step.arg} no longer says what "
                                                  f"the guide quotes; it says:\n{written}")
    return outputs


def unparsed(guide: Path) -> list[str]:
    """The `run_bench.py` commands of `guide` that its parser refuses (an option renamed or gone)."""
    from bench.cli import build_parser

    bad = []
    for step in steps(guide):
        for command in commands(step.text) if step.kind in ("run", "show") else []:
            argv = run_bench_argv(command)
            if argv is None:
                continue
            try:
                build_parser(argv[0]).parse_args(argv)
            except SystemExit:
                bad.append(command)
    return bad
