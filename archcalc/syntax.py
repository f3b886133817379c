"""Text -> AST. The grammar file is the reference for the syntax; this module only builds
immutable nodes that carry their source spans, and turns lark's errors into located ones."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import lark

from .errors import Span, SpecError

MAX_SOURCE_CHARS = 10_000_000


@dataclass(frozen=True)
class Num:
    value: int | Fraction
    span: Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / //
    left: object
    right: object
    span: Span


@dataclass(frozen=True)
class TupleValue:
    items: tuple
    span: Span


@dataclass(frozen=True)
class ListValue:
    items: tuple
    span: Span


@dataclass(frozen=True)
class Arg:
    key: str | None  # None for a positional argument
    value: object
    span: Span


@dataclass(frozen=True)
class Ref:
    name: str  # dotted for a layer inside a block instance: 'i3a.b1'
    span: Span


@dataclass(frozen=True)
class LayerStmt:
    kind: str
    name: str | None
    sources: tuple[Ref, ...] | None  # None: reads the statement above
    args: tuple[Arg, ...]
    span: Span
    kind_span: Span
    name_span: Span | None


@dataclass(frozen=True)
class RepeatStmt:
    count: object
    body: tuple
    span: Span


@dataclass(frozen=True)
class Param:
    name: str
    default: object | None
    span: Span


@dataclass(frozen=True)
class BlockDef:
    name: str
    params: tuple[Param, ...]
    body: tuple
    span: Span


@dataclass(frozen=True)
class Program:
    file: str
    blocks: dict  # name -> BlockDef
    network: BlockDef  # a network is a block whose params are free symbols


OPERATORS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//"}
FRIENDLY = {
    "NAME": "a name", "NUMBER": "a number", "_SEP": "end of line", "LBRACE": "'{'",
    "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "COMMA": "','", "COLON": "':'", "EQUAL": "'='", "__ANON_0": "'<-'", "DOT": "'.'",
    "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "__ANON_1": "'//'",
    "BLOCK": "'block'", "NETWORK": "'network'", "REPEAT": "'repeat'", "$END": "end of file",
}


@lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    grammar = (Path(__file__).with_name("grammar.lark")).read_text()
    return lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def parse(text: str, file: str = "<spec>") -> Program:
    """Parse spec text into a Program; every failure is a located SpecError."""
    if len(text) > MAX_SOURCE_CHARS:
        raise SpecError(f"spec is {len(text):,} characters; the limit is {MAX_SOURCE_CHARS:,}")
    lines = text.splitlines() or [""]
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedInput as e:
        raise _syntax_error(e, file, lines) from None
    return _Builder(file, lines).program(tree)


def _syntax_error(e, file, lines) -> SpecError:
    line = max(1, getattr(e, "line", 1) or 1)
    column = max(1, getattr(e, "column", 1) or 1)
    at_end = isinstance(e, lark.exceptions.UnexpectedEOF) or (
        isinstance(e, lark.exceptions.UnexpectedToken) and e.token.type == "$END")
    if at_end or line > len(lines):
        line, column = len(lines), len(lines[-1]) + 1
    text = lines[line - 1] if line <= len(lines) else ""
    if isinstance(e, lark.exceptions.UnexpectedCharacters):
        found = f"unexpected character {text[column - 1:column]!r}"
        width = 1
    elif isinstance(e, lark.exceptions.UnexpectedToken) and e.token.type != "$END":
        token = str(e.token)
        found = "unexpected end of line" if e.token.type == "_SEP" else f"unexpected {token!r}"
        width = 1 if e.token.type == "_SEP" else len(token)
    else:
        found = "unexpected end of file"
        width = 1
    wanted = getattr(e, "expected", None) or getattr(e, "allowed", None) or ()
    expected = sorted({FRIENDLY.get(t, repr(t)) for t in wanted})
    span = Span(file, line, column, column + width, text)
    details = (f"expected {_one_of(expected)}",) if expected else ()
    return SpecError(f"syntax error: {found}", span, details)


OPERATOR_WORDS = {"'+'", "'-'", "'*'", "'/'", "'//'"}


def _one_of(words: list[str]) -> str:
    if len(words) > 6 and OPERATOR_WORDS <= set(words):  # LALR lists every operator; fold them
        words = sorted(set(words) - OPERATOR_WORDS) + ["an operator"]
    return words[0] if len(words) == 1 else "one of " + ", ".join(words)


class _Builder:
    """Walks lark's tree once and returns frozen AST nodes (no lark objects leak out)."""

    def __init__(self, file: str, lines: list[str]):
        self.file, self.lines = file, lines

    def span(self, item) -> Span:
        meta = getattr(item, "meta", item)
        line, column = meta.line, meta.column
        end = meta.end_column if meta.end_line == line else len(self.lines[line - 1]) + 1
        return Span(self.file, line, column, end, self.lines[line - 1])

    def program(self, tree) -> Program:
        blocks, networks = {}, []
        for node in tree.children:
            definition = self.definition(node)
            if node.data == "network":
                networks.append(definition)
            elif definition.name in blocks:
                raise SpecError(f"block '{definition.name}' is defined twice", definition.span,
                                (f"first defined at {blocks[definition.name].span.where()}",))
            else:
                blocks[definition.name] = definition
        if not networks:
            raise SpecError("no network in spec", Span(self.file, 1, 1, 2, self.lines[0]),
                            ("a spec needs one 'network NAME { ... }'",))
        if len(networks) > 1:
            raise SpecError("more than one network in spec", networks[1].span,
                            (f"first network at {networks[0].span.where()}",))
        return Program(self.file, blocks, networks[0])

    def definition(self, node) -> BlockDef:
        name, params, body = node.children
        head = self.span(name)
        params = tuple(self.param(p) for p in params.children) if params is not None else ()
        return BlockDef(str(name), params, self.body(body), head)

    def param(self, node) -> Param:
        name, default = node.children
        return Param(str(name), None if default is None else self.expr(default), self.span(name))

    def body(self, node) -> tuple:
        return tuple(self.stmt(s) for s in node.children)

    def stmt(self, node):
        if node.data == "repeat":
            count, body = node.children
            return RepeatStmt(self.expr(count), self.body(body), self.span(node))
        kind, name, sources, args = node.children
        refs = None if sources is None else tuple(self.ref(r) for r in sources.children)
        arglist = () if args is None else tuple(self.arg(a) for a in args.children)
        return LayerStmt(str(kind), None if name is None else str(name), refs, arglist,
                         self.span(node), self.span(kind),
                         None if name is None else self.span(name))

    def ref(self, node) -> Ref:
        return Ref(".".join(str(t) for t in node.children), self.span(node))

    def arg(self, node) -> Arg:
        if node.data == "keyword":
            key, value = node.children
            return Arg(str(key), self.value(value), self.span(key))
        (value,) = node.children
        return Arg(None, self.value(value), self.span(node))

    def value(self, node):
        if isinstance(node, lark.Tree) and node.data == "tuple":
            return TupleValue(tuple(self.expr(c) for c in node.children), self.span(node))
        if isinstance(node, lark.Tree) and node.data == "list":
            items = tuple(self.value(c) for c in node.children if c is not None)
            return ListValue(items, self.span(node))
        return self.expr(node)

    def expr(self, node):
        if node.data == "number":
            (token,) = node.children
            text = str(token)
            value = Fraction(text) if "." in text else int(text)
            return Num(value, self.span(token))
        if node.data == "name":
            (token,) = node.children
            return Name(str(token), self.span(token))
        left, right = node.children
        return BinOp(OPERATORS[node.data], self.expr(left), self.expr(right), self.span(node))
