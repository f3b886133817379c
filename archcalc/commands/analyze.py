"""`archcalc analyze SPEC`: the per-layer table and totals."""
from __future__ import annotations

import sys

from ..analysis.analyzer import analyze
from ..source import load
from ..analysis import costs
from ..present import tables
from ..errors import SpecError
from . import add_binding_options, add_spec_argument, image_count, parse_names, parse_sets


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="shapes, params, MACs and memory of every layer")
    add_spec_argument(p)
    p.add_argument("--format", choices=sorted(tables.FORMATS), default="text")
    p.add_argument("--images", type=image_count, metavar="N",
                   help="with a frozen part: the disk size of its cached features for N images")
    p.add_argument("--free", metavar="NAMES", default="",
                   help="comma-separated symbols to keep free instead of using their defaults")
    add_binding_options(p)
    p.set_defaults(main=main)


def main(args) -> int:
    net = load(args.spec)
    analysis = analyze(net, at=parse_sets(args.set), free=parse_names(args.free), strict=args.strict,
                       freeze=args.freeze)
    cache = None if args.images is None else cache_line(analysis, args.images)  # errors first
    sys.stdout.write(tables.FORMATS[args.format](analysis))
    if cache:
        print(cache)
    return 0


def cache_line(analysis, images: int) -> str:
    if not analysis.freeze:
        raise SpecError("--images needs a frozen part: --freeze LAYER or 'freeze <- LAYER'")
    if images <= 0:
        raise SpecError(f"--images must be positive, got {images}")
    per_image = analysis.row(analysis.freeze).activations * costs.BYTES
    return (f"feature cache for {images:,} images: {tables.number(per_image * images)} bytes "
            f"({per_image * images / 1e6:,.2f} MB) of float32 '{analysis.freeze}' outputs")
