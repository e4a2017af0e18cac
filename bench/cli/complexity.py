"""`run_bench.py complexity`: HyTIP's parameters, kMAC/pixel and temporal buffer beside published figures, or a peer
codec's (``--peer NAME --source DIR``) counted the same way from the user's checkout."""
from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path
from typing import List, Tuple

import pandas as pd

from bench.errors import InputError
from bench.measure.counting import BUFFER_RULE, DECONV_RULES, DEFAULT_DECONV_RULE, UNSEEN_RULES, TemporalBuffer
from bench.measure.complexity import (
    COUNTED_FRAME_TEXT,
    COUNTERS,
    FVCORE_OUTPUTS_TEXT,
    NOT_COUNTED,
    PATHS,
    MacCount,
    ParameterCounts,
    check_size,
    parameter_counts,
    pframe_kmac_per_pixel,
    temporal_buffer,
)
from bench.measure.complexity_summary import summary_of
from bench.measure.published_complexity import PUBLISHED_COMPLEXITY, PublishedComplexity, published_complexity
from hytip.model import HyTIP

EXAMPLE = "run_bench.py complexity --size 1920x1024 --json runs/complexity.json"

WEIGHTS_NOTE = ("Weights do not matter here: MACs, parameter counts and buffer shapes are fixed by the architecture "
                "and the frame size, so the model is built with random initialisation.")


def register(subparsers) -> None:
    from bench.measure.peers import PEERS

    p = subparsers.add_parser(
        "complexity", help="parameters, kMAC/pixel and temporal buffer of HyTIP, or of a peer codec from its code",
        description="Count HyTIP's parameters per module, the kMAC/pixel of one P-frame (encode: full forward with "
                    "the temporal prior; decode: synthesis from latents) with ptflops and/or fvcore, and the "
                    "temporal buffer, and print them beside the published complexity of other codecs "
                    f"(anchors/published_complexity.csv). With --peer, count another codec the same way from your "
                    f"checkout of its code (--source), which is imported, never copied. {WEIGHTS_NOTE}",
        epilog="example: run_bench.py complexity --peer DCVC-DC --source ~/src/DCVC --json complexity.json, then "
               "run_bench.py report --published --complexity complexity.json --out report")
    p.add_argument("--size", default="448x256", metavar="WxH",
                   help="frame size, multiples of 16 (default 448x256; per-pixel MACs are the same at every "
                        "multiple of 64)")
    p.add_argument("--counter", nargs="+", choices=COUNTERS, default=["ptflops"],
                   help="MAC counters (default: ptflops, the release's; fvcore is slower; HyTIP only)")
    p.add_argument("--deconv-rule", choices=sorted(DECONV_RULES), default=DEFAULT_DECONV_RULE,
                   help="how ptflops counts transposed convolutions, for every codec alike: 'input' (default, the "
                        "multiply-adds performed, ptflops 0.7.5) or 'output' (ptflops 0.7.4 and earlier, whose "
                        "counts the HyTIP README's complexity figure shows)")
    p.add_argument("--peer", type=_peer_name, metavar="NAME",
                   help=f"count a peer codec instead of HyTIP: {', '.join(PEERS)}")
    p.add_argument("--source", type=Path, metavar="DIR",
                   help="the peer's code: your checkout of its repository (e.g. microsoft/DCVC for the DCVC family); "
                        "ssf2020 comes from the installed compressai")
    p.add_argument("--json", type=Path, metavar="OUT",
                   help="also write the counts as a complexity.json configuration into OUT (an entry of the same "
                        "codec is replaced), for report --complexity")
    p.add_argument("--csv", metavar="OUT", help="also write every measured figure, with its protocol, to this CSV "
                                                 "(HyTIP)")
    p.set_defaults(func=run_complexity)


def _peer_name(text: str) -> str:
    from bench.measure.peers import get_peer
    try:
        return get_peer(text).name
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


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


