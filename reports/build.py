"""Assemble and write a report: DIR/index.html (self-contained), DIR/figures/*.svg|pdf, DIR/tables/*.csv|tex."""
from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pandas as pd

from bench.analysis.bdrate import DEFAULT_MIN_OVERLAP, METHOD_TEXT, AVERAGING, codec_label
from reports import sections
from reports.bd import (
    TRANSFORM_NAMES,
    averages,
    bd_settings,
    find_anchor,
    with_labels,
)
from reports.complexity import measure_hytip, tradeoff
from reports.figures import CodecStyles, complexity_figure, save
from reports.inputs import ReportInputs
from reports.published import published_sections
from reports.reproduction import load_published, reproduction
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
    measure_complexity: bool = False  # count HyTIP's complexity on the architecture when no complexity.json gives it
    drill_down: bool = True
    title: str = "hytip-bench report"
    command: str = ""                # the command line, printed in the page
    notes: tuple = ()                # lines the caller puts first in the summary (what was not run and why)

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


def _complexity_section(measured: list, bd_measured: dict, bd_published: dict, bd_text: str, styles,
                        out_dir: Path, notes=()) -> dict | None:
    result = tradeoff(measured, bd_measured, bd_published, bd_text)
    if not result.points and not result.missing:
        return None
    figures = []
    if result.points:
        fig = complexity_figure(result.points, styles, "average BD-rate (%)")
        figures.append(sections.view_figure(
            save(fig, "complexity_tradeoff", "Complexity trade-off", out_dir),
            f"Average BD-rate ({bd_text}) against temporal buffer, model size and kMAC/pixel of one P-frame. Filled: "
            "measured here; hollow: published. A codec appears in a panel only where its value is known."))
    table = Table("complexity", "Complexity and average BD-rate per codec",
                  result.table.rename(columns={"buffer": "temporal buffer (channels)", "model_size": "model size (M)",
                                               "enc_kmac": "enc kMAC/px", "dec_kmac": "dec kMAC/px",
                                               "bd_rate": "avg BD-rate (%)"}),
                  decimals={"enc kMAC/px": 2, "dec kMAC/px": 2, "model size (M)": 2, "temporal buffer (channels)": 1},
                  captions=[f"BD-rate: {bd_text}."], best="column-min")
    return {"figures": figures, "table": sections.view_table(table, out_dir), "missing": result.missing,
            "sources": result.sources, "notes": list(notes)}


def _measured_complexity(configurations: list, labels: set) -> list:
    """complexity.json entries labelled like the RD data: HyTIP by model (codec_label), the rest by codec name."""
    measured = []
    for config in configurations:
        label = codec_label(config["codec"], str(config.get("model", ""))) if config["codec"] == "HyTIP" else config["codec"]
        match = label if label in labels else next((l for l in sorted(labels) if l.startswith(config["codec"] + "-")), label)
        measured.append({**config, "label": match})
    return measured


def build_report(inputs: ReportInputs, out_dir, options: ReportOptions = ReportOptions()) -> Path:
    """Render the report of ``inputs`` into ``out_dir``; returns the path of index.html."""
    out_dir = Path(out_dir)
    _clear(out_dir)
    rd = with_labels(inputs.rd)
    anchor = find_anchor(rd, options.anchor)
    notes = list(inputs.notes)
    if anchor is None:
        notes.append(f"The anchor {options.anchor} is not in the inputs, so there are no BD-rates. Codecs found: "
                     f"{', '.join(sorted(set(rd['label'])))}. Pick one with --anchor (e.g. --anchor "
                     f"{sorted(set(rd['label']))[0]}), or add the anchor's CSV.")
    notes += [f"Job {key} failed ({Path(path).name}): {error.strip().splitlines()[-1]}"
              for path, key, error in inputs.failed_jobs]
    settings = bd_settings(rd, anchor, **options.bd_options())
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
    if psnr:
        setting = psnr[0]
        configurations = list(inputs.complexity)
        if options.measure_complexity and not any(c["codec"] == "HyTIP" for c in configurations):
            architecture = measure_hytip()
            configurations += [{**architecture, "model": label.removeprefix("HyTIP-")}
                               for label in order if label.startswith("HyTIP-")]
        measured = _measured_complexity(configurations, set(rd["label"]))
        mean = averages(setting).set_index("codec")["bd_rate_pct"]
        datasets = sorted(set(setting.table["dataset"]) - {"Average"})
        bd_published, peer_notes = _published_peers(anchor, setting.transform, datasets, set(rd["codec"]))
        complexity = _complexity_section(
            measured, {k: float(v) for k, v in mean.items()}, bd_published,
            f"{setting.title} against {anchor}, mean over {', '.join(datasets)}", styles, out_dir, peer_notes)
        ours = pd.concat([s.table for s in settings if not s.table.empty], ignore_index=True)
        comparison, rep_notes = reproduction(ours, rd, options.tolerance)
        reproduced = _reproduction_view(comparison, rep_notes, options.tolerance, out_dir)

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
    }
    return _render(out_dir, page)


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


