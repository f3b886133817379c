"""Sizes are Python ints when known (the fast path) and sympy expressions when symbolic.

Decisions on symbols use sympy's three-valued answers; nothing here calls `simplify`, and
nothing here parses text: `expr` turns ints and Fractions into sympy numbers directly, so no
string can ever reach `sympify`.
"""
from __future__ import annotations

from fractions import Fraction

import sympy

from .errors import SpecError

Size = "int | sympy.Expr"

# Every size in a spec, and every value bound to a symbol, is below 10^40. Counts built from
# them (a flatten multiplies three sizes, a layer's MACs a few more) stay exact Python ints far
# below the 4,300-digit printing limit and small enough for a float in the MB column.
MAX_DIGITS = 40
LIMIT = 10 ** MAX_DIGITS


# A layer's output sizes are held to the same bound as the spec's (checked after every layer,
# so a pad, an upsample or a flatten cannot grow them past it), and a cost, the product of at
# most six sizes (a conv's MACs: n_H n_W n_C f f n_C_prev), to six times as many digits: the
# totals of 200,000 layers then stay far below float's 10^308 and the 4,300-digit limit.
MAX_COST_DIGITS = 6 * MAX_DIGITS


def digits(x) -> int:
    """The decimal digits of an int, or of a Fraction's larger part."""
    if isinstance(x, Fraction):
        return max(digits(x.numerator), digits(x.denominator))
    return len(str(abs(x)))


def too_large(x) -> bool:
    """True for an int or Fraction whose numerator or denominator reaches 10^MAX_DIGITS."""
    if isinstance(x, Fraction):
        return abs(x.numerator) >= LIMIT or x.denominator >= LIMIT
    return isinstance(x, int) and abs(x) >= LIMIT


def expr(x) -> sympy.Expr:
    """A size as a sympy expression, without `sympify`: ints, Fractions and sympy only."""
    if isinstance(x, sympy.Basic):
        return x
    if isinstance(x, int) and not isinstance(x, bool):
        return sympy.Integer(x)
    if isinstance(x, Fraction):
        return sympy.Rational(x.numerator, x.denominator)
    raise TypeError(f"not a size: {x!r}")


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


def _flat(a, b, rounding=sympy.floor):
    """floor((floor(y) + c)/n) = floor((y + c)/n) for integers c and n > 0, and the same for
    ceiling: keeps nested floors (and nested ceilings) flat."""
    c, rest = expr(a).as_coeff_Add()
    if isinstance(rest, rounding) and c.is_Integer and is_int(b) and b > 0:
        return (rest.args[0] + c) / b
    return None


def floor_div(a, b):
    if is_int(a) and is_int(b):
        return a // b
    flat = _flat(a, b)
    return norm(sympy.floor(flat if flat is not None else expr(a) / b))


def exact_div(a, b):
    """a/b where the rules have already checked that b divides a."""
    if is_int(a) and is_int(b):
        return a // b
    return norm(expr(a) / b)


def ratio(a, b):
    """a/b exactly: a Fraction (an int when whole) for numbers, sympy otherwise; never a float."""
    if is_int(a) and is_int(b):
        q = Fraction(a, b)
        return q.numerator if q.denominator == 1 else q
    return norm(expr(a) / expr(b))


def ceil_div(a, b):
    if is_int(a) and is_int(b):
        return -((-a) // b)
    flat = _flat(a, b, sympy.ceiling)
    return norm(sympy.ceiling(flat if flat is not None else expr(a) / b))


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
    return expr(x).is_positive


def is_nonnegative(x) -> bool | None:
    if is_int(x) or isinstance(x, Fraction):
        return x >= 0
    return expr(x).is_nonnegative


def is_integer(x) -> bool | None:
    if is_int(x):
        return True
    if isinstance(x, Fraction):
        return x.denominator == 1
    return expr(x).is_integer


def differ(a, b) -> bool | None:
    """True when a != b is certain, False when equal, None when undecided."""
    if is_int(a) and is_int(b):
        return a != b
    zero = expr(a - b).is_zero
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
    rounded = round(x, 6)  # exact: no float, so large sizes print every digit
    sign = "-" if rounded < 0 else ""
    whole, part = divmod(abs(rounded.numerator) * 10 ** 6 // rounded.denominator, 10 ** 6)
    text = f"{sign}{whole}.{part:06d}".rstrip("0").rstrip(".")
    return text


def ceiling_form(e):
    """floor((x - 1)/n) + 1 = ceiling(x/n) for an integer x and n > 0: the form a reader knows
    (ResNet's stem is ceiling(H/2), not floor(H/2 - 1/2) + 1). For display only."""
    if not isinstance(e, sympy.Basic):
        return e

    def is_floor_plus_one(a):
        if not isinstance(a, sympy.Add):
            return False
        c, rest = a.as_coeff_Add()
        return c == 1 and isinstance(rest, sympy.floor)

    def rewrite(a):
        num, den = sympy.fraction(sympy.together(a.as_coeff_Add()[1].args[0]))
        x = num + 1
        if den.is_Integer and den > 0 and x.is_integer:
            return sympy.ceiling(x / den)
        return a

    return e.replace(is_floor_plus_one, rewrite)


def subs(e, **values):
    """A figure with symbols replaced by name: subs(f.totals["macs"], H=448, W=448). The spec's
    symbols carry assumptions (integer, positive), so sympy's own e.subs({"H": 448}) finds no
    'H' and returns e unchanged; here every symbol called H is replaced. A name that is not in
    e (a number has none) is an error, so a typo cannot pass silently. A whole result is an
    int. Analysis.totals_at substitutes into every total at once."""
    found = {s.name: s for s in e.free_symbols} if isinstance(e, sympy.Basic) else {}
    for name, value in values.items():
        if name not in found:
            raise SpecError(f"no symbol '{name}' in {show(e)}", None,
                            (f"its symbols: {', '.join(sorted(found)) or 'none'}",))
        if not is_int(value):
            raise SpecError(f"symbol '{name}' must be given a whole number, got {value!r}")
    if not values:
        return e
    return norm(e.xreplace({found[k]: sympy.Integer(v) for k, v in values.items()}))


REPR_WIDTH = 60


def symbol_names(x) -> set:
    return {s.name for s in x.free_symbols} if isinstance(x, sympy.Basic) else set()


def brief(x) -> str:
    """A total for a one-line repr: 138,357,544, or a formula (in ceiling form) cut after the
    whole terms that fit in REPR_WIDTH."""
    if is_int(x):
        return f"{x:,}"
    text = show(ceiling_form(x))
    if len(text) <= REPR_WIDTH:
        return text
    depth, cut = 0, 0
    for i, ch in enumerate(text[:REPR_WIDTH]):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and text.startswith(" + ", i):
            cut = i
    return (text[:cut] if cut else text[:REPR_WIDTH]) + " + ..."
