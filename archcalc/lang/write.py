"""Layer graph -> spec text (the DSL), for `archcalc import`: one statement per layer, and a
block where the graph obviously repeats itself.

Blocks: layers are grouped by the module their name gives (the first two parts of
'layer1.0.conv1', the first of 'Mixed_5b.conv'). A group that is contiguous, reads one layer
from outside and is read from outside only through its last layer is a candidate; candidates
with the same layers, kinds, wiring and argument names are instances of one block, and an
argument whose value differs between them becomes a block parameter (named after the layer and
the argument: conv2_c). A block is written only when two or more instances share it.

Names: a spec's names are words, so 'layer1.0.conv1' is written 'layer1_0_conv1' (inside a
block instance 'layer1_0', its layer 'conv1'). `write` also returns each layer's name in the
graph the text builds, so weights can follow the rename.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from fractions import Fraction

from .. import kinds
from .build import RESERVED
from ..sizes import decimal, show

KIND_WIDTH = 9


def write(net, header=(), widths=None) -> tuple[str, dict]:
    """(spec text, {graph layer name: its name in the graph the text builds}). `widths`
    ({layer: n_C_prev}, from an analysis) lets a depthwise conv be written as dwconv."""
    return _Writer(net, widths or {}).text(header)


def as_written(layer, n_C_prev):
    """A conv with groups = n_C_prev and c a multiple of it, as dwconv: the spec then says
    "one filter per input map" instead of restating the width (groups=128 c=128)."""
    op = layer.op
    if not isinstance(op, kinds.Conv) or op.table is not None or op.ws or n_C_prev is None:
        return layer
    if not (isinstance(op.groups, int) and op.groups > 1 and op.groups == n_C_prev
            and isinstance(op.c, int) and op.c % op.groups == 0):
        return layer
    dw = kinds.DWConv(f=op.f, s=op.s, p=op.p, m=op.c // op.groups, dilation=op.dilation,
                      bias=op.bias, round=op.round)
    return replace(layer, op=dw)


def identifier(text: str, taken=(), fallback="layer", lead="l", reserved=frozenset()) -> str:
    """A DSL name for any text (an ONNX tensor or node name): other characters become '_', a
    leading digit gets `lead` before it, a reserved word gets '_' after it, and a name already
    taken gets '_2', '_3', ... until it is free."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or fallback
    if name[0].isdigit():
        name = lead + name
    if name in reserved:
        name += "_"
    base, k = name, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


def word(text: str, taken=()) -> str:
    """A layer, block or network name in a written spec."""
    return identifier(text, taken, reserved=RESERVED | {"freeze"})


