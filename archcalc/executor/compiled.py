"""Loops NumPy cannot run fast, compiled by numba where it is installed (the `fast` extra),
and when each applies. The depthwise convolution is the case: its products are f*f
multiply-adds per output with a different weight per map, so NumPy makes a pass over memory
per tap (1.4 GMAC/s), while simd.py's microkernel keeps eight outputs' sums in vector
registers (4-20 GMAC/s on one core). Likewise 3x3 convs of narrow groups (BLAS is slow on
their 8-column products), max pooling, float32 tanh, sigmoid, swish and hardswish, a conv's
bias and ReLU, and add -> ReLU: one pass each where NumPy makes several.

The loops are in simd.py (depthwise and grouped convs) and loops.py (the rest), which import
numba (0.3 s), so only the executor loads them (Context's warm); without numba, or with
ARCHCALC_JIT=0, the kernels take their NumPy form instead. The tests run both and compare.
Besides their outputs, the loops take no memory of a map's size but the executor's workspace
(max pooling's one (n_W, n_C) row is among its counted temporaries). That workspace starts
on a cache line (aligned_empty): NumPy's large arrays start 16 bytes past one, and 32-byte
loads straddling two lines are slower.
"""
from __future__ import annotations

import os
from functools import cache

import numpy as np

# groups of at most 32 maps run simd.grouped: a 3x3 conv on 28 x 28 x 256 at batch 8, one core,
# ran 9.3, 20.5, 24.2, 26.0 GMAC/s at 4, 8, 16, 32 maps a group against BLAS's 1.6, 4.5, 10.7,
# 20.5; at 64 BLAS wins (30.7 against 21.8)
NARROW_GROUP = 33


@cache
def numba():
    """The numba module, or None when it is missing or turned off (ARCHCALC_JIT=0)."""
    if os.environ.get("ARCHCALC_JIT", "1") == "0":
        return None
    try:
        import numba as nb
    except ImportError:
        return None
    return nb


def enabled() -> bool:
    return numba() is not None


def machine_ints(*values) -> bool:
    """Sizes a compiled loop can take: it works in int64, and below 2**31 their products
    (i * s + k * d) stay there, while a spec's stride or padding may be any integer (a stride
    of 10**39 over a 1-wide map is one window)."""
    return all(abs(v) < 2**31 for v in values)


def depthwise_applies(multiplier, s, d, p) -> bool:
    return enabled() and multiplier == 1 and machine_ints(s, d, p)


def depthwise(x, taps, bias, y, s, d, p, relu, workspace):
    """y = x's depthwise convolution (stride s, dilation d, zero padding p, or windows past
    the edge in ceil mode) with one f x f filter per map, plus bias, through a ReLU if asked,
    by simd.depthwise; its ring of input rows comes from `workspace(shape, slot)`, as
    depthwise_workspace counts it."""
    from . import simd  # imports numba, so only once a loop is wanted

    f, C = taps.shape[0], taps.shape[2]
    ring = workspace(depthwise_workspace(x.shape, y.shape[2], f, s, d, p)["pad"], "pad")
    ring[...] = 0  # the border columns; rows are copied in as they are needed
    simd.depthwise(x, as_dtype_of(y, taps.reshape(f * f, C)), as_dtype_of(y, bias), y, f, s, d, p, relu,
                   ring.reshape(ring.shape[0], -1, C))


def as_dtype_of(y, a) -> np.ndarray:
    """a as a contiguous array of y's dtype (no copy when it is one already), as simd.py reads
    weights: by address."""
    return np.ascontiguousarray(a, dtype=y.dtype)


ALIGN = 64  # bytes: the workspace starts on a cache line


def depthwise_workspace(x_shape, ow, f, s, d, p) -> dict:
    """Shapes of depthwise's scratch: "pad", the input rows one output row's windows read,
    zero-bordered ((f-1)*d + 1 rows, as wide as the padded input or the last window's reach in
    ceil mode)."""
    _, _, W, C = x_shape
    return {"pad": ((f - 1) * d + 1, max(W + 2 * p, (ow - 1) * s + (f - 1) * d + 1) * C)}


