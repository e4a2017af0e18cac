"""The published-data report (`report --published`): the BD-rate tables bundled in anchors/, one table per source
figure (file, release, metric, colour transform, protocol); and the published y axis of the complexity trade-off."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from reports.bd import METRIC_NAMES, TRANSFORM_NAMES
from reports.complexity import Axis
from reports.reproduction import load_published
from reports.sections import slug
from reports.tables import Table

MEAN_ROW = "Mean (computed here)"
# The HyTIP paper's complexity figure plots the BT.601 PSNR-RGB BD-rates (assets/ComplexityAnalysis/SOTA_complexity_BT601).
TRADEOFF_TRANSFORM = "BT601"
PUBLISHED_ANCHOR = "VTM-17.0"


def _group_title(file: str, release: str, metric: str, transform: str, anchor: str) -> str:
    where = "HyTIP README" if "hytip" in Path(file).name else "DCVC README"
    name = METRIC_NAMES.get(metric, metric.replace("_", "-").upper())
    return f"{where}: {name}, {TRANSFORM_NAMES.get(transform, transform)}, against {anchor} ({release})"


def published_sections(published: pd.DataFrame) -> list:
    """The tables of build_published_report, one per source figure."""
    tables = []
    keys = ["file", "release", "metric", "color_transform", "protocol", "anchor"]
    for i, ((file, release, metric, transform, protocol, anchor), rows) in enumerate(published.groupby(keys, sort=False)):
        data = rows.pivot(index="dataset", columns="codec", values="bd_rate_pct")
        data = data.reindex(index=list(dict.fromkeys(rows["dataset"])), columns=list(dict.fromkeys(rows["codec"])))
        derived = ""
        if len(data) > 1 and not any(d.startswith("avg") for d in data.index):
            data.loc[MEAN_ROW] = data.mean(skipna=False)
            derived = f" The '{MEAN_ROW}' row is derived here, not published."
        data.index.name = "dataset"
        sources = sorted({s.split(":")[0] for s in rows["source"]})
        tables.append(Table(
            slug(f"published{i + 1:02d}", Path(file).stem.removeprefix("published_"), release.split()[0], metric,
                 transform),
            _group_title(file, release, metric, transform, anchor), data, best="row-min", signed=True,
            captions=[f"Protocol: {protocol}.", f"Method: {rows['method'].iloc[0]}; averaging: "
                      f"{rows['averaging'].iloc[0]}. Values read from the published images.{derived}",
                      "Source: " + "; ".join(sources) + "."]))
    return tables


def published_axis(transform: str = TRADEOFF_TRANSFORM, datasets=None) -> tuple[Axis, list]:
    """The HyTIP README's PSNR-RGB BD-rates against VTM-17.0 (current release), each codec's mean over ``datasets``
    (default: all seven, as the paper's complexity figure), with notes on codecs that lack one of them."""
    published = load_published()
    current = published[published["file"].str.contains("hytip") & published["metric"].eq("psnr_rgb")
                        & published["color_transform"].eq(transform) & published["release"].str.contains("current")
                        & published["anchor_label"].eq(PUBLISHED_ANCHOR)]
    name = TRANSFORM_NAMES.get(transform, transform)
    if current.empty:
        return Axis({}, {}, f"PSNR-RGB, {name}"), [f"No published PSNR-RGB {name} BD-rates against "
                                                   f"{PUBLISHED_ANCHOR} in anchors/."]
    datasets = list(dict.fromkeys(current["dataset"])) if datasets is None else list(datasets)
    release = current["release"].iloc[0]
    values, notes = {}, []
    for codec, rows in current.groupby("codec", sort=False):
        have = rows.set_index("dataset")["bd_rate_pct"]
        if set(datasets) <= set(have.index):
            values[codec] = float(have[datasets].mean())
        else:
            notes.append(f"{codec}: published BD-rates lack {', '.join(sorted(set(datasets) - set(have.index)))}.")
    origin = f"published: {Path(current['file'].iloc[0]).name} ({release})"
    text = (f"PSNR-RGB, {name} against {current['anchor'].iloc[0]}, mean over {', '.join(datasets)} of the HyTIP "
            f"README values ({release}; read from its figures' legends)")
    return Axis(values, dict.fromkeys(values, origin), text), notes
