"""AST -> graph: expand blocks and repeats, qualify and resolve names, bind arguments.

The result is a networkx DiGraph whose nodes, in insertion order, are a topological order of
the layers (a source must be defined before it is read, so there are no cycles)."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import networkx as nx
import sympy

from . import ops
from .errors import RuleError, Span, SpecError, did_you_mean
from .sizes import floor_div, is_int, norm, show, symbol
from .syntax import BinOp, LayerStmt, ListValue, Name, Num, Program, RepeatStmt, TupleValue

MAX_LAYERS = 200_000
MAX_DEPTH = 64
WORDS = {"same", "on", "off", "floor", "ceil"}


@dataclass(frozen=True)
class Layer:
    name: str                 # qualified: 'i3a.b1'
    op: ops.Op
    inputs: tuple[str, ...]
    span: Span
    trace: tuple[str, ...] = ()  # the block instantiations that led here, innermost first

    @property
    def kind(self) -> str:
        return self.op.kind


@dataclass(frozen=True)
class Symbol:
    name: str
    default: int | None
    span: Span


@dataclass
class _Scope:
    """Names visible in one block instance or network body (mutable only while building)."""
    prefix: str
    names: dict
    counters: dict
    reserved: set
    input: str | None
    trace: tuple
    taken: dict   # local name -> span of its definition; shared by the iterations of a repeat
    suffix: str = ""  # '_3' in the third iteration of a repeat

    def qualify(self, local: str) -> str:
        return f"{self.prefix}{local}"


def build(program: Program) -> nx.DiGraph:
    """The layer graph of a program's network, symbols left free."""
    net = program.network
    env, symbols = {}, []
    for param in net.params:
        default = None
        if param.default is not None:
            default = _eval(param.default, {})
            if not is_int(default) or default <= 0:
                raise SpecError(f"default of symbol '{param.name}' must be a positive whole number",
                                param.default.span)
        env[param.name] = symbol(param.name)
        symbols.append(Symbol(param.name, default, param.span))
    graph = nx.DiGraph(network=net.name, file=program.file, symbols=tuple(symbols))
    builder = _Builder(program, graph)
    scope = _Scope("", {}, {}, _explicit_names(net.body), None, (), {})
    last = builder.body(net.body, scope, env, None, ())
    if last is None:
        raise SpecError(f"network '{net.name}' has no layers", net.span)
    return graph


def _explicit_names(body) -> set:
    names = set()
    for stmt in body:
        if isinstance(stmt, LayerStmt) and stmt.name:
            names.add(stmt.name)
    return names


