"""What the import says when it cannot read a model: one error naming every node it cannot
read, whatever the reason, so that a user sees all the work at once.

- nodes of operator types archcalc does not know, by type, a few names each ("and N more");
- nodes it knows but cannot read this way (a Transpose it cannot express, a constant fed to
  an operator as data), each with its reason;
- shape arithmetic named as such, not as a missing layer: a node computed from a `Shape` (and
  constants), or feeding the shape input of a Reshape, Pad, Resize ..., is shown with its chain
  ("Shape -> Gather -> Ceil feeds the pads of Pad '/pad'").

Everything here reads the model's graph as written (`shape_paths` in one pass over the nodes),
never the importer's half-made layers, so the words do not depend on how far the import got.
"""
from __future__ import annotations

from ..errors import SpecError
from .common import Dynamic, escaped

MAX_PER_TYPE = 5   # nodes listed per unknown operator type
MAX_FAULTS = 20    # nodes listed with another reason
MAX_CHAIN = 6      # operator types shown in a chain before the middle is elided

# inputs that hold sizes, axes or indices rather than data, by operator and position
SHAPE_INPUTS = {
    "Reshape": {1: "shape"}, "Expand": {1: "shape"}, "ConstantOfShape": {0: "shape"},
    "Pad": {1: "pads", 2: "value", 3: "axes"}, "Resize": {1: "roi", 2: "scales", 3: "sizes"},
    "Upsample": {1: "scales"}, "Tile": {1: "repeats"}, "Split": {1: "split"},
    "Slice": {1: "starts", 2: "ends", 3: "axes", 4: "steps"}, "Squeeze": {1: "axes"},
    "Unsqueeze": {1: "axes"}, "Range": {0: "start", 1: "limit", 2: "delta"}, "TopK": {1: "k"},
    "ReduceMean": {1: "axes"}, "ReduceSum": {1: "axes"}, "ReduceMax": {1: "axes"},
}
REDUCTIONS = ("ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceMax", "ReduceMin",
              "ReduceProd")
WEIGHT_ARITHMETIC = REDUCTIONS + ("Sub", "Div", "Mul", "Add", "Pow", "Sqrt", "Abs", "Neg")


def shape_paths(graph) -> dict:
    """tensor -> the operator types that compute it from a Shape (or Size) and constants
    only, as written in the model; one pass in the graph's (topological) order."""
    consts = {t.name for t in graph.initializer}
    paths: dict = {}
    for node in graph.node:
        inputs = [n for n in node.input if n]
        if node.op_type in ("Shape", "Size"):
            path = [node.op_type]
        elif inputs and all(n in consts or n in paths for n in inputs):
            found = [paths[n] for n in inputs if n in paths]
            if not found:
                consts.update(node.output)
                continue
            path = max(found, key=len) + [node.op_type]
        elif not inputs and node.op_type == "Constant":
            consts.update(node.output)
            continue
        else:
            continue
        for out in node.output:
            paths[out] = path
    return paths


def chain_text(path) -> str:
    if len(path) > MAX_CHAIN:
        path = path[:2] + ["..."] + path[-(MAX_CHAIN - 3):]
    return " -> ".join(path)


def shape_use(ctx, node, paths):
    """(reader, what) for the first sizes input this node's values reach, through other
    shape arithmetic; None if they reach none."""
    seen, todo = set(), list(node.output)
    while todo:
        name = todo.pop(0)
        for reader in ctx.readers(name):
            for position, n in enumerate(reader.input):
                what = SHAPE_INPUTS.get(reader.op_type, {}).get(position)
                if n == name and what is not None:
                    return reader, what
            if id(reader) not in seen and any(out in paths for out in reader.output):
                seen.add(id(reader))
                todo += list(reader.output)
    return None


def shape_arithmetic(ctx, node, paths) -> str | None:
    """'Shape -> Gather -> Ceil feeds the pads of Pad 'p'' for a node of shape arithmetic."""
    path = next((paths[n] for n in node.output if n in paths), None)
    use = shape_use(ctx, node, paths)
    if path is None and use is None:
        return None
    text = chain_text(path) if path else node.op_type
    if use is not None:
        reader, what = use
        name = f" '{escaped(reader.name)}'" if reader.name else ""
        text += f" feeds the {what} of {reader.op_type}{name}"
    return text


def constant_as_data(ctx, node, name) -> str:
    """The reason for an operator reading a constant where archcalc's layers read activations
    (NFNet's weight standardisation: ReduceMean of a conv weight)."""
    if name in ctx.initializers:
        what = f"the initializer '{name}'"
    else:
        sources = sorted(ctx.origins.get(name, ()))
        shown = ", ".join(f"'{s}'" for s in sources[:3]) + (", ..." if len(sources) > 3 else "")
        what = f"'{name}', a constant" + (f" computed from the initializer(s) {shown}" if sources else "")
    op = node.op_type
    if op in WEIGHT_ARITHMETIC:
        verb = "reduces" if op in REDUCTIONS else "reads"
        return f"{op} {verb} {what}: weight arithmetic (weight standardisation?) is not supported"
    return f"{op} reads {what} as data: archcalc's layers read constants as their weights only"


def dynamic(ctx, node, error: Dynamic, paths) -> str:
    chain = shape_arithmetic(ctx, node, paths) or node.op_type
    return (f"{chain}: shape arithmetic on a dynamic size ({error}), which archcalc folds with "
            "numbers only: give the model's input fixed sizes")


def unknown_line(ctx, node, i, paths) -> str:
    op = node.op_type + (f" (domain '{escaped(node.domain)}')" if node.domain else "")
    chain = shape_arithmetic(ctx, node, paths)
    if chain:
        op += f": shape arithmetic archcalc does not fold ({chain}), not a layer"
    return f"{ctx.where(node, i)}: {op}"


def failure(ctx, unknown, faults, unchecked, supported) -> SpecError:
    """One error for every node the import cannot read: `unknown` [(index, node)] of unknown
    types, `faults` [(index, text)] of nodes it cannot read for another reason, `unchecked`
    the number of nodes skipped because they read what those make."""
    paths = shape_paths(ctx.g)
    lines, head = [], []
    if unknown:
        by_type: dict = {}
        for i, n in unknown:
            key = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
            by_type.setdefault(key, []).append((i, n))
        for key in sorted(by_type):
            nodes = by_type[key]
            lines += [unknown_line(ctx, n, i, paths) for i, n in nodes[:MAX_PER_TYPE]]
            if len(nodes) > MAX_PER_TYPE:
                lines.append(f"and {len(nodes) - MAX_PER_TYPE} more {key} node(s)")
        head.append(f"{len(unknown)} node(s) use operators archcalc does not support: "
                    f"{', '.join(sorted(by_type))}")
    if faults:
        faults = sorted(faults, key=lambda f: f[0])
        lines += [text for _, text in faults[:MAX_FAULTS]]
        if len(faults) > MAX_FAULTS:
            lines.append(f"and {len(faults) - MAX_FAULTS} more node(s) archcalc cannot import")
        head.append(f"{'and ' if unknown else ''}{len(faults)} node(s) archcalc cannot import")
    if unchecked:
        lines.append(f"{unchecked} node(s) reading what these make were not checked")
    if unknown:
        lines.append(f"supported operators: {supported}")
    return SpecError(escaped(f"{ctx.file}: {'; '.join(head)}"), None, tuple(escaped(t) for t in lines))
