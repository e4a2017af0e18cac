"""Matplotlib figures of the report: RD curves, the complexity trade-off and per-frame rate and quality.

Figures are built on ``matplotlib.figure.Figure`` (no pyplot state), saved as SVG and PDF under ``figures/`` and
inlined in the page as SVG. Each codec keeps one colour and marker across all figures (``CodecStyles``);
conventional codecs are dashed. Text stays text in the SVG (searchable, small); the SVG ids are salted with the
figure name so that many inline SVGs in one page cannot clash, and file dates are left out so output is reproducible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from markupsafe import Markup

from reports.bd import is_conventional

RC = {
    "font.size": 8.5, "axes.titlesize": 9.5, "axes.titleweight": "bold", "axes.labelsize": 8.5,
    "legend.fontsize": 7.5, "axes.grid": True, "grid.color": "#d9d9d9", "grid.linewidth": 0.6,
    "axes.spines.top": False, "axes.spines.right": False, "axes.edgecolor": "#555555",
    "svg.fonttype": "none", "pdf.fonttype": 42, "lines.linewidth": 1.6, "lines.markersize": 4.5,
}
# Okabe-Ito and tab10 colours without grey and yellow (unreadable on white); the anchor is black.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C564B", "#9467BD", "#17BECF",
           "#BCBD22", "#1F77B4", "#D62728")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")
ANCHOR_COLOUR = "#000000"


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str
    linestyle: str


class CodecStyles:
    """One colour, marker and line style per codec label, fixed for the whole report."""

    def __init__(self, labels, anchor: str | None):
        self.anchor = anchor
        learned = sorted(l for l in set(labels) if l != anchor and not is_conventional(l))
        conventional = sorted(l for l in set(labels) if l != anchor and is_conventional(l))
        # HyTIP first so that it gets the first (blue) colour, as in the HyTIP figures' emphasis.
        learned.sort(key=lambda l: not l.startswith("HyTIP"))
        self.order = ([anchor] if anchor in set(labels) else []) + learned + conventional
        self._styles = {}
        for i, label in enumerate(l for l in self.order if l != anchor):
            self._styles[label] = Style(PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)],
                                        "--" if is_conventional(label) else "-")
        if anchor is not None:
            self._styles[anchor] = Style(ANCHOR_COLOUR, "o", "--" if is_conventional(anchor) else "-")

    def __getitem__(self, label: str) -> Style:
        if label not in self._styles:   # a codec met only later (published peers): next free style
            i = len(self._styles)
            self._styles[label] = Style(PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)],
                                        "--" if is_conventional(label) else "-")
            self.order.append(label)
        return self._styles[label]


@dataclass(frozen=True)
class FigureFile:
    name: str
    title: str
    svg: Markup          # inline SVG for the page
    svg_path: str        # relative to the report folder
    pdf_path: str


def save(fig: Figure, name: str, title: str, out_dir: Path) -> FigureFile:
    folder = out_dir / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    with mpl.rc_context({"svg.hashsalt": name, **RC}):
        fig.savefig(folder / f"{name}.svg", format="svg", metadata={"Date": None})
        fig.savefig(folder / f"{name}.pdf", format="pdf", metadata={"CreationDate": None})
    svg = (folder / f"{name}.svg").read_text(encoding="utf-8")
    svg = svg[svg.index("<svg"):]
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{Markup.escape(title)}" ', 1)
    return FigureFile(name, title, Markup(svg), f"figures/{name}.svg", f"figures/{name}.pdf")


def _figure(width: float, height: float, **kwargs) -> Figure:
    with mpl.rc_context(RC):
        return Figure(figsize=(width, height), layout="constrained", **kwargs)


def rd_figure(curves: dict, legend: dict, styles: CodecStyles, *, title: str, xlabel: str, ylabel: str) -> Figure:
    """RD curves: ``curves`` maps a codec label to (rate, quality) arrays; ``legend`` to its legend text."""
    with mpl.rc_context(RC):
        fig = _figure(4.6, 3.5)
        ax = fig.add_subplot()
        for label in styles.order:
            if label not in curves:
                continue
            rate, quality = curves[label]
            style = styles[label]
            ax.plot(rate, quality, color=style.colour, marker=style.marker, linestyle=style.linestyle,
                    label=legend[label], zorder=3 if label == styles.anchor else 2)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        ax.legend(loc="lower right", frameon=True, framealpha=0.9, edgecolor="#cccccc")
    return fig


@dataclass(frozen=True)
class ComplexityPoint:
    label: str
    codec: str            # points of one codec (measured and published) are joined: its published name
    values: dict          # panel key -> x value (None when not known)
    bd_rate: float
    measured: bool        # measured here (filled marker) or published (hollow)
    errors: dict = field(default_factory=dict)   # panel key -> reading error (half-width), drawn as an error bar
    y_interval: tuple | None = None              # (low, high) of the BD-rate, drawn as a vertical error bar


PANELS = {"buffer": "temporal buffer (full-resolution channels)", "model_size": "model size (M parameters)",
          "enc_kmac": "encoding kMAC/pixel", "dec_kmac": "decoding kMAC/pixel"}
SPEED_PANELS = {"enc_seconds": "encoding seconds per frame", "dec_seconds": "decoding seconds per frame"}


def _point_id(*parts) -> str:
    """An SVG id per drawn point (``pt-...``), so that a browser can find and count them."""
    return "pt-" + "-".join("".join(ch if ch.isalnum() else "_" for ch in str(p)) for p in parts)


def _scatter_panels(fig: Figure, points: list, panels: dict, styles: CodecStyles, ylabel: str, name: str,
                    logx: bool = False) -> None:
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    # a codec's points share the style of its first measured label (the RD figures' colour), so that they read as one
    group_style = {}
    for point in sorted(points, key=lambda p: not p.measured):
        group_style.setdefault(point.codec, styles[point.label if point.measured else point.codec])
    for ax, (key, xlabel) in zip(axes, panels.items()):
        placed = {}
        for point in points:
            x = point.values.get(key)
            if x is None:
                continue
            style = group_style[point.codec]
            kind = "measured" if point.measured else "published"
            if point.errors.get(key):
                ax.errorbar([x], [point.bd_rate], xerr=[point.errors[key]], fmt="none", ecolor=style.colour,
                            elinewidth=0.9, capsize=2.5, zorder=2)
            if point.y_interval is not None and all(math.isfinite(v) for v in point.y_interval):
                low, high = point.y_interval
                ax.errorbar([x], [point.bd_rate], yerr=[[point.bd_rate - low], [high - point.bd_rate]], fmt="none",
                            ecolor=style.colour, elinewidth=0.9, capsize=2.5, zorder=2)
            # published: an open ring, larger; measured: filled, smaller, on top, so that one inside the other
            # shows where they agree
            line, = ax.plot([x], [point.bd_rate], linestyle="none", marker=style.marker,
                            markersize=5.5 if point.measured else 9, color=style.colour,
                            markerfacecolor=style.colour if point.measured else "none", markeredgewidth=1.4,
                            zorder=4 if point.measured else 3)
            line.set_gid(_point_id(name, key, point.label, kind))
            placed.setdefault(point.codec, []).append((x, point.bd_rate, point.label))
        for codec, where in placed.items():
            if len(where) > 1:   # measured and published: joined, so that the difference shows
                ax.plot([w[0] for w in where], [w[1] for w in where], color=group_style[codec].colour,
                        linewidth=0.8, linestyle=":", zorder=1)
            x, y, label = where[0]
            ax.annotate(label, (x, y), xytext=(5, 4), textcoords="offset points", fontsize=7)
        xs = [w[0] for where in placed.values() for w in where]
        if logx and xs and min(xs) > 0 and max(xs) / min(xs) > 10:   # log only where the values span decades
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.margins(x=0.25, y=0.18)
    axes[0].set_ylabel(ylabel)


def complexity_figure(points: list, styles: CodecStyles, ylabel: str) -> Figure:
    """Four panels, average BD-rate against each complexity measure; a point appears where its value is known."""
    with mpl.rc_context(RC):
        fig = _figure(10.5, 3.3)
        _scatter_panels(fig, points, PANELS, styles, ylabel, "complexity")
        marks = [Line2D([], [], linestyle="none", marker="o", color="#333333", markersize=5.5, label="measured here"),
                 Line2D([], [], linestyle="none", marker="o", color="#333333", markerfacecolor="none",
                        markeredgewidth=1.4, markersize=9, label="published (read from figure, ± reading error)")]
        fig.legend(handles=marks, loc="outside upper right", ncols=2, frameon=False)
    return fig


def speed_figure(points: list, styles: CodecStyles, ylabel: str) -> Figure:
    """Two panels, average BD-rate against measured encoding and decoding seconds per frame (log scale where the
    times span more than a decade)."""
    with mpl.rc_context(RC):
        fig = _figure(10.5, 3.3)   # the trade-off's width, so that both read at one scale in the page
        _scatter_panels(fig, points, SPEED_PANELS, styles, ylabel, "speed", logx=True)
    return fig


def per_frame_figure(runs: list, *, title: str, intra_frames, scene_cuts, colour: str) -> Figure:
    """Rate (kbit, log scale) and PSNR-RGB per frame along a sequence, one line per rate point; ``runs`` holds
    (rate point label, frame numbers, bits, psnr_rgb) with None where a value is missing."""
    with mpl.rc_context(RC):
        fig = _figure(9.2, 4.0)
        rate_ax, psnr_ax = fig.subplots(2, 1, sharex=True)
        shades = np.linspace(0.35, 1.0, len(runs)) if runs else []
        base = np.array(mpl.colors.to_rgb(colour))
        has_bits = any(b is not None and b > 0 for _, _, bits, _ in runs for b in bits)
        for (label, numbers, bits, psnr), shade in zip(runs, shades):
            tint = 1 - shade * (1 - base)   # light tint for the lowest rate point, full colour for the highest
            kbits = [math.nan if b is None else b / 1e3 for b in bits]
            rate_ax.plot(numbers, kbits, color=tint, linewidth=1.1, label=label)
            psnr_ax.plot(numbers, [math.nan if p is None else p for p in psnr], color=tint, linewidth=1.1)
        for ax in (rate_ax, psnr_ax):
            for n in intra_frames:
                ax.axvline(n, color="#777777", linewidth=0.8, linestyle=":", zorder=0)
            for n in scene_cuts:
                ax.axvline(n, color="#C00000", linewidth=1.0, linestyle="--", zorder=0)
        if has_bits:
            rate_ax.set_yscale("log")
        else:  # conventional encoders: bits are known per coded stream (GOP), not per frame
            rate_ax.text(0.5, 0.5, "no per-frame rate recorded (bits per GOP stream only)", ha="center",
                         va="center", transform=rate_ax.transAxes, color="#555555")
        rate_ax.set(ylabel="kbit per frame", title=title)
        psnr_ax.set(ylabel="PSNR-RGB (dB)", xlabel="frame (1-based; dotted: I-frames, red dashed: scene cuts)")
        fig.legend(*rate_ax.get_legend_handles_labels(), title="rate point", loc="outside right upper", frameon=False)
    return fig
