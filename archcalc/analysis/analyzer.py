"""Graph -> analysis: one Row per layer (shapes, params, MACs, other ops, activations,
receptive field), totals, the peak of live activations, and notes. A pure function: the graph
is read, never written; binding a symbol re-runs every rule with the value."""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from fractions import Fraction

import networkx as nx
import sympy

from .. import kinds
from . import latency, traffic
from .memory import peak_activations
from ..errors import RuleError, SpecError, did_you_mean
from ..network import Layer, Network
from ..sizes import MAX_COST_DIGITS, brief, subs, symbol_names, MAX_DIGITS, digits, is_int, norm, show, too_large, total

MAX_SHAPE_DEPTH = 48   # nested floors and ceilings in a symbolic size (real networks: under 10)
MAX_SHAPE_NODES = 400
TOTAL_KEYS = ("params", "trainable_params", "frozen_params", "state", "macs", "flops",
              "other_ops", "activations", *traffic.KEYS, "traffic_bytes", "peak_activations")


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    inputs: tuple[str, ...]
    in_shapes: tuple[kinds.Shape, ...]
    out_shape: kinds.Shape
    params: object
    trainable_params: object
    frozen_params: object
    state: object
    macs: object
    flops: object
    other_ops: object
    activations: object
    receptive_field: tuple | None  # (size, effective stride); None: sees the whole input
    attention_macs: object = 0     # of macs: attention's activation-activation products QK^T, AV
    input_bytes: object = 0        # memory traffic at the analysis' dtype (analysis.traffic)
    weight_bytes: object = 0
    output_bytes: object = 0
    family: str = "elementwise"    # kernel family, for a device's efficiency (analysis.latency)
    latency_s: object = None       # with a device: the roofline estimate (a Fraction) and what
    bound: str | None = None       # bounds it, "compute", "memory" or "overhead"
    traffic_bytes = property(traffic.traffic_bytes)  # read and written
    intensity = property(traffic.row_intensity)      # MACs per byte; None if it moves nothing


@dataclass(frozen=True)
class Analysis:
    network: str
    file: str
    symbols: dict        # name -> bound value, or None while free
    rows: tuple[Row, ...]
    totals: dict
    notes: tuple[str, ...]
    strict: bool = False
    freeze: str | None = None  # the last frozen layer, if any
    dtype: str = "float32"     # of the memory traffic
    device: object = None      # analysis.latency.Device: rows and totals then hold latency_s
    batch: int = 1             # images per pass, for the latency estimate
    net: Network | None = field(default=None, repr=False, compare=False)  # for `at`

    def __getstate__(self) -> dict:
        # sent to another process (report's pool), an analysis leaves its network behind: an
        # imported model's weights would travel with it
        return {**self.__dict__, "net": None}

    def __setstate__(self, state: dict) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    def __repr__(self) -> str:
        """One line: '<Analysis VGG16: 39 layers, params 138,357,544, MACs 15,470,264,320>';
        a formula longer than REPR_WIDTH is cut at a term and ends in '...'."""
        params, macs = (brief(self.totals[k]) for k in ("params", "macs"))
        free = f" in {', '.join(self.free)}" if self.free else ""
        return f"<Analysis {self.network}{free}: {len(self.rows):,} layers, params {params}, MACs {macs}>"

    def totals_at(self, **values) -> dict:
        """The totals' formulas evaluated at a point, by name: `f.totals_at(H=448, W=448)`
        equals `f.at(H=448, W=448).totals` (a test checks it). Names must be free symbols."""
        unknown = [k for k in values if k not in self.free]
        if unknown:
            raise SpecError(f"'{unknown[0]}' is not a free symbol of {self.network}", None,
                            (f"free symbols: {', '.join(self.free) or 'none'}",))
        return {key: subs(v, **{k: n for k, n in values.items() if k in symbol_names(v)})
                for key, v in self.totals.items()}

    def at(self, **values) -> "Analysis":
        """The analysis at a point, re-run with the values (so every check runs again):
        `a.at(H=448, W=448)`. Symbols bound here stay bound; free ones not named stay free."""
        if self.net is None:
            raise SpecError("this analysis was made without its network; analyse it again "
                            "with archcalc.analyze to evaluate it at a point")
        bound = {k: v for k, v in self.symbols.items() if v is not None}
        free = tuple(k for k in self.free if k not in values)
        return analyze(self.net, at={**bound, **values}, free=free, strict=self.strict,
                       freeze=self.freeze, dtype=self.dtype, device=self.device, batch=self.batch)

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def blocks(self) -> dict:
        """Top-level block (the name before the first '.') -> (params, MACs), in layer order."""
        sums: dict[str, list] = {}
        for r in self.rows:
            entry = sums.setdefault(r.name.split(".", 1)[0], [[], []])
            entry[0].append(r.params)
            entry[1].append(r.macs)
        return {name: (total(p), total(m)) for name, (p, m) in sums.items()}

    @property
    def attention_macs(self):
        """Of the MACs, attention's products QK^T and AV (tools that count only weight layers
        skip them)."""
        return total(r.attention_macs for r in self.rows)

    @property
    def free(self) -> tuple[str, ...]:
        return tuple(k for k, v in self.symbols.items() if v is None)


