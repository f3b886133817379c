"""`calibrate`: a device profile of this machine, measured with the executor's own kernels and
its own per-layer loop.

Small fixed micro-benchmarks on fixed seeds, timed with `timer` (a parameter, so a test can
inject a fake clock and check the arithmetic). Load on a shared machine comes in bursts, so the
benchmarks run in `repeats` interleaved rounds (each round times every benchmark once) and each
counts its fastest round: a burst slows one round of everything, not every run of one family,
and the fastest round is the machine at its quietest, as the fastest of a network's runs is.
- peak MAC/s: one float32 matmul, (M x K) @ (K x N): M*K*N MACs / its time;
- bandwidth: one float32 add of two arrays of E numbers into a third: 3*E*4 bytes / its time;
- overhead: a chain of TINY_LAYERS ReLUs on 1 x 1 x 8 through the executor's per-layer loop
  (forward.execute, the loop a network runs in): its time / TINY_LAYERS;
- overlap 0: the executor moves a layer's data and multiplies one after the other, so a
  layer's time is overhead + compute + memory (analysis.latency);
- per family, a few representative layers at batch BATCH (the shapes of the specs' common
  layers): the efficiency that makes that sum reproduce their summed time,
  e = sum(term e scales, at e = 1) / sum(time - overhead - the other term), a layer's share
  at least 0 (analysis.latency.FAMILIES: e scales compute for the MAC families, memory for
  pool and elementwise); 1 when the times are all overhead and the other term;
- likewise per kind, for the element-wise kinds whose arithmetic costs far more than their
  family's add or ReLU (GELU's erfc, the exponentials of sigmoid, swish, tanh, softmax, the
  statistics of layernorm): one layer each, an efficiency keyed by the kind."""
from __future__ import annotations

import platform
import time
from dataclasses import replace
from fractions import Fraction

import numpy as np

from .. import kinds
from ..analysis.latency import FAMILIES, Device, terms
from ..analysis.traffic import layer_bytes
from ..lang.build import build
from ..lang.syntax import parse
from .forward import execute, feeds_for, plan, weights_for
from .fusion import fuse
from .kernels import KERNELS, Context

MATMUL = (512, 1024, 1024)       # M, K, N: 2^29 MACs, about 20 ms at 25 GMAC/s
ADD_ELEMENTS = 2 ** 22           # 16 MB per array
BATCH = 8
TINY_LAYERS = 32
# family -> layers (kind, positional args, keyword args, input shape, inputs), each the shape of
# common layers in the specs: a ResNet/VGG 3x3 conv, a late 3x3 conv, a stem; bottleneck 1x1s;
# MobileNet/EfficientNet/ConvNeXt depthwise convs; RegNet/AlexNet groups; a classifier and a
# ViT-style attention; pools; an add and a rectifier
LAYERS = {
    "dense": (("conv", [3, 64], {"p": 1}, (56, 56, 64), 1),
              ("conv", [3, 256], {"p": 1}, (14, 14, 256), 1),
              ("conv", [7, 64], {"s": 2, "p": 3}, (112, 112, 3), 1)),
    "pointwise": (("conv", [1, 256], {}, (56, 56, 64), 1),
                  ("conv", [1, 128], {}, (28, 28, 512), 1),
                  ("conv", [1, 1024], {}, (14, 14, 256), 1)),
    "depthwise": (("dwconv", [3], {"p": 1}, (56, 56, 128), 1),
                  ("dwconv", [5], {"s": 2, "p": 2}, (28, 28, 240), 1),
                  ("dwconv", [7], {"p": 3}, (28, 28, 192), 1)),
    "grouped": (("conv", [3, 128], {"p": 1, "groups": 32}, (28, 28, 128), 1),
                ("conv", [3, 64], {"p": 1, "groups": 8}, (56, 56, 64), 1)),
    "matmul": (("fc", [1000], {}, (1, 1, 2048), 1),
               ("attention", [], {"heads": 6}, (1, 50, 384), 1)),
    "pool": (("maxpool", [], {"f": 3, "s": 2, "p": 1}, (112, 112, 64), 1),
             ("avgpool", [], {"f": 7}, (7, 7, 1024), 1)),
    "elementwise": (("add", [], {}, (56, 56, 256), 2),
                    ("relu", [], {}, (28, 28, 512), 1)),
}
KIND_LAYERS = {kind: ((kind, [], {}, (14, 14, 512), 1),)
               for kind in ("gelu", "sigmoid", "swish", "hardswish", "tanh", "softmax", "layernorm")}


