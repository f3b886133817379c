"""What a graph drawing shows: whole graphs when small, folded to top-level blocks when
large, and one block in detail (the first one with a branch and a join)."""
from __future__ import annotations

from ..kinds import KINDS
from ..analysis.analyzer import Analysis
from .tables import shape_text

SMALL = 45


def kind_label(kind, args=()) -> str:
    """The kind and what shapes its output: window and stride (3x3/2), channels, groups (g2),
    as the HTML report writes them: "conv 11x11/4 c=96", "conv 5x5 c=256 g2", "fc 4096"."""
    given = dict(args)
    window = ""
    if "f" in given:
        f = given["f"]
        window = "x".join(f[1:-1].split(", ")) if f.startswith("(") else f"{f}x{f}"
        window += f"/{given['s']}" if "s" in given else ""
    width = given.get("c", "")
    width = f"c={width}" if width and window else width
    groups = f"g{given['groups']}" if "groups" in given else ""
    return " ".join(t for t in (kind, window, width, groups) if t)


def _label(name, kind, count=1, prefix="", args=()) -> str:
    short = name[len(prefix):] if prefix and name.startswith(prefix) else name
    return f"{short}\n{kind_label(kind, args)}" if count == 1 else f"{short}\n{count} layers"


def full(rows, title, prefix="", args=None):
    args = args or {}
    names = {r.name for r in rows}
    nodes = [(r.name, _label(r.name, r.kind, prefix=prefix, args=args.get(r.name, ())))
             for r in rows]
    edges = []
    outside = {}
    for r in rows:
        for i in r.inputs:
            if i not in names:
                outside.setdefault(i, shape_text(r.in_shapes[r.inputs.index(i)]))
    nodes = [(i, f"{i}\n(input)") for i in outside] + nodes
    shapes = {r.name: shape_text(r.out_shape) for r in rows} | outside
    for r in rows:
        edges += [(i, r.name, shapes[i]) for i in r.inputs]
    return nodes, edges, title


def overview(a: Analysis, args=None):
    """Every layer for a small network; one node per top-level statement for a large one.
    `args`: each layer's arguments as written (Bundle.args), for the node labels."""
    args = args or {}
    if len(a.rows) <= SMALL:
        return full(a.rows, f"{a.network}: every layer, shapes on the edges", args=args)
    group = {r.name: r.name.split(".", 1)[0] for r in a.rows}
    counts, kinds, last = {}, {}, {}
    for r in a.rows:
        g = group[r.name]
        counts[g] = counts.get(g, 0) + 1
        kinds.setdefault(g, r.kind)
        last[g] = r
    nodes = [(g, _label(g, kinds[g], counts[g], args=args.get(g, ()))) for g in counts]
    edges, seen = [], set()
    for r in a.rows:
        for i in r.inputs:
            a_, b_ = group[i], group[r.name]
            if a_ != b_ and (a_, b_) not in seen:
                seen.add((a_, b_))
                edges.append((a_, b_, shape_text(a.row(i).out_shape)))
    return nodes, edges, f"{a.network}: top-level blocks, shapes on the edges"


def detail_view(a: Analysis, args=None):
    """The first block instance with a join, drawn layer by layer, if the network is large."""
    if len(a.rows) <= SMALL:
        return None
    prefixes = []
    for r in a.rows:
        parts = r.name.split(".")
        for k in range(1, len(parts)):
            p = ".".join(parts[:k])
            if p not in prefixes:
                prefixes.append(p)
    best = None  # the smallest block with a join: one residual block, one Inception module
    for p in prefixes:
        rows = [r for r in a.rows if r.name.startswith(p + ".")]
        if len(rows) <= SMALL and any(KINDS[r.kind].join for r in rows):
            if best is None or len(rows) < len(best[1]):
                best = (p, rows)
    if best is None:
        return None
    p, rows = best
    return full(rows, f"{a.network}: block '{p}' layer by layer", prefix=p + ".", args=args)
