"""Assemble and write a report: DIR/index.html (self-contained), DIR/figures/*.svg|pdf, DIR/tables/*.csv|tex."""
from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pandas as pd

from bench.analysis.bdrate import DEFAULT_MIN_OVERLAP, METHOD_TEXT, AVERAGING, codec_label
from bench.analysis.intervals import IntervalOptions
from bench.analysis.rate_points import exclude_rate_points
from reports import sections
from reports.bd import (
    TRANSFORM_NAMES,
    averages,
    bd_settings,
    find_anchor,
    with_labels,
)
from reports.complexity import Axis, has_complexity, measure_hytip, measured_configurations, tradeoff
from reports.conformance import conformance_table
from reports.frame_types import frame_type_view
from reports.figures import CodecStyles, complexity_figure, save, speed_figure
from reports.inputs import ReportInputs
from reports.published import PUBLISHED_ANCHOR, published_axis, published_sections
from reports.rate_choice import dense_table, matching_table
from reports.reproduction import load_published, reproduction
from reports.speed import speed_view
from reports.tables import Table

TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"),
                               autoescape=jinja2.select_autoescape(["html", "j2"]),
                               trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)


@dataclass(frozen=True)
class ReportOptions:
    anchor: str = "VTM-17.0"
    method: str = "pchip"
    averaging: str = "sequences"
    msssim_db: bool = True
    min_overlap: float = DEFAULT_MIN_OVERLAP
    allow_protocol_mismatch: bool = False
    tolerance: float = 0.5           # reproduction verdict, percentage points
    measure_complexity: bool = False  # count HyTIP on the architecture now rather than take the bundled count
    drill_down: bool = True
    title: str = "hytip-bench report"
    command: str = ""                # the command line, printed in the page
    notes: tuple = ()                # lines the caller puts first in the summary (what was not run and why)
    intervals: IntervalOptions | None = IntervalOptions()   # every BD-rate's interval (bench.analysis.intervals)
    exclude_rate_points: tuple = ()  # [CODEC:]POINT specs left out of everything (bench.analysis.rate_points)

    def bd_options(self) -> dict:
        return {"method": self.method, "averaging": self.averaging, "msssim_db": self.msssim_db,
                "min_overlap": self.min_overlap, "allow_protocol_mismatch": self.allow_protocol_mismatch}


def _version() -> str:
    try:
        return importlib.metadata.version("hytip-bench")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _clear(out_dir: Path) -> None:
    """Remove the figures and tables of an earlier report in ``out_dir``, so that none is left over or listed."""
    for pattern in ("figures/*.svg", "figures/*.pdf", "tables/*.csv", "tables/*.tex"):
        for path in out_dir.glob(pattern):
            path.unlink()


def _render(out_dir: Path, page: dict) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    page["downloads"] = sorted(str(p.relative_to(out_dir)) for folder in ("figures", "tables")
                               for p in (out_dir / folder).glob("*") if p.is_file())
    html = TEMPLATES.get_template("report.html.j2").render(page=page, version=_version())
    path = out_dir / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


