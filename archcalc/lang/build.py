"""AST -> Network: expand blocks and repeats, qualify and resolve names, bind arguments.

The result's graph lists the layers in insertion order, a topological order (a source must be
defined before it is read, so there are no cycles). Argument arithmetic is in values.py."""
from __future__ import annotations

import difflib
from collections import ChainMap
from dataclasses import dataclass, replace

import networkx as nx
import sympy

from .. import kinds
from ..errors import RuleError, Span, SpecError, did_you_mean
from ..network import Layer, Network, Symbol
from ..sizes import is_int, show, symbol
from .syntax import LayerStmt, Name, Program, RepeatStmt
from .values import VALUES, WORDS, clip, evaluate, show_value, value_of

MAX_LAYERS = 200_000
MAX_DEPTH = 64         # blocks inside blocks and repeats inside repeats, counted together
RESERVED = WORDS | {"in"}
# Names other libraries give to the hyperparameters: a hint when one is used as an argument.
ALIASES = {"channels": "c", "filters": "c", "out_channels": "c", "units": "c", "features": "c",
           "kernel": "f", "kernel_size": "f", "stride": "s", "strides": "s", "padding": "p",
           "pad": "p", "group": "groups", "dilation_rate": "dilation", "use_bias": "bias",
           "rounding": "round", "ceil_mode": "round", "drop": "rate", "dropout": "rate"}


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


def build(program: Program) -> Network:
    """The network of a program: its layer graph, symbols left free."""
    net = program.network
    for definition in (*program.blocks.values(), net):
        _check_params(definition, "symbol" if definition is net else "parameter")
    env, symbols = {}, []
    for param in net.params:
        default = None
        if param.default is not None:
            default = evaluate(param.default, {})
            if not is_int(default) or default <= 0:
                raise SpecError(f"default of symbol '{param.name}' must be a positive whole number, "
                                f"got {show(default)}", param.default.span)
        env[param.name] = symbol(param.name)
        symbols.append(Symbol(param.name, default, param.span))
    graph = nx.DiGraph()
    builder = _Builder(program, graph)
    scope = _Scope("", {}, {}, _explicit_names(net.body), None, (), {})
    try:
        last = builder.body(net.body, scope, env, None, ())
    except RecursionError:  # MAX_DEPTH and the parser's nesting limit stop this first
        raise SpecError(f"spec nested too deeply to expand (the limit is {MAX_DEPTH} levels)",
                        net.span) from None
    if last is None:
        raise SpecError(f"network '{net.name}' has no layers", net.span)
    return Network(net.name, program.file, tuple(symbols), graph, freeze=builder.frozen)


def _check_params(definition, what):
    seen = {}
    for p in definition.params:
        if p.name in RESERVED:
            raise SpecError(f"'{p.name}' is a reserved word and cannot name a {what}", p.span,
                            (f"reserved: {', '.join(sorted(RESERVED))}",))
        if p.name in seen:
            raise SpecError(f"{what} '{p.name}' is declared twice", p.span,
                            (f"first declared at {seen[p.name].where()}",))
        seen[p.name] = p.span


def _min_layers(body, env) -> int:
    """A lower bound on the layers a body makes, from its statements and numeric repeat
    counts, so a huge repeat is refused before anything is built."""
    n = 0
    for stmt in body:
        if isinstance(stmt, RepeatStmt):
            try:
                count = evaluate(stmt.count, env)
            except SpecError:
                count = 0  # the repeat itself reports it, in order
            if is_int(count) and count > 0:
                n += count * _min_layers(stmt.body, env)
        elif stmt.kind != "freeze":
            n += 1
        if n > MAX_LAYERS:
            break
    return n


def _explicit_names(body) -> set:
    names = set()
    for stmt in body:
        if isinstance(stmt, LayerStmt) and stmt.name:
            names.add(stmt.name)
    return names


