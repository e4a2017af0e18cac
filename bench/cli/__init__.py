"""Command-line entry point: `run_bench.py` / `hytip-bench`.

Each subcommand lives in the module that does its job and registers itself through a `register(subparsers)`
function, so this file only assembles them.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from bench.errors import BenchError
from hytip.errors import HytipError

# Subcommand -> the module that provides it, in the order --help lists them.
SUBCOMMANDS = {"demo": "bench.cli.demo", "datasets": "bench.cli.datasets", "export-png": "bench.cli.export_png",
               "bdrate": "bench.cli.bdrate", "anchors": "bench.cli.anchors", "run": "bench.cli.run",
               "verify-streams": "bench.cli.verify_streams",
               "fetch-weights": "bench.cli.fetch_weights", "complexity": "bench.cli.complexity",
               "report": "bench.cli.report"}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with a known `command`, only that subcommand's module is imported (bdrate and report then start
    without torch), else every one (--help, a mistyped command)."""
    parser = argparse.ArgumentParser(
        prog="run_bench.py",
        description="hytip-bench: run HyTIP and measure rate, quality, complexity and BD-rate reproducibly.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in SUBCOMMANDS.items():
        if command not in SUBCOMMANDS or command == name:
            importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # compressai 1.2.8 calls torch.jit.script at import, which new torch versions warn about on every run.
    warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(next((a for a in argv if not a.startswith("-")), None)).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (BenchError, HytipError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
