"""The compiled loops behind compiled.py (numba's njit; this module is imported only when
numba is there and a loop is wanted)."""
from __future__ import annotations

import numpy as np
from numba import njit

# FMA and reordering of a window's sum (as BLAS reorders), nothing that changes NaN or Inf;
# division by zero gives inf as in NumPy (a Python-style check would stop vectorisation)
jit = njit(cache=True, fastmath={"contract", "reassoc", "nsz"}, nogil=True, error_model="numpy")
# the strided depthwise sums in the order written: three rows' chains of multiply-adds run at
# once (reordered, they became one chain of f*f)
ordered = njit(cache=True, fastmath={"contract", "nsz"}, nogil=True, error_model="numpy")
# a helper inlined where it is called: a call per element (or per pixel, with its arrays'
# reference counts) costs more than its work and stops vectorisation
inlined = njit(cache=True, fastmath={"contract", "reassoc", "nsz"}, error_model="numpy", inline="always")

# Strided depthwise convs (depthwise_loops.py has stride 1): every output pixel with its
# channels innermost, over a ring of zero-bordered copies of the input rows its windows read
# (each row copied once, while in cache), so there is no padded copy of the whole input and no
# window needs a test for the border. The 3x3 and 5x5 sums are written out: a window's
# products stay in registers, one store per output.

@ordered
def depthwise_3x3(x, t, bias, y, s, d, p, relu, ring):
    n, oh, ow, C = y.shape
    zero = y.dtype.type(0)
    loaded = np.empty(ring.shape[0], np.int64)
    for b in range(n):
        loaded[:] = SENTINEL
        for i in range(oh):
            top = i * s - p
            rows_in_ring(x, b, ring, loaded, top, 3, d, p)
            r0, r1, r2 = ring[slot(top, 0, d, ring)], ring[slot(top, 1, d, ring)], ring[slot(top, 2, d, ring)]
            row = y[b, i]
            for j in range(ow):
                q0 = j * s
                q1, q2 = q0 + d, q0 + 2 * d
                o = row[j]
                for c in range(C):
                    o[c] = rectified((r0[q0, c] * t[0, 0, c] + r0[q1, c] * t[0, 1, c] + r0[q2, c] * t[0, 2, c])
                            + (r1[q0, c] * t[1, 0, c] + r1[q1, c] * t[1, 1, c] + r1[q2, c] * t[1, 2, c])
                            + (r2[q0, c] * t[2, 0, c] + r2[q1, c] * t[2, 1, c] + r2[q2, c] * t[2, 2, c])
                            + bias[c], relu, zero)


@ordered
def depthwise_5x5(x, t, bias, y, s, d, p, relu, ring):
    n, oh, ow, C = y.shape
    zero = y.dtype.type(0)
    loaded = np.empty(ring.shape[0], np.int64)
    for b in range(n):
        loaded[:] = SENTINEL
        for i in range(oh):
            top = i * s - p
            rows_in_ring(x, b, ring, loaded, top, 5, d, p)
            r0, r1, r2 = ring[slot(top, 0, d, ring)], ring[slot(top, 1, d, ring)], ring[slot(top, 2, d, ring)]
            r3, r4 = ring[slot(top, 3, d, ring)], ring[slot(top, 4, d, ring)]
            row = y[b, i]
            for j in range(ow):
                q0 = j * s
                q1, q2, q3, q4 = q0 + d, q0 + 2 * d, q0 + 3 * d, q0 + 4 * d
                o = row[j]
                for c in range(C):
                    o[c] = rectified((r0[q0, c] * t[0, 0, c] + r0[q1, c] * t[0, 1, c] + r0[q2, c] * t[0, 2, c]
                             + r0[q3, c] * t[0, 3, c] + r0[q4, c] * t[0, 4, c])
                            + (r1[q0, c] * t[1, 0, c] + r1[q1, c] * t[1, 1, c] + r1[q2, c] * t[1, 2, c]
                               + r1[q3, c] * t[1, 3, c] + r1[q4, c] * t[1, 4, c])
                            + (r2[q0, c] * t[2, 0, c] + r2[q1, c] * t[2, 1, c] + r2[q2, c] * t[2, 2, c]
                               + r2[q3, c] * t[2, 3, c] + r2[q4, c] * t[2, 4, c])
                            + (r3[q0, c] * t[3, 0, c] + r3[q1, c] * t[3, 1, c] + r3[q2, c] * t[3, 2, c]
                               + r3[q3, c] * t[3, 3, c] + r3[q4, c] * t[3, 4, c])
                            + (r4[q0, c] * t[4, 0, c] + r4[q1, c] * t[4, 1, c] + r4[q2, c] * t[4, 2, c]
                               + r4[q3, c] * t[4, 3, c] + r4[q4, c] * t[4, 4, c])
                            + bias[c], relu, zero)