class _Builder:
    def __init__(self, program: Program, graph: nx.DiGraph):
        self.program, self.graph = program, graph

    def body(self, body, scope, env, previous, stack):
        for stmt in body:
            if isinstance(stmt, RepeatStmt):
                previous = self.repeat(stmt, scope, env, previous, stack)
            else:
                previous = self.statement(stmt, scope, env, previous, stack)
        return previous

    def repeat(self, stmt, scope, env, previous, stack):
        count = _eval(stmt.count, env)
        if not is_int(count) or count < 0:
            raise SpecError(f"repeat count must be a whole number, got {show(count)}", stmt.count.span)
        if count * max(1, len(stmt.body)) + self.graph.number_of_nodes() > MAX_LAYERS:
            raise SpecError(f"repeat {count:,} would make more than {MAX_LAYERS:,} layers", stmt.span)
        for i in range(1, count + 1):
            inner = _Scope(scope.prefix, dict(scope.names), scope.counters, scope.reserved,
                           scope.input, scope.trace, scope.taken, f"{scope.suffix}_{i}")
            previous = self.body(stmt.body, inner, env, previous, stack)
            for local, qualified in inner.names.items():  # later statements see the last iteration
                scope.names.setdefault(local, qualified)
        return previous

    def statement(self, stmt: LayerStmt, scope, env, previous, stack):
        sources = self.sources(stmt, scope, previous)
        if stmt.kind == "freeze":
            self.freeze(stmt, scope, sources)
            return previous
        if stmt.kind in ops.KINDS:
            return self.layer(stmt, scope, env, sources)
        if stmt.kind in self.program.blocks:
            return self.instance(stmt, scope, env, sources, stack)
        hint = did_you_mean(stmt.kind, set(ops.KINDS) | set(self.program.blocks))
        raise SpecError(f"unknown layer kind '{stmt.kind}'", stmt.kind_span, (hint,) if hint else ())

    def freeze(self, stmt, scope, sources):
        """`freeze <- layer`: that layer and every layer it reads count as frozen."""
        if scope.prefix or scope.suffix:
            raise SpecError("freeze belongs in the network, outside blocks and repeats", stmt.span)
        if stmt.name or stmt.args or len(sources) != 1:
            raise SpecError("freeze takes one layer: freeze <- LAYER", stmt.span)
        if "freeze" in self.graph.graph:
            raise SpecError("freeze is given twice", stmt.span)
        self.graph.graph["freeze"] = sources[0]

    def local_name(self, stmt, scope, kind) -> tuple[str, str]:
        if stmt.name:
            local = stmt.name + scope.suffix
        else:
            while True:
                scope.counters[kind] = scope.counters.get(kind, 0) + 1
                local = f"{kind}{scope.counters[kind]}"
                if local not in scope.reserved and local not in scope.taken:
                    break
        if local in scope.taken:
            raise SpecError(f"duplicate layer name '{scope.qualify(local)}'", stmt.name_span or stmt.span,
                            (f"first defined at {scope.taken[local].where()}",))
        scope.taken[local] = stmt.span
        return local, scope.qualify(local)

    def sources(self, stmt, scope, previous) -> tuple[str, ...]:
        if stmt.sources is None:
            return () if previous is None else (previous,)
        found = []
        for ref in stmt.sources:
            if ref.name == "in" and scope.input is not None:
                found.append(scope.input)
            elif ref.name in scope.names:
                found.append(scope.names[ref.name])
            elif scope.qualify(ref.name) in self.graph:
                found.append(scope.qualify(ref.name))
            else:
                found.append(self.unknown_source(stmt, ref, scope))
        return tuple(found)

    def unknown_source(self, stmt, ref, scope):
        local = stmt.name and stmt.name + scope.suffix
        if ref.name == stmt.name or ref.name == local:
            raise SpecError(f"layer '{scope.qualify(ref.name)}' reads itself (a cycle)", ref.span)
        if ref.name in scope.reserved:
            raise SpecError(f"source '{ref.name}' is used before it is defined", ref.span,
                            ("a layer can read only layers defined above it",))
        choices = set(scope.names) | ({"in"} if scope.input else set())
        hint = did_you_mean(ref.name, choices)
        raise SpecError(f"unknown source '{ref.name}'", ref.span, (hint,) if hint else ())

    def layer(self, stmt, scope, env, sources):
        cls = ops.KINDS[stmt.kind]
        low, high = cls.arity
        if len(sources) < low or (high is not None and len(sources) > high):
            raise SpecError(_arity_message(stmt.kind, low, high, len(sources)), stmt.span,
                            _trace_details(scope.trace))
        positional, keywords = self.arguments(stmt, env, cls)
        try:
            op = ops.make(stmt.kind, positional, keywords)
        except RuleError as e:
            raise SpecError(f"{stmt.kind} '{scope.qualify(stmt.name or stmt.kind)}': {e.message}",
                            stmt.span, e.details + _trace_details(scope.trace)) from None
        local, name = self.local_name(stmt, scope, stmt.kind)
        self.add(Layer(name, op, sources, stmt.span, scope.trace), scope, local)
        return name

    def add(self, layer: Layer, scope, local):
        if self.graph.number_of_nodes() >= MAX_LAYERS:
            raise SpecError(f"network has more than {MAX_LAYERS:,} layers", layer.span)
        self.graph.add_node(layer.name, layer=layer)
        for source in layer.inputs:
            self.graph.add_edge(source, layer.name)
        scope.names[local] = layer.name

    def arguments(self, stmt, env, cls):
        known = {f.name for f in ops.hyperparameters(cls)}
        positional, keywords = [], {}
        for a in stmt.args:
            if a.key is None:
                if keywords:
                    raise SpecError("positional argument after a keyword argument", a.span)
                positional.append(_value(a.value, env))
                continue
            if a.key not in known:
                hint = did_you_mean(a.key, known)
                raise SpecError(f"unknown argument '{a.key}' for {stmt.kind}", a.span,
                                ((hint,) if hint else ()) + (ops.usage(cls),))
            if a.key in keywords:
                raise SpecError(f"argument '{a.key}' given twice", a.span)
            keywords[a.key] = _value(a.value, env)
        return positional, keywords

    def instance(self, stmt, scope, env, sources, stack):
        block = self.program.blocks[stmt.kind]
        if stmt.kind in stack:
            raise SpecError(f"block '{stmt.kind}' calls itself", stmt.span,
                            (" -> ".join(stack + (stmt.kind,)),))
        if len(stack) >= MAX_DEPTH:
            raise SpecError(f"blocks nested more than {MAX_DEPTH} deep", stmt.span)
        if len(sources) != 1:
            raise SpecError(f"block '{stmt.kind}' takes one input, got {len(sources)}", stmt.span)
        local, name = self.local_name(stmt, scope, stmt.kind)
        inner_env = self.bind_block(block, stmt, env)
        trace = (f"in block '{block.name}' instantiated as '{name}' at {stmt.span.where()}",) + scope.trace
        inner = _Scope(name + ".", {}, {}, _explicit_names(block.body), sources[0], trace, {})
        last = self.body(block.body, inner, inner_env, sources[0], stack + (stmt.kind,))
        if last is None or last == sources[0]:
            raise SpecError(f"block '{block.name}' has no layers", block.span)
        output = inner.names.get("out", last)
        scope.names[local] = output
        return output

    def bind_block(self, block, stmt, env):
        params = [p.name for p in block.params]
        bound = {}
        positional = [a for a in stmt.args if a.key is None]
        if len(positional) > len(params):
            raise SpecError(f"block '{block.name}' takes {len(params)} argument(s), got {len(positional)}",
                            stmt.span, (f"parameters: {', '.join(params) or 'none'}",))
        for p, a in zip(params, positional):
            bound[p] = _value(a.value, env)
        for a in stmt.args:
            if a.key is None:
                continue
            if a.key not in params:
                hint = did_you_mean(a.key, params)
                raise SpecError(f"block '{block.name}' has no parameter '{a.key}'", a.span,
                                (hint,) if hint else ())
            if a.key in bound:
                raise SpecError(f"argument '{a.key}' given twice", a.span)
            bound[a.key] = _value(a.value, env)
        for p in block.params:
            if p.name not in bound:
                if p.default is None:
                    raise SpecError(f"block '{block.name}' needs argument '{p.name}'", stmt.span,
                                    (f"parameters: {', '.join(params)}",))
                bound[p.name] = _eval(p.default, bound)
        return bound