class _Builder:
    def __init__(self, program: Program, graph: nx.DiGraph):
        self.program, self.graph = program, graph
        self.frozen = None  # the layer named by `freeze <- LAYER`
        self.depth = 0  # blocks and repeats being expanded

    def deeper(self, stmt, stack):
        if self.depth >= MAX_DEPTH:
            chain = list(stack) if len(stack) <= 6 else [*stack[:3], "...", *stack[-3:]]
            raise SpecError(f"blocks and repeats nested more than {MAX_DEPTH} deep", stmt.span,
                            (f"blocks: {' -> '.join(chain)}",) if chain else ())
        self.depth += 1

    def body(self, body, scope, env, previous, stack):
        for stmt in body:
            if isinstance(stmt, RepeatStmt):
                previous = self.repeat(stmt, scope, env, previous, stack)
            else:
                previous = self.statement(stmt, scope, env, previous, stack)
        return previous

    def repeat(self, stmt, scope, env, previous, stack):
        count = evaluate(stmt.count, env)
        if isinstance(count, sympy.Basic):
            free = ", ".join(sorted(str(s) for s in count.free_symbols))
            what = f"'{count}' is a symbol" if isinstance(count, sympy.Symbol) else \
                f"{clip(count)} depends on the symbol(s) {free}"
            raise SpecError(f"repeat count must be a number, but {what}", stmt.count.span,
                            ("the layers are fixed when the spec is read; symbols are sizes, bound "
                             "only when it is analysed",) + scope.trace)
        if not is_int(count) or count < 0:
            raise SpecError(f"repeat count must be a whole number, got {show_value(count)}",
                            stmt.count.span, scope.trace)
        before = self.graph.number_of_nodes()
        self.too_many(stmt, count, count * _min_layers(stmt.body, env), before)
        self.deeper(stmt, stack)
        try:
            for i in range(1, count + 1):
                # the iteration sees the names around it; a ChainMap, not a copy, keeps a long
                # repeat linear (a copy per iteration was quadratic: 139 s at 40,000)
                inner = _Scope(scope.prefix, ChainMap({}, scope.names), scope.counters,
                               scope.reserved, scope.input, scope.trace, scope.taken,
                               f"{scope.suffix}_{i}")
                previous = self.body(stmt.body, inner, env, previous, stack)
                for local, qualified in inner.names.maps[0].items():
                    scope.names.setdefault(local, qualified)
                if i == 1:  # blocks in the body make more layers than it has statements
                    self.too_many(stmt, count, count * (self.graph.number_of_nodes() - before), before)
        finally:
            self.depth -= 1
        return previous

    def too_many(self, stmt, count, layers, before):
        if before + layers > MAX_LAYERS:
            raise SpecError(f"too many layers: repeat {count:,} makes at least {layers:,}", stmt.span,
                            (f"a network has at most {MAX_LAYERS:,} layers",))

    def statement(self, stmt: LayerStmt, scope, env, previous, stack):
        sources = self.sources(stmt, scope, previous)
        if stmt.kind == "freeze":
            self.freeze(stmt, scope, sources)
            return previous
        if stmt.kind in kinds.KINDS:
            return self.layer(stmt, scope, env, sources)
        if stmt.kind in self.program.blocks:
            return self.instance(stmt, scope, env, sources, stack)
        hint = did_you_mean(stmt.kind, set(kinds.KINDS) | set(self.program.blocks))
        blocks = ", ".join(sorted(self.program.blocks))
        known = f"kinds: {', '.join(sorted(kinds.KINDS))}" + (f"; blocks: {blocks}" if blocks else "")
        raise SpecError(f"unknown layer kind or block '{stmt.kind}'", stmt.kind_span,
                        ((hint,) if hint else (known,)) + scope.trace)

    def freeze(self, stmt, scope, sources):
        """`freeze <- layer`: that layer and every layer it reads count as frozen."""
        if scope.prefix or scope.suffix:
            raise SpecError("freeze belongs in the network, outside blocks and repeats", stmt.span)
        if stmt.name or stmt.args or len(sources) != 1:
            raise SpecError("freeze takes one layer: freeze <- LAYER", stmt.span)
        if self.frozen is not None:
            raise SpecError("freeze is given twice", stmt.span)
        self.frozen = sources[0]

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
                            ("a layer can read only layers defined above it, so a spec has no cycles",)
                            + scope.trace)
        choices = set(scope.names) | ({"in"} if scope.input else set())
        hint = did_you_mean(ref.name, choices)
        raise SpecError(f"unknown source '{ref.name}'", ref.span, ((hint,) if hint else ()) + scope.trace)

    def layer(self, stmt, scope, env, sources):
        cls = kinds.KINDS[stmt.kind]
        local, name = self.local_name(stmt, scope, stmt.kind)
        low, high = cls.arity
        if len(sources) < low or (high is not None and len(sources) > high):
            raise SpecError(f"{stmt.kind} '{name}': {_arity_message(low, high, len(sources))}",
                            stmt.span, _trace_details(scope.trace))
        positional, keywords = self.arguments(stmt, env, cls, scope.trace, f"{stmt.kind} '{name}'")
        try:
            op = kinds.make(stmt.kind, positional, keywords)
        except RuleError as e:
            raise SpecError(f"{stmt.kind} '{name}': {e.message}", _argument_span(stmt, cls, e.argument),
                            e.details + _trace_details(scope.trace)) from None
        self.add(Layer(name, op, sources, stmt.span, scope.trace), scope, local)
        return name

    def add(self, layer: Layer, scope, local):
        if self.graph.number_of_nodes() >= MAX_LAYERS:
            raise SpecError(f"network has more than {MAX_LAYERS:,} layers", layer.span)
        self.graph.add_node(layer.name, layer=layer)
        for source in layer.inputs:
            self.graph.add_edge(source, layer.name)
        scope.names[local] = layer.name

    def arguments(self, stmt, env, cls, trace, who):
        known = {f.name for f in kinds.hyperparameters(cls)}
        positional, keywords = [], {}
        for a in stmt.args:
            if a.key is None:
                if keywords:
                    raise SpecError(f"{who}: positional argument after a keyword argument", a.span,
                                    (kinds.usage(cls),) + trace)
                positional.append(value_of(a, env, who, trace))
                continue
            field = next((f for f in kinds.hyperparameters(cls) if f.name == a.key), None)
            if field is not None and field.metadata["kind"] in kinds.WORDS and \
                    isinstance(a.value, Name) and a.value.id not in env and a.value.id not in VALUES:
                words = kinds.WORDS[field.metadata["kind"]]
                hint = did_you_mean(a.value.id, words)
                raise SpecError(f"{who}: argument '{a.key}' must be one of {', '.join(words)}, got "
                                f"'{a.value.id}'", a.value.span, ((hint,) if hint else ()) + trace)
            if a.key not in known:
                hint = did_you_mean(a.key, known) or _alias_hint(a.key, known)
                raise SpecError(f"{who}: unknown argument '{a.key}'", a.span,
                                ((hint,) if hint else ()) + (kinds.usage(cls),) + trace)
            if a.key in keywords:
                raise SpecError(f"{who}: argument '{a.key}' given twice", a.span, trace)
            keywords[a.key] = value_of(a, env, who, trace)
        return positional, keywords

    def instance(self, stmt, scope, env, sources, stack):
        block = self.program.blocks[stmt.kind]
        if stmt.kind in stack:
            raise SpecError(f"block '{stmt.kind}' calls itself", stmt.span,
                            (" -> ".join(stack + (stmt.kind,)),) + scope.trace)
        if len(sources) != 1:
            raise SpecError(f"block '{stmt.kind}' takes one input, got {len(sources)}", stmt.span,
                            scope.trace)
        local, name = self.local_name(stmt, scope, stmt.kind)
        inner_env = self.bind_block(block, stmt, env, scope.trace)
        trace = (f"in block '{block.name}' instantiated as '{name}' at {stmt.span.where()}",) + scope.trace
        inner = _Scope(name + ".", {}, {}, _explicit_names(block.body), sources[0], trace, {})
        self.deeper(stmt, stack + (stmt.kind,))
        try:
            last = self.body(block.body, inner, inner_env, sources[0], stack + (stmt.kind,))
        finally:
            self.depth -= 1
        if last is None or last == sources[0]:
            raise SpecError(f"block '{block.name}' has no layers", block.span)
        output = inner.names.get("out", last)
        scope.names[local] = output
        return output

    def bind_block(self, block, stmt, env, trace):
        params = [p.name for p in block.params]
        bound = {}
        positional = [a for a in stmt.args if a.key is None]
        if len(positional) > len(params):
            raise SpecError(f"block '{block.name}' takes {len(params)} argument(s), got {len(positional)}",
                            stmt.span, (f"parameters: {', '.join(params) or 'none'}",) + trace)
        who = f"block '{block.name}' instance '{stmt.name or block.name}'"
        for p, a in zip(params, positional):
            bound[p] = value_of(a, env, who, trace)
        for a in stmt.args:
            if a.key is None:
                continue
            if a.key not in params:
                hint = did_you_mean(a.key, params)
                raise SpecError(f"block '{block.name}' has no parameter '{a.key}'", a.span,
                                ((hint,) if hint else (f"parameters: {', '.join(params) or 'none'}",))
                                + trace)
            if a.key in bound:
                raise SpecError(f"argument '{a.key}' given twice", a.span, trace)
            bound[a.key] = value_of(a, env, who, trace)
        for p in block.params:
            if p.name not in bound:
                if p.default is None:
                    raise SpecError(f"block '{block.name}' needs argument '{p.name}'", stmt.span,
                                    (f"parameters: {', '.join(params)}",) + trace)
                bound[p.name] = evaluate(p.default, bound)
        return bound


