"""The complexity trade-off of the HyTIP paper: average BD-rate against temporal buffer, model size and encoding /
decoding kMAC/pixel, one figure whose y axis is one BD-rate (``Axis``).

x values measured here (filled markers): HyTIP from its architecture (a sweep's complexity.json, or the bundled count)
and peers counted from their code (``run_bench.py complexity --peer``: the user's --complexity files, or the bundled
counts of microsoft/DCVC and CompressAI in anchors/measured_complexity.json), all under one counting rule. Published x
values (hollow markers): the values read from the HyTIP README's figure, with their reading error as error bars. A
codec with both is drawn twice, joined, so that a difference shows. A codec without a value is listed with the
reason, never placed at a guessed position.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from bench import REPO_ROOT
from bench.measure.complexity_summary import hytip_summary
from bench.measure.published_complexity import FIGURE_READINGS, figure_readings, published_complexity
from reports.figures import PANELS, ComplexityPoint
from reports.inputs import read_complexity
from reports.reproduction import published_name

MEASURED_COMPLEXITY = REPO_ROOT / "anchors" / "measured_complexity.json"
READING_ERRORS = {"buffer": "buffer", "model_size": "params", "enc_kmac": "kMAC/px", "dec_kmac": "kMAC/px"}
DEFAULT_RULE = "input"   # bench.measure.counting.DEFAULT_DECONV_RULE, without importing torch


@dataclass(frozen=True)
class Axis:
    """The figure's y: one average BD-rate per codec label, where each comes from, and what it is."""
    values: dict          # label -> average BD-rate (%)
    origin: dict          # label -> "this run" or the published source
    text: str             # metric, transform, anchor, datasets
    intervals: dict = field(default_factory=dict)   # label -> (low, high) of a value measured here


@dataclass
class Tradeoff:
    points: list          # ComplexityPoint
    missing: list         # (codec, what is missing and why)
    sources: list         # footnotes: where each value comes from
    table: pd.DataFrame   # one row per codec and kind, plotted or not


def measure_hytip() -> dict:
    """HyTIP's complexity counted on the architecture now (bench.measure.complexity_summary, cached; random weights
    give the same counts), as a complexity.json configuration."""
    return {"codec": "HyTIP", "model": "architecture", **hytip_summary(),
            "file": "counted on hytip.model.HyTIP() (bench.measure.complexity_summary.hytip_summary)"}


def measured_configurations(inputs: list) -> list:
    """The run's or the user's complexity configurations, then the bundled counts of codecs they do not give."""
    given = {c["codec"] for c in inputs}
    return list(inputs) + [c for c in read_complexity(MEASURED_COMPLEXITY) if c["codec"] not in given]


def _x_values(config: dict) -> dict:
    size = config.get("model_size")
    return {"buffer": config.get("temporal_buffer_channels"),
            "model_size": None if size is None else size / 1e6,
            "enc_kmac": config.get("enc_kmac_per_pixel"), "dec_kmac": config.get("dec_kmac_per_pixel")}


def has_complexity(config: dict) -> bool:
    return any(v is not None for v in _x_values(config).values())


def _y(axis: Axis, *labels):
    """(value, where it comes from, its interval or None) of the first label the axis has."""
    return next(((axis.values[l], axis.origin[l], axis.intervals.get(l)) for l in labels if l in axis.values),
                (None, None, None))


def _source(config: dict) -> str:
    where = config.get("origin") or config.get("model", "")
    commit = f" @ {config['source_commit']}" if config.get("source_commit") else ""
    rule = config.get("deconv_rule", DEFAULT_RULE)
    counter = f"{config.get('counter', '')} ({rule} rule for transposed convolutions)"
    unseen = "; ".join(f"{path} {op} {u['kmac_per_pixel']:.2f} kMAC/px" for path in ("enc", "dec")
                       for op, u in config.get(f"{path}_unseen", {}).items())
    return (f"Measured: {config['label']}: {where}{commit}, {counter}, at {config.get('size', 'a stated size')}, "
            f"from {config['file']}" + (f"; not seen by the counter, sized by rule and left out: {unseen}"
                                        if unseen else ""))


