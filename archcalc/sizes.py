"""Sizes are Python ints when known (the fast path) and sympy expressions when symbolic.

Decisions on symbols use sympy's three-valued answers; nothing here calls `simplify`.
"""
from __future__ import annotations

from fractions import Fraction

import sympy

Size = "int | sympy.Expr"


def symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, integer=True, positive=True)


def norm(x):
    """sympy Integers become ints, so concrete arithmetic stays on the fast path."""
    if isinstance(x, sympy.Integer):
        return int(x)
    if isinstance(x, sympy.Rational):
        return Fraction(int(x.p), int(x.q))
    return x


def is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _flat(a, b):
    """floor((floor(y) + c)/n) = floor((y + c)/n) for integers c, n: keeps nested floors flat."""
    c, rest = sympy.sympify(a).as_coeff_Add()
    if isinstance(rest, sympy.floor) and c.is_Integer and is_int(b):
        return (rest.args[0] + c) / b
    return None


def floor_div(a, b):
    if is_int(a) and is_int(b):
        return a // b
    flat = _flat(a, b)
    return norm(sympy.floor(flat if flat is not None else sympy.sympify(a) / b))


def exact_div(a, b):
    """a/b where the rules have already checked that b divides a."""
    if is_int(a) and is_int(b):
        return a // b
    return norm(sympy.sympify(a) / b)


def ceil_div(a, b):
    if is_int(a) and is_int(b):
        return -((-a) // b)
    return norm(sympy.ceiling(sympy.sympify(a) / b))


def total(terms):
    """Sum many terms: Python's sum for ints, one sympy.Add otherwise (`+=` is quadratic)."""
    terms = list(terms)
    if all(is_int(t) for t in terms):
        return sum(terms)
    return norm(sympy.Add(*terms))


def product(*factors):
    out = 1
    for f in factors:
        out = out * f
    return norm(out) if not is_int(out) else out


def is_positive(x) -> bool | None:
    if is_int(x) or isinstance(x, Fraction):
        return x > 0
    return sympy.sympify(x).is_positive


def is_nonnegative(x) -> bool | None:
    if is_int(x) or isinstance(x, Fraction):
        return x >= 0
    return sympy.sympify(x).is_nonnegative


def is_integer(x) -> bool | None:
    if is_int(x):
        return True
    if isinstance(x, Fraction):
        return x.denominator == 1
    return sympy.sympify(x).is_integer


def differ(a, b) -> bool | None:
    """True when a != b is certain, False when equal, None when undecided."""
    if is_int(a) and is_int(b):
        return a != b
    zero = sympy.sympify(a - b).is_zero
    return None if zero is None else not zero


def show(x) -> str:
    """How a size is printed: ints plainly, fractions as a/b, sympy in its own notation."""
    if isinstance(x, Fraction):
        return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"
    return str(x)


def decimal(x: Fraction) -> str:
    """112.5 for 225/2; a fraction when the decimal does not terminate."""
    d = x.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d != 1:
        return show(x)
    text = f"{float(x):.6f}".rstrip("0").rstrip(".")
    return text
