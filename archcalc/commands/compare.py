"""`archcalc compare A B [C ...]`: totals side by side with ratios against the first."""
from __future__ import annotations

import sys

from .. import analyze, load
from ..compare import render
from . import parse_sets


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="two or more specs side by side")
    p.add_argument("specs", nargs="+", help="two or more .arch spec files")
    p.add_argument("--format", choices=("text", "markdown"), default="text")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                   help="bind a symbol in every spec that declares it (repeatable)")
    p.set_defaults(main=main)


def main(args) -> int:
    if len(args.specs) < 2:
        print("archcalc compare: error: give two or more specs", file=sys.stderr)
        return 2
    at = parse_sets(args.set)
    analyses = []
    for path in args.specs:
        graph = load(path)
        names = {s.name for s in graph.graph["symbols"]}
        analyses.append(analyze(graph, at={k: v for k, v in at.items() if k in names}))
    sys.stdout.write(render(analyses, args.format))
    return 0
