"""Two or more analyses side by side: totals with ratios against the first, and per-block
deltas where top-level names match (ResNet-34 against its plain twin shows what the
shortcuts cost)."""
from __future__ import annotations

import json

from tabulate import tabulate

from .. import kinds
from ..analysis.analyzer import Analysis
from ..sizes import is_int, show
from .tables import SCHEMA_VERSION, number, rf_json, rf_text, shape_text, value

QUANTITIES = (("params", "params"), ("trainable_params", "trainable params"),
              ("macs", "MACs"), ("flops", "FLOPs"), ("other_ops", "other ops"),
              ("activations", "activations"), ("peak_activations", "peak activations"))


def ratio(value, base) -> str:
    """'9.68x fewer' / '2.00x more' / 'same' against the first network."""
    if not (is_int(value) and is_int(base)):
        return show(value / base) if base != 0 else "-"
    if value == base:
        return "same"
    if value == 0 or base == 0:
        return "-"
    if value < base:
        return f"{base / value:.2f}x fewer"
    return f"{value / base:.2f}x more"


def depth(a: Analysis) -> int:
    """Weighted layers on the longest path from input to output: the 16 of VGG-16, the 34 of
    ResNet-34 (a projection shortcut runs beside the main path and does not count)."""
    longest: dict[str, int] = {}
    for r in a.rows:  # rows are in topological order
        below = max((longest[i] for i in r.inputs), default=0)
        longest[r.name] = below + kinds.KINDS[r.kind].weighted
    return max(longest.values())


def totals_table(analyses: list[Analysis]) -> tuple[list[str], list[list[str]]]:
    base = analyses[0]
    header = ["", *(a.network for a in analyses)]
    rows = []
    for key, label in QUANTITIES:
        rows.append([label, *(number(a.totals[key]) for a in analyses)])
        if len(analyses) > 1:
            rows.append([f"(vs {base.network})", "",
                         *(ratio(a.totals[key], base.totals[key]) for a in analyses[1:])])
    rows.append(["output", *(shape_text(a.rows[-1].out_shape) for a in analyses)])
    rows.append(["receptive field",
                 *(rf_text(a.rows[-1].receptive_field) for a in analyses)])
    rows.append(["depth (weighted layers)", *(str(depth(a)) for a in analyses)])
    return header, rows


def shared_blocks(first: Analysis, second: Analysis) -> list[tuple[str, tuple, tuple]]:
    """(name, (params, MACs) in the first, in the second) per top-level block both have, where
    there is something to compare."""
    a, b = first.blocks(), second.blocks()
    return [(name, a[name], b[name]) for name in a
            if name in b and (a[name] != b[name] or a[name][0] or a[name][1])]


def block_deltas(analyses: list[Analysis]) -> tuple[list[str], list[list[str]]]:
    """Per shared top-level block of the first two networks: params and MACs, and the change."""
    first, second = analyses[0], analyses[1]
    header = ["block", f"params {first.network}", f"params {second.network}", "delta params",
              f"MACs {first.network}", f"MACs {second.network}", "delta MACs"]
    rows = [[name, number(p1), number(p2), signed(p2 - p1), number(m1), number(m2),
             signed(m2 - m1)] for name, (p1, m1), (p2, m2) in shared_blocks(first, second)]
    return header, rows


def held(a: Analysis) -> dict:
    """The symbols the analysis bound (to --set values or defaults); free ones are not held."""
    return {k: v for k, v in a.symbols.items() if v is not None}


def held_line(analyses: list[Analysis]) -> str | None:
    parts = [f"{a.network} " + ", ".join(f"{k}={v}" for k, v in held(a).items())
             for a in analyses if held(a)]
    return f"held: {'; '.join(parts)}" if parts else None


def document(analyses: list[Analysis]) -> dict:
    """What `compare --format json` prints: each network's totals, output, receptive field,
    depth and held symbols, and the blocks the first two share."""
    networks = [{
        "network": a.network, "file": a.file, "held": held(a),
        "totals": {key: value(a.totals[key]) for key, _ in QUANTITIES},
        "output": [value(v) for v in a.rows[-1].out_shape],
        "receptive_field": rf_json(a.rows[-1].receptive_field), "depth": depth(a),
    } for a in analyses]
    blocks = [{"block": name, "params": [value(p1), value(p2)], "macs": [value(m1), value(m2)]}
              for name, (p1, m1), (p2, m2) in shared_blocks(*analyses[:2])]
    return {"schema": SCHEMA_VERSION, "networks": networks, "blocks": blocks}


def signed(x) -> str:
    return (f"{x:+,}" if is_int(x) else show(x)) if x != 0 else "0"


def render(analyses: list[Analysis], fmt: str = "text") -> str:
    """`fmt` is text, markdown or json; the symbols held close the text and markdown."""
    if fmt == "json":
        return json.dumps(document(analyses), indent=2) + "\n"
    tablefmt = "github" if fmt == "markdown" else "simple"
    header, rows = totals_table(analyses)
    align = ("left",) + ("right",) * (len(header) - 1)
    out = [tabulate(rows, header, tablefmt=tablefmt, disable_numparse=True, colalign=align)]
    if len(analyses) > 1:
        header, rows = block_deltas(analyses)
        if rows:
            title = f"blocks whose names match ({analyses[0].network} -> {analyses[1].network})"
            out += ["", f"### {title}" if fmt == "markdown" else title, "",
                    tabulate(rows, header, tablefmt=tablefmt, disable_numparse=True,
                             colalign=("left",) + ("right",) * 6)]
    out += ["", "MACs: multiply-accumulates of conv and fc layers, bias excluded; FLOPs = 2 x MACs; "
            "activations: output elements of every layer (the input's included); receptive "
            "field: of the output, size / effective stride in input pixels; ratios against "
            "the first network"]
    line = held_line(analyses)
    if line:
        out += ["", f"*{line}*" if fmt == "markdown" else line]
    return "\n".join(out) + "\n"
