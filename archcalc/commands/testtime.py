"""`archcalc run --crops N --ensemble K|FILES`: test-time averaging's options, its ensemble
read from them, and its report (the averaging itself is archcalc.practice.testtime)."""
from __future__ import annotations

import math

import numpy as np

from ..analysis import costs
from ..errors import SpecError
from ..executor.forward import single_input, size_text
from ..practice.testtime import CROP_SETS, Evaluation, Member, evaluate
from . import memory_limit, positive_int

# Each seeded network is drawn, analysed and run on every crop of every image: K networks cost
# K times one run. The bound is checked before any of that work starts.
MAX_ENSEMBLE = 1000


def add_options(p) -> None:
    """The `run` command's test-time options."""
    p.add_argument("--crops", type=int, default=1, choices=sorted(CROP_SETS), metavar="N",
                   help="average the outputs over N crops of each image: 1 (centre), 2 (and its "
                        "mirror), 5 (corners + centre), 10 (and their mirrors)")
    p.add_argument("--crop-from", type=positive_int, metavar="S",
                   help="with random input: S x S images to crop from (default: with more than "
                        "one crop ceil(8/7 x the input), 256 for 224; else the input's size)")
    p.add_argument("--ensemble", nargs="+", metavar="K|FILE.npz",
                   help="average the outputs of K networks of the spec (seeds SEED .. SEED+K-1), "
                        "or of one network per weights file")


def wanted(args) -> bool:
    return args.crops != 1 or args.ensemble is not None


def members_from(net, args, weights) -> list[Member]:
    """The networks to average: one with `weights` (the user's file or an ONNX model's own),
    K seeded ones (--ensemble K), or one per weights file (--ensemble FILES)."""
    items = args.ensemble or []
    if not items:
        return [Member(net, weights, args.seed, f"'{weights}'" if weights else f"seed {args.seed}")]
    if len(items) == 1 and items[0].isascii() and items[0].isdigit():  # not "²"
        if len(items[0].lstrip("0")) > len(str(MAX_ENSEMBLE)) or int(items[0]) > MAX_ENSEMBLE:
            raise SpecError(f"--ensemble K takes at most {MAX_ENSEMBLE:,} networks, got {items[0]}", None,
                            ("each network is drawn, analysed and run on every crop of every image: "
                             "K networks cost K runs",))
        k = int(items[0])
        if k < 1:
            raise SpecError(f"--ensemble K needs K >= 1, got {k}")
        if args.weights:  # what the user gave, not a model's own weights
            raise SpecError("--ensemble K draws K seeded networks; it cannot take --weights too",
                            None, ("give the weights files instead: --ensemble A.npz B.npz",))
        return [Member(net, None, args.seed + i, f"seed {args.seed + i}") for i in range(k)]
    bad = [i for i in items if not i.endswith(".npz")]
    if bad:
        raise SpecError(f"--ensemble takes one number K or .npz weights files, got '{bad[0]}'")
    return [Member(net, path, args.seed, f"'{path}'") for path in items]


def command(args, net, x, at, weights) -> tuple[list[str], Evaluation]:
    """Report lines and the evaluation, its MACs checked. `x`: the input images (None:
    --batch random images of --crop-from pixels)."""
    members = members_from(net, args, weights)  # its bound and options, before any work
    (h, w, c), a = single_input(net, at, "test-time averaging")
    if x is None:
        side = args.crop_from or (math.ceil(max(h, w) * 8 / 7) if args.crops > 1 else max(h, w))
        refuse_large_input((args.batch or 1, side, side, c), memory_limit(args))
        x = np.random.default_rng(args.seed).standard_normal((args.batch or 1, side, side, c),
                                                              dtype=np.float32)
        source = f"random {side}x{side}x{c} images (seed {args.seed})"
    else:
        source = f"'{args.input}', {x.shape[1]}x{x.shape[2]}x{x.shape[3]} images"
    e = evaluate(members, x, args.crops, at, np.dtype(args.dtype),
                 memory_limit(args))
    if not e.agrees:
        raise SpecError(f"the executor counted {e.counted_macs:,} MACs, the analysis predicts "
                        f"{e.predicted_macs:,} ({e.crops} crops x {e.models} models)")
    return [f"{a.network}: {e.images} x {source}", *report(e, a)], e


def report(e: Evaluation, a) -> list[str]:
    """The passes, the averaged output, and the cost against the analysis of one pass `a`."""
    (h, w), passes = e.crop_size, e.crops * e.models
    per = e.predicted_macs // e.images
    tt = costs.test_time(a, e.crops, e.models)
    models = f"{e.models} model{'s' if e.models > 1 else ''} ({', '.join(e.labels)})"
    lines = [
        f"test time: {e.crops} crops of {h}x{w} ({CROP_SETS[e.crops]}) x {models} = "
        f"{passes} forward passes per image",
        f"output: {tuple(e.output.shape)}, the average of {passes} outputs (outputs, not weights)",
        f"MACs per image: {a.totals['macs']:,} x {e.crops} crop{'s' * (e.crops > 1)} x "
        f"{e.models} model{'s' * (e.models > 1)} = {per:,}"
        + f" (analysis, costs.test_time: {tt.macs:,})"
        + f"; the executor counted {e.counted_macs // e.images:,}: they agree "
        f"(cost multiplier {e.multiplier:g}x)",
        f"params held: {e.models} x {a.totals['params']:,} = {e.params:,}; time {e.seconds * 1e3:,.1f} ms",
    ]
    if e.output.ndim == 4 and e.output.shape[1:3] == (1, 1):
        top = e.output.reshape(e.images, -1).argmax(axis=1)
        lines.append("top-1 class per image: " + " ".join(map(str, top[:20]))
                     + (" ..." if e.images > 20 else ""))
    return lines


def refuse_large_input(shape, limit) -> None:
    """The random images are drawn before the run's own estimate: check their size first."""
    need = math.prod(shape) * np.dtype(np.float32).itemsize
    if need > limit:
        images = f"{shape[0]:,} random image{'s' * (shape[0] != 1)}"
        raise SpecError(f"drawing {images} of {shape[1]:,}x{shape[2]:,}x{shape[3]} "
                        f"would need {size_text(need)}, over the limit of {size_text(limit)}", None,
                        ("lower --crop-from or --batch, or raise the limit (--max-memory)",))