def aligned_empty(shape, dtype) -> np.ndarray:
    """np.empty starting on a 64-byte boundary, a cache line."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    raw = np.empty(size + ALIGN // dtype.itemsize, dtype)
    skip = (-raw.ctypes.data % ALIGN) // dtype.itemsize
    return raw[skip:skip + size].reshape(shape)


def activation(name, x, in_place):
    """tanh, sigmoid, swish or hardswish of x in one pass of loops.py's float32 loop, over x
    itself if in_place; None (nothing done) where that loop does not apply: numba missing,
    another dtype, or x not contiguous."""
    if not (enabled() and x.dtype == np.float32 and x.flags.c_contiguous):
        return None
    from . import loops

    which = loops.ACTIVATIONS.index(name)
    if in_place:
        loops.in_place(x.reshape(-1), which)
        return x
    out = np.empty_like(x)
    loops.elementwise(x.reshape(-1), out.reshape(-1), which)
    return out


def bias_relu(block, bias, relu) -> bool:
    """block += bias (None: no bias), then a ReLU if asked, in one compiled pass over a
    contiguous block of outputs (channels last); False (nothing done) where it does not apply."""
    if not (enabled() and block.flags.c_contiguous and (bias is not None or relu)):
        return False
    from . import loops

    C = block.shape[-1]
    shift = bias if bias is not None else np.zeros(C, block.dtype)
    loops.bias_relu(block.reshape(-1, C), shift.astype(block.dtype, copy=False), relu)
    return True


def add(xs, in_place, relu):
    """The sum of two inputs of one shape, through a ReLU if asked, in one compiled pass (over
    the first if in_place); None where that does not apply."""
    if not (enabled() and len(xs) == 2 and xs[0].shape == xs[1].shape and xs[0].dtype == xs[1].dtype
            and xs[0].flags.c_contiguous and xs[1].flags.c_contiguous):
        return None
    from . import loops

    a, b = xs
    y = a if in_place else np.empty_like(a)
    loops.add(a.reshape(-1), b.reshape(-1), y.reshape(-1), relu)
    return y


def max_pool(x, f, s, p, oh, ow):
    """Max pooling by loops.max_pool into a new (N, oh, ow, C) array; None where it does not
    apply (numba missing, x not contiguous)."""
    if not (enabled() and x.flags.c_contiguous and machine_ints(f, s, p)):
        return None
    from . import loops

    N, _, W, C = x.shape
    y = np.empty((N, oh, ow, C), x.dtype)
    loops.max_pool(x, y, f, s, p, np.empty((W, C), x.dtype))
    return y


def grouped(x, W, bias, y, s, p, groups, relu, workspace):
    """y = a 3x3 conv of narrow groups (where grouped_applies: fewer than NARROW_GROUP maps,
    stride any, dilation 1) by simd.grouped, plus bias, through a ReLU if asked."""
    from . import simd

    ring = workspace(grouped_workspace(x.shape, y.shape[2], s, p)["pad"], "pad")
    ring[...] = 0
    simd.grouped(x, as_dtype_of(y, W), as_dtype_of(y, bias), y, s, p, groups, ring, relu)


def grouped_applies(f, c_g, dilation, s, p) -> bool:
    return enabled() and f == 3 and c_g < NARROW_GROUP and dilation == 1 and machine_ints(s, p)


def grouped_workspace(x_shape, ow, s, p) -> dict:
    """Shape of grouped's scratch: "pad", the ring of three zero-bordered input rows (3, padded
    width, C)."""
    _, _, W, C = x_shape
    return {"pad": (3, max(W + 2 * p, (ow - 1) * s + 3), C)}


@cache
def warm(dtype_name: str) -> None:
    """Every loop loaded (from numba's disk cache; compiled the first time on a machine) for
    runs in `dtype_name`, by calling each on arrays of a few numbers, so that no timed pass
    includes it: half a second a process, seconds once."""
    if not enabled():
        return
    from . import loops

    dtype = np.dtype(dtype_name)

    def scratch(shape, slot):
        return np.zeros(shape, dtype)

    x = np.zeros((1, 4, 4, 4), dtype)  # each compiles all its chunks of maps at once
    depthwise(x, np.zeros((3, 3, 4), dtype), np.zeros(4, dtype), np.zeros_like(x), 1, 1, 1, False, scratch)
    grouped(x, np.zeros((3, 3, 2, 4), dtype), np.zeros(4, dtype), np.zeros_like(x), 1, 1, 2, False, scratch)
    max_pool(x, 2, 2, 0, 2, 2)
    bias_relu(np.zeros_like(x), np.zeros(4, dtype), True)
    add((x, np.zeros_like(x)), False, True)
    for name in loops.ACTIVATIONS:
        activation(name, x, False)
        activation(name, np.zeros_like(x), True)
