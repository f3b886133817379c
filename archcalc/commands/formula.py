"""`archcalc formula SPEC`: totals as closed forms in the network's free symbols."""
from __future__ import annotations

import sympy

from ..analysis.analyzer import analyze
from ..source import load
from ..errors import SpecError
from ..sizes import ceiling_form, expr, show
from . import parse_sets

QUANTITIES = (("params", "params"), ("trainable_params", "trainable params"),
              ("macs", "MACs"), ("flops", "FLOPs"), ("other_ops", "other ops"),
              ("activations", "activations"))


def add_parser(sub) -> None:
    p = sub.add_parser("formula", help="params and MACs as formulas in the free symbols")
    p.add_argument("spec", help="a .arch spec file")
    p.add_argument("--symbols", metavar="NAMES", default=None,
                   help="comma-separated symbols to keep free (default: all); others take "
                        "their defaults or --set values")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                   help="bind a symbol (repeatable)")
    p.add_argument("--latex", action="store_true", help="print LaTeX instead of plain text")
    p.set_defaults(main=main)


def formulas(net, free, at) -> dict:
    """Quantity -> expression, with `free` symbols left free (a pure function for tests)."""
    totals = analyze(net, at=at, free=free).totals
    return {key: totals[key] for key, _ in QUANTITIES}


def main(args) -> int:
    net = load(args.spec)
    names = [s.name for s in net.symbols]
    at = parse_sets(args.set)
    free = names if args.symbols is None else [n.strip() for n in args.symbols.split(",") if n.strip()]
    clash = [n for n in free if n in at]
    if clash and args.symbols is not None:
        raise SpecError(f"symbol '{clash[0]}' is both kept free and bound with --set")
    free = [n for n in free if n not in at]
    result = formulas(net, free, at)
    shown = ", ".join(free) if free else "none"
    print(f"{net.name}: free symbols {shown}")
    width = max(len(label) for _, label in QUANTITIES)
    for key, label in QUANTITIES:
        shown_expr = ceiling_form(result[key])
        body = sympy.latex(expr(shown_expr)) if args.latex else show(shown_expr)
        print(f"{label:<{width}} = {body}")
    return 0