def _complexity_section(measured: list, axis: Axis, styles, out_dir: Path, notes=(), speed=None) -> dict:
    """The trade-off figure and table; ``speed``: (points, table, BD-rate text) of the run's measured times."""
    result = tradeoff(measured, axis)
    figures, tables = [], []
    if result.points:
        fig = complexity_figure(result.points, styles, "average BD-rate (%)")
        figures.append(sections.view_figure(
            save(fig, "complexity_tradeoff", "Complexity trade-off", out_dir),
            f"y: average BD-rate, {axis.text}. x: temporal buffer, model size and kMAC/pixel of one P-frame. Filled: "
            "measured here (one counting protocol for every codec: sources below); hollow: read from the HyTIP "
            "README's figure, with the reading error. A codec with both is joined by a dotted line. Vertical bars: the "
            "interval of a BD-rate measured here (under the BD tables)."))
    names = {"kind": "x values", "buffer": "temporal buffer (channels)", "model_size": "model size (M)",
             "enc_kmac": "enc kMAC/px", "dec_kmac": "dec kMAC/px", "bd_rate": "avg BD-rate (%)",
             "bd_rate_from": "BD-rate from"}
    table = result.table.drop(columns=["bd_rate_low", "bd_rate_high"]).rename(columns=names)
    low, high = (pd.DataFrame({c: result.table[f"bd_rate_{bound}"] if c == "avg BD-rate (%)" else None
                               for c in table.columns}) for bound in ("low", "high"))
    tables.append(sections.view_table(Table(
        "complexity", "Complexity and average BD-rate per codec", table,
        decimals={"enc kMAC/px": 2, "dec kMAC/px": 2, "model size (M)": 2, "temporal buffer (channels)": 3},
        captions=[f"BD-rate: {axis.text}."], low=low, high=high), out_dir))
    if speed is not None and len(speed[0]):
        points, data, text = speed
        fig = speed_figure(points, styles, "average BD-rate (%)")
        figures.append(sections.view_figure(
            save(fig, "complexity_speed", "Encoding and decoding time", out_dir),
            f"y: average BD-rate, {text}. x: measured seconds per coded frame of this run (its devices, threads and "
            "frame sizes in the table below; log scale). Every codec run here, conventional encoders included."))
        tables.append(sections.view_table(Table(
            "speed", "Measured time per frame", data, decimals={"encode (s/frame)": 4, "decode (s/frame)": 4,
                                                               "encode vs anchor": 2, "decode vs anchor": 2,
                                                               "avg BD-rate (%)": 1},
            captions=["Summed seconds over summed coded frames of the run's jobs; decode is empty where the run "
                      "estimated rates without decoding; 'vs anchor': the codec's time over the anchor's (AWCY's "
                      "columns), like for like only where the device, threads and frame size agree."]), out_dir))
    return {"figures": figures, "tables": tables, "missing": result.missing, "sources": result.sources,
            "notes": list(notes)}


def _measured_complexity(configurations: list, labels: set) -> list:
    """complexity.json entries labelled like the RD data (HyTIP by model, the rest by codec name); one that matches
    no RD label (an architecture count, a peer not run here) keeps its codec's name."""
    measured = []
    for config in configurations:
        codec = config["codec"]
        label = codec_label(codec, str(config.get("model", ""))) if codec == "HyTIP" else codec
        match = label if label in labels else next((l for l in sorted(labels) if l.startswith(codec + "-")), codec)
        measured.append({**config, "label": match})
    return measured


