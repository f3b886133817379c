"""Cost over a range of one or two symbols, without re-parsing: the analysis runs once with
the swept symbols free, its formula is lambdified, and NumPy evaluates it over whole arrays.

Formulas hold floor and ceiling of rationals. Each floor(p/q) is evaluated as the integer
floor division p // q on int64 arrays (and each ceiling as -(-p // q)), so no float rounding
enters: floor(H/3 - 5/3) at H = 71 is (71 - 5) // 3 = 22, where float64 gives 21.999... -> 21.
int64 is used only where a bound of every value on the way (`magnitude`, over the symbols'
ranges) stays below 2^60; elsewhere the same arithmetic runs on Python integers, so a sweep is
exact even where a cost peaks inside the range."""
from __future__ import annotations

import numpy as np
import sympy

from .analyzer import analyze
from ..errors import SpecError
from ..sizes import MAX_DIGITS, expr, symbol

METRICS = ("macs", "params", "trainable_params", "flops", "other_ops", "activations",
           "peak_activations", "traffic_bytes")
EXACT_INT64 = 2 ** 60  # room below 2^63 for the numerators of the floor divisions
MAX_POINTS = 10 ** 7   # a grid's points: each costs a few int64 temporaries (about 1 GB here)


class FloorDiv(sympy.Function):
    """p // q, an integer (so an enclosing floor or ceiling can be rewritten too)."""
    is_integer = True


class CeilDiv(sympy.Function):
    """-(-p // q), the ceiling of p/q."""
    is_integer = True


INTEGER_MODULE = {"FloorDiv": np.floor_divide, "CeilDiv": lambda p, q: -np.floor_divide(-p, q)}


