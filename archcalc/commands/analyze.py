"""`archcalc analyze SPEC`: the per-layer table and totals."""
from __future__ import annotations

import sys

from ..analysis.analyzer import analyze
from ..source import load
from ..analysis import costs
from ..analysis.latency import device_profile, shipped
from ..analysis.traffic import DTYPES
from ..present import tables
from ..errors import SpecError
from . import (add_binding_options, add_spec_argument, image_count, parse_names, parse_sets,
               positive_int)


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="shapes, params, MACs and memory of every layer")
    add_spec_argument(p)
    p.add_argument("--format", choices=sorted(tables.FORMATS), default="text")
    p.add_argument("--images", type=image_count, metavar="N",
                   help="with a frozen part: the disk size of its cached features for N images")
    p.add_argument("--free", metavar="NAMES", default="",
                   help="comma-separated symbols to keep free instead of using their defaults")
    p.add_argument("--traffic", action="store_true",
                   help="memory traffic columns in text and markdown (JSON and CSV always hold it)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float32",
                   help="bytes per number of the memory traffic (default float32)")
    p.add_argument("--device", metavar="FILE.json",
                   help="a device profile (archcalc calibrate, or a shipped one by name: "
                        f"{', '.join(shipped())}): latency estimate per layer and in total")
    p.add_argument("--batch", type=positive_int, default=1, metavar="N",
                   help="images per pass for the latency estimate (default 1)")
    add_binding_options(p)
    p.set_defaults(main=main)


def main(args) -> int:
    net = load(args.spec)
    device = device_profile(args.device) if args.device else None
    analysis = analyze(net, at=parse_sets(args.set), free=parse_names(args.free), strict=args.strict,
                       freeze=args.freeze, dtype=args.dtype, device=device, batch=args.batch)
    cache = None if args.images is None else cache_line(analysis, args.images)  # errors first
    sys.stdout.write(tables.FORMATS[args.format](analysis, traffic=args.traffic))
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