def analyze(net: Network, at: dict | None = None, free=(), strict: bool = False,
            freeze: str | None = None, dtype: str = "float32", device=None,
            batch: int = 1) -> Analysis:
    """Analyse `net` with symbols bound: `at` first, then defaults; names in `free` (or
    without a default) stay symbolic. `freeze` names the last frozen layer (it and every layer
    it reads count as frozen). `strict` makes an inexact division an error. Traffic is at `dtype`;
    a `device` (analysis.latency.Device) adds the latency of a pass over `batch` images."""
    values, size = bindings(net, at or {}, free), traffic.itemsize(dtype)
    freeze = net.freeze_point(freeze or net.freeze) if (freeze or net.freeze) else None
    subs = {sympy.Symbol(k, integer=True, positive=True): v for k, v in values.items() if v is not None}
    frozen = frozen_layers(net, freeze)
    rows, notes, shapes, fields_rf = [], [], {}, {}
    for layer in net.layers:
        name = layer.name
        op = bind_op(layer.op, subs, layer, values)
        ins = tuple(shapes[i] for i in layer.inputs)
        out = located(layer, lambda: op.out(ins, strict), ins)
        located(layer, lambda: check_symbolic(out.shape), ins)
        located(layer, lambda: check_sizes(out.shape), ins)
        cost = located(layer, lambda: op.cost(ins, out.shape), ins)
        located(layer, lambda: check_cost(cost), ins)
        shapes[name] = out.shape
        fields_rf[name] = receptive_field(op, tuple(fields_rf[i] for i in layer.inputs), ins)
        located(layer, lambda: check_field(fields_rf[name]), ins)
        notes += [f"{layer.kind} '{name}': {n}" for n in out.notes]
        rows.append(make_row(layer, op, ins, out.shape, cost, name in frozen, fields_rf[name], size))
    rows = tuple(rows)
    notes += net.notes
    if net.shared.params:
        notes.append(f"{net.shared.params:,} parameters are read by several layers: "
                     "shown in each layer's row, counted once in the totals")
    a = Analysis(net.name, net.file, values, rows, totals(rows, net), tuple(notes), strict,
                 freeze, dtype, device, batch, net)
    return latency.estimate(a) if device is not None else a