def parse_range(text: str) -> tuple[str, np.ndarray]:
    """'b=4..64' or 'b=4..64:4' -> ('b', array([4, 8, ..., 64]))."""
    name, sep, rest = text.partition("=")
    span, _, step = rest.partition(":")
    low, dots, high = span.partition("..")
    name = name.strip()
    if max(len(t.strip().lstrip("+-0")) for t in (low, high, step)) > MAX_DIGITS:
        raise SpecError(f"--vary {name}: sizes have at most {MAX_DIGITS} digits")  # before int()
    try:
        low, high = int(low), int(high)
        step = int(step) if step else 1
    except ValueError:
        raise SpecError(f"--vary takes NAME=LOW..HIGH[:STEP] with whole numbers, got '{text}'") from None
    if not sep or not dots or not name or low <= 0 or high < low or step <= 0:
        raise SpecError(f"--vary takes NAME=LOW..HIGH[:STEP] with 0 < LOW <= HIGH, got '{text}'")
    check_points({name: (high - low) // step + 1}, text)  # before the values are made
    # past int64 the values stay Python integers, and evaluate's exact path takes them
    fits = high + step <= np.iinfo(np.int64).max
    return name, np.arange(low, high + 1, step, dtype=np.int64 if fits else object)


def check_points(counts: dict, text: str | None = None) -> None:
    """A grid of at most MAX_POINTS points, refused with its size before anything is made."""
    points = 1
    for count in counts.values():
        points *= count
    if points > MAX_POINTS:
        what = f"--vary {text}" if text else " x ".join(f"{n} ({c:,})" for n, c in counts.items())
        raise SpecError(f"{what}: {points:,} points; a sweep evaluates at most {MAX_POINTS:,}",
                        None, ("take a step (NAME=LOW..HIGH:STEP) or a narrower range",))


def nice_range(low: int, high: int, points: int = 60) -> list[int]:
    """About `points` whole numbers from low to high, evenly spaced, low first."""
    step = max(1, -(-(high - low) // points))
    return list(range(low, high + 1, step))


def formula(net, names, metric: str, at: dict | None = None):
    if metric not in METRICS:
        raise SpecError(f"unknown metric '{metric}'", None, (f"metrics: {', '.join(METRICS)}",))
    return analyze(net, at=at, free=tuple(names)).totals[metric]


def integer_form(e):
    """floor(p/q) -> FloorDiv(p, q) and ceiling(p/q) -> CeilDiv(p, q) where p has integer
    coefficients over integer-valued atoms and q is a positive integer, innermost first;
    anything else is left as it is (and `evaluate` then takes the exact path)."""
    def divide(kind, original):
        def rewrite(arg):
            p, q = sympy.fraction(sympy.together(arg))
            p = sympy.expand(p)
            coefficients = p.as_coefficients_dict().values()
            if q.is_Integer and q > 0 and p.is_integer and all(c.is_Integer for c in coefficients):
                return kind(p, q)
            return original(arg)
        return rewrite
    e = e.replace(sympy.floor, divide(FloorDiv, sympy.floor))
    return e.replace(sympy.ceiling, divide(CeilDiv, sympy.ceiling))


def evaluate(net, metric: str, ranges: dict, at: dict | None = None) -> np.ndarray:
    """The metric on the grid of `ranges` (name -> 1-D int array); one axis per name."""
    names = list(ranges)
    check_points({n: len(r) for n, r in ranges.items()})
    exact_expr = expr(formula(net, names, metric, at))
    grids = np.meshgrid(*ranges.values(), indexing="ij")
    # the analysis at the lowest corner runs every shape check once: a range that starts where
    # a layer no longer fits is an error, not a curve through impossible sizes
    analyze(net, at={**(at or {}), **{n: int(r.min()) for n, r in ranges.items()}})
    bounds = {n: max(abs(int(r.min())), abs(int(r.max()))) for n, r in ranges.items()}
    return integer_function(exact_expr, bounds)(*grids)


def integer_function(e, bounds: dict):
    """A function of one integer array per name of `bounds` (all of one shape) giving the
    formula `e` at each point exactly: on int64 where every value on the way is bounded below
    2^60 for names up to their bound (name -> largest |value| the arrays hold), on Python ints
    otherwise, or where a rounding stays."""
    names = list(bounds)
    e = expr(e)
    symbols = [symbol(n) for n in names]
    integer = integer_form(e)
    if integer.has(sympy.floor, sympy.ceiling):
        exact = np.vectorize(lambda *xs: int(e.xreplace(dict(zip(symbols, xs)))), otypes=[object])
        return lambda *columns: exact(*columns)
    # lambdify puts each symbol into the generated code's namespace under its own name, where a
    # symbol named FloorDiv or maximum would shadow the function: the code sees private names
    private = [sympy.Symbol(f"_swept{i}") for i in range(len(symbols))]
    function = sympy.lambdify(private, integer.xreplace(dict(zip(symbols, private))),
                              modules=[INTEGER_MODULE, "numpy"])
    if magnitude(integer, {s: bounds[n] for s, n in zip(symbols, names)}) < EXACT_INT64:
        return lambda *columns: np.asarray(np.broadcast_to(function(*columns), columns[0].shape),
                                           dtype=np.int64)

    def exact_ints(*columns):  # past int64: the same integer arithmetic on Python ints
        values = function(*(c.astype(object) for c in columns))
        return np.asarray(np.broadcast_to(values, columns[0].shape), dtype=object)
    return exact_ints


def magnitude(e, bounds: dict) -> int | float:
    """An upper bound of |value| of `e` and of every subexpression, with each symbol at most
    its bound in size: the largest number the int64 evaluation could meet. Sums and products
    bound by the triangle inequality; a form it does not know is unbounded (Python ints then)."""
    worst = 0

    def walk(node):
        nonlocal worst
        if node.is_Symbol:
            m = bounds.get(node, float("inf"))
        elif node.is_Integer:
            m = abs(int(node))
        elif node.is_Rational:
            m = -(-abs(node.p) // node.q)
        elif node.is_Add:
            m = sum(walk(a) for a in node.args)
        elif node.is_Mul:
            m = 1
            for a in node.args:
                m *= walk(a)
        elif node.is_Pow and node.exp.is_Integer and node.exp >= 0:
            m = walk(node.base) ** int(node.exp)
        elif isinstance(node, (FloorDiv, CeilDiv)):
            m = walk(node.args[0]) + 1  # |p // q| <= |p| + 1 for q >= 1
            walk(node.args[1])
        elif isinstance(node, (sympy.Max, sympy.Min)):
            m = max(walk(a) for a in node.args)
        else:
            m = float("inf")
        worst = max(worst, m)
        return m
    walk(expr(e))
    return worst