def build_report(inputs: ReportInputs, out_dir, options: ReportOptions = ReportOptions()) -> Path:
    """Render the report of ``inputs`` into ``out_dir``; returns the path of index.html."""
    out_dir = Path(out_dir)
    _clear(out_dir)
    rd, excluded = exclude_rate_points(inputs.rd, options.exclude_rate_points)
    rd = with_labels(rd)
    anchor = find_anchor(rd, options.anchor)
    notes = list(inputs.notes) + ([excluded] if excluded else [])
    if anchor is None:
        notes.append(f"The anchor {options.anchor} is not in the inputs, so there are no BD-rates. Codecs found: "
                     f"{', '.join(sorted(set(rd['label'])))}. Pick one with --anchor (e.g. --anchor "
                     f"{sorted(set(rd['label']))[0]}), or add the anchor's CSV.")
    notes += [f"Job {key} failed ({Path(path).name}): {error.strip().splitlines()[-1]}"
              for path, key, error in inputs.failed_jobs]
    settings = bd_settings(rd, anchor, options.intervals, **options.bd_options())
    styles = CodecStyles(rd["label"], anchor)
    order = [label for label in styles.order if label in set(rd["label"])]

    views = []
    for setting in settings:
        table = sections.bd_table(setting, rd, order, anchor, options.method, options.averaging, options.msssim_db) \
            if anchor else None
        views.append({"id": sections.slug("bd", setting.key), "title": setting.title, "notes": setting.notes,
                      "table": sections.view_table(table, out_dir) if table else None,
                      "figures": sections.rd_figures(setting, rd, styles, anchor, out_dir, options.method,
                                                     options.averaging)})
    headline = sections.headline_table(settings, order, anchor, options.method, options.averaging) if anchor else None

    complexity = reproduced = None
    psnr = [s for s in settings if s.metric == "psnr_rgb" and not s.table.empty]
    configurations = list(inputs.complexity)
    if options.measure_complexity and not any(c["codec"] == "HyTIP" for c in configurations):
        configurations.append(measure_hytip())
    measured = _measured_complexity(measured_configurations(configurations), set(rd["label"]))
    if psnr:
        setting = psnr[0]
        average = averages(setting).set_index("codec")
        mean = {k: float(v) for k, v in average["bd_rate_pct"].items()}
        interval = {k: (float(lo), float(hi)) for k, lo, hi in
                    zip(average.index, average["bd_rate_low"], average["bd_rate_high"]) if pd.notna(lo)}
        datasets = sorted(set(setting.table["dataset"]) - {"Average"})
        run_text = f"{setting.title} against {anchor}, mean over {', '.join(datasets)}"
        axis, axis_notes = _tradeoff_axis(anchor, setting.transform, datasets, mean, interval, run_text)
        complexity = _complexity_section(measured, axis, styles, out_dir, axis_notes,
                                         (*speed_view(rd, mean, interval, anchor), f"{run_text} (this run)"))
        ours = pd.concat([s.table for s in settings if not s.table.empty], ignore_index=True)
        comparison, rep_notes = reproduction(ours, rd, options.tolerance)
        reproduced = _reproduction_view(comparison, rep_notes, options.tolerance, out_dir)
    else:
        axis, axis_notes = published_axis()
        complexity = _complexity_section(measured, axis, styles, out_dir, [
            "This run has no PSNR-RGB BD-rates, so the y values are the published ones.", *axis_notes])

    page = {
        "title": options.title, "command": options.command, "mode": "results", "notes": [*options.notes, *notes],
        "anchor": anchor, "anchor_asked": options.anchor,
        "method": METHOD_TEXT[options.method], "averaging": AVERAGING[options.averaging],
        "facts": _facts(rd, settings),
        "inputs": sections.view_table(sections.inputs_table(rd, order, anchor), out_dir),
        "headline": sections.view_table(headline, out_dir) if headline else None,
        "settings": views, "complexity": complexity, "reproduction": reproduced, "published": [],
        "drilldown": sections.drilldown(rd, settings, inputs.records, styles, out_dir) if options.drill_down else [],
        "provenance": [sections.view_table(t, out_dir) for t in sections.provenance_tables(rd, order, inputs.files)],
        "sweeps": sections.sweep_blocks(inputs.sweeps),
        "rate_points": _rate_points_view(inputs, rd, anchor, options, out_dir),
        "frame_types": frame_type_view(rd, anchor, order, options.bd_options(), out_dir),
        "conformance": [sections.view_table(conformance_table(path, frame, i), out_dir)
                        for i, (path, frame) in enumerate(inputs.conformance)],
    }
    return _render(out_dir, page)


def _rate_points_view(inputs: ReportInputs, rd: pd.DataFrame, anchor, options: ReportOptions, out_dir: Path):
    """How the rate points were chosen (matched to the anchor) and the dense-curve check, where the inputs have them."""
    matched = matching_table(inputs.rate_matches)
    dense, notes = dense_table(rd, anchor, dict(method=options.method, averaging=options.averaging,
                                                msssim_db=options.msssim_db))
    tables = [sections.view_table(t, out_dir) for t in (matched, dense) if t is not None]
    return {"tables": tables, "notes": notes} if tables or notes else None


def _facts(rd: pd.DataFrame, settings: list) -> list:
    points = rd.groupby(["label", "dataset", "sequence", "color_transform"]).size()
    return [("codecs", ", ".join(dict.fromkeys(rd["label"]))),
            ("datasets", ", ".join(f"{d} ({n} sequences)" for d, n in
                                   rd.groupby("dataset", sort=False)["sequence"].nunique().items())),
            ("colour transforms", ", ".join(TRANSFORM_NAMES.get(t, t) for t in dict.fromkeys(rd["color_transform"]))),
            ("metrics", ", ".join(dict.fromkeys(s.title.split(",")[0] for s in settings)) or "none"),
            ("rate points per curve", f"{points.min()}" if points.min() == points.max()
             else f"{points.min()} to {points.max()}"),
            ("frames per sequence", ", ".join(dict.fromkeys(str(f) for f in rd["frames"].dropna())) or "not stated"),
            ("intra period", ", ".join(dict.fromkeys(str(f) for f in rd["intra_period"].dropna())) or "not stated")]


