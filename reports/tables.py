"""Report tables: one ``Table`` holds the numbers, how they are printed and which is best, and is shown as HTML,
written as CSV (full precision) and as a booktabs LaTeX table (``reports.latex``)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reports.latex import to_latex


@dataclass
class Table:
    name: str                        # file stem of the exports: tables/<name>.csv and .tex
    title: str
    data: pd.DataFrame               # row labels in the index, column labels as columns; numbers or text
    decimals: dict = field(default_factory=dict)   # column -> decimals; numeric columns not named use `default`
    default: int = 1
    best: str | None = None          # "row-min", "column-min" or None: which value is marked best
    signed: bool = False             # colour negative/positive numbers (BD-rate: negative = saving)
    captions: list = field(default_factory=list)   # protocol, interpolation and averaging lines under the table
    notes: list = field(default_factory=list)      # what is missing and why
    latex: bool = True               # also export LaTeX (not for tables of long text such as provenance)
    partial: pd.DataFrame | None = None            # True where a value covers less than its row/column (shown with †)
    low: pd.DataFrame | None = None                # interval bounds aligned with data: shown as value [low, high],
    high: pd.DataFrame | None = None               # exported as '<column> low' and '<column> high' CSV columns

    def numeric_columns(self) -> list:
        return [c for c in self.data.columns if pd.api.types.is_numeric_dtype(self.data[c])]

    def best_mask(self) -> pd.DataFrame:
        """True where a value is the best of its row or column (every tie is marked)."""
        mask = pd.DataFrame(False, index=self.data.index, columns=self.data.columns)
        numbers = self.data[self.numeric_columns()].astype(float)
        # A best needs at least two values to be better than.
        if self.best == "row-min":
            mask[numbers.columns] = numbers.eq(numbers.min(axis=1), axis=0) & (numbers.count(axis=1) > 1).to_numpy()[:, None]
        elif self.best == "column-min":
            mask[numbers.columns] = numbers.eq(numbers.min(axis=0), axis=1) & (numbers.count(axis=0) > 1).to_numpy()
        return mask

    def places(self, column) -> int:
        return self.decimals.get(column, self.default)

    def text(self, value, column) -> str:
        if _missing(value):
            return "n/a"
        if isinstance(value, (float, np.floating)):
            return f"{value:.{self.places(column)}f}"
        return str(value)

    def cell(self, i: int, j: int) -> str:
        """The text of the value at row i, column j, with its interval where there is one."""
        column = self.data.columns[j]
        text = self.text(self.data.iat[i, j], column)
        if self.low is None or text == "n/a":
            return text
        low, high = self.low.iat[i, j], self.high.iat[i, j]
        if _missing(low) or _missing(high):
            return text
        return f"{text} [{self.text(float(low), column)}, {self.text(float(high), column)}]"

    def html_rows(self) -> list:
        """[(row label, [(text, css classes), ...]), ...] for the template."""
        mask = self.best_mask().to_numpy()
        numeric = set(self.numeric_columns())
        rows = []
        for i, (label, values) in enumerate(self.data.iterrows()):
            cells = []
            for j, (column, value) in enumerate(values.items()):
                text = self.cell(i, j)
                classes = ["num"] if column in numeric else []
                if column in numeric and self.signed and text != "n/a":
                    classes.append("neg" if float(value) < 0 else "pos")
                if text == "n/a":
                    classes.append("na")
                if mask[i, j]:
                    classes.append("best")
                if self.partial is not None and bool(self.partial.iat[i, j]):
                    classes.append("partial")
                cells.append((text, " ".join(classes)))
            rows.append((label, cells))
        return rows

    def export(self, out_dir: Path) -> dict:
        folder = out_dir / "tables"
        folder.mkdir(parents=True, exist_ok=True)
        data = self.data
        if self.low is not None:   # each column with bounds followed by them
            data = pd.concat([part for column in self.data.columns for part in (
                [self.data[[column]]] + ([self.low[[column]].set_axis([f"{column} low"], axis=1),
                                          self.high[[column]].set_axis([f"{column} high"], axis=1)]
                                         if self.low[column].notna().any() else []))], axis=1)
        data.to_csv(folder / f"{self.name}.csv", na_rep="")
        files = {"CSV": f"tables/{self.name}.csv"}
        if self.latex:
            (folder / f"{self.name}.tex").write_text(to_latex(self), encoding="utf-8")
            files["LaTeX"] = f"tables/{self.name}.tex"
        return files


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and math.isnan(value))
