"""Text -> AST. The grammar file is the reference for the syntax; this module only builds
immutable nodes that carry their source spans, and turns lark's errors into located ones."""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import lark

from ..errors import Span, SpecError
from ..sizes import MAX_DIGITS
from .syntax_errors import syntax_error

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
MAX_LINE_CHARS = 10_000
MAX_STATEMENTS = 250_000  # written out; graph.MAX_LAYERS bounds what repeats and blocks make
SEPARATORS = re.compile(r"(?:[ \t]*(?:#[^\n]*)?(?:\r?\n|;))+")  # the grammar's _SEP
MAX_NESTING = 100  # brackets, chained operators and repeats, counted together
MAX_NUMBER_CHARS = MAX_DIGITS + 20  # a literal longer than this is refused before int() reads it


@lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    grammar = (Path(__file__).with_name("grammar.lark")).read_text()
    return lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def parse(text: str, file: str = "<spec>") -> Program:
    """Parse spec text into a Program; every failure is a located SpecError."""
    if text.startswith("\ufeff"):  # a byte order mark some editors write: no part of the text
        text = text[1:]
    if len(text) > MAX_SOURCE_CHARS:
        raise too_long(text, file)
    lines = text.split("\n")  # lark counts lines at '\n' only; str.splitlines() splits at more
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE_CHARS:
            raise SpecError(f"line {number} is {len(line):,} characters long; the limit is "
                            f"{MAX_LINE_CHARS:,}", Span(file, number, MAX_LINE_CHARS + 1,
                                                         MAX_LINE_CHARS + 2, line))
    if len(lines) + text.count(";") > MAX_STATEMENTS:  # cheap bound first; count only if needed
        for count, match in enumerate(SEPARATORS.finditer(text), start=1):
            if count > MAX_STATEMENTS:
                number = text.count("\n", 0, match.start()) + 1
                raise SpecError(f"more than {MAX_STATEMENTS:,} statements; the spec is refused "
                                f"before it is read", Span(file, number, 1, 2, lines[number - 1]),
                                ("write long runs of layers with 'repeat'",))
    try:
        tree = _parser().parse(text)
        return _Builder(file, lines).program(tree)
    except lark.exceptions.UnexpectedInput as e:
        raise syntax_error(_parser(), text, e, file, lines) from None
    except RecursionError:  # the nesting limit should stop this first; never a traceback
        raise SpecError(f"spec nested too deeply to read (the limit is {MAX_NESTING} levels)") from None


def too_long(text: str, file: str) -> SpecError:
    """The size limit's error, located at the first character past the limit."""
    start = text.rfind("\n", 0, MAX_SOURCE_CHARS) + 1
    end = text.find("\n", MAX_SOURCE_CHARS)
    line = text[start:end if end >= 0 else len(text)]
    column = MAX_SOURCE_CHARS - start + 1
    return SpecError(f"spec is {len(text):,} characters; the limit is {MAX_SOURCE_CHARS:,}",
                     Span(file, text.count("\n", 0, start) + 1, column, column + 1, line))


class _Builder:
    """Walks lark's tree once and returns frozen AST nodes (no lark objects leak out).

    Every recursive step passes its depth on; past MAX_NESTING levels the spec is refused with
    a located message, long before Python's recursion limit."""

    def __init__(self, file: str, lines: list[str]):
        self.file, self.lines = file, lines

    def span(self, item) -> Span:
        meta = getattr(item, "meta", item)
        line, column = meta.line, meta.column
        end = meta.end_column if meta.end_line == line else len(self.lines[line - 1]) + 1
        return Span(self.file, line, column, end, self.lines[line - 1])

    def nest(self, node, depth: int) -> int:
        if depth > MAX_NESTING:
            raise SpecError(f"nested more than {MAX_NESTING} levels deep", self.span(node),
                            ("brackets, repeats and chained operators each add a level",))
        return depth + 1

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
        return BlockDef(str(name), params, self.body(body, 1), head)

    def param(self, node) -> Param:
        name, default = node.children
        default = None if default is None else self.expr(default, 1)
        return Param(str(name), default, self.span(name))

    def body(self, node, depth) -> tuple:
        return tuple(self.stmt(s, depth) for s in node.children)

    def stmt(self, node, depth):
        if node.data == "repeat":
            depth = self.nest(node, depth)
            count, body = node.children
            return RepeatStmt(self.expr(count, depth), self.body(body, depth), self.span(node))
        kind, name, sources, args = node.children
        refs = None if sources is None else tuple(self.ref(r) for r in sources.children)
        arglist = () if args is None else tuple(self.arg(a, depth) for a in args.children)
        return LayerStmt(str(kind), None if name is None else str(name), refs, arglist,
                         self.span(node), self.span(kind),
                         None if name is None else self.span(name))

    def ref(self, node) -> Ref:
        return Ref(".".join(str(t) for t in node.children), self.span(node))

    def arg(self, node, depth) -> Arg:
        if node.data == "keyword":
            key, value = node.children
            return Arg(str(key), self.value(value, depth), self.span(key))
        (value,) = node.children
        return Arg(None, self.value(value, depth), self.span(node))

    def value(self, node, depth):
        if isinstance(node, lark.Tree) and node.data == "tuple":
            depth = self.nest(node, depth)
            return TupleValue(tuple(self.expr(c, depth) for c in node.children), self.span(node))
        if isinstance(node, lark.Tree) and node.data == "list":
            depth = self.nest(node, depth)
            items = tuple(self.value(c, depth) for c in node.children if c is not None)
            return ListValue(items, self.span(node))
        return self.expr(node, depth)

    def expr(self, node, depth):
        if node.data == "number":
            (token,) = node.children
            text = str(token)
            if len(text) > MAX_NUMBER_CHARS:
                raise SpecError(f"a number of {len(text):,} digits; sizes have at most {MAX_DIGITS}",
                                self.span(token))
            value = Fraction(text) if "." in text else int(text)
            return Num(value, self.span(token))
        if node.data == "name":
            (token,) = node.children
            return Name(str(token), self.span(token))
        depth = self.nest(node, depth)
        left, right = node.children
        return BinOp(OPERATORS[node.data], self.expr(left, depth), self.expr(right, depth),
                     self.span(node))
