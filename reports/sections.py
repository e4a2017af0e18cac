"""The parts of a results report: summary, BD tables with their RD curves, drill-down per sequence, provenance.

Each function returns plain dicts for the template (``templates/report.html.j2``); tables and figures are exported
as they are made (``view_table``, ``view_figure``).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

# bdrate's dataset-mean curve (its 'curve' averaging) is private there; the RD figures draw exactly that curve.
from bench.analysis.bdrate import AVERAGE_ROW, AVERAGING, METHOD_TEXT, dataset_mean_curves, codec_label, msssim_to_db
from bench.errors import InputError
from reports.bd import METRIC_NAMES, TRANSFORM_NAMES, BDSetting, averages, is_result_row
from reports.figures import FigureFile, per_frame_figure, rd_figure, save
from reports.tables import Table

PROTOCOL_COLUMNS = {"frames": "frames", "intra_period": "intra period", "crop": "crop", "size": "measured size",
                    "input_format": "codec input", "color_matrix": "colour matrix", "color_range": "range",
                    "color_filter": "chroma filter", "averaging": "metric averaging", "rate_mode": "rate",
                    "decode_check": "decoded = encoder recon", "scene_cuts": "scene cuts (I-frames)"}
VERSION_COLUMNS = {"codec_version": "version", "model": "model", "checkpoint_sha256": "checkpoint sha256",
                   "project_version": "hytip-bench", "git_commit": "git commit", "torch_version": "torch",
                   "cuda_version": "CUDA", "cudnn_version": "cuDNN", "device": "device", "threads": "threads",
                   "config_sha256": "job configs"}


def slug(*parts) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", "_".join(str(p) for p in parts)).strip("-").lower()


def view_table(table: Table, out_dir: Path, files: dict | None = None) -> dict:
    """The template's view of a table; exports it unless ``files`` says where its data already is."""
    return {"id": slug("table", table.name), "title": table.title, "index": table.data.index.name or "",
            "columns": list(table.data.columns), "rows": table.html_rows(), "captions": table.captions,
            "notes": table.notes, "files": files if files is not None else table.export(out_dir)}


def view_figure(figure: FigureFile, caption: str = "", notes=()) -> dict:
    return {"id": slug("figure", figure.name), "title": figure.title, "svg": figure.svg,
            "files": {"SVG": figure.svg_path, "PDF": figure.pdf_path}, "caption": caption, "notes": list(notes)}


def _distinct(values, limit: int | None = None) -> str:
    found = [str(v) for v in dict.fromkeys(values) if not pd.isna(v) and str(v) != ""]
    if limit is not None and len(found) > limit:
        return " / ".join(found[:limit]) + f" / ... ({len(found)} distinct, all in tables/rd_points.csv)"
    return " / ".join(found) if found else "not stated"


def _column_text(rows: pd.DataFrame, column: str) -> str:
    if column == "size":
        return _distinct(f"{w}x{h}" for w, h in zip(rows["width"], rows["height"]) if not pd.isna(w))
    if column not in rows:
        return "not stated"
    if column == "config_sha256":
        return f"{rows[column].nunique()} distinct"
    return _distinct(rows[column], limit=2)


def inputs_table(rd: pd.DataFrame, order: list, anchor: str | None) -> Table:
    """What the report holds, per codec: role, datasets, sequences, transforms, rate points, frames, files."""
    run = is_result_row(rd)
    rows = []
    for label in order:
        mine = rd[rd["label"] == label]
        points = mine.groupby(["dataset", "sequence", "color_transform"]).size()
        role = "anchor" if label == anchor else ("run by hytip-bench" if run[mine.index].any() else "input data")
        rows.append({"codec": label, "role": role, "datasets": _distinct(mine["dataset"]),
                     "sequences": int(mine.groupby("dataset")["sequence"].nunique().sum()),
                     "transforms": _distinct(TRANSFORM_NAMES.get(t, t) for t in mine["color_transform"]),
                     "rate points": f"{points.min()}" if points.min() == points.max() else f"{points.min()}-{points.max()}",
                     "frames": _distinct(mine["frames"]), "intra period": _distinct(mine["intra_period"]),
                     "files": _distinct(Path(f).name for f in mine["file"])})
    return Table("inputs", "What the report holds", pd.DataFrame(rows).set_index("codec"), latex=False)


