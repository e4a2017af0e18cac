"""Command-line entry point: `run_bench.py` / `hytip-bench`.

Each subcommand lives in the module that does its job and registers itself through a `register(subparsers)`
function and states its worked example (`EXAMPLE`, which ends its `--help`), so this file only assembles them.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from bench.errors import BenchError
from hytip.errors import HytipError

# Subcommand -> its module, in the order of a user's jobs (--help lists them so): a first look; reproducing the
# paper table (weights, data, the sweep, the anchor, the report); comparing codecs (BD-rates); the checks (complexity,
# streams across devices); PNG export for other tools.
SUBCOMMANDS = {"demo": "bench.cli.demo", "fetch-weights": "bench.cli.fetch_weights", "datasets": "bench.cli.datasets",
               "run": "bench.cli.run", "anchors": "bench.cli.anchors", "report": "bench.cli.report",
               "bdrate": "bench.cli.bdrate", "complexity": "bench.cli.complexity",
               "verify-streams": "bench.cli.verify_streams", "export-png": "bench.cli.export_png"}


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
            loaded = importlib.import_module(module)
            loaded.register(subparsers)
            sub = subparsers.choices[name]
            sub.formatter_class = argparse.RawDescriptionHelpFormatter   # keeps the example on its own line
            sub.epilog = f"example:\n  {loaded.EXAMPLE}"
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
