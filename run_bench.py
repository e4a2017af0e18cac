#!/usr/bin/env python3
"""hytip-bench command line; `python run_bench.py --help` lists the subcommands."""
import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