def headline_table(settings: list, order: list, anchor: str, method: str, averaging: str) -> Table | None:
    values, low, high, partial, notes, captions = {}, {}, {}, {}, [], []
    for setting in settings:
        mean = averages(setting).set_index("codec")
        if mean.empty:
            continue
        values[setting.title] = mean["bd_rate_pct"]
        low[setting.title], high[setting.title] = mean["bd_rate_low"], mean["bd_rate_high"]
        captions = captions or interval_captions(setting.table)
        partial[setting.title] = mean["datasets"] < mean["of"]
        notes += [f"† {codec}, {setting.title}: the average covers {int(n)} of the {int(of)} datasets."
                  for codec, n, of in mean.loc[partial[setting.title], ["datasets", "of"]].itertuples()]
    if not values:
        return None
    rows = [label for label in order if label in pd.DataFrame(values).index]
    data, low, high = (pd.DataFrame(frame).reindex(rows).rename_axis("codec") for frame in (values, low, high))
    return Table("summary_bd_rate", f"Average BD-rate (%) against {anchor}", data, best="column-min", signed=True,
                 captions=[f"Negative = fewer bits than {anchor} at equal quality. Average = mean over datasets of the "
                           f"per-dataset values ({AVERAGING[averaging]}).", f"Interpolation: {METHOD_TEXT[method]}.",
                           *captions],
                 notes=notes, partial=pd.DataFrame(partial).reindex(rows).fillna(False).astype(bool), low=low,
                 high=high)


def bd_table(setting: BDSetting, rd: pd.DataFrame, order: list, anchor: str, method: str, averaging: str,
             msssim_db: bool) -> Table | None:
    if setting.table.empty:
        return None
    datasets = [d for d in dict.fromkeys(setting.table["dataset"]) if d != AVERAGE_ROW] + [AVERAGE_ROW]
    codecs = [c for c in order if c in set(setting.table["codec"])]
    data, low, high = (_pivot(setting.table, value, "dataset", datasets, codecs)
                       for value in ("bd_rate_pct", "bd_rate_low", "bd_rate_high"))
    anchor_rows = rd[(rd["label"] == anchor) & (rd["color_transform"] == setting.transform)]
    counts = anchor_rows.groupby("dataset")["sequence"].nunique()
    captions = [f"BD-rate (%) against {anchor}; negative = fewer bits at equal quality; best (lowest) per row in bold.",
                f"Interpolation: {METHOD_TEXT[method]}; log10 rate, integrated over the overlap of the two curves.",
                f"Per dataset: {AVERAGING[averaging]}. {AVERAGE_ROW}: mean of the per-dataset values.",
                "Sequences per dataset: " + ", ".join(f"{d} {counts.get(d, 0)}" for d in datasets[:-1]) + "."]
    if msssim_db and setting.metric.startswith("msssim"):
        captions.append("MS-SSIM taken in dB, -10 log10(1 - MS-SSIM).")
    protocols = setting.table.drop_duplicates("codec").set_index("codec")["protocol"]
    if protocols.nunique() == 1:
        captions.append(f"Protocol: {protocols.iloc[0]}.")
    else:
        captions += [f"Protocol of {codec}: {text}." for codec, text in protocols.items()]
    captions += interval_captions(setting.table)
    return Table(f"bd_rate_{slug(setting.metric, setting.transform)}", f"BD-rate, {setting.title}", data,
                 best="row-min", signed=True, captions=captions, low=low, high=high)


def _pivot(table: pd.DataFrame, value: str, rows: str, row_order: list, columns: list,
           by: str = "codec") -> pd.DataFrame:
    """``value`` by ``rows`` x ``by``, in the given orders; all NaN where the table has no such column."""
    frame = table.pivot(index=rows, columns=by, values=value) if value in table else pd.DataFrame()
    frame = frame.reindex(index=row_order, columns=columns)
    frame.index.name = rows
    return frame


def interval_captions(table: pd.DataFrame) -> list:
    """How the intervals of a table's BD-rates were made (bench.analysis.intervals), when it has them."""
    if "interval" not in table or table["interval"].dropna().empty:
        return []
    return [f"[low, high]: {table['interval'].dropna().iloc[0].removeprefix('[low, high] = ')}."]


def _mean_curves(rows: pd.DataFrame, metric: str) -> tuple[dict, dict]:
    """Dataset-mean curves (bdrate's 'curve' averaging) of one setting: {dataset: {label: (unit, rate, quality)}}, and
    {dataset: notes} for codecs whose curve cannot be averaged. One pass over all curves; per dataset and codec only
    when that fails, to find which."""
    curves, notes = {}, {}
    for rate, part in (("bpp", rows[rows["bpp"].notna()]), ("kbps", rows[rows["bpp"].isna() & rows["kbps"].notna()])):
        try:
            means = [dataset_mean_curves(part, rate, metric)] if len(part) else []
        except InputError:
            means = []
            for (label, dataset), mine in part.groupby(["label", "dataset"], sort=False):
                try:
                    means.append(dataset_mean_curves(mine, rate, metric))
                except InputError as exc:
                    notes.setdefault(dataset, []).append(f"{label} is not drawn: {exc}")
        for mean in means:
            for (label, dataset), curve in mean.sort_values(rate).groupby(["label", "dataset"], sort=False):
                curves.setdefault(dataset, {})[label] = (rate, curve[rate].to_numpy(), curve[metric].to_numpy())
    return curves, notes


