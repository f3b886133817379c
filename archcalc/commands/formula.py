"""`archcalc formula SPEC`: totals as closed forms in the network's free symbols."""
from __future__ import annotations

import sympy

from ..analysis.analyzer import analyze
from ..source import load
from ..errors import SpecError
from ..sizes import ceiling_form, expr, show
from . import LABELS, add_set_option, add_spec_argument, parse_names, parse_sets

# the totals that are sums over the layers (the peak of live activations is a maximum)
QUANTITIES = ("params", "trainable_params", "macs", "flops", "other_ops", "activations",
              "traffic_bytes")


def add_parser(sub) -> None:
    p = sub.add_parser("formula", help="params and MACs as formulas in the free symbols")
    add_spec_argument(p)
    p.add_argument("--symbols", metavar="NAMES", default=None,
                   help="comma-separated symbols to keep free (default: all); others take "
                        "their defaults or --set values")
    add_set_option(p, "bind a symbol (repeatable)")
    p.add_argument("--latex", action="store_true", help="print LaTeX instead of plain text")
    p.set_defaults(main=main)


def formulas(net, free, at) -> dict:
    """Quantity -> expression, with `free` symbols left free (a pure function for tests)."""
    totals = analyze(net, at=at, free=free).totals
    return {key: totals[key] for key in QUANTITIES}


def main(args) -> int:
    net = load(args.spec)
    names = [s.name for s in net.symbols]
    at = parse_sets(args.set)
    free = names if args.symbols is None else parse_names(args.symbols)
    clash = [n for n in free if n in at]
    if clash and args.symbols is not None:
        raise SpecError(f"symbol '{clash[0]}' is both kept free and bound with --set")
    free = [n for n in free if n not in at]
    result = formulas(net, free, at)
    shown = ", ".join(free) if free else "none"
    print(f"{net.name}: free symbols {shown}")
    width = max(len(LABELS[key]) for key in QUANTITIES)
    for key in QUANTITIES:
        shown_expr = ceiling_form(result[key])
        body = sympy.latex(expr(shown_expr)) if args.latex else show(shown_expr)
        print(f"{LABELS[key]:<{width}} = {body}")
    return 0
