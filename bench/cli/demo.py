"""`demo`: the data path on the bundled clip, end to end, with every protocol fact printed.

Decode the clip (its native 4:2:0 planes), convert to RGB with the chosen colour transform, centre-crop to a multiple
of 64, pad to a multiple of 16, lay out the GOP plan, and print a summary with throughput. It needs no dataset, GPU or
weights, so it is the first thing to run on a fresh machine.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from bench.data.catalog import COLOR_TRANSFORMS
from bench.data.clips import BUNDLED_CLIP, bundled_clip_path
from bench.data.colour import ColourSpec, frame_to_rgb
from bench.data.png import write_png
from bench.data.protocol import (
    ALIGN_FACTOR,
    CROP_FACTOR,
    GOP_SIZE,
    centre_crop,
    pad_to_multiple,
    plan_frames,
)


def run(args: argparse.Namespace) -> int:
    from bench.data.readers import open_source

    path = bundled_clip_path()
    spec = ColourSpec.for_protocol(args.color_transform)
    print(f"clip: {BUNDLED_CLIP['content']}")
    print(f"  from {BUNDLED_CLIP['package']} ({BUNDLED_CLIP['file']}), licence {BUNDLED_CLIP['licence']}")
    with open_source(path) as source:
        frames = min(args.frames, len(source))
        print(f"  decoded by ffmpeg as {source.pix_fmt}, {source.width}x{source.height}, {source.fps} fps, "
              f"{len(source)} frames; using the first {frames}")
        plan = plan_frames(frames, args.intra_period, keep_partial=True)
        start = time.perf_counter()
        means, first = [], None
        for number, frame in enumerate(source.frames(0, frames), start=1):
            rgb = centre_crop(frame_to_rgb(frame, spec, bit_depth=source.bit_depth), CROP_FACTOR)
            _, pads = pad_to_multiple(rgb.unsqueeze(0), ALIGN_FACTOR)
            means.append(rgb.mean(dim=(1, 2)))
            if args.export_png:
                args.export_png.mkdir(parents=True, exist_ok=True)
                write_png(rgb, args.export_png / f"frame_{number}.png")
            first = first if first is not None else rgb
        elapsed = time.perf_counter() - start
    mean = torch.stack(means).mean(dim=0).tolist()
    types = "".join(p.type for p in plan)
    print(f"colour: {spec} ({args.color_transform} protocol)")
    print(f"crop: {source.width}x{source.height} -> {first.shape[2]}x{first.shape[1]} (centre, multiple of "
          f"{CROP_FACTOR}); padding to a multiple of {ALIGN_FACTOR}: {pads[0]} columns, {pads[1]} rows")
    print(f"GOP plan (intra period {args.intra_period}): I-frames {types.count('I')}, P-frames {types.count('P')}; "
          f"first GOP {types[:args.intra_period]}")
    print(f"frames: {frames} decoded, converted and cropped in {elapsed:.2f} s ({frames / elapsed:.1f} frames/s, "
          f"{torch.get_num_threads()} threads)")
    print("mean RGB of the cropped frames: " + ", ".join(f"{v:.4f}" for v in mean))
    if args.export_png:
        print(f"cropped frames written to {args.export_png}/frame_<n>.png")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the data path on the bundled clip and print a summary",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=96, help="frames to process (default 96; the clip has 132)")
    p.add_argument("--intra-period", type=int, default=GOP_SIZE, help="intra period of the GOP plan (default 32)")
    p.add_argument("--color-transform", choices=COLOR_TRANSFORMS, default="BT601")
    p.add_argument("--export-png", type=Path, metavar="DIR",
                   help="also write the cropped RGB frames as PNG")
    p.set_defaults(func=run)
