"""Cost over a range of one or two symbols, without re-parsing: the analysis runs once with
the swept symbols free, its formula is lambdified, and NumPy evaluates it over whole arrays.

Formulas hold floor and ceiling of rationals; NumPy evaluates them in float64, which is exact
while every intermediate stays below 2^53. `evaluate` checks the largest corner exactly with
the analysis and falls back to Python integers when a value could pass that bound."""
from __future__ import annotations

import numpy as np
import sympy

from .analysis import analyze
from .errors import SpecError
from .sizes import symbol

METRICS = ("macs", "params", "trainable_params", "flops", "other_ops", "activations",
           "peak_activations")
EXACT_FLOAT = 2 ** 52


def parse_range(text: str) -> tuple[str, np.ndarray]:
    """'b=4..64' or 'b=4..64:4' -> ('b', array([4, 8, ..., 64]))."""
    name, sep, rest = text.partition("=")
    span, _, step = rest.partition(":")
    low, dots, high = span.partition("..")
    name = name.strip()
    try:
        low, high = int(low), int(high)
        step = int(step) if step else 1
    except ValueError:
        raise SpecError(f"--vary takes NAME=LOW..HIGH[:STEP] with whole numbers, got '{text}'") from None
    if not sep or not dots or not name or low <= 0 or high < low or step <= 0:
        raise SpecError(f"--vary takes NAME=LOW..HIGH[:STEP] with 0 < LOW <= HIGH, got '{text}'")
    return name, np.arange(low, high + 1, step, dtype=np.int64)


def formula(graph, names, metric: str, at: dict | None = None):
    if metric not in METRICS:
        raise SpecError(f"unknown metric '{metric}'", None, (f"metrics: {', '.join(METRICS)}",))
    return analyze(graph, at=at, free=tuple(names)).totals[metric]


def evaluate(graph, metric: str, ranges: dict, at: dict | None = None) -> np.ndarray:
    """The metric on the grid of `ranges` (name -> 1-D int array); one axis per name."""
    names = list(ranges)
    expr = sympy.sympify(formula(graph, names, metric, at))
    grids = np.meshgrid(*ranges.values(), indexing="ij")
    function = sympy.lambdify([symbol(n) for n in names], expr, modules="numpy")
    # the analysis at the lowest corner runs every shape check once: a range that starts where
    # a layer no longer fits is an error, not a curve through impossible sizes
    analyze(graph, at={**(at or {}), **{n: int(r.min()) for n, r in ranges.items()}})
    corner = {n: int(r.max()) for n, r in ranges.items()}
    exact_corner = analyze(graph, at={**(at or {}), **corner}).totals[metric]
    if abs(exact_corner) < EXACT_FLOAT:
        values = np.broadcast_to(function(*grids), grids[0].shape)
        return np.rint(values).astype(np.int64)
    exact = np.vectorize(lambda *xs: int(expr.xreplace(dict(zip(map(symbol, names), xs)))),
                         otypes=[object])
    return exact(*grids)
