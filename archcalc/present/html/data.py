"""The data of an HTML page, as one JSON-ready dict: what the page's script draws. Computed
from the bundle the report is given (never by loading or analysing), so the page shows the same
figures as report.md.

Numbers are JSON integers while a browser holds them exactly (below 2^53), otherwise their
exact decimal text; formulas are sympy's printing. The block tree comes from the dotted layer
names (`layer1.b0.conv1` sits in `layer1.b0`, in `layer1`); a large network without dotted
names is cut into runs of consecutive layers, so folding still keeps the drawing small."""
from __future__ import annotations

from ...analysis.analyzer import Analysis, Row
from ...analysis.bundle import Bundle
from ...sizes import is_int, show, total
from .. import plots, tables
from ..report_text import COST_LEGEND, folder, index_cells, symbols_text, totals_rows

EXACT = 2**53  # JavaScript's numbers are exact below this
RUN = 40       # top-level entries per run when a large network has too many of them


def number(x):
    return x if is_int(x) and abs(x) < EXACT else show(x)


def layer_data(r: Row, args, free: Row | None) -> dict:
    d = {"name": r.name, "kind": r.kind, "args": [list(a) for a in args],
         "inputs": list(r.inputs), "in_shapes": [tables.shape_text(s) for s in r.in_shapes],
         "out_shape": tables.shape_text(r.out_shape), "params": number(r.params),
         "trainable_params": number(r.trainable_params), "frozen_params": number(r.frozen_params),
         "macs": number(r.macs), "other_ops": number(r.other_ops),
         "activations": number(r.activations), "rf": tables.rf_text(r.receptive_field)}
    if free is not None:
        d["formula"] = {"output": tables.shape_text(free.out_shape), "params": show(free.params),
                        "macs": show(free.macs), "activations": show(free.activations)}
    return d


def block_tree(names: list[str], large: bool) -> tuple[list[dict], list[list[int]]]:
    """The blocks (every proper prefix of a dotted name, in order of first use; runs of
    top-level entries for a large flat network) and, per layer, the path of block indices from
    the outermost in."""
    blocks, index, paths = [], {}, []
    tops = list(dict.fromkeys(n.split(".", 1)[0] for n in names))
    runs = {}
    if large and len(tops) > RUN:  # too many top-level entries to draw at once: runs of RUN
        for start in range(0, len(tops), RUN):
            part = tops[start:start + RUN]
            label = f"{part[0]} .. {part[-1]}"
            runs.update(dict.fromkeys(part, label))
    for name in names:
        parts = name.split(".")
        keys = [("run", runs[parts[0]])] if parts[0] in runs else []
        keys += [("block", ".".join(parts[:k])) for k in range(1, len(parts))]
        path = []
        for key in keys:
            if key not in index:
                index[key] = len(blocks)
                parent = path[-1] if path else None
                blocks.append({"name": key[1], "run": key[0] == "run", "parent": parent,
                               "layers": []})
            path.append(index[key])
        for i in path:
            blocks[i]["layers"].append(len(paths))
        paths.append(path)
    return blocks, paths


def block_sums(blocks: list[dict], rows) -> None:
    for b in blocks:
        members = [rows[i] for i in b.pop("layers")]
        b.update(count=len(members), params=number(total(r.params for r in members)),
                 macs=number(total(r.macs for r in members)))


def report_data(b: Bundle) -> dict:
    a = b.analysis
    large = len(a.rows) > plots.FOLD_ABOVE
    free = {r.name: r for r in b.free.rows} if b.free is not None else {}
    args = b.args or {}
    layers = [layer_data(r, args.get(r.name, ()), free.get(r.name)) for r in a.rows]
    blocks, paths = block_tree([r.name for r in a.rows], large)
    block_sums(blocks, a.rows)
    for layer, path in zip(layers, paths):
        layer["path"] = path
    return {"page": "report", "network": a.network, "file": a.file,
            "symbols": symbols_text(a), "fold": large, "layers": layers, "blocks": blocks,
            "bars": {"per": "block" if large else "layer",
                     "items": [[k, number(p), number(m)] for k, p, m in plots.folded(a)]},
            "totals": [list(t) for t in totals_rows(a)], "notes": list(a.notes),
            "conventions": list(tables.LEGEND + COST_LEGEND)}


def index_data(analyses: list[Analysis]) -> dict:
    networks = []
    for a in analyses:
        cells = index_cells(a)
        networks.append({"name": a.network, "file": a.file,
                         "href": f"{folder(a.file)}/report.html",
                         "params": number(a.totals["params"]), "macs": number(a.totals["macs"]),
                         "depth": int(cells[4]), "peak": cells[5], "weights": cells[6]})
    return {"page": "index", "networks": networks, "conventions": list(tables.LEGEND)}
