"""What a report shows of one network, computed once: the analysis at the default sizes, the
variant frozen through the head layer, the cost along the free sizes, and the smallest input
that still fits.

A few analyses per network, however large its input: the default, the frozen variant, one with
the swept sizes free (its rows give every size, and its totals every cost, as a formula), and
one or two concrete ones at the lowest point of the series. The formulas are evaluated with
`sweep.integer_function`, exactly, over many sizes at once."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import sympy

from ..errors import SpecError
from ..lang.write import arguments, value_text
from ..network import Network
from ..sizes import symbol
from .analyzer import Analysis, analyze, bind_op
from .sweep import EXACT_INT64, integer_function, nice_range

SERIES_POINTS = 80    # about this many sizes on a scaling curve
SEARCH_POINTS = 1024  # sizes evaluated at once while looking for the smallest that fits
SQUARE = ("H", "W")   # an image's height and width, varied together


@dataclass(frozen=True)
class Scaling:
    """Cost along the free sizes: H = W together, or else the first symbol on its own."""
    names: tuple[str, ...]           # ("H", "W") varied together, or one symbol
    xs: tuple[int, ...]              # the sizes, ascending; the default among them
    macs: tuple[int, ...]
    params: tuple[int, ...] | None   # shown for one symbol only


@dataclass(frozen=True)
class Bundle:
    """Everything a network's report shows; the renderer reads nothing else."""
    analysis: Analysis               # at the default sizes
    head: str | None                 # the layer feeding the last weighted layer
    frozen: Analysis | None          # frozen through `head`: a new head on cached features
    scaling: Scaling | None          # None without free sizes
    smallest: int | None             # the smallest H = W at which every layer fits
    free: Analysis | None = None     # the swept sizes left free: each row's figures as formulas
    args: dict | None = None         # layer -> ((argument, its text), ...): required or not default


def report_bundle(net: Network) -> Bundle:
    """The bundle of `net`: at most five analyses (two without free sizes)."""
    a = analyze(net)
    unbound = [k for k, v in a.symbols.items() if v is None]
    if unbound:
        raise SpecError(f"cannot report '{net.file}': size '{unbound[0]}' has no default value",
                        None, ("a report analyses every network at its default sizes",
                               f"archcalc analyze --set {unbound[0]}=... analyses it at a "
                               "size you choose"))
    head = head_layer(a)
    frozen = None if head is None else analyze(net, at=a.symbols, freeze=head)
    names = tuple(s.name for s in net.symbols)
    args = layer_arguments(net)
    if not names:
        return Bundle(a, head, frozen, None, None, None, args)
    if set(SQUARE) <= set(names):
        free = analyze(net, free=SQUARE)
        scaling, smallest = square_series(net, a, free)
        return Bundle(a, head, frozen, scaling, smallest, free, args)
    free = analyze(net, free=names[:1])
    return Bundle(a, head, frozen, symbol_series(net, a, names[0], free), None, free, args)


def layer_arguments(net: Network) -> dict:
    """Each layer's hyperparameters as written in a spec, for the report to show as they are
    (any kind: its argument names come from its class)."""
    return {layer.name: tuple((k, value_text(v)) for k, v in arguments(layer.op))
            for layer in net.layers}


def head_layer(a: Analysis) -> str | None:
    """The layer feeding the last layer with weights: freeze through it to train a new head."""
    weighted = [r for r in a.rows if r.params != 0]
    if len(weighted) < 2 or len(weighted[-1].inputs) != 1:
        return None
    return weighted[-1].inputs[0]


def square_series(net: Network, a: Analysis, free: Analysis) -> tuple[Scaling, int]:
    """MACs along H = W (free in `free`), from the smallest size that fits to 4 x the default."""
    default = a.symbols["H"]
    low = smallest_size(net, free, SQUARE, default)
    xs = sorted(set(nice_range(low, max(4 * default, low + 8), SERIES_POINTS)) | {default})
    return Scaling(SQUARE, tuple(xs), along(free.totals["macs"], SQUARE, xs), None), low


