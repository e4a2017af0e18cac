"""`run_bench.py datasets`: list the catalogue; with --check, find each sequence's file under the data root."""
from __future__ import annotations

import argparse

from bench.data.catalog import (
    COLOR_TRANSFORMS,
    DATA_ROOT_ENV,
    load_catalog,
    resolve_data_root,
)

EXAMPLE = "run_bench.py datasets --data-root /data --check UVG HEVC-B"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "datasets",
        help="list the catalogued test sets; --check finds their files under the data root",
        description="List the datasets and sequences of the catalogue (datasets.yaml plus any --catalog files). "
        "With --check, report which sequences are present under the data root and where each missing one was "
        "looked for.",
    )
    p.add_argument("names", nargs="*", metavar="DATASET", help="datasets to list (default: all)")
    p.add_argument("--data-root", help=f"folder holding the test sets (default: ${DATA_ROOT_ENV})")
    p.add_argument("--catalog", action="extend", nargs="+", default=[], metavar="YAML",
                   help="extra catalogue file(s) with the schema of datasets.yaml; they add datasets or override "
                   "fields")
    p.add_argument("--check", action="store_true",
                   help="report present, missing and wrongly sized files; exit 1 if any is not as catalogued")
    p.add_argument("--png", choices=COLOR_TRANSFORMS, metavar="{BT601,BT709}",
                   help="with --check, look for the official PNG folders of this colour transform instead of raw files")
    p.set_defaults(func=run_datasets)


def run_datasets(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.catalog)
    datasets = [catalog.dataset(n) for n in (args.names or catalog.datasets)]
    root = resolve_data_root(args.data_root) if args.check else None
    form, ct = ("png", args.png) if args.png else ("raw", "BT601")
    present = total = 0
    for ds in datasets:
        p = ds.protocol
        print(f"{ds.name} ({len(ds.sequences)} sequences)" + (f": {ds.description}" if ds.description else ""))
        print(f"  protocol: {p.frames} frames, intra period {p.intra_period}, crop to a multiple of {p.crop_multiple}, "
              f"pad to a multiple of {p.pad_multiple}")
        for seq in ds.sequences.values():
            size = f"{seq.width}x{seq.height}"
            line = f"  {seq.name:<20} {size:<10} {seq.frames:>4} frames {seq.fps:>4g} fps  {seq.pix_fmt:<12}"
            if root is not None:
                total += 1
                path = catalog.locate(seq, root, form=form, color_transform=ct)
                if path is None:
                    tried = ds.candidates(seq.name, root, form=form, color_transform=ct)
                    line += " MISSING  tried " + ", ".join(str(t.relative_to(root)) for t in tried)
                elif form == "raw" and path.stat().st_size != seq.frames * seq.frame_bytes:
                    line += (f" WRONG SIZE  {path.relative_to(root)}: {path.stat().st_size} bytes, expected "
                             f"{seq.frames} frames x {seq.frame_bytes} bytes ({seq.width}x{seq.height} {seq.pix_fmt})")
                else:
                    present += 1
                    line += f" present  {path.relative_to(root)}"
            print(line.rstrip())
    if root is None:
        return 0
    print(f"{present} of {total} sequences present{' with the catalogued size' if form == 'raw' else ''} under {root}")
    return 0 if present == total else 1
