"""LaTeX export of a report table: booktabs rules through pandas' Styler, the cells written here with the table's
fixed decimals, the best value bold and a dagger on partial values, LaTeX special characters escaped."""
from __future__ import annotations

import numpy as np

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                  "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "†": r"\textsuperscript{\dag}"}


def _escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def to_latex(table) -> str:
    """A ``table`` (reports.tables.Table) as a booktabs ``table`` environment (needs \\usepackage{booktabs})."""
    best = table.best_mask().to_numpy()
    partial = np.zeros(best.shape, bool) if table.partial is None else table.partial.to_numpy(bool)
    cells = table.data.astype(object)
    for j, column in enumerate(table.data.columns):
        texts = []
        for i in range(len(table.data)):
            text = table.cell(i, j)
            text = "--" if text == "n/a" else _escape(text)
            value, interval = text.split(" [", 1) if " [" in text else (text, "")
            value = rf"\textbf{{{value}}}" if best[i, j] else value   # the value bold, not its interval
            texts.append(value + (f" [{interval}" if interval else "") + (_escape("†") if partial[i, j] else ""))
        cells[column] = texts
    # The row labels become the first column, so that repeated labels (one codec on several rows) are allowed.
    cells = cells.reset_index()
    cells[cells.columns[0]] = [_escape(str(v)) for v in cells[cells.columns[0]]]
    numeric = set(table.numeric_columns())
    caption = " ".join([table.title + "."] + list(table.captions) + ([n for n in table.notes if n.startswith("†")]))
    return cells.style.hide(axis="index").format_index(escape="latex", axis=1).to_latex(
        hrules=True, column_format="".join("r" if c in numeric else "l" for c in cells.columns), position="t",
        position_float="centering", label=f"tab:{table.name}", caption=_escape(caption), environment="table")