def _bounds(interval) -> dict:
    low, high = interval if interval is not None else (None, None)
    return {"bd_rate_low": low, "bd_rate_high": high}


def tradeoff(measured: list, axis: Axis) -> Tradeoff:
    """``measured``: complexity configurations with a ``label`` (the codec's label in the RD data, or its name)."""
    points, missing, rows, sources = [], [], [], []
    hytip = next((c for c in measured if c["codec"] == "HyTIP"), None)
    rule = (hytip or {}).get("deconv_rule", DEFAULT_RULE)
    for config in measured:
        x = _x_values(config)
        if not has_complexity(config):
            missing.append((config["label"], f"no complexity values in {config['file']} (no kMAC/pixel, parameters "
                                             "or buffer: a conventional encoder, or not measured; its time is in the "
                                             "time view)"))
            continue
        y, origin, interval = _y(axis, config["label"], config["codec"])
        rows.append({"codec": config["label"], "kind": "measured here", **x, "bd_rate": y, "bd_rate_from": origin,
                     **_bounds(interval)})
        if config.get("deconv_rule", DEFAULT_RULE) != rule:
            missing.append((config["label"], f"counted with the '{config['deconv_rule']}' rule for transposed "
                                             f"convolutions ({config['file']}), the other measured points with "
                                             f"'{rule}': count it again with --deconv-rule {rule}"))
        elif y is None:
            missing.append((config["label"], f"no average BD-rate ({axis.text})"))
        else:
            # the run's HyTIP-PSNR-RGB is the published HyTIP on a PSNR axis; its MS-SSIM model is a curve of its own
            codec = published_name(config["label"], "psnr_rgb") if config["codec"] == "HyTIP" else config["codec"]
            points.append(ComplexityPoint(config["label"], codec, x, y, measured=True, y_interval=interval))
            sources.append(_source(config))
    for reading in figure_readings():
        x = {"buffer": reading.temporal_buffer, "model_size": reading.params_m,
             "enc_kmac": reading.enc_kmac_per_pixel, "dec_kmac": reading.dec_kmac_per_pixel}
        errors = {panel: reading.errors[name] for panel, name in READING_ERRORS.items()}
        y, origin, interval = _y(axis, reading.codec)
        rows.append({"codec": reading.codec, "kind": "read from figure", **x, "bd_rate": y, "bd_rate_from": origin,
                     **_bounds(interval)})
        if y is None:
            missing.append((f"{reading.codec} (read from figure)", f"no average BD-rate ({axis.text})"))
        else:
            points.append(ComplexityPoint(reading.codec, reading.codec, x, y, measured=False, errors=errors))
    sources.append(f"Read from figure: {FIGURE_READINGS.name} ({figure_readings()[0].source}); marker positions "
                   "read against the gridlines, error bars = reading error. Its kMAC/pixel match ptflops 0.7.4 and "
                   "earlier, which counted transposed convolutions on output positions (docs/peer-complexity.md).")
    for entry in published_complexity():
        what = (f"{entry.macs_per_frame} MACs per frame (resolution not printed), {entry.params_m:g} M parameters"
                if entry.macs_per_frame else
                f"decode {entry.decode_mac_per_pixel_min / 1e3:g} kMAC/pixel (smallest model)")
        sources.append(f"Published, not plotted: {entry.codec}: {what} ({entry.source}; other protocols, and MACs "
                       f"per frame are not kMAC/pixel where the size is not printed).")
    table = pd.DataFrame(rows, columns=["codec", "kind", *PANELS, "bd_rate", "bd_rate_low", "bd_rate_high",
                                        "bd_rate_from"]).set_index("codec")
    return Tradeoff(points, missing, sources, table)
