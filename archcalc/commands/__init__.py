"""One module per `archcalc` subcommand, each with `add_parser(subparsers)` and `main(args)`
(testtime.py holds `run`'s test-time options). This module holds what several commands share,
declared once: the spec argument, `--set`, `--weights`, the names of totals, and their parsing."""
from __future__ import annotations

import argparse
import math
import re

from ..errors import SpecError
from ..sizes import MAX_DIGITS

# The totals the commands print or plot, by their analysis key (analysis.sweep.METRICS are
# the ones a sweep evaluates), and the label a user reads.
LABELS = {"params": "params", "trainable_params": "trainable params", "macs": "MACs",
          "flops": "FLOPs", "other_ops": "other ops", "activations": "activations",
          "peak_activations": "peak live activations", "traffic_bytes": "traffic bytes"}


def add_spec_argument(p, help="a .arch spec or an .onnx model") -> None:
    p.add_argument("spec", help=help)


def add_set_option(p, help="bind a free symbol (repeatable), e.g. --set H=448") -> None:
    """`--set NAME=VALUE`, repeatable, read by parse_sets; each command says what it binds."""
    p.add_argument("--set", action="append", metavar="NAME=VALUE", default=[], help=help)


def add_weights_option(p, help="weights keyed 'LAYER/KEY' (default: random)") -> None:
    """`--weights FILE.npz`: a path (read by the library, which also takes None or a dict)."""
    p.add_argument("--weights", metavar="FILE.npz", help=help)


def add_binding_options(p) -> None:
    add_set_option(p)
    p.add_argument("--strict", action="store_true",
                   help="an inexact division is an error instead of a floored note")
    p.add_argument("--freeze", metavar="LAYER",
                   help="count LAYER and every layer it reads as frozen")


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


def parse_names(text: str) -> tuple[str, ...]:
    """'H, W' -> ('H', 'W'): the comma-separated symbols of --free and --symbols."""
    return tuple(n.strip() for n in text.split(",") if n.strip())


def whole_number(low: int, high: int, what: str):
    """An argparse type: a whole number from `low` to `high`, else a usage error (exit 2)
    saying what the option takes. ASCII digits only (no sign, no '1e400', no '²'); their count
    is checked before int() reads them."""
    def parse(text: str) -> int:
        digits = text.strip()
        if not re.fullmatch(r"[0-9]+", digits) or len(digits.lstrip("0")) > len(str(high)) \
                or not low <= int(digits) <= high:
            raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'")
        return int(digits)
    return parse


def real_number(low: float, high: float, what: str, low_open=False, high_open=False):
    """An argparse type: a finite number from `low` to `high` (either end left out when
    open), else a usage error (exit 2) saying what the option takes; nan and inf are refused."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (above and below):  # nan fails every comparison: refused too
            raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'")
        return value
    return parse


def add_memory_option(p, help="refuse a run predicted to need more (default 8 GiB)") -> None:
    """`--max-memory GIB`, read in bytes by memory_limit."""
    p.add_argument("--max-memory", type=gibibytes, default=8.0, metavar="GIB", help=help)


def memory_limit(args) -> int:
    """--max-memory in bytes."""
    return int(args.max_memory * 2**30)


positive_int = whole_number(1, 999_999_999, "a whole number >= 1")
# numpy's generators take any seed >= 0; 2^63 - 1 keeps every seed a signed 64-bit integer
seed_value = whole_number(0, 2**63 - 1, "a seed, a whole number from 0 to 2^63 - 1")
image_count = whole_number(1, 10**12, "a number of images from 1 to 10^12")
# Upper bounds keep a mistyped value from becoming a run that never ends or a huge allocation
# (an image of SIZE^2 pixels per augmentation, a pass over the data per epoch)
# the grid holds a dozen float images of side x side x 3, their temporaries and their drawing,
# about 350 bytes a pixel: 2,048 keeps it under about 1.5 GB
image_side = whole_number(8, 2048, "a side from 8 to 2,048 pixels")
epoch_count = whole_number(1, 10_000, "a number of epochs from 1 to 10,000")
mini_batch_size = whole_number(1, 1_000_000, "a batch size from 1 to 1,000,000")
class_count = whole_number(2, 100_000, "a number of classes from 2 to 100,000")
repeat_count = whole_number(1, 1_000, "a number of runs from 1 to 1,000")
thread_count = whole_number(1, 256, "a number of threads from 1 to 256")
learning_rate = real_number(0, 10, "a learning rate above 0 and at most 10", low_open=True)
momentum_value = real_number(0, 1, "a momentum from 0 to below 1", high_open=True)
decay_value = real_number(0, 1, "a weight decay from 0 to 1")
fraction_value = real_number(0, 1, "a fraction above 0 and below 1", low_open=True, high_open=True)
# a memory limit in GiB: positive and finite (nan and inf refused)
gibibytes = real_number(0, math.inf, "a positive number of GiB", low_open=True, high_open=True)
