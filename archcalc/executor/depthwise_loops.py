"""The depthwise convolution's compiled loops at stride 1 (numba; imported only when numba is
there, by compiled.warm when the executor makes its first Context), behind compiled.depthwise;
strided ones are in loops.py.

One output row at a time, its outputs as long runs of numbers (pixel by pixel, channels
innermost), so that the compiler's vector loop pays its setup (tests of overlap and stride)
once a run, not once a pixel: per pixel, as loops.py does, MobileNetV3's 3x3 56 x 56 x 72 ran
6.8 GMAC/s alone at batch 8 on one core; in runs, 8.2-9.8. Output number k of a run is the
sum over the taps of input number k + shift(tap) of the tap's row times number k of that tap's
weights, repeated along the run (and the bias likewise): tap (kh, kw) of a run starting at
output j reads input row i - p + kh d from column j - p + kw d, a run of the input itself
(rows above and below it are a row of zeros). The outputs whose windows cross the left or
right edge are computed one by one, from the taps inside. 3x3: the nine products and the bias
in one expression, one store per output; 5x5: a pass per row of taps over a run of the output
(in cache); any other f: a pass per tap.

The sums keep their written order (no reassociation: three rows' chains run at once).
"""
from __future__ import annotations

import numpy as np
from numba import njit

jit = njit(cache=True, fastmath={"contract", "nsz"}, nogil=True, error_model="numpy")
# inlined where called: a call passes each array as seven numbers and counts its references
inlined = njit(cache=True, fastmath={"contract", "nsz"}, error_model="numpy", inline="always")


@jit
def depthwise(x, along, y, f, d, p, relu, zero, pixels):
    """y = x's depthwise convolution at stride 1 (f x f filters), through a ReLU if asked.
    along (f*f + 1, >= pixels*C): each tap's weights, then the bias, repeated along `pixels`
    outputs; zero: n_W*C zeros, the rows of padding."""
    n, oh, ow, C = y.shape
    H, W = x.shape[1], x.shape[2]
    shift = np.arange(f) * d * C
    # outputs whose windows lie within the row's n_W columns: left, right (past them, the edge)
    left = min(max(p, 0), ow)
    right = max(left, min(ow, W + p - (f - 1) * d))
    for b in range(n):
        for i in range(oh):
            out = y[b, i].reshape(-1)
            for j in range(left):
                edge(out[j * C:(j + 1) * C], x, b, i, j, f, p, d, along, relu)
            for j in range(right, ow):
                edge(out[j * C:(j + 1) * C], x, b, i, j, f, p, d, along, relu)
            for j0 in range(left, right, pixels):
                o = out[j0 * C:min(j0 + pixels, right) * C]
                start = (j0 - p) * C
                if f == 3:
                    run_3x3(o, row(x, b, i - p, zero), row(x, b, i - p + d, zero), row(x, b, i - p + 2 * d, zero),
                            along, shift, start, relu)
                    continue
                for kh in range(f):
                    src = row(x, b, i - p + kh * d, zero)
                    if f == 5:
                        run_5(o, src, along, kh * 5, shift, start, kh == 0)
                    else:
                        for kw in range(f):
                            run_tap(o, src, along, kh * f + kw, shift[kw] + start, kh == kw == 0)
                if relu:
                    rectify(o)


@inlined
def row(x, b, r, zero):
    """Input row r of image b as one run, or zeros above or below the input."""
    return x[b, r].reshape(-1) if 0 <= r < x.shape[1] else zero


@inlined
def edge(o, x, b, i, j, f, p, d, along, relu):
    """o = output (i, j), whose window crosses the input's edge: the taps inside it only."""
    bias = along[f * f]
    for c in range(o.size):
        o[c] = bias[c]
    for kh in range(f):
        r = i - p + kh * d
        for kw in range(f):
            q = j - p + kw * d
            if 0 <= r < x.shape[1] and 0 <= q < x.shape[2]:
                src, t = x[b, r, q], along[kh * f + kw]
                for c in range(o.size):
                    o[c] += src[c] * t[c]
    if relu:
        rectify(o)


@inlined
def run_3x3(o, r0, r1, r2, t, shift, start, relu):
    """o = a run of outputs, the nine products and the bias in one expression."""
    L = o.size
    u, v, w = start + shift[0], start + shift[1], start + shift[2]
    a0, a1, a2 = r0[u:u + L], r0[v:v + L], r0[w:w + L]
    b0, b1, b2 = r1[u:u + L], r1[v:v + L], r1[w:w + L]
    c0, c1, c2 = r2[u:u + L], r2[v:v + L], r2[w:w + L]
    t0, t1, t2, t3, t4, t5, t6, t7, t8, tb = t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9]
    zero = o.dtype.type(0)
    if relu:
        for k in range(L):
            o[k] = max((a0[k] * t0[k] + a1[k] * t1[k] + a2[k] * t2[k])
                       + (b0[k] * t3[k] + b1[k] * t4[k] + b2[k] * t5[k])
                       + (c0[k] * t6[k] + c1[k] * t7[k] + c2[k] * t8[k]) + tb[k], zero)
    else:
        for k in range(L):
            o[k] = ((a0[k] * t0[k] + a1[k] * t1[k] + a2[k] * t2[k])
                    + (b0[k] * t3[k] + b1[k] * t4[k] + b2[k] * t5[k])
                    + (c0[k] * t6[k] + c1[k] * t7[k] + c2[k] * t8[k]) + tb[k])


@inlined
def run_5(o, src, t, first, shift, start, initial):
    """o (+)= one row of five taps (= with the bias when `initial`)."""
    L = o.size
    u0, u1, u2, u3, u4 = start + shift[0], start + shift[1], start + shift[2], start + shift[3], start + shift[4]
    a0, a1, a2, a3, a4 = src[u0:u0 + L], src[u1:u1 + L], src[u2:u2 + L], src[u3:u3 + L], src[u4:u4 + L]
    t0, t1, t2, t3, t4 = t[first], t[first + 1], t[first + 2], t[first + 3], t[first + 4]
    if initial:
        tb = t[t.shape[0] - 1]
        for k in range(L):
            o[k] = tb[k] + ((a0[k] * t0[k] + a1[k] * t1[k]) + (a2[k] * t2[k] + a3[k] * t3[k]) + a4[k] * t4[k])
    else:
        for k in range(L):
            o[k] += (a0[k] * t0[k] + a1[k] * t1[k]) + (a2[k] * t2[k] + a3[k] * t3[k]) + a4[k] * t4[k]


@inlined
def run_tap(o, src, t, tap, at, initial):
    """o (+)= one tap's products (= with the bias when `initial`)."""
    L = o.size
    a, w = src[at:at + L], t[tap]
    if initial:
        tb = t[t.shape[0] - 1]
        for k in range(L):
            o[k] = tb[k] + a[k] * w[k]
    else:
        for k in range(L):
            o[k] += a[k] * w[k]


@inlined
def rectify(o):
    zero = o.dtype.type(0)
    for k in range(o.size):
        o[k] = max(o[k], zero)