def _arity_message(low, high, got):
    if high == 0:
        return f"reads no other layer, but {got} source(s) are given"
    if got == 0:
        return "has no input: it needs a layer above it or '<- source'"
    if high is None:
        return f"needs at least {low} inputs, got {got}"
    return f"takes {low} input(s), got {got}"


def _trace_details(trace) -> tuple[str, ...]:
    return tuple(trace)


def _argument_span(stmt, cls, name) -> Span:
    """The caret for an error in one argument: that argument, else the whole statement."""
    if name is None:
        return stmt.span
    for a in stmt.args:
        if a.key == name:  # from the key to the end of its value: 's=0'
            end = a.value.span
            return replace(a.span, end_column=end.end_column) if end.line == a.span.line else a.span
    slots = sorted((f for f in kinds.hyperparameters(cls) if f.metadata["pos"] is not None),
                   key=lambda f: f.metadata["pos"])
    positional = [a for a in stmt.args if a.key is None]
    for f, a in zip(slots, positional):
        if f.name == name:
            return a.span
    return stmt.span


def _alias_hint(key, known) -> str:
    """'channels' -> did you mean 'c'? (the names other libraries use)."""
    close = difflib.get_close_matches(key.lower(), ALIASES, n=1, cutoff=0.75) if len(key) < 40 else []
    if close and ALIASES[close[0]] in known:
        return f"did you mean '{ALIASES[close[0]]}'?"
    return ""