def _arity_message(kind, low, high, got):
    if high == 0:
        return f"{kind} reads no other layer, but {got} source(s) are given"
    if got == 0:
        return f"{kind} has no input: it needs a layer above it or '<- source'"
    if high is None:
        return f"{kind} needs at least {low} inputs, got {got}"
    return f"{kind} takes {low} input(s), got {got}"


def _trace_details(trace) -> tuple[str, ...]:
    return tuple(trace)


def _value(node, env):
    if isinstance(node, TupleValue):
        return tuple(_eval(i, env) for i in node.items)
    if isinstance(node, ListValue):
        return [_value(i, env) for i in node.items]
    return _eval(node, env)


def _eval(node, env):
    """Evaluate a size expression: ints and Fractions stay exact, symbols become sympy."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Name):
        if node.id in env:
            return env[node.id]
        if node.id in WORDS:
            return node.id
        hint = did_you_mean(node.id, env)
        raise SpecError(f"unknown name '{node.id}'", node.span, (hint,) if hint else ())
    if isinstance(node, (TupleValue, ListValue)):
        raise SpecError("a tuple or list cannot be used in arithmetic", node.span)
    left, right = _eval(node.left, env), _eval(node.right, env)
    for side, value in (("left", left), ("right", right)):
        if isinstance(value, str):
            raise SpecError(f"'{value}' cannot be used in arithmetic", node.span)
    return _arith(node, left, right)


def _arith(node: BinOp, a, b):
    if node.op in ("/", "//") and b == 0:
        raise SpecError("division by zero", node.span)
    if node.op == "+":
        result = a + b
    elif node.op == "-":
        result = a - b
    elif node.op == "*":
        result = a * b
    elif node.op == "//":
        result = floor_div(a, b) if not isinstance(a, Fraction) and not isinstance(b, Fraction) \
            else Fraction(a) // Fraction(b)
    elif isinstance(a, (int, Fraction)) and isinstance(b, (int, Fraction)):
        result = Fraction(a, 1) / b
        result = int(result) if result.denominator == 1 else result
    else:
        result = sympy.sympify(a) / b
    if isinstance(result, Fraction) and result.denominator == 1:
        return int(result)
    return norm(result) if isinstance(result, sympy.Basic) else result