def write_configuration(path: Path, entry: dict) -> None:
    """Put ``entry`` into the complexity.json at ``path`` (created if absent), replacing one of the same codec."""
    doc = {"configurations": []}
    if path.is_file():
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not JSON ({exc}); give a new file or a complexity.json") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("configurations"), list):
            raise InputError(f"{path}: expected {{\"configurations\": [...]}} (a complexity.json)")
    doc["configurations"] = [c for c in doc["configurations"] if c.get("codec") != entry["codec"]] + [entry]
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"\nwrote {entry['codec']} into {path}")


def _buffer_table(buffer: TemporalBuffer) -> str:
    table = pd.DataFrame([(t.name, t.channels, f"{t.width}x{t.height}", t.scale, t.channel_equivalent,
                           t.bytes_float32) for t in buffer.tensors]
                         + [("total", "", "", "", buffer.total_channel_equivalent, buffer.total_bytes_float32)],
                         columns=["tensor", "channels", "size", "scale", "channel equivalents", "bytes (float32)"])
    return table.to_string(index=False)


def _unseen_table(entry: dict) -> str:
    rows = [(path, op, u["calls"], f"{u['kmac_per_pixel']:.2f}") for path in ("enc", "dec")
            for op, u in entry[f"{path}_unseen"].items()]
    if not rows:
        return "  none"
    table = pd.DataFrame(rows, columns=["path", "operation", "calls", "kMAC/pixel by rule (not in the count)"])
    return table.to_string(index=False) + "\n" + "\n".join(f"  {op}: {rule}" for op, rule in UNSEEN_RULES.items()
                                                             if any(op == r[1] for r in rows))


def run_peer(args: argparse.Namespace, width: int, height: int) -> int:
    from bench.measure.peer_complexity import count_peer

    peer = count_peer(args.peer, args.source, width, height, args.deconv_rule)
    entry = peer.configuration()
    print(f"{peer.codec} complexity at {width}x{height}, counted from {peer.folder}"
          + (f" ({peer.commit})" if peer.commit else "") + f" in {peer.seconds:.1f} s. {WEIGHTS_NOTE}\n")
    table = pd.DataFrame([("encode", peer.encode.macs, f"{peer.kmac_per_pixel('encode'):.2f}"),
                          ("decode", peer.decode.macs, f"{peer.kmac_per_pixel('decode'):.2f}")],
                         columns=["path", "MACs", "kMAC/pixel"])
    print(f"One P-frame, {entry['counter']}")
    print(table.to_string(index=False))
    for path in ("encode", "decode"):
        print(f"  {path}: {peer.protocol(path)}")
    print("\nWhat the counter cannot see, sized by rule and left out of the count")
    print(_unseen_table(entry), "\n")
    print(f"Parameters: {peer.model_size} in the P-frame model ({peer.model_size / 1e6:.3f} M, the paper's model "
          f"size), {peer.parameters_total} in all ({peer.parameters_total / 1e6:.3f} M); {entry['protocol']}\n")
    print(f"Temporal buffer ({BUFFER_RULE})")
    print(_buffer_table(peer.buffer))
    if args.json:
        write_configuration(args.json, entry)
    return 0


def run_complexity(args: argparse.Namespace) -> int:
    width, height = _parse_size(args.size)
    if args.peer:
        return run_peer(args, width, height)
    if args.source is not None:
        raise InputError("--source names a peer's code: give --peer NAME with it")
    check_size(height, width)
    published = published_complexity()
    model = HyTIP().eval()
    params = parameter_counts(model)
    macs = [m for counter in dict.fromkeys(args.counter)
            for m in pframe_kmac_per_pixel(model, height, width, counter=counter, deconv_rule=args.deconv_rule)]
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
    entry = summary_of(params, macs, buffer, args.deconv_rule)
    if "ptflops" in args.counter:
        print("\nWhat ptflops cannot see, sized by rule and left out of the count")
        print(_unseen_table(entry))
    print()

    print(f"Temporal buffer ({BUFFER_RULE})")
    print(_buffer_table(buffer), "\n")

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
    if args.json:
        write_configuration(args.json, {"codec": "HyTIP", "model": "architecture", **entry,
                                        "origin": "hytip-bench's HyTIP (hytip.model.HyTIP)"})
    return 0
