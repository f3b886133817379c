"""`archcalc sweep SPEC --vary b=4..64 [--vary ...] [--metric macs] [--plot out.png]`."""
from __future__ import annotations

import numpy as np
from tabulate import tabulate

from ..source import load
from ..errors import SpecError
from ..analysis.sweep import METRICS, evaluate, parse_range
from . import LABELS, add_set_option, add_spec_argument, parse_sets

TABLE_ROWS = 25


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="a cost over a range of one or two symbols")
    add_spec_argument(p)
    p.add_argument("--vary", action="append", required=True, metavar="NAME=LOW..HIGH[:STEP]",
                   help="a symbol and its range (once or twice)")
    p.add_argument("--metric", choices=METRICS, default="macs")
    add_set_option(p, "bind another symbol (repeatable)")
    p.add_argument("--plot", metavar="PNG", help="draw the sweep into a PNG file")
    p.set_defaults(main=main)


def main(args) -> int:
    if len(args.vary) > 2:
        raise SpecError("sweep varies one or two symbols")
    net = load(args.spec)
    pairs = [parse_range(v) for v in args.vary]
    ranges = dict(pairs)
    if len(ranges) != len(pairs):
        raise SpecError(f"--vary names '{pairs[0][0]}' twice")
    values = evaluate(net, args.metric, ranges, parse_sets(args.set))
    names = list(ranges)
    if len(names) == 1:
        print_table(names[0], ranges[names[0]], values, args.metric)
    else:
        print_grid_summary(names, ranges, values, args.metric)
    if args.plot:
        plot(net, names, ranges, values, args.metric, args.plot)
        print(f"plot: {args.plot}")
    return 0


def pick(n: int) -> list[int]:
    """At most TABLE_ROWS evenly spread indices, first and last included."""
    if n <= TABLE_ROWS:
        return list(range(n))
    return sorted({round(i * (n - 1) / (TABLE_ROWS - 1)) for i in range(TABLE_ROWS)})


def print_table(name, xs, values, metric) -> None:
    rows = [(int(xs[i]), f"{int(values[i]):,}") for i in pick(len(xs))]
    print(tabulate(rows, (name, metric), tablefmt="simple", disable_numparse=True,
                   colalign=("right", "right")))
    if len(xs) > TABLE_ROWS:
        print(f"({len(xs):,} points evaluated; {len(rows)} shown)")


def print_grid_summary(names, ranges, values, metric) -> None:
    a, b = names
    ia, ib = pick(len(ranges[a])), pick(len(ranges[b]))[:8]
    header = [f"{a} \\ {b}", *(str(int(ranges[b][j])) for j in ib)]
    rows = [[str(int(ranges[a][i])), *(f"{int(values[i, j]):,}" for j in ib)] for i in ia]
    print(f"{metric}:")
    print(tabulate(rows, header, tablefmt="simple", disable_numparse=True))
    print(f"({values.size:,} points evaluated)")


def plot(net, names, ranges, values, metric, path) -> None:
    from ..present.plots import curve, heatmap
    network = net.name
    metric = LABELS[metric]
    scale, unit = (1e9, "G") if np.max(values.astype(float)) >= 1e9 else (1e6, "M")
    scaled = values.astype(float) / scale
    if len(names) == 1:
        curve(ranges[names[0]], {metric: scaled}, f"{network}: {metric} against {names[0]}",
              names[0], f"{metric} ({unit})", path)
    else:
        heatmap(ranges[names[1]], ranges[names[0]], scaled, f"{network}: {metric}",
                names[1], names[0], f"{metric} ({unit})", path)
