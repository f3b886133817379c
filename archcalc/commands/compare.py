"""`archcalc compare A B [C ...]`: totals side by side with ratios against the first."""
from __future__ import annotations

import sys

from ..analysis.analyzer import analyze
from ..source import load
from ..present.compare import render
from ..errors import SpecError
from . import add_set_option, parse_sets


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="two or more networks side by side")
    p.add_argument("specs", nargs="+", help="two or more .arch specs or .onnx models")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                   help="each ends with the symbols held (json: a 'held' field per network)")
    add_set_option(p, "bind a symbol in every spec that declares it (repeatable)")
    p.set_defaults(main=main)


def main(args) -> int:
    if len(args.specs) < 2:
        print("archcalc compare: error: give two or more specs", file=sys.stderr)
        return 2
    at = parse_sets(args.set)
    nets = [load(path) for path in args.specs]
    declared = [{s.name for s in g.symbols} for g in nets]
    unknown = sorted(set(at) - set().union(*declared))
    if unknown:
        raise SpecError(f"no spec declares the symbol '{unknown[0]}'")
    analyses = [analyze(g, at={k: v for k, v in at.items() if k in names})
                for g, names in zip(nets, declared)]
    sys.stdout.write(render(analyses, args.format))
    return 0