def symbol_series(net: Network, a: Analysis, name: str, free: Analysis) -> Scaling:
    """MACs and params against one symbol (free in `free`), from its smallest valid value to
    4 x its default."""
    default = a.symbols[name]
    low = smallest_size(net, free, (name,), default)
    xs = sorted(set(nice_range(low, max(4 * default, low + 8), SERIES_POINTS)) | {default})
    return Scaling((name,), tuple(xs), along(free.totals["macs"], (name,), xs),
                   along(free.totals["params"], (name,), xs))


def along(formula, names, xs) -> tuple[int, ...]:
    """The formula at each x, every name in `names` bound to it."""
    function = integer_function(formula, {n: xs[-1] for n in names})
    column = sizes_column(xs)
    return tuple(int(v) for v in function(*[column] * len(names)))


def sizes_column(xs) -> np.ndarray:
    return np.array(xs, dtype=np.int64 if xs[-1] < EXACT_INT64 else object)


def smallest_size(net: Network, free: Analysis, names: tuple[str, ...], high: int) -> int:
    """The smallest value in 1..high of the `names` (H = W together, or one symbol) at which
    every layer fits. Sizes only grow with it, so the first value at which every size that must
    be at least 1 is (`least_one`) is found from their formulas over many values at once, then
    confirmed by analyses: it fits, one less not."""
    sizes = least_one(net, free, names)
    functions = [integer_function(s, dict.fromkeys(names, high)) for s in sizes]

    def fits(xs):
        column, ok = sizes_column(xs), np.ones(len(xs), dtype=bool)
        for f in functions:
            ok &= np.asarray(f(*[column] * len(names)) >= 1, dtype=bool)
        return ok
    x = first_fit(fits, high)
    if fits_at(net, names, x) and (x == 1 or not fits_at(net, names, x - 1)):
        return x
    # another rule decides (a join whose inputs agree at even sizes only): search by analyses
    return bisect_size(net, names, high)


def least_one(net: Network, free: Analysis, names: tuple[str, ...]) -> set:
    """The formulas in H and W that are at least 1 wherever the network fits: every output
    size, and for a window rounded up (round=ceil) its size rounded down, which is at least 1
    exactly when the window fits in its padded input (rounded up, a window that misses by less
    than its stride still gives a size of 1)."""
    subs = {symbol(k): v for k, v in free.symbols.items() if v is not None}
    sizes = set()
    for r in free.rows:
        sizes.update(r.out_shape)
        op = net.layer(r.name).op
        if getattr(op, "round", None) == "ceil":
            floor_op = replace(bind_op(op, subs), round="floor")
            sizes.update(floor_op.out(r.in_shapes).shape)
    return {s for s in sizes if isinstance(s, sympy.Basic) and s.free_symbols
            and {str(f) for f in s.free_symbols} <= set(names)}


def first_fit(fits, high: int) -> int:
    """The smallest x in 1..high where `fits` (a list of sizes -> one bool each) holds, for a
    predicate that holds from some x on; SEARCH_POINTS sizes a round, one round up to 1024."""
    low = 1
    while low < high:
        step = -(-(high - low) // (SEARCH_POINTS - 1))
        xs = list(range(low, high, step)) + [high]
        ok = fits(xs)
        i = int(np.argmax(ok)) if ok.any() else len(xs) - 1
        if i == 0 or step == 1:
            return xs[i]
        low, high = xs[i - 1] + 1, xs[i]
    return low


def fits_at(net: Network, names: tuple[str, ...], x: int) -> bool:
    try:
        analyze(net, at=dict.fromkeys(names, x))
        return True
    except SpecError:
        return False


def bisect_size(net: Network, names: tuple[str, ...], high: int) -> int:
    low = 1
    while low < high:
        mid = (low + high) // 2
        if fits_at(net, names, mid):
            high = mid
        else:
            low = mid + 1
    return low
