"""`run_bench.py complexity`: HyTIP's parameters, kMAC/pixel and temporal buffer beside published figures."""
from __future__ import annotations

import argparse
import csv
import re
from typing import List, Tuple

import pandas as pd

from bench.errors import InputError
from bench.measure.complexity import (
    BUFFER_DEFINITION,
    COUNTED_FRAME_TEXT,
    COUNTERS,
    FVCORE_OUTPUTS_TEXT,
    NOT_COUNTED,
    PATHS,
    MacCount,
    ParameterCounts,
    TemporalBuffer,
    check_size,
    parameter_counts,
    pframe_kmac_per_pixel,
    temporal_buffer,
)
from bench.measure.published_complexity import PUBLISHED_COMPLEXITY, PublishedComplexity, published_complexity
from hytip.model import HyTIP

WEIGHTS_NOTE = ("Weights do not matter here: MACs, parameter counts and buffer shapes are fixed by the architecture "
                "and the frame size, so the model is built with random initialisation.")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "complexity", help="parameters, kMAC/pixel and temporal buffer of HyTIP next to published figures",
        description="Count HyTIP's parameters per module, the kMAC/pixel of one P-frame (encode: full forward with "
                    "the temporal prior; decode: synthesis from latents) with ptflops and/or fvcore, and the "
                    "temporal buffer, and print them beside the published complexity of other codecs "
                    f"(anchors/published_complexity.csv). {WEIGHTS_NOTE}")
    p.add_argument("--size", default="448x256", metavar="WxH",
                   help="frame size, multiples of 16 (default 448x256; per-pixel MACs are the same at every "
                        "multiple of 64)")
    p.add_argument("--counter", nargs="+", choices=COUNTERS, default=["ptflops"],
                   help="MAC counters (default: ptflops, the release's; fvcore is slower)")
    p.add_argument("--csv", metavar="OUT", help="also write every measured figure, with its protocol, to this CSV")
    p.set_defaults(func=run_complexity)


def _parse_size(text: str) -> Tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise InputError(f"--size {text!r}: expected WxH, e.g. 448x256")
    return int(match.group(1)), int(match.group(2))


CSV_COLUMNS = ("section", "name", "value", "unit", "protocol")


def _csv_rows(params: ParameterCounts, macs: List[MacCount], buffer: TemporalBuffer) -> List[dict]:
    rows = [dict(section="parameters", name=m.module, value=m.parameters, unit="parameters", protocol=params.protocol)
            for m in params.modules]
    rows += [dict(section="parameters", name="total", value=params.total, unit="parameters", protocol=params.protocol),
             dict(section="parameters", name="model_size", value=params.model_size, unit="parameters",
                  protocol=params.protocol)]
    for m in macs:
        name = f"{m.path} {m.counter} {m.counter_version}"
        rows += [dict(section="kmac", name=name, value=m.macs, unit="MACs", protocol=m.protocol),
                 dict(section="kmac", name=name, value=m.kmac_per_pixel, unit="kMAC/pixel", protocol=m.protocol)]
    entries = [(t.name, t.channel_equivalent, t.bytes_float32) for t in buffer.tensors]
    for name, equivalents, size in entries + [("total", buffer.total_channel_equivalent, buffer.total_bytes_float32)]:
        rows += [dict(section="temporal_buffer", name=name, value=equivalents, unit="full-res channel equivalents",
                      protocol=buffer.protocol),
                 dict(section="temporal_buffer", name=name, value=size, unit="bytes (float32)",
                      protocol=buffer.protocol)]
    return rows


def _published_macs(p: PublishedComplexity) -> str:
    if p.macs_per_frame:
        return f"{p.macs_per_frame} per frame (resolution not printed)"
    low, high = p.decode_mac_per_pixel_min, p.decode_mac_per_pixel_max
    if high is None:
        return f"decode {low / 1e3:.1f} kMAC/px (smallest model; largest not published)"
    if high == low:
        return f"decode {low / 1e3:.1f} kMAC/px"
    return f"decode {low / 1e3:.1f}-{high / 1e3:.1f} kMAC/px (smallest-largest model)"


def run_complexity(args: argparse.Namespace) -> int:
    width, height = _parse_size(args.size)
    check_size(height, width)
    published = published_complexity()
    model = HyTIP().eval()
    params = parameter_counts(model)
    macs = [m for counter in dict.fromkeys(args.counter) for m in pframe_kmac_per_pixel(model, height, width,
                                                                                         counter=counter)]
    buffer = temporal_buffer(model, height, width)

    print(f"HyTIP complexity at {width}x{height}. {WEIGHTS_NOTE}\n")
    print("Parameters per top-level module (" + params.protocol + ")")
    table = pd.DataFrame([(m.module, m.parameters, "yes" if m.in_model_size else "no") for m in params.modules]
                         + [("total", params.total, ""),
                            ("model size", params.model_size, f"{params.model_size / 1e6:.3f} M")],
                         columns=["module", "parameters", "in model size"])
    print(table.to_string(index=False), "\n")

    print(f"One P-frame ({COUNTED_FRAME_TEXT})")
    table = pd.DataFrame([(f"{m.counter} {m.counter_version}", m.path, m.macs, f"{m.kmac_per_pixel:.2f}")
                          for m in macs], columns=["counter", "path", "MACs", "kMAC/pixel"])
    print(table.to_string(index=False))
    for path, text in PATHS.items():
        print(f"  {path}: {text}")
    for counter in dict.fromkeys(args.counter):
        print(f"  {counter} does not count: {NOT_COUNTED[counter]}")
    if "fvcore" in args.counter:
        print(f"  fvcore {FVCORE_OUTPUTS_TEXT['all']}; the release's fvcore figure traced the reconstruction only")
    print()

    print(f"Temporal buffer ({BUFFER_DEFINITION})")
    table = pd.DataFrame([(t.name, t.channels, f"{t.width}x{t.height}", t.scale, t.channel_equivalent,
                           t.bytes_float32) for t in buffer.tensors]
                         + [("total", "", "", "", buffer.total_channel_equivalent, buffer.total_bytes_float32)],
                         columns=["tensor", "channels", "size", "scale", "channel equivalents", "bytes (float32)"])
    print(table.to_string(index=False), "\n")

    print(f"Published complexity of other codecs ({PUBLISHED_COMPLEXITY.parent.name}/{PUBLISHED_COMPLEXITY.name}; "
          "other protocols, copied as published)")
    table = pd.DataFrame([(p.codec, _published_macs(p), "" if p.params_m is None else f"{p.params_m:g}",
                           p.source.split(" ")[0]) for p in published],
                         columns=["codec", "MACs", "params (M)", "source"])
    print(table.to_string(index=False))

    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(_csv_rows(params, macs, buffer))
        print(f"\nwrote {args.csv}")
    return 0
