"""The compiled loops behind compiled.py but the convs' (those are in simd.py): numba's njit;
this module is imported only when numba is there and a loop is wanted."""
from __future__ import annotations

import numpy as np
from numba import njit

# FMA and reordering of sums, nothing that changes NaN or Inf;
# division by zero gives inf as in NumPy (a Python-style check would stop vectorisation)
jit = njit(cache=True, fastmath={"contract", "reassoc", "nsz"}, nogil=True, error_model="numpy")
# a helper inlined where it is called: a call per element (or per pixel, with its arrays'
# reference counts) costs more than its work and stops vectorisation
inlined = njit(cache=True, fastmath={"contract", "reassoc", "nsz"}, error_model="numpy", inline="always")

# ------------------------------------------------------------------ activations, float32
# tanh by Eigen's 13/6-degree rational function (a couple of ulps in float32; +-1 past the
# clamp, x itself near 0), so the loop vectorises: NumPy's tanh and exp ran at 0.3-0.4 G/s.
# The coefficients are those of Eigen's generic_fast_tanh_float.

F = np.float32
CLAMP, TINY, HALF, SIXTH = F(7.99881172180175781), F(0.0004), F(0.5), F(1 / 6)
A1, A3, A5, A7 = F(4.89352455891786e-03), F(6.37261928875436e-04), F(1.48572235717979e-05), F(5.12229709037114e-08)
A9, A11, A13 = F(-8.60467152213735e-11), F(2.00018790482477e-13), F(-2.76076847742355e-16)
B0, B2, B4, B6 = F(4.89352518554385e-03), F(2.26843463243900e-03), F(1.18534705686654e-04), F(1.19825839466702e-06)


@jit
def tanh32(v):
    x = min(max(v, -CLAMP), CLAMP)
    x2 = x * x
    p = x * (A1 + x2 * (A3 + x2 * (A5 + x2 * (A7 + x2 * (A9 + x2 * (A11 + x2 * A13))))))
    q = B0 + x2 * (B2 + x2 * (B4 + x2 * B6))
    return p / q if abs(v) >= TINY else v  # NaN fails the test, so NaN stays NaN


@jit
def sigmoid32(v):
    """1/(1 + e^-v) = (1 + tanh(v/2))/2."""
    return HALF + HALF * tanh32(HALF * v)


@jit
def swish32(v):
    return v * sigmoid32(v)


@jit
def hardswish32(v):
    return v * min(max(v * SIXTH + HALF, F(0)), F(1))


ACTIVATIONS = ("tanh", "sigmoid", "swish", "hardswish")  # `which` of the loops below


@inlined
def activation(v, which):
    """Activation `which` (an index into ACTIVATIONS) of v; which is the same for a whole
    loop, so the compiler makes one loop per activation."""
    if which == 0:
        return tanh32(v)
    if which == 1:
        return sigmoid32(v)
    if which == 2:
        return swish32(v)
    return hardswish32(v)


@jit
def elementwise(x, y, which):
    """y = activation `which` of x, element by element, over flat arrays (an index rather than
    a function, so numba can cache the loop on disk)."""
    for k in range(x.size):
        y[k] = activation(x[k], which)


@jit
def in_place(y, which):
    """y = activation `which` of y: one array, so no overlap test stops the loop's vectorisation."""
    for k in range(y.size):
        y[k] = activation(y[k], which)


# ------------------------------------------------------------------ a convolution's finish

@jit
def bias_relu(y, bias, relu):
    """y (rows, C) plus the bias, through a ReLU if asked, in one pass (NumPy makes two, each
    broadcasting the bias row by row)."""
    zero = y.dtype.type(0)
    for r in range(y.shape[0]):
        row = y[r]
        if relu:
            for c in range(y.shape[1]):
                row[c] = max(row[c] + bias[c], zero)
        else:
            for c in range(y.shape[1]):
                row[c] += bias[c]


@jit
def add(a, b, y, relu):
    """y = a + b, through a ReLU if asked; y may be a (written where it was read)."""
    zero = y.dtype.type(0)
    if relu:
        for k in range(y.size):
            y[k] = max(a[k] + b[k], zero)
    else:
        for k in range(y.size):
            y[k] = a[k] + b[k]


# ------------------------------------------------------------------ pooling

@jit
def max_pool(x, y, f, s, p, row):
    """y = the maximum of each f x f window (stride s, p past each edge, windows clipped to
    the input: padding never takes part), separably: the window's rows' maximum into `row`
    (n_W, C), then each window's columns. NaN wins, as in NumPy's maximum. Up to three rows
    or columns are combined in one expression, whose store is unconditional: an update in
    place (m = max(m, v)) compiles to masked stores, slow on AMD's cores."""
    n, oh, ow, C = y.shape
    H, W = x.shape[1], x.shape[2]
    flat = row.reshape(-1)
    for b in range(n):
        for i in range(oh):
            r0, r1 = max(i * s - p, 0), min(i * s - p + f, H)
            largest(flat, x[b, r0].reshape(-1), x[b, min(r0 + 1, r1 - 1)].reshape(-1),
                    x[b, min(r0 + 2, r1 - 1)].reshape(-1))
            for r in range(r0 + 3, r1):
                update(flat, x[b, r].reshape(-1))
            out = y[b, i]
            for j in range(ow):
                q0, q1 = max(j * s - p, 0), min(j * s - p + f, W)
                largest(out[j], row[q0], row[min(q0 + 1, q1 - 1)], row[min(q0 + 2, q1 - 1)])
                for q in range(q0 + 3, q1):
                    update(out[j], row[q])


@jit
def largest(out, a, b, c):
    """out = the maximum of three runs (one or two of them repeated, for shorter windows)."""
    for k in range(out.size):
        out[k] = larger(larger(a[k], b[k]), c[k])


@jit
def update(out, a):
    for k in range(out.size):
        out[k] = larger(out[k], a[k])


@inlined
def larger(a, b):
    return a if a >= b or a != a else b
