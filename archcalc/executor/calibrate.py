"""`calibrate`: a device profile of this machine, measured with the executor's own kernels.

Small fixed micro-benchmarks, each the fastest of `repeats` runs timed with `timer` (a
parameter, so a test can inject a fake clock and check the arithmetic):
- peak MAC/s: one float32 matmul, (M x K) @ (K x N): M*K*N MACs / its time;
- bandwidth: one float32 add of two arrays of E numbers into a third: 3*E*4 bytes / its time;
- overhead: one tiny layer (a ReLU on 1 x 1 x 8): its time;
- per family, one representative layer at batch BATCH: the efficiency that makes the roofline
  reproduce its time, e = (roofline term at efficiency 1) / (time - overhead), on the term the
  family's efficiency scales (analysis.latency.FAMILIES), over the other term instead where it
  is larger (the layer is bound by it), 1 when the time is all overhead."""
from __future__ import annotations

import platform
import time
from fractions import Fraction

import numpy as np

from .. import kinds
from ..analysis.latency import FAMILIES, Device, terms
from ..analysis.traffic import layer_bytes
from .kernels import KERNELS, Context

MATMUL = (512, 1024, 1024)       # M, K, N: 2^29 MACs, about 20 ms at 25 GMAC/s
ADD_ELEMENTS = 2 ** 22           # 16 MB per array
BATCH = 8
TINY = ("relu", (), {}, (1, 1, 8), 1)
# family -> (kind, positional args, keyword args, input shape, inputs): one layer each
LAYERS = {
    "dense": ("conv", [3, 64], {"p": 1}, (56, 56, 64), 1),
    "pointwise": ("conv", [1, 256], {}, (56, 56, 64), 1),
    "depthwise": ("dwconv", [3], {"p": 1}, (56, 56, 128), 1),
    "grouped": ("conv", [3, 128], {"p": 1, "groups": 32}, (28, 28, 128), 1),
    "matmul": ("fc", [1000], {}, (1, 1, 2048), 1),
    "pool": ("maxpool", [], {"f": 3, "s": 2, "p": 1}, (112, 112, 64), 1),
    "elementwise": ("add", [], {}, (56, 56, 256), 2),
}


def fastest(work, timer, repeats: int) -> Fraction:
    """The shortest of `repeats` timed calls of work(), exactly as the timer gave it."""
    best = None
    for _ in range(repeats):
        start = timer()
        work()
        seconds = Fraction(timer()) - Fraction(start)
        best = seconds if best is None else min(best, seconds)
    return best


def layer(spec, batch: int, rng):
    """(op, inputs, weights, kernel call) of one benchmark layer."""
    kind, positional, keywords, shape, count = spec
    op = kinds.make(kind, list(positional), dict(keywords))
    ins = (kinds.Shape(*shape),) * count
    xs = tuple(rng.standard_normal((batch, *shape), dtype=np.float32) for _ in ins)
    w = {k: rng.standard_normal(s, dtype=np.float32) * 0.01 for k, s in op.weights(ins).items()}
    ctx = Context(np.float32)
    return op, ins, (lambda: KERNELS[kind](op, xs, w, ctx))


def efficiency(device: Device, family: str, op, ins, batch: int, seconds: Fraction) -> Fraction:
    out = op.out(ins).shape
    cost = op.cost(ins, out)
    moved = layer_bytes(op, ins, out, cost, 4)
    data = batch * (moved["input_bytes"] + moved["output_bytes"]) + moved["weight_bytes"]
    compute, memory = terms(device, family, batch * cost.macs, data)
    work = seconds - device.overhead_s
    ideal = compute if FAMILIES[family] == "compute" else memory
    # a layer whose other term is the larger is bound by it: e only brings its term up to it
    return ideal / max(work, compute, memory) if work > 0 and ideal > 0 else Fraction(1)


def calibrate(timer=time.perf_counter, repeats: int = 3, seed: int = 0) -> Device:
    """A profile of this machine, float32, from the executor's kernels."""
    rng = np.random.default_rng(seed)
    m, k, n = MATMUL
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    peak = m * k * n / fastest(lambda: np.matmul(a, b), timer, repeats)
    x, y = (rng.standard_normal(ADD_ELEMENTS, dtype=np.float32) for _ in range(2))
    z = np.empty_like(x)
    bandwidth = 3 * ADD_ELEMENTS * 4 / fastest(lambda: np.add(x, y, out=z), timer, repeats)
    _, _, tiny = layer(TINY, 1, rng)
    overhead = fastest(tiny, timer, repeats)
    device = Device(f"this machine ({platform.machine()}, {platform.processor() or 'cpu'})",
                    peak, bandwidth, overhead, {}, source=source(), dtype="float32")
    found = {}
    for family, spec in LAYERS.items():
        op, ins, call = layer(spec, BATCH, rng)
        found[family] = efficiency(device, family, op, ins, BATCH, fastest(call, timer, repeats))
    return Device(device.name, peak, bandwidth, overhead, found, device.source, "float32")


def source() -> str:
    return (f"archcalc calibrate on {time.strftime('%Y-%m-%d')}: the executor's NumPy kernels, "
            f"numpy {np.__version__}, fastest of several runs of fixed micro-benchmarks "
            f"(matmul {' x '.join(map(str, MATMUL))}, add of {ADD_ELEMENTS:,} float32, one layer "
            f"per family at batch {BATCH})")
