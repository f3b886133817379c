"""`archcalc sweep SPEC --vary b=4..64 [--vary ...] [--metric macs] [--plot out.png]
[--csv out.csv]`."""
from __future__ import annotations

import numpy as np
from tabulate import tabulate

from ..source import load
from ..errors import SpecError
from ..analysis.sweep import METRICS, check_points, evaluate, parse_range
from . import LABELS, add_set_option, add_spec_argument, parse_sets

PRINT_AT_MOST = 10_000  # points a sweep prints; more go to --csv FILE, whole


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="a cost over a range of one or two symbols")
    add_spec_argument(p)
    p.add_argument("--vary", action="append", required=True, metavar="NAME=LOW..HIGH[:STEP]",
                   help="a symbol and its range (once or twice)")
    p.add_argument("--metric", choices=METRICS, default="macs")
    add_set_option(p, "bind another symbol (repeatable)")
    p.add_argument("--plot", metavar="PNG", help="draw the sweep into a PNG file")
    p.add_argument("--csv", metavar="FILE",
                   help="write every point to a CSV file (one row per point); a sweep of more "
                        f"than {PRINT_AT_MOST:,} points is written only this way")
    p.set_defaults(main=main)


def main(args) -> int:
    if len(args.vary) > 2:
        raise SpecError("sweep varies one or two symbols")
    net = load(args.spec)
    pairs = [parse_range(v) for v in args.vary]
    ranges = dict(pairs)
    if len(ranges) != len(pairs):
        raise SpecError(f"--vary names '{pairs[0][0]}' twice")
    at = parse_sets(args.set)
    check_points({n: len(r) for n, r in ranges.items()})  # what can be evaluated comes first
    points = int(np.prod([len(v) for v in ranges.values()]))
    if points > PRINT_AT_MOST and not args.csv:  # before the values are made
        raise SpecError(f"sweep: {points:,} points are too many to print (at most "
                        f"{PRINT_AT_MOST:,})", None,
                        ("write every point to a file with --csv FILE, or take a step "
                         "(NAME=LOW..HIGH:STEP) or a narrower range",))
    values = evaluate(net, args.metric, ranges, at)
    names = list(ranges)
    held = held_text(net, ranges, at)
    if held:
        print(held)
    if points <= PRINT_AT_MOST and len(names) == 1:
        print_table(names[0], ranges[names[0]], values, args.metric)
    elif points <= PRINT_AT_MOST:
        print_grid(names, ranges, values, args.metric)
    if args.csv:
        write_csv(names, ranges, values, args.metric, args.csv)
        print(f"csv: {args.csv} ({points:,} points)")
    if args.plot:
        plot(net, names, ranges, values, args.metric, args.plot)
        print(f"plot: {args.plot}")
    return 0


GROUP = 8  # grid columns per printed group, each group with its row header


def print_table(name, xs, values, metric) -> None:
    """Every value: a sweep's table is never thinned."""
    rows = [(int(x), f"{int(v):,}") for x, v in zip(xs, values)]
    print(tabulate(rows, (name, metric), tablefmt="simple", disable_numparse=True,
                   colalign=("right", "right")))


def print_grid(names, ranges, values, metric) -> None:
    """The whole grid, in groups of GROUP columns, each group repeating the row header."""
    a, b = names
    print(f"{metric}:")
    columns = range(len(ranges[b]))
    for start in range(0, len(columns), GROUP):
        ib = columns[start:start + GROUP]
        header = [f"{a} \\ {b}", *(str(int(ranges[b][j])) for j in ib)]
        rows = [[str(int(x)), *(f"{int(values[i, j]):,}" for j in ib)]
                for i, x in enumerate(ranges[a])]
        if start:
            print()
        print(tabulate(rows, header, tablefmt="simple", disable_numparse=True))
    print(f"({values.size:,} points)")


def write_csv(names, ranges, values, metric, path) -> None:
    """One row per point: the varied symbols' values, then the metric's (exact integers)."""
    grids = np.meshgrid(*(ranges[n] for n in names), indexing="ij")
    columns = [g.ravel() for g in grids] + [np.asarray(values).ravel()]
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join([*names, metric]) + "\n")
        f.writelines(",".join(str(int(v)) for v in row) + "\n" for row in zip(*columns))


def held_text(net, ranges, at: dict) -> str | None:
    """The symbols the sweep did not vary, with the values they were held at."""
    held = [f"{s.name}={at.get(s.name, s.default)}" for s in net.symbols
            if s.name not in ranges and at.get(s.name, s.default) is not None]
    return f"held: {', '.join(held)}" if held else None


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
