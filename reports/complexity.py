"""The complexity trade-off of the HyTIP paper: average BD-rate against temporal buffer, model size and encoding /
decoding kMAC/pixel, one point per codec.

Measured values come from the sweep's complexity.json or from counting the architecture (``measure_hytip``; no
weights needed). Published values come from anchors/published_complexity.csv (x) and the HyTIP README BD-rates (y).
A codec without a value is listed with the reason, never placed at a guessed position.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.measure.complexity_summary import hytip_summary
from bench.measure.published_complexity import PUBLISHED_COMPLEXITY, published_complexity
from reports.figures import PANELS, ComplexityPoint

# DCVC-RT's complexity table prints DCVC-FM only at fp16; precision does not change the parameter count.
PUBLISHED_ALIASES = {"DCVC-FM": "DCVC-FM (fp16)"}


def measure_hytip() -> dict:
    """HyTIP's complexity counted on the architecture as the sweep counts it (bench.measure.complexity_summary,
    cached; random weights give the same counts), as a complexity.json configuration."""
    return {"codec": "HyTIP", "model": "architecture", **hytip_summary(),
            "file": "counted on hytip.model.HyTIP() (bench.measure.complexity_summary.hytip_summary)"}


@dataclass
class Tradeoff:
    points: list          # ComplexityPoint
    missing: list         # (codec, what is missing and why)
    sources: list         # footnotes: where each value comes from
    table: pd.DataFrame   # one row per codec with every value, plotted or not


def _x_values(config: dict) -> dict:
    size = config.get("model_size")
    return {"buffer": config.get("temporal_buffer_channels"),
            "model_size": None if size is None else size / 1e6,
            "enc_kmac": config.get("enc_kmac_per_pixel"), "dec_kmac": config.get("dec_kmac_per_pixel")}


def tradeoff(measured: list, bd_measured: dict, bd_published: dict, bd_text: str) -> Tradeoff:
    """``measured``: complexity configurations whose ``label`` is set; ``bd_measured``/``bd_published``: label ->
    average BD-rate (the y value) of what was run / of the published peers."""
    points, missing, rows = [], [], []
    sources = [f"Measured: {c['label']}: {c.get('counter', '')} {c.get('counter_version', '')} ({c['file']}); "
               f"{c.get('enc_kmac_protocol', '')} {c.get('protocol', '')}" for c in measured]
    for config in measured:
        x = _x_values(config)
        y = bd_measured.get(config["label"])
        rows.append({"codec": config["label"], "kind": "measured", **x, "bd_rate": y})
        if all(v is None for v in x.values()):
            missing.append((config["label"], f"no complexity values in {config['file']} (no kMAC/pixel, parameters "
                                             "or buffer: a conventional encoder, or not measured)"))
        elif y is None:
            missing.append((config["label"], f"no average BD-rate ({bd_text}) in the inputs"))
        else:
            points.append(ComplexityPoint(config["label"], x, y, measured=True))
    published = {p.codec: p for p in published_complexity()}
    for label, y in bd_published.items():
        entry = published.get(label) or published.get(PUBLISHED_ALIASES.get(label, ""))
        x = dict.fromkeys(PANELS)
        if entry is not None and entry.params_m is not None:
            x["model_size"] = entry.params_m
            sources.append(f"Published: {label}: {entry.params_m:g} M parameters from {entry.source} "
                           f"(as {entry.codec}; what the count includes is not stated)")
        rows.append({"codec": label, "kind": "published", **x, "bd_rate": y})
        if all(v is None for v in x.values()):
            missing.append((label, f"no published complexity figure in {PUBLISHED_COMPLEXITY.name}"))
        else:
            points.append(ComplexityPoint(label, x, y, measured=False))
    for entry in published.values():
        if entry.codec in bd_published or entry.codec in PUBLISHED_ALIASES.values():
            continue
        what = (f"MACs per frame {entry.macs_per_frame} (resolution not printed)" if entry.macs_per_frame
                else f"decode {entry.decode_mac_per_pixel_min / 1e3:g} kMAC/pixel (smallest model)")
        missing.append((entry.codec, f"{what}, but no BD-rate in this comparison ({entry.source})"))
    table = pd.DataFrame(rows, columns=["codec", "kind", *PANELS, "bd_rate"]).set_index("codec")
    return Tradeoff(points, missing, sources, table)
