"""`archcalc analyze SPEC`: the per-layer table and totals."""
from __future__ import annotations

import sys

from .. import analyze, load, tables
from . import add_binding_options, parse_sets


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="shapes, params, MACs and memory of every layer")
    p.add_argument("spec", help="a .arch spec file")
    p.add_argument("--format", choices=sorted(tables.FORMATS), default="text")
    p.add_argument("--free", metavar="NAMES", default="",
                   help="comma-separated symbols to keep free instead of using their defaults")
    add_binding_options(p)
    p.set_defaults(main=main)


def main(args) -> int:
    graph = load(args.spec)
    free = tuple(n.strip() for n in args.free.split(",") if n.strip())
    analysis = analyze(graph, at=parse_sets(args.set), free=free, strict=args.strict,
                       freeze=args.freeze)
    sys.stdout.write(tables.FORMATS[args.format](analysis))
    return 0