def bindings(net: Network, at: dict, free) -> dict:
    symbols = net.symbols
    names = {s.name for s in symbols}
    for key, value in at.items():
        if key not in names:
            hint = did_you_mean(key, names)
            known = ", ".join(sorted(names)) or "none"
            raise SpecError(f"unknown symbol '{key}'", None,
                            ((hint,) if hint else ()) + (f"the network's symbols: {known}",))
        declared = next(s for s in symbols if s.name == key).span
        if not is_int(value) or value <= 0:
            raise SpecError(f"symbol '{key}' must be bound to a positive whole number, got {value!r}",
                            declared, ("a size: a count of pixels or channels",))
        if too_large(value):
            raise SpecError(f"symbol '{key}' bound to a value of {len(str(value))} digits; sizes have "
                            f"at most {MAX_DIGITS}", declared)
    unknown = [k for k in free if k not in names]
    if unknown:
        hint = did_you_mean(unknown[0], names)
        raise SpecError(f"unknown symbol '{unknown[0]}'", None, ((hint,) if hint else ()) +
                        (f"the network's symbols: {', '.join(sorted(names)) or 'none'}",))
    return {s.name: at.get(s.name, None if s.name in free else s.default) for s in symbols}


def bind_op(op: kinds.Op, subs: dict, layer: Layer | None = None, values=None) -> kinds.Op:
    """The op with bound symbols replaced by their values (concrete ops are returned as is).
    The bound op is checked again: a width b - 16 is fine until b = 16."""
    if not subs:
        return op
    changes, worked = {}, []
    for f in fields(op):
        value = getattr(op, f.name)
        if isinstance(value, sympy.Basic):
            changes[f.name] = norm(value.xreplace(subs))
            worked.append(f"{f.name} = {show(value)} = {show(changes[f.name])}")
        elif isinstance(value, tuple) and any(isinstance(v, sympy.Basic) for v in value):
            changes[f.name] = tuple(norm(v.xreplace(subs)) if isinstance(v, sympy.Basic) else v
                                    for v in value)
            before, after = (", ".join(map(show, v)) for v in (value, changes[f.name]))
            worked.append(f"{f.name} = ({before}) = ({after})")
    if not changes:
        return op
    bound = ", ".join(f"{k} = {v}" for k, v in (values or {}).items() if v is not None)
    try:
        for key, value in changes.items():
            parts = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, sympy.Basic) and v.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)
                   for v in parts):
                raise RuleError(f"argument '{key}' divides by zero", argument=key)
        return kinds.make_checked(replace(op, **changes))
    except RuleError as e:
        details = e.details + tuple(w for w in worked if w.startswith(f"{e.argument} "))
        details += (f"with {bound}",) if bound else ()
        if layer is None:
            raise SpecError(f"{op.kind}: {e.message}", None, details) from None
        raise SpecError(f"{layer.kind} '{layer.name}': {e.message}", layer.span,
                        details + layer.trace) from None


def check_symbolic(shape):
    """A symbolic size that nests too deep or grows huge numbers (a symbolic H halved a hundred
    times) is refused here, before sympy's recursion or arithmetic runs away with it."""
    for letter, value in zip(kinds.Shape._fields, shape):
        if not isinstance(value, sympy.Basic):
            continue
        todo, nodes = [(value, 1)], 0
        while todo:
            e, depth = todo.pop()
            nodes += 1
            if depth > MAX_SHAPE_DEPTH or nodes > MAX_SHAPE_NODES:
                raise RuleError(f"output {letter} is too complex to follow symbolically "
                                f"(more than {MAX_SHAPE_DEPTH} nested roundings or "
                                f"{MAX_SHAPE_NODES} terms)", "bind the symbols (--set) to analyse it")
            if e.is_Rational and too_large(norm(e)):
                raise RuleError(f"output {letter} is too complex to follow symbolically (a number "
                                f"in it has more than {MAX_DIGITS} digits)",
                                "bind the symbols (--set) to analyse it")
            todo.extend((a, depth + 1) for a in e.args)


def check_sizes(shape):
    """Each output size below 10^MAX_DIGITS, like every size a spec may write: the layer that
    grows one past it (pads or upsamples piled up, a flatten of a huge map) is refused."""
    for letter, value in zip(kinds.Shape._fields, shape):
        if is_int(value) and too_large(value):
            raise RuleError(f"output {letter} grows too large: {digits(value):,} digits; sizes have "
                            f"at most {MAX_DIGITS}")


