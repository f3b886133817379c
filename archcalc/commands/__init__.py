"""One module per `archcalc` subcommand, each with `add_parser(subparsers)` and `main(args)`."""
from __future__ import annotations

import re

from ..errors import SpecError
from ..sizes import MAX_DIGITS


def parse_sets(pairs) -> dict:
    """`--set H=448` pairs -> {'H': 448}; a bad pair is a SpecError (exit 1), not a traceback."""
    values = {}
    for pair in pairs or ():
        name, sep, text = pair.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name:
            raise SpecError(f"--set takes NAME=VALUE, got '{pair}'")
        if not re.fullmatch(r"[0-9]+", text) or not text.strip("0"):  # ASCII digits only: not '²'
            raise SpecError(f"--set {name}: the value must be a positive whole number, got '{text}'")
        if len(text.lstrip("0")) > MAX_DIGITS:  # refused before int() reads a million digits
            raise SpecError(f"--set {name}: the value has {len(text.lstrip('0')):,} digits; sizes have "
                            f"at most {MAX_DIGITS}")
        values[name] = int(text)
    return values


def add_binding_options(p) -> None:
    p.add_argument("--set", action="append", metavar="NAME=VALUE", default=[],
                   help="bind a free symbol (repeatable), e.g. --set H=448")
    p.add_argument("--strict", action="store_true",
                   help="an inexact division is an error instead of a floored note")
    p.add_argument("--freeze", metavar="LAYER",
                   help="count LAYER and every layer it reads as frozen")
