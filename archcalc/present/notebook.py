"""What a notebook shows: compact HTML tables (Jupyter's `_repr_html_`) and one-line reprs for
an Analysis, a comparison and a sweep. Every name is escaped: a layer name is text, never
markup. Large networks fold to their top-level blocks, or show their first and last layers."""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

import numpy as np

from ..analysis.analyzer import Analysis
from ..sizes import brief
from .compare import render, totals_table
from .tables import number, shape_text

MAX_ROWS = 40          # a table longer than this folds to blocks, or shows its head and tail
HEAD, TAIL = 20, 10
MAX_COLUMNS = 12       # a sweep's grid shows at most this many columns, evenly spread
STYLE = "text-align:right"


def table(header, rows, caption: str = "", right_from: int = 1) -> str:
    """An HTML table of text cells (escaped here); a row of one cell spans the table."""
    def cell(tag, i, text):
        style = f' style="{STYLE}"' if i >= right_from else ""
        return f"<{tag}{style}>{escape(str(text))}</{tag}>"

    lines = ["<table>"] + ([f"<caption>{escape(caption)}</caption>"] if caption else [])
    lines.append("<tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>")
    for row in rows:
        if len(row) == 1:
            lines.append(f'<tr><td colspan="{len(header)}"><i>{escape(row[0])}</i></td></tr>')
        else:
            lines.append("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>")
    return "\n".join(lines + ["</table>"])


def bound_text(symbols: dict) -> str:
    """'H = 448, W = 448' and 'free: b': the values a table was computed at."""
    bound = ", ".join(f"{k} = {v:,}" for k, v in symbols.items() if v is not None)
    free = ", ".join(k for k, v in symbols.items() if v is None)
    return "; ".join(filter(None, (bound, f"free: {free}" if free else "")))


def layer_rows(a: Analysis) -> list[list[str]]:
    """One row per layer; past MAX_ROWS, one per top-level block (when that is shorter), else
    the first HEAD and last TAIL layers around a line '… N more layers'."""
    rows = [[r.name, r.kind, shape_text(r.out_shape), number(r.params), number(r.macs)]
            for r in a.rows]
    if len(rows) <= MAX_ROWS:
        return rows
    blocks = a.blocks()
    if len(blocks) <= MAX_ROWS:
        return block_rows(a, blocks)
    return rows[:HEAD] + [[f"… {len(rows) - HEAD - TAIL:,} more layers"]] + rows[-TAIL:]


def block_rows(a: Analysis, blocks: dict) -> list[list[str]]:
    last, count = {}, {}
    for r in a.rows:
        top = r.name.split(".", 1)[0]
        last[top], count[top] = r, count.get(top, 0) + 1
    return [[name, last[name].kind if count[name] == 1 else f"block ({count[name]} layers)",
             shape_text(last[name].out_shape), number(params), number(macs)]
            for name, (params, macs) in blocks.items()]


def analysis_html(a: Analysis) -> str:
    rows = layer_rows(a) + [["total", "", "", number(a.totals["params"]), number(a.totals["macs"])]]
    folded = " (folded to top-level blocks)" if len(a.rows) > MAX_ROWS and \
        len(a.blocks()) <= MAX_ROWS else ""
    caption = f"{a.network}: {len(a.rows):,} layers{folded}"
    at = bound_text(a.symbols)
    caption += f"; {at}" if at else ""
    return table(("layer", "kind", "output", "params", "MACs"), rows, caption, right_from=3)


@dataclass(frozen=True)
class Comparison:
    """Analyses side by side (archcalc.compare): `text()` is what `archcalc compare` prints."""
    analyses: tuple[Analysis, ...]

    def __repr__(self) -> str:
        parts = ", ".join(f"{a.network} (params {brief(a.totals['params'])}, MACs "
                          f"{brief(a.totals['macs'])})" for a in self.analyses)
        return f"<Comparison {parts}>"

    def text(self, fmt: str = "text") -> str:
        return render(list(self.analyses), fmt)

    def _repr_html_(self) -> str:
        header, rows = totals_table(list(self.analyses))
        at = "; ".join(f"{a.network}: {bound_text(a.symbols)}" for a in self.analyses
                       if bound_text(a.symbols))
        return table(header, rows, "ratios against the first network" + (f"; {at}" if at else ""))


@dataclass(frozen=True, eq=False)
class Sweep:
    """A metric over one or two symbols (archcalc.sweep): `values[i]` (or `values[i, j]`) is the
    metric at the i-th value of the first symbol (and j-th of the second), exact integers."""
    network: str
    metric: str
    ranges: dict            # name -> 1-D int array, in axis order
    values: np.ndarray
    fixed: dict             # the other symbols' values, held fixed

    def __repr__(self) -> str:
        axes = " x ".join(f"{k}={int(r[0])}..{int(r[-1])}" for k, r in self.ranges.items())
        return f"<Sweep {self.network} {self.metric} over {axes}: {self.values.size:,} points>"

    def _repr_html_(self) -> str:
        names = list(self.ranges)
        held = bound_text(self.fixed)
        caption = f"{self.network}: {self.metric}" + (f"; {held}" if held else "")
        first = [int(v) for v in self.ranges[names[0]]]
        index = list(range(len(first)))
        keep = index if len(index) <= MAX_ROWS else index[:HEAD] + [-1] + index[-TAIL:]
        if len(names) == 1:
            rows = [[f"{first[i]:,}", f"{int(self.values[i]):,}"] if i >= 0 else
                    [f"… {len(first) - HEAD - TAIL:,} more values"] for i in keep]
            return table((names[0], self.metric), rows, caption)
        second = [int(v) for v in self.ranges[names[1]]]
        columns = spread(len(second), MAX_COLUMNS)
        if len(columns) < len(second):
            caption += f"; {len(columns)} of {len(second)} columns shown"
        rows = [[f"{first[i]:,}", *(f"{int(self.values[i, j]):,}" for j in columns)] if i >= 0
                else [f"… {len(first) - HEAD - TAIL:,} more rows"] for i in keep]
        return table((f"{names[0]} \\ {names[1]}", *(f"{second[j]:,}" for j in columns)), rows,
                     caption)


def spread(n: int, most: int) -> list[int]:
    """At most `most` evenly spread indices of n, the first and last included."""
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})