@ordered
def depthwise_any(x, t, bias, y, s, d, p, relu, ring):
    """Any f: the taps added one by one into the output row (it stays in cache)."""
    n, oh, ow, C = y.shape
    f = t.shape[0]
    loaded = np.empty(ring.shape[0], np.int64)
    for b in range(n):
        loaded[:] = SENTINEL
        for i in range(oh):
            top = i * s - p
            rows_in_ring(x, b, ring, loaded, top, f, d, p)
            row = y[b, i]
            for j in range(ow):
                row[j] = bias
            for kh in range(f):
                src = ring[slot(top, kh, d, ring)]
                for kw in range(f):
                    tap = t[kh, kw]
                    for j in range(ow):
                        px, o = src[j * s + kw * d], row[j]
                        for c in range(C):
                            o[c] += px[c] * tap[c]
            if relu:
                rectify(row)


SENTINEL = -(2**62)  # no input row has this index


@jit
def rows_in_ring(x, b, ring, loaded, top, f, d, p):
    """Make sure the ring holds input rows top, top + d, ..., top + (f-1)*d of image b, p
    columns in (rows outside the input are zeros)."""
    H, W, C = x.shape[1], x.shape[2], x.shape[3]
    for k in range(f):
        r = top + k * d
        at = slot(top, k, d, ring)
        if loaded[at] != r:
            dst = ring[at]
            if 0 <= r < H:
                src = x[b, r]
                for q in range(W):
                    for c in range(C):
                        dst[p + q, c] = src[q, c]
            else:
                for q in range(W):
                    for c in range(C):
                        dst[p + q, c] = 0
            loaded[at] = r


@jit
def slot(top, k, d, ring):
    return (top + k * d) % ring.shape[0]


@inlined
def rectified(v, relu, zero):
    """max(v, 0) if relu, computed into the store (an update in place, v = max(v, 0), would
    compile to masked stores, slow on AMD's cores)."""
    return max(v, zero) if relu else v


@jit
def rectify(row):
    zero = row.dtype.type(0)
    for j in range(row.shape[0]):
        for c in range(row.shape[1]):
            row[j, c] = max(row[j, c], zero)


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



# ------------------------------------------------------------------ grouped 3x3 convs
# A grouped conv of narrow groups (RegNet's 8 maps) as a depthwise-like product over all M
# output maps at once: each input row is expanded in cache so that e[w, ci, o] holds input map
# (o // m_g)*c_g + ci, the one output map o reads at its group's ci; then
# y[o] = sum over ci and the 3x3 taps of e[., ci, o] * W[kh, kw, ci, o], channels innermost,
# and two neighbouring outputs share their loads. BLAS's products of 8 columns ran 3.6 GMAC/s.

