"""`export-png`: write catalogued sequences in the official HyTIP PNG layout, so that the official code and ours read
identical inputs: `<out>/<dataset>/<sequence>[_BT709]/frame_<n>.png`, n from 1, full frames (the crop happens at load).

Each frame is written atomically and existing frames are kept, so an interrupted export resumes where it stopped.
A `protocol.json` beside the frames records the source file, frames and the colour conversion.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.catalog import COLOR_TRANSFORMS, load_catalog
from bench.colour import FILTERS, ColourSpec, frame_to_rgb


def png_folder(out_root: Path, dataset, sequence: str, color_transform: str) -> Path:
    return dataset.candidates(sequence, Path(out_root), form="png", color_transform=color_transform)[0]


def write_png(rgb: torch.Tensor, path: Path) -> None:
    """Float RGB (3, H, W) in [0, 1] -> 8-bit PNG, written to a temporary name and renamed."""
    array = rgb.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG", compress_level=3)
    os.replace(tmp, path)


def export_sequence(seq, source_path: Path, folder: Path, spec: ColourSpec, frames: int) -> int:
    """Write the first `frames` frames of one sequence; returns how many were written (not already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "protocol.json").write_text(json.dumps({
        "source": str(source_path), "dataset": seq.dataset, "sequence": seq.name, "frames": frames,
        "pix_fmt": seq.pix_fmt, "colour": spec.describe() if not seq.is_rgb else "native RGB, rounded to 8 bits",
    }, indent=1) + "\n")
    todo = [n for n in range(1, frames + 1) if not (folder / f"frame_{n}.png").is_file()]
    if not todo:
        return 0
    with seq.open(source_path, num_frames=frames) as source:
        for index in range(todo[0] - 1, frames):  # sequential reads from the first missing frame
            target = folder / f"frame_{index + 1}.png"
            frame = source.read(index)
            if not target.is_file():
                write_png(frame_to_rgb(frame, spec, bit_depth=source.bit_depth), target)
    return len(todo)


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
    p.add_argument("--frames", type=int, help="frames per sequence (default: the dataset protocol's, 96)")
    p.set_defaults(func=run)
