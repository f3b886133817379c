"""Two or more analyses side by side: totals with ratios against the first, and per-block
deltas where top-level names match (ResNet-34 against its plain twin shows what the
shortcuts cost)."""
from __future__ import annotations

from tabulate import tabulate

from .. import kinds
from ..analysis.analyzer import Analysis
from ..sizes import is_int, show
from .tables import number, rf_text, shape_text

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


def block_deltas(analyses: list[Analysis]) -> tuple[list[str], list[list[str]]]:
    """Per shared top-level block of the first two networks: params and MACs, and the change."""
    first, second = analyses[0], analyses[1]
    a, b = first.blocks(), second.blocks()
    header = ["block", f"params {first.network}", f"params {second.network}", "delta params",
              f"MACs {first.network}", f"MACs {second.network}", "delta MACs"]
    rows = []
    for name in a:
        if name in b and (a[name] != b[name] or a[name][0] or a[name][1]):
            (p1, m1), (p2, m2) = a[name], b[name]
            rows.append([name, number(p1), number(p2), signed(p2 - p1), number(m1), number(m2),
                         signed(m2 - m1)])
    return header, rows


def signed(x) -> str:
    return (f"{x:+,}" if is_int(x) else show(x)) if x != 0 else "0"


def render(analyses: list[Analysis], fmt: str = "text") -> str:
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
    return "\n".join(out) + "\n"