@jit
def grouped_3x3(x, W, bias, y, s, p, groups, ring, relu):
    n, oh, ow, M = y.shape
    cg, mg = x.shape[3] // groups, M // groups
    loaded = np.empty(3, np.int64)
    for b in range(n):
        loaded[:] = SENTINEL
        for i in range(oh):
            top = i * s - p
            for k in range(3):
                at = slot(top, k, 1, ring)
                if loaded[at] != top + k:
                    expand_row(x, b, top + k, ring[at], p, cg, mg)
                    loaded[at] = top + k
            e0, e1, e2 = ring[slot(top, 0, 1, ring)], ring[slot(top, 1, 1, ring)], ring[slot(top, 2, 1, ring)]
            row = y[b, i]
            j = 0
            while s == 1 and j + 2 <= ow:  # two outputs, four input columns each loaded once
                o, o2 = row[j], row[j + 1]
                for m in range(M):
                    o[m] = bias[m]
                    o2[m] = bias[m]
                for ci in range(cg):
                    a0, a1, a2, a3 = e0[j, ci], e0[j + 1, ci], e0[j + 2, ci], e0[j + 3, ci]
                    b0, b1, b2, b3 = e1[j, ci], e1[j + 1, ci], e1[j + 2, ci], e1[j + 3, ci]
                    c0, c1, c2, c3 = e2[j, ci], e2[j + 1, ci], e2[j + 2, ci], e2[j + 3, ci]
                    w00, w01, w02 = W[0, 0, ci], W[0, 1, ci], W[0, 2, ci]
                    w10, w11, w12 = W[1, 0, ci], W[1, 1, ci], W[1, 2, ci]
                    w20, w21, w22 = W[2, 0, ci], W[2, 1, ci], W[2, 2, ci]
                    for m in range(M):
                        u00, u01, u02 = w00[m], w01[m], w02[m]
                        u10, u11, u12 = w10[m], w11[m], w12[m]
                        u20, u21, u22 = w20[m], w21[m], w22[m]
                        x1, x2, z1, z2, v1, v2 = a1[m], a2[m], b1[m], b2[m], c1[m], c2[m]
                        o[m] += ((a0[m] * u00 + x1 * u01 + x2 * u02) + (b0[m] * u10 + z1 * u11 + z2 * u12)
                                 + (c0[m] * u20 + v1 * u21 + v2 * u22))
                        o2[m] += ((x1 * u00 + x2 * u01 + a3[m] * u02) + (z1 * u10 + z2 * u11 + b3[m] * u12)
                                  + (v1 * u20 + v2 * u21 + c3[m] * u22))
                j += 2
            for j in range(j, ow):
                q0 = j * s
                o = row[j]
                for m in range(M):
                    o[m] = bias[m]
                for ci in range(cg):
                    a0, a1, a2 = e0[q0, ci], e0[q0 + 1, ci], e0[q0 + 2, ci]
                    b0, b1, b2 = e1[q0, ci], e1[q0 + 1, ci], e1[q0 + 2, ci]
                    c0, c1, c2 = e2[q0, ci], e2[q0 + 1, ci], e2[q0 + 2, ci]
                    w00, w01, w02 = W[0, 0, ci], W[0, 1, ci], W[0, 2, ci]
                    w10, w11, w12 = W[1, 0, ci], W[1, 1, ci], W[1, 2, ci]
                    w20, w21, w22 = W[2, 0, ci], W[2, 1, ci], W[2, 2, ci]
                    for m in range(M):
                        o[m] += ((a0[m] * w00[m] + a1[m] * w01[m] + a2[m] * w02[m])
                                 + (b0[m] * w10[m] + b1[m] * w11[m] + b2[m] * w12[m])
                                 + (c0[m] * w20[m] + c1[m] * w21[m] + c2[m] * w22[m]))
            if relu:
                rectify(row)  # the row still in cache


@jit
def expand_row(x, b, r, e, p, cg, mg):
    """e[p + w, ci, o] = x[b, r, w, (o // mg)*cg + ci]; zeros for a row outside the input
    (the border columns stay as zeroed)."""
    H, W, M = x.shape[1], x.shape[2], e.shape[2]
    if r < 0 or r >= H:
        for q in range(W):
            for ci in range(cg):
                for o in range(M):
                    e[p + q, ci, o] = 0
        return
    src = x[b, r]
    for q in range(W):
        px = src[q]
        for ci in range(cg):
            d = e[p + q, ci]
            for g in range(M // mg):
                v = px[g * cg + ci]
                for m in range(mg):
                    d[g * mg + m] = v