def rd_figures(setting: BDSetting, rd: pd.DataFrame, styles, anchor: str | None, out_dir: Path,
               method: str, averaging: str) -> list:
    metric = setting.metric
    rows = rd[(rd["color_transform"] == setting.transform) & rd[metric].notna()]
    all_curves, all_notes = _mean_curves(rows, metric)
    views = []
    for dataset, here in rows.groupby("dataset", sort=False):
        found = all_curves.get(dataset, {})
        notes = all_notes.get(dataset, [])
        # One rate axis per figure: bpp unless no codec has it (CompressAI's results have kbps only).
        rate = "bpp" if any(unit == "bpp" for unit, _, _ in found.values()) else "kbps"
        notes += [f"{label} is not drawn: it has no bpp values." for label, (unit, _, _) in found.items() if unit != rate]
        curves = {label: (r, q) for label, (unit, r, q) in found.items() if unit == rate}
        if metric.startswith("msssim"):
            curves = {k: (r, msssim_to_db(q)) for k, (r, q) in curves.items()}
        legend = {}
        for label in curves:
            value = setting.dataset_value(label, dataset)
            if label == anchor:
                legend[label] = f"{label} (anchor)"
            elif value is None or np.isnan(value):
                legend[label] = f"{label} (no BD-rate)"
            else:
                legend[label] = f"{label} ({value:.1f}%)"
        notes += [f"No BD-rate for {label}: {why}" for (label, d), why in setting.failed.items() if d == dataset]
        if anchor is not None and anchor not in curves:
            notes.append(f"The anchor {anchor} has no {METRIC_NAMES[metric]} curve for {dataset} "
                         f"{TRANSFORM_NAMES.get(setting.transform, setting.transform)}: no BD-rates in the legend.")
        n = here.groupby("label")["sequence"].nunique().max()
        ylabel = "MS-SSIM-RGB (dB)" if metric.startswith("msssim") else f"{METRIC_NAMES[metric]} (dB)"
        title = f"{dataset}, {setting.title}"
        fig = rd_figure(curves, legend, styles, title=title, xlabel=rate, ylabel=ylabel)
        caption = (f"Dataset-mean curves over {n} sequence(s) (rate and quality of each rate point averaged, weighted "
                   f"by frames). Legend: BD-rate against {anchor}, {AVERAGING[averaging]}, {method}."
                   if anchor else "Dataset-mean curves; no anchor, so no BD-rates.")
        views.append(view_figure(save(fig, f"rd_{slug(metric, setting.transform, dataset)}", title, out_dir),
                                 caption, notes))
    return views