def value_text(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Fraction):
        text = decimal(value)
        return text if "/" not in text else f"{value.numerator}/{value.denominator}"
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return "[" + ", ".join("[" + ", ".join(str(i) for i in row) + "]" for row in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(value_text(v) for v in value) + ")"
    return show(value)


def arguments(op) -> list[tuple[str, object]]:
    """The hyperparameters that are required or differ from their defaults, in order."""
    return [(f.name, getattr(op, f.name)) for f in fields(op)
            if f.metadata["required"] or getattr(op, f.name) != f.default]


def statement(kind, name, sources, previous, args) -> str:
    text = f"{kind:<{KIND_WIDTH}} {name}"
    if sources and list(sources) != [previous]:
        text += " <- " + ", ".join(sources)
    if args:
        text += " : " + " ".join(args)
    return text


@dataclass
class Instance:
    group: str
    idx: list       # positions of its layers, in order
    source: str     # the one layer it reads
    block: object = None


@dataclass
class Block:
    name: str
    params: list    # parameter names
    param_of: dict  # (position, argument) -> parameter name
    local: list     # local name of the layer at each position
    lines: list


class _Writer:
    def __init__(self, net, widths):
        self.net, self.graph = net, net.graph
        self.layers = [as_written(layer, widths.get(layer.name)) for layer in net.layers]
        self.renamed, self.shown = {}, {}  # layer -> name in the new graph / name to refer to

    def text(self, header):
        units, blocks = self.plan()
        taken, previous, body = set(), None, []
        for unit in units:
            if isinstance(unit, Instance):
                line, previous = self.instance(unit, unit.block, taken, previous)
            else:
                line, previous = self.layer(unit, taken, previous)
            body.append("    " + line)
        lines = [f"# {h}" for h in header]
        for block in _unique(blocks.values()):
            lines += ["", f"block {block.name}({', '.join(block.params)}) {{"]
            lines += ["    " + l for l in block.lines] + ["}"]
        symbols = self.net.symbols
        params = ", ".join(s.name if s.default is None else f"{s.name}={s.default}" for s in symbols)
        name = word(self.net.name)
        lines += ["", f"network {name}({params}) {{" if params else f"network {name} {{"]
        lines += body + ["}"]
        return "\n".join(lines).lstrip("\n") + "\n", self.renamed

    # ------------------------------------------------------------ network statements

    def layer(self, layer, taken, previous):
        name = word(layer.name, taken)
        taken.add(name)
        self.renamed[layer.name] = self.shown[layer.name] = name
        if layer.op.network_input:  # written by position: input x : (n_H, n_W, n_C)
            args = [value_text(layer.op.shape)]
        else:
            args = [f"{k}={value_text(v)}" for k, v in arguments(layer.op)]
        sources = [self.shown[s] for s in layer.inputs]
        return statement(layer.kind, name, sources, previous, args), name

    def instance(self, unit, block, taken, previous):
        name = word(unit.group, taken)
        taken.add(name)
        values = {}
        for pos, i in enumerate(unit.idx):
            for k, v in arguments(self.layers[i].op):
                if (pos, k) in block.param_of:
                    values[block.param_of[(pos, k)]] = v
        args = [f"{p}={value_text(values[p])}" for p in block.params]
        for pos, i in enumerate(unit.idx):
            self.renamed[self.layers[i].name] = f"{name}.{block.local[pos]}"
            self.shown[self.layers[i].name] = f"{name}.{block.local[pos]}"
        self.shown[self.layers[unit.idx[-1]].name] = name
        return statement(block.name, name, [self.shown[unit.source]], previous, args), name

    # ------------------------------------------------------------ finding blocks

    def plan(self):
        """Whole modules first ('Mixed_5b'), then their parts ('layer1.1')."""
        blocks, chosen, names = {}, {}, set(kinds.KINDS)
        for level in (1, 2):
            by_signature = {}
            for unit in self.candidates(level):
                if not any(i in chosen for i in unit.idx):
                    by_signature.setdefault(self.signature(unit), []).append(unit)
            for sig, units in by_signature.items():
                if len(units) >= 2:
                    block = blocks[(level, sig)] = self.define(units, names)
                    names.add(block.name)
                    for u in units:
                        u.block = block
                        chosen.update({i: u for i in u.idx})
        units, i = [], 0
        while i < len(self.layers):
            if i in chosen:
                units.append(chosen[i])
                i = chosen[i].idx[-1] + 1
            else:
                units.append(self.layers[i])
                i += 1
        return units, blocks

    def candidates(self, level):
        groups = {}
        for i, layer in enumerate(self.layers):
            parts = layer.name.split(".")
            if len(parts) >= level and not layer.op.network_input:
                groups.setdefault(".".join(parts[:level]), []).append(i)
        for g, idx in groups.items():
            if len(idx) < 2 or idx != list(range(idx[0], idx[-1] + 1)):
                continue
            inside = {self.layers[i].name for i in idx}
            reads = {s for i in idx for s in self.layers[i].inputs if s not in inside}
            last = self.layers[idx[-1]].name
            read_outside = {n for n in inside for r in self.graph.successors(n) if r not in inside}
            if len(reads) == 1 and not read_outside - {last}:
                yield Instance(g, idx, reads.pop())

    def local_name(self, unit, i):
        return self.layers[i].name[len(unit.group) + 1:] or self.layers[i].kind

    def signature(self, unit):
        local = {unit.source: "in"}
        out = []
        for i in unit.idx:
            layer = self.layers[i]
            local[layer.name] = self.local_name(unit, i)
            out.append((layer.kind, local[layer.name], tuple(local[s] for s in layer.inputs),
                        tuple(k for k, _ in arguments(layer.op))))
        return tuple(out)

    def define(self, units, names) -> Block:
        """Arguments equal in every instance stay in the body; the others are parameters."""
        first = units[0]
        taken, local, params, param_of, lines = {"in"}, [], [], {}, []
        for pos, i in enumerate(first.idx):  # 'out' names a block's output: only the last
            last = pos == len(first.idx) - 1
            local.append(word(self.local_name(first, i), taken if last else taken | {"out"}))
            taken.add(local[-1])
        inside = {self.layers[i].name: local[pos] for pos, i in enumerate(first.idx)}
        inside[first.source] = "in"
        previous = "in"
        for pos, i in enumerate(first.idx):
            layer = self.layers[i]
            args = []
            for k, v in arguments(layer.op):
                values = [dict(arguments(self.layers[u.idx[pos]].op))[k] for u in units]
                if all(x == values[0] for x in values):
                    args.append(f"{k}={value_text(v)}")
                else:
                    p = word(f"{local[pos]}_{k}", set(params) | taken)
                    params.append(p)
                    param_of[(pos, k)] = p
                    args.append(f"{k}={p}")
            lines.append(statement(layer.kind, local[pos], [inside[s] for s in layer.inputs],
                                   previous, args))
            previous = local[pos]
        stem = first.group.split(".")[0]
        return Block(word(f"{stem}_block", names), params, param_of, local, lines)


def _unique(blocks):
    seen, out = set(), []
    for b in blocks:
        if id(b) not in seen:
            seen.add(id(b))
            out.append(b)
    return out
