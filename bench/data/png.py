"""PNG frames in the official HyTIP layout: `<out>/<dataset>/<sequence>[_BT709]/frame_<n>.png`, n from 1, full frames
(the crop happens at load). Each frame is written atomically and existing frames are kept, so an interrupted export
resumes where it stopped; a `protocol.json` beside the frames records the source file, frames and colour conversion.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.data.colour import ColourSpec, frame_to_rgb


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
