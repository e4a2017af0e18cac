"""`export-png`: write catalogued sequences in the official HyTIP PNG layout, so that the official code and ours read
identical inputs: `<out>/<dataset>/<sequence>[_BT709]/frame_<n>.png`, n from 1, full frames (the crop happens at load).

Each frame is written atomically and existing frames are kept, so an interrupted export resumes where it stopped.
A `protocol.json` beside the frames records the source file, frames and the colour conversion.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.argtypes import positive_int
from bench.data.catalog import COLOR_TRANSFORMS, load_catalog
from bench.data.colour import FILTERS, ColourSpec
from bench.data.png import export_sequence, png_folder

EXAMPLE = "run_bench.py export-png /data --dataset HEVC-D --color-transform BT709"


def run(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.catalog)
    spec = ColourSpec.for_protocol(args.color_transform)
    if args.filter:
        spec = ColourSpec(spec.matrix, spec.range, args.filter, spec.rgb_bits)
    located = catalog.resolve(args.dataset, args.sequences, data_root=args.data_root)
    for item in located:
        seq = item.sequence
        frames = args.frames or seq.protocol.frames
        folder = png_folder(args.out, catalog.dataset(seq.dataset), seq.name, args.color_transform)
        written = export_sequence(seq, item.path, folder, spec, frames)
        colour = "native RGB" if seq.is_rgb else str(spec)
        print(f"{seq.dataset}/{seq.name}: {frames} frames in {folder} ({written} written; {colour})")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export-png", help="write sequences in the official HyTIP PNG layout for either colour transform",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("out", type=Path, help="output root; frames go to <out>/<dataset>/<sequence>[_BT709]/")
    p.add_argument("--dataset", nargs="+", required=True, help="catalogued dataset name(s)")
    p.add_argument("--sequences", nargs="+", help="only these sequences (default: all of the datasets)")
    p.add_argument("--data-root", help="folder holding the raw test sets (default: $HYTIP_DATA_ROOT)")
    p.add_argument("--catalog", nargs="+", default=[], metavar="YAML", help="extra catalogue files to merge")
    p.add_argument("--color-transform", choices=COLOR_TRANSFORMS, default="BT601",
                   help="BT601: limited range (ffmpeg's default); BT709: full range (DCVC's test conditions)")
    p.add_argument("--filter", choices=FILTERS, help="override the chroma upsampling filter of the colour transform")
    p.add_argument("--frames", type=positive_int, help="frames per sequence (default: the dataset protocol's, 96)")
    p.set_defaults(func=run)