def _tradeoff_axis(anchor: str, transform: str, datasets: list, mean: dict, interval: dict,
                   run_text: str) -> tuple[Axis, list]:
    """The run's own BD-rates where they are against the published anchor and the published values cover its
    datasets (peers not run here take those, over the same datasets and transform); otherwise the published values
    for every codec, since one axis never mixes BD-rates against different anchors."""
    if anchor == PUBLISHED_ANCHOR:
        published, notes = published_axis(transform, datasets)
        if published.values:
            values = {**published.values, **mean}
            origin = {**published.origin, **{label: "this run" for label in mean}}
            return Axis(values, origin, run_text, interval), notes
    axis, notes = published_axis()
    return axis, [f"This run's BD-rates are against {anchor}, the published ones against {PUBLISHED_ANCHOR}: one "
                  "axis never mixes them, so the trade-off's y values are the published ones, and this run's codecs "
                  "are in the time view." if anchor else "This run has no anchor, so the trade-off's y values are "
                  "the published ones.", *notes]


def _reproduction_view(comparison: pd.DataFrame, notes: list, tolerance: float, out_dir: Path) -> dict:
    view = {"notes": notes, "tolerance": tolerance, "table": None, "counts": {}}
    if not comparison.empty:
        data = comparison.set_index("codec")
        table = Table("reproduction", "Reproduced versus published BD-rates", data, signed=False,
                      captions=[f"Verdict: consistent when the published value lies inside our interval [ours low, "
                                f"ours high] widened by {tolerance:g} percentage points on each side (where a value "
                                f"has no interval, when |difference| <= {tolerance:g}); otherwise differs, by how many "
                                "of our interval's half-widths (on the published value's side) it lies from ours; cells "
                                "whose frames, intra period, crop or colour matrix differ are not compared. The "
                                "published tables state neither their BD method and averaging nor the colour range and "
                                "chroma filter of their RGB conversion."])
        view["table"] = sections.view_table(table, out_dir)
        view["counts"] = comparison["verdict"].str.split(":").str[0].value_counts().to_dict()
    return view


def build_published_report(out_dir, options: ReportOptions = ReportOptions(), complexity=()) -> Path:
    """The published data bundled in anchors/ (no results needed), with the complexity trade-off: the counts of
    ``complexity`` (complexity.json configurations: a sweep's count of HyTIP, peers counted with `complexity --peer`),
    then the bundled counts (anchors/measured_complexity.json) of the codecs they do not give; HyTIP counted now with
    ``options.measure_complexity``."""
    out_dir = Path(out_dir)
    _clear(out_dir)
    published = load_published()
    styles = CodecStyles(published["codec"], None)
    tables = published_sections(published)
    given = {}   # one count per codec (a sweep's HyTIP models share the architecture); conventional encoders have none
    for config in complexity:
        if has_complexity(config):
            given.setdefault(config["codec"], config)
    given = list(given.values())
    if options.measure_complexity and not any(c["codec"] == "HyTIP" for c in given):
        given.append(measure_hytip())
    measured = [{**c, "label": c["codec"]} for c in measured_configurations(given)]
    axis, notes = published_axis()
    complexity = _complexity_section(measured, axis, styles, out_dir,
                                     ["Complexity measured here (HyTIP from its architecture, peers from their code; "
                                      "weights do not change it); BD-rates published.", *notes])
    page = {
        "title": options.title, "command": options.command, "mode": "published", "notes": list(options.notes),
        "anchor": None, "anchor_asked": options.anchor, "method": "not stated", "averaging": "not stated",
        "facts": [("content", "published numbers bundled in anchors/ (provenance: anchors/README.md); nothing was "
                              "run here; the complexity counts are hytip-bench's, on each codec's architecture "
                              "(sources under the trade-off)")],
        "inputs": None, "headline": None, "settings": [], "complexity": complexity, "reproduction": None,
        "published": [sections.view_table(t, out_dir) for t in tables], "drilldown": [], "rate_points": None,
        "frame_types": None, "provenance": [], "sweeps": [], "conformance": [],
    }
    return _render(out_dir, page)
