"""`archcalc calibrate [--out FILE]`: a device profile of this machine, measured with the
executor's kernels (executor.calibrate), printed or written as JSON for `analyze --device`."""
from __future__ import annotations

import json

from ..executor.calibrate import calibrate
from . import repeat_count


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="measure a device profile of this machine (JSON)")
    p.add_argument("--out", metavar="FILE.json", help="write the profile here (default: print it)")
    p.add_argument("--repeats", type=repeat_count, default=3, metavar="K",
                   help="interleaved rounds of the micro-benchmarks; each counts its fastest (default 3)")
    p.set_defaults(main=main)


def main(args) -> int:
    text = json.dumps(calibrate(repeats=args.repeats).document(), indent=2) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"device profile: {args.out}")
    else:
        print(text, end="")
    return 0
