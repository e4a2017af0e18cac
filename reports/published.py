"""The published-data report (`report --published`): the BD-rate tables bundled in anchors/, one table per source
figure (file, release, metric, colour transform, protocol), and the inputs of the complexity trade-off figure."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from reports.bd import METRIC_NAMES, TRANSFORM_NAMES
from reports.sections import slug
from reports.tables import Table

MEAN_ROW = "Mean (computed here)"
# The HyTIP paper's complexity figure plots the BT.601 PSNR-RGB BD-rates (assets/ComplexityAnalysis/SOTA_complexity_BT601).
TRADEOFF_TRANSFORM = "BT601"


def _group_title(file: str, release: str, metric: str, transform: str, anchor: str) -> str:
    where = "HyTIP README" if "hytip" in Path(file).name else "DCVC README"
    name = METRIC_NAMES.get(metric, metric.replace("_", "-").upper())
    return f"{where}: {name}, {TRANSFORM_NAMES.get(transform, transform)}, against {anchor} ({release})"


def published_sections(published: pd.DataFrame) -> tuple[list, tuple]:
    """(tables, (bd_measured, bd_published, bd_text)) for build_published_report."""
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
    current = published[published["file"].str.contains("hytip") & published["metric"].eq("psnr_rgb")
                        & published["color_transform"].eq(TRADEOFF_TRANSFORM)
                        & published["release"].str.contains("current")]
    means = current.groupby("codec", sort=False)["bd_rate_pct"].mean()
    datasets = ", ".join(dict.fromkeys(current["dataset"]))
    text = (f"PSNR-RGB, {TRANSFORM_NAMES[TRADEOFF_TRANSFORM]} against {current['anchor'].iloc[0]}, mean over "
            f"{datasets} of the HyTIP README values ({current['release'].iloc[0]})")
    bd_measured = {"HyTIP": float(means["HyTIP"])}
    bd_published = {codec: float(v) for codec, v in means.items() if codec != "HyTIP"}
    return tables, (bd_measured, bd_published, text)