def _published_peers(anchor: str, transform: str, datasets: list, our_codecs: set) -> tuple[dict, list]:
    """Average published BD-rates (HyTIP README, current release) over the same datasets, for codecs not run here;
    empty when the anchor or datasets differ from the published ones."""
    published = load_published()
    current = published[published["metric"].eq("psnr_rgb") & published["color_transform"].eq(transform)
                        & published["release"].str.contains("current")
                        & published["anchor_label"].eq(anchor)]
    if current.empty:
        return {}, [f"No published PSNR-RGB {TRANSFORM_NAMES.get(transform, transform)} BD-rates against {anchor} in "
                    "anchors/, so only what was measured is plotted."]
    peers, notes = {}, []
    for codec, rows in current.groupby("codec"):
        if codec in our_codecs:
            continue
        have = rows.set_index("dataset")["bd_rate_pct"]
        if set(datasets) <= set(have.index):
            peers[codec] = float(have[datasets].mean())
        else:
            notes.append(f"{codec}: published BD-rates lack {', '.join(sorted(set(datasets) - set(have.index)))}.")
    notes.append(f"Published BD-rates: mean over the same datasets of {Path(current['file'].iloc[0]).name} "
                 f"({current['release'].iloc[0]}); they come from figures, not from runs here.")
    return peers, notes


def _reproduction_view(comparison: pd.DataFrame, notes: list, tolerance: float, out_dir: Path) -> dict:
    view = {"notes": notes, "tolerance": tolerance, "table": None, "counts": {}}
    if not comparison.empty:
        data = comparison.set_index("codec")
        table = Table("reproduction", "Reproduced versus published BD-rates", data, signed=False,
                      captions=[f"Verdict: reproduced when |difference| <= {tolerance:g} percentage points; cells "
                                "whose frames, intra period, crop or colour matrix differ are not compared. The "
                                "published tables state neither their BD method and averaging nor the colour range and "
                                "chroma filter of their RGB conversion."])
        view["table"] = sections.view_table(table, out_dir)
        view["counts"] = comparison["verdict"].str.split(":").str[0].value_counts().to_dict()
    return view


def build_published_report(out_dir, options: ReportOptions = ReportOptions(), complexity=()) -> Path:
    """The published data bundled in anchors/ (no results needed), with HyTIP's complexity beside published peers:
    from a HyTIP entry of ``complexity`` (complexity.json configurations) if there is one, else counted on the
    architecture."""
    out_dir = Path(out_dir)
    _clear(out_dir)
    published = load_published()
    styles = CodecStyles(published["codec"], None)
    tables, complexity_inputs = published_sections(published)
    hytip = next((c for c in complexity if c["codec"] == "HyTIP"), None) or measure_hytip()
    complexity = _complexity_section(
        [{**hytip, "label": "HyTIP"}], *complexity_inputs, styles, out_dir,
        [f"HyTIP: complexity from {hytip['file']} (the architecture; weights do not change it); its BD-rate is the "
         "published README value. Peers: published parameter counts and BD-rates."])
    page = {
        "title": options.title, "command": options.command, "mode": "published", "notes": list(options.notes),
        "anchor": None, "anchor_asked": options.anchor, "method": "not stated", "averaging": "not stated",
        "facts": [("content", "published numbers bundled in anchors/ (provenance: anchors/README.md); nothing was run "
                              "except counting HyTIP's complexity on its architecture")],
        "inputs": None, "headline": None, "settings": [], "complexity": complexity, "reproduction": None,
        "published": [sections.view_table(t, out_dir) for t in tables], "drilldown": [], "provenance": [],
        "sweeps": [],
    }
    return _render(out_dir, page)