def drilldown(rd: pd.DataFrame, settings: list, records: list, styles, out_dir: Path) -> list:
    """Per sequence and transform: the RD points of every codec, its per-sequence BD-rates, per-frame figures."""
    rd_files = {"CSV (all RD points)": "tables/rd_points.csv"}
    bd_files = {"CSV (all per-sequence BD values)": "tables/bd_per_sequence.csv"}
    per_sequence = [s.sequences.assign(setting=s.title) for s in settings if not s.sequences.empty]
    per_sequence = pd.concat(per_sequence, ignore_index=True) if per_sequence else pd.DataFrame()
    by_key = {}
    for record in records:
        row = record["row"]
        by_key.setdefault((row["dataset"], row["sequence"], row["color_transform"]), []).append(record)
    sections = []
    for (dataset, sequence, transform), rows in rd.groupby(["dataset", "sequence", "color_transform"], sort=False):
        rows = rows.sort_values(["label", "bpp", "kbps"], key=lambda c: c.map(styles.order.index)
                                if c.name == "label" else c)
        shown = {"rate_point": "rate point", "bpp": "bpp", "kbps": "kbps", "psnr_rgb": "PSNR-RGB (dB)",
                 "msssim_rgb": "MS-SSIM-RGB", "psnr_yuv": "PSNR-YUV (dB)"}
        data = rows.set_index("label")[[c for c in shown if rows[c].notna().any()]].rename(columns=shown)
        data.index.name = "codec"
        title = f"{dataset} / {sequence}, {TRANSFORM_NAMES.get(transform, transform)}"
        tables = [view_table(Table(slug("rd", dataset, sequence, transform), f"RD points, {title}", data,
                                   decimals={"bpp": 4, "kbps": 1, "PSNR-RGB (dB)": 3, "MS-SSIM-RGB": 5,
                                             "PSNR-YUV (dB)": 3}), out_dir, rd_files)]
        if len(per_sequence):
            mine = per_sequence[(per_sequence["dataset"] == dataset) & (per_sequence["sequence"] == sequence)
                                & (per_sequence["color_transform"] == transform)]
            if len(mine):
                codecs, columns = list(dict.fromkeys(mine["codec"])), list(dict.fromkeys(mine["setting"]))
                bd, low, high = (_pivot(mine, value, "codec", codecs, columns, by="setting")
                                 for value in ("bd_rate_pct", "bd_rate_low", "bd_rate_high"))
                tables.append(view_table(Table(slug("bd", dataset, sequence, transform),
                                               f"BD-rate (%) of this sequence against {mine['anchor'].iloc[0]}", bd,
                                               signed=True, best="column-min", low=low, high=high,
                                               captions=["[low, high]: the interpolation interval and the method "
                                                         "spread (under the BD tables)."] if "bd_rate_low" in mine
                                               else []), out_dir, bd_files))
        figures = [_per_frame(label, found, title, styles, out_dir)
                   for label, found in _by_label(by_key.get((dataset, sequence, transform), []))]
        sections.append({"id": slug("seq", dataset, sequence, transform), "title": title, "tables": tables,
                         "figures": figures})
    out = out_dir / "tables"
    out.mkdir(parents=True, exist_ok=True)
    rd.drop(columns="label").to_csv(out / "rd_points.csv", index=False, na_rep="")
    per_sequence.to_csv(out / "bd_per_sequence.csv", index=False, na_rep="")
    return sections


def _by_label(records: list):
    groups = {}
    for record in records:
        groups.setdefault(codec_label(record["row"]["codec"], record["row"]["codec_version"]), []).append(record)
    return groups.items()


def _per_frame(label: str, records: list, title: str, styles, out_dir: Path) -> dict:
    records = sorted(records, key=lambda r: (r["row"].get("bpp") or 0, r["row"].get("kbps") or 0))
    runs, intra, cuts = [], set(), set()
    for record in records:
        frames = record.get("per_frame", {})
        numbers = frames.get("number", [])
        runs.append((str(record["row"]["rate_point"]), numbers, frames.get("bits", [None] * len(numbers)),
                     frames.get("psnr_rgb", [None] * len(numbers))))
        intra |= {n for n, t in zip(numbers, frames.get("type", [])) if t == "I"}
        cuts |= set(record.get("scene_cuts") or [])
    name = slug("frames", label, title)
    fig = per_frame_figure(runs, title=f"{label}: {title}", intra_frames=sorted(intra), scene_cuts=sorted(cuts),
                           colour=styles[label].colour)
    caption = (f"Per-frame rate and PSNR-RGB of {label}, one line per rate point (lighter = lower rate). I-frames "
               f"{', '.join(map(str, sorted(intra))) or 'none'}; scene cuts {', '.join(map(str, sorted(cuts))) or 'none'}. "
               f"Records: {', '.join(Path(r['file']).name for r in records)}.")
    return view_figure(save(fig, name, f"{label}: {title}", out_dir), caption)


def provenance_tables(rd: pd.DataFrame, order: list, files: list) -> list:
    """Protocol and versions with one column per codec (fields as rows, so that long values stay readable)."""
    protocol, versions = {}, {}
    for label in order:
        mine = rd[rd["label"] == label]
        protocol[label] = {name: _column_text(mine, c) for c, name in PROTOCOL_COLUMNS.items()}
        versions[label] = {**{name: _column_text(mine, c) for c, name in VERSION_COLUMNS.items()},
                           "configuration": _column_text(mine, "codec_config"),
                           "command": _column_text(mine, "codec_command"), "source": _column_text(mine, "source")}
    inputs = pd.DataFrame([(f.path, f.kind, f.rows, f.sha256) for f in files], columns=["file", "kind", "rows", "sha256"])
    tables = []
    for name, title, fields in (("protocol", "Protocol per codec", protocol),
                                ("versions", "Versions, configuration and commands per codec", versions)):
        data = pd.DataFrame(fields)
        data.index.name = "field"
        tables.append(Table(name, title, data, latex=False,
                            captions=["'not stated' where the input does not say; every value of every RD point is "
                                      "in tables/rd_points.csv."]))
    return tables + [Table("input_files", "Input files", inputs.set_index("file"), latex=False)]


def sweep_blocks(sweeps: list) -> list:
    return [{"path": path, "text": json.dumps(content, indent=2, default=str)} for path, content in sweeps]
