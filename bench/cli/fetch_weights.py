"""`run_bench.py fetch-weights`: download the official HyTIP checkpoints (release assets of NYCU-MAPL/HyTIP) into
the user cache, resumable, each checked by loading it strictly; prints each file with its sha256."""
from __future__ import annotations

import argparse

from bench.codecs.weights import CACHE_ENV, MODELS, URL_ENV, fetch

EXAMPLE = "run_bench.py fetch-weights --models PSNR-RGB MS-SSIM-RGB"


def run(args: argparse.Namespace) -> int:
    for model in args.models:
        path = fetch(model, progress=not args.no_progress)
        sha = path.with_name(path.name + ".sha256")
        print(f"{model}: {path} (sha256 {sha.read_text().strip() if sha.is_file() else 'not recorded'})")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("fetch-weights", help="download the official HyTIP checkpoints into the user cache",
                              description=__doc__ + f" The cache is ${CACHE_ENV}/weights (default "
                              f"~/.cache/hytip-bench/weights); ${URL_ENV} names a mirror.")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
