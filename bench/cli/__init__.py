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

# Modules that provide subcommands, in the order --help lists them.
SUBCOMMAND_MODULES = ["bench.cli.demo", "bench.cli.datasets", "bench.cli.export_png", "bench.cli.bdrate", "bench.cli.anchors", "bench.cli.run", "bench.cli.fetch_weights",
                      "bench.cli.complexity", "bench.cli.report"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_bench.py",
        description="hytip-bench: run HyTIP and measure rate, quality, complexity and BD-rate reproducibly.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # compressai 1.2.8 calls torch.jit.script at import, which new torch versions warn about on every run.
    warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (BenchError, HytipError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
