"""Spec arithmetic: argument expressions evaluated exactly. Ints and Fractions stay Python
numbers; a symbol makes sympy expressions, built directly, never from text."""
from __future__ import annotations

import operator
from fractions import Fraction

import sympy

from .. import kinds
from ..errors import SpecError, did_you_mean
from ..sizes import MAX_DIGITS, decimal, digits, expr, floor_div, norm, show, too_large
from .syntax import BinOp, ListValue, Name, Num, TupleValue

MAX_EXPR_NODES = 200   # a symbolic argument (after block arguments are substituted)
WORDS = {"same", "on", "off", "floor", "ceil"}
# Words that only some arguments take (mode=bilinear) are values too, but not reserved names.
VALUES = WORDS | {w for words in kinds.WORDS.values() for w in words}


def show_value(value) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, Fraction):
        return decimal(value)
    return show(value)


def value_of(arg, env, who, trace):
    """An argument's value; an error in it names the layer or block instance it belongs to."""
    try:
        return argument_value(arg.value, env)
    except SpecError as e:
        raise SpecError(f"{who}: {e.message}", e.span, e.details + tuple(trace)) from None


def argument_value(node, env):
    if isinstance(node, TupleValue):
        return tuple(evaluate(i, env) for i in node.items)
    if isinstance(node, ListValue):
        return [argument_value(i, env) for i in node.items]
    return evaluate(node, env)


def evaluate(node, env):
    """Evaluate a size expression: ints and Fractions stay exact, symbols become sympy."""
    if isinstance(node, Num):
        return checked(node.value, node)
    if isinstance(node, Name):
        if node.id in env:
            return env[node.id]
        if node.id in VALUES:
            return node.id
        hint = did_you_mean(node.id, set(env) | VALUES)
        known = (f"names here: {', '.join(sorted(env))}" if env else "no symbols or parameters here") \
            + f"; words: {', '.join(sorted(VALUES))}"
        raise SpecError(f"unknown name '{node.id}'", node.span, (hint or known,))
    if isinstance(node, (TupleValue, ListValue)):
        raise SpecError("a tuple or list cannot be used in arithmetic", node.span)
    left, right = evaluate(node.left, env), evaluate(node.right, env)
    for value in (left, right):
        if isinstance(value, (str, tuple, list)):
            raise SpecError(f"{show_value(value)} cannot be used in arithmetic", node.span)
    return checked(arith(node, left, right), node)


ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul}


def arith(node: BinOp, a, b):
    """Exact arithmetic: ints and Fractions stay Python numbers; a symbol on either side makes
    sympy expressions (built directly, never from text)."""
    if node.op in ("/", "//") and b == 0:
        raise SpecError("division by zero", node.span)
    numbers = isinstance(a, (int, Fraction)) and isinstance(b, (int, Fraction))
    if not numbers:
        a, b = expr(a), expr(b)
    if node.op in ARITHMETIC:
        result = ARITHMETIC[node.op](a, b)
    elif node.op == "//":
        result = a // b if numbers else floor_div(a, b)  # exact for ints and Fractions alike
    else:
        result = Fraction(a) / Fraction(b) if numbers else a / b
    if isinstance(result, Fraction) and result.denominator == 1:
        return int(result)
    return norm(result) if isinstance(result, sympy.Basic) else result


def checked(value, node):
    """Sizes stay below 10^MAX_DIGITS, and a symbolic one small, so that every count made from
    them is exact and quick (block arguments could otherwise double an expression per level)."""
    if too_large(value):
        raise SpecError(f"value too large: {digits(value)} digits; sizes have at most {MAX_DIGITS}",
                        node.span)
    if isinstance(value, sympy.Basic):
        todo, seen = [value], 0
        while todo:
            e = todo.pop()
            seen += 1
            if seen > MAX_EXPR_NODES:
                raise SpecError(f"expression too large: more than {MAX_EXPR_NODES} terms",
                                node.span, ("bind the symbols, or write the size more simply",))
            if e.is_Rational and too_large(norm(e)):
                raise SpecError(f"value too large: a number in {clip(value)} has more than "
                                f"{MAX_DIGITS} digits", node.span)
            todo.extend(e.args)
    return value


def clip(value) -> str:
    text = show(value)
    return text if len(text) <= 60 else text[:57] + "..."