def fastest(works, timer, repeats: int) -> list[Fraction]:
    """The shortest of `repeats` interleaved rounds of timed calls, for each of `works`, exactly
    as the timer gave them."""
    times = [[] for _ in works]
    for _ in range(repeats):
        for i, work in enumerate(works):
            start = timer()
            work()
            times[i].append(Fraction(timer()) - Fraction(start))
    return [min(t) for t in times]


def layer(spec, batch: int, rng):
    """(op, inputs, kernel call) of one benchmark layer."""
    kind, positional, keywords, shape, count = spec
    op = kinds.make(kind, list(positional), dict(keywords))
    ins = (kinds.Shape(*shape),) * count
    xs = tuple(rng.standard_normal((batch, *shape), dtype=np.float32) for _ in ins)
    w = {k: rng.standard_normal(s, dtype=np.float32) * 0.01 for k, s in op.weights(ins).items()}
    ctx = Context(np.float32)
    return op, ins, (lambda: KERNELS[kind](op, xs, w, ctx))


def tiny_chain():
    """A call of the executor's per-layer loop over TINY_LAYERS ReLUs on 1 x 1 x 8."""
    text = "network Tiny {\n    input x : (1, 1, 8)\n" + "    relu\n" * TINY_LAYERS + "}\n"
    the_plan = plan(build(parse(text, "<calibrate>")), {})
    params = weights_for(the_plan, None, 0, np.float32)
    steps, folded = fuse(the_plan, params)
    feeds = feeds_for(the_plan, None, 1, 0, np.float32)
    return lambda: execute(steps, dict(feeds), folded, Context(np.float32), False)


def roofline(device: Device, family: str, op, ins, batch: int) -> tuple[Fraction, Fraction]:
    out = op.out(ins).shape
    cost = op.cost(ins, out)
    moved = layer_bytes(op, ins, out, cost, 4)
    data = batch * (moved["input_bytes"] + moved["output_bytes"]) + moved["weight_bytes"]
    return terms(device, family, batch * cost.macs, data)


def efficiency(device: Device, layers, batch: int, times) -> Fraction:
    """e over one family's (or kind's) layers [(op, ins)] and their measured `times`."""
    ideal, spent = Fraction(0), Fraction(0)
    for (op, ins), seconds in zip(layers, times):
        family = op.family(ins)
        compute, memory = roofline(device, family, op, ins, batch)
        scaled, other = (compute, memory) if FAMILIES[family] == "compute" else (memory, compute)
        ideal += scaled
        spent += max(seconds - device.overhead_s - other, Fraction(0))
    return ideal / spent if ideal > 0 and spent > 0 else Fraction(1)


def calibrate(timer=time.perf_counter, repeats: int = 3, seed: int = 0) -> Device:
    """A profile of this machine, float32, from the executor's kernels and loop."""
    rng = np.random.default_rng(seed)
    m, k, n = MATMUL
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    x, y = (rng.standard_normal(ADD_ELEMENTS, dtype=np.float32) for _ in range(2))
    z = np.empty_like(x)
    benchmarks = {key: [layer(spec, BATCH, rng) for spec in specs]
                  for key, specs in {**LAYERS, **KIND_LAYERS}.items()}
    calls = [lambda: np.matmul(a, b), lambda: np.add(x, y, out=z), tiny_chain()]
    calls += [call for found in benchmarks.values() for _, _, call in found]
    for call in calls:  # once untimed: numba compiles the loops, every page is touched
        call()
    times = fastest(calls, timer, repeats)
    peak = m * k * n / times[0]
    bandwidth = 3 * ADD_ELEMENTS * 4 / times[1]
    overhead = times[2] / TINY_LAYERS
    device = Device(f"this machine ({platform.machine()}, {platform.processor() or 'cpu'})",
                    peak, bandwidth, overhead, {}, source=source(repeats), dtype="float32",
                    overlap=Fraction(0))
    found, at = {}, 3
    for key, made in benchmarks.items():
        found[key] = efficiency(device, [(op, ins) for op, ins, _ in made], BATCH, times[at:at + len(made)])
        at += len(made)
    return replace(device, efficiency=found)


def source(repeats: int) -> str:
    return (f"archcalc calibrate on {time.strftime('%Y-%m-%d')}: the executor's NumPy kernels, "
            f"numpy {np.__version__}, fastest of {repeats} interleaved rounds of fixed "
            f"micro-benchmarks (matmul {' x '.join(map(str, MATMUL))}, add of {ADD_ELEMENTS:,} "
            f"float32, {TINY_LAYERS} tiny layers through the executor's loop, "
            f"{sum(map(len, LAYERS.values()))} layers of the families and {len(KIND_LAYERS)} of "
            f"costly element-wise kinds at batch {BATCH})")