def check_cost(cost: kinds.Cost):
    for what, value in zip(("params", "params", "state", "MACs", "other ops"), cost):
        if is_int(value) and digits(value) > MAX_COST_DIGITS:
            raise RuleError(f"its {what} grow too large: {digits(value):,} digits; a layer's costs "
                            f"have at most {MAX_COST_DIGITS}")


def check_field(rf):
    """The receptive field multiplies strides layer after layer: bounded like a cost."""
    for what, value in zip(("size", "effective stride"), rf or ()):
        if isinstance(value, (int, Fraction)) and digits(value) > MAX_COST_DIGITS:
            raise RuleError(f"its receptive field's {what} grows too large: {digits(value):,} "
                            f"digits; at most {MAX_COST_DIGITS}")


def located(layer: Layer, rule, ins):
    try:
        return rule()
    except RuleError as e:
        context = tuple(f"input of '{layer.name}' is {s}" for s in ins[:1]) if len(ins) == 1 else ()
        raise SpecError(f"{layer.kind} '{layer.name}': {e.message}", layer.span,
                        e.details + context + layer.trace) from None
    except RecursionError:  # check_symbolic should stop this first; never a traceback
        raise SpecError(f"{layer.kind} '{layer.name}': sizes too deeply nested to analyse "
                        f"symbolically", layer.span, ("bind the symbols (--set) to analyse it",)
                        + layer.trace) from None


def receptive_field(op: kinds.Op, inputs: tuple, ins: tuple = ()):
    if not inputs:
        return (1, 1)
    if op.size_from_last and len(inputs) > 1:  # the target's values are never read
        inputs = inputs[:-1]
    x = ins[0] if ins else None
    if op.sees_all(x) or any(rf is None for rf in inputs):
        return None
    # numbers compare; a symbolic size or stride cannot (sympy would raise on 'S < 2')
    size, jump = max(inputs, key=lambda rf: rf if all(map(is_number, rf)) else (0, 0))
    window = op.window(x)
    if window is None:
        return (size, jump)
    f, s = window
    return (whole(size + (f - 1) * jump), whole(jump * s))


def is_number(x) -> bool:
    """An int, or a Fraction: an upsample's stride is a fraction of an input pixel."""
    return is_int(x) or isinstance(x, Fraction)


def whole(x):
    return int(x) if isinstance(x, Fraction) and x.denominator == 1 else x


def make_row(layer, op, ins, out, cost: kinds.Cost, is_frozen, rf, size: int) -> Row:
    params = cost.weights + cost.fixed
    trainable = 0 if is_frozen else cost.weights
    return Row(layer.name, layer.kind, layer.inputs, ins, out, params, trainable,
               norm(params - trainable), cost.state, cost.macs, 2 * cost.macs, cost.other,
               kinds.elements(out), rf, cost.attention_macs,
               **traffic.layer_bytes(op, ins, out, cost, size), family=op.family(ins))


def frozen_layers(net: Network, freeze: str | None) -> set:
    """`freeze` (a layer, resolved by Network.freeze_point) and every layer it reads."""
    if freeze is None:
        return set()
    return nx.ancestors(net.graph, freeze) | {freeze}


def totals(rows: tuple[Row, ...], net: Network) -> dict:
    out = {key: total(getattr(r, key) for r in rows) for key in TOTAL_KEYS[:-1]}
    out["peak_activations"] = peak_activations(rows, net.graph)
    # An imported model's tensor that several layers read shows in each of their rows and
    # counts once in the totals (net.shared: the numbers counted twice or more).
    shared = net.shared
    if shared.params:
        n = shared.params
        out["params"] -= n
        out["frozen_params"] -= max(0, n - out["trainable_params"]) if is_int(out["trainable_params"]) else 0
        out["trainable_params"] -= min(n, out["trainable_params"]) if is_int(out["trainable_params"]) else n
    if shared.state:
        out["state"] -= shared.state
    return out
