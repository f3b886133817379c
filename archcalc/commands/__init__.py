"""One module per `archcalc` subcommand, each with `add_parser(subparsers)` and `main(args)`."""
from __future__ import annotations

from ..errors import SpecError


def parse_sets(pairs) -> dict:
    """`--set H=448` pairs -> {'H': 448}; a bad pair is a SpecError (exit 1), not a traceback."""
    values = {}
    for pair in pairs or ():
        name, sep, text = pair.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name:
            raise SpecError(f"--set takes NAME=VALUE, got '{pair}'")
        if not text.isdigit() or int(text) <= 0:
            raise SpecError(f"--set {name}: the value must be a positive whole number, got '{text}'")
        values[name] = int(text)
    return values


def add_binding_options(p) -> None:
    p.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                   help="bind a free symbol (repeatable), e.g. --set H=448")
    p.add_argument("--strict", action="store_true",
                   help="an inexact division is an error instead of a floored note")
    p.add_argument("--freeze", metavar="LAYER",
                   help="count LAYER and every layer it reads as frozen")
