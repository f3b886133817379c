"""Kernels of ConvNeXt's and ViT's per-position kinds: layer norm, layer scale, GELU, ELU.
NHWC arrays, so "per position" is the last axis."""
from __future__ import annotations

import math

import numpy as np

# Numerical Recipes' erfc (2nd ed., section 6.2): relative error below 1.2e-7 for every x,
# float32's own rounding; a float64 run takes math.erfc, exact, element by element
ERFC_POLY = (1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398,
             1.48851587, -0.82215223, 0.17087277)
exact_erfc = np.frompyfunc(math.erfc, 1, 1)


def erfc(x, dtype):
    if dtype == np.float64:
        return exact_erfc(x).astype(np.float64)
    z = np.abs(x, dtype=np.float64)
    t = 1 / (1 + z / 2)
    poly = np.zeros_like(t)
    for c in reversed(ERFC_POLY):
        poly += c
        poly *= t
    y = t * np.exp(-z * z - 1.26551223 + poly)
    return np.where(x >= 0, y, 2 - y).astype(dtype)


def layernorm(op, xs, w, ctx):
    """gamma (x - mu)/sqrt(sigma^2 + eps) + beta, mu and sigma^2 over the channels."""
    x = xs[0]
    d = x - x.mean(axis=-1, keepdims=True, dtype=ctx.dtype)
    var = np.mean(d * d, axis=-1, keepdims=True, dtype=ctx.dtype)
    d /= np.sqrt(var + ctx.dtype.type(float(op.eps)))
    d *= w["gamma"]
    d += w["beta"]
    return d


def scale(op, xs, w, ctx):
    return np.multiply(xs[0], w["gamma"], out=xs[0] if ctx.own else None)


def gelu(op, xs, w, ctx):
    """x Phi(x) = x/2 erfc(-x/sqrt(2)) (no cancellation for large -x), or the tanh form."""
    x = xs[0]
    if op.approximate == "tanh":
        inner = np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)).astype(ctx.dtype, copy=False)
        inner += 1
    else:
        inner = erfc(x.astype(np.float64) / -math.sqrt(2), ctx.dtype)  # float32's x/sqrt(2): 1e-5 off at -12
    inner *= x
    inner *= ctx.dtype.type(0.5)
    return inner


def elu(op, xs, w, ctx):
    x = xs[0]
    negative = np.expm1(np.minimum(x, 0)) * ctx.dtype.type(float(op.alpha))
    return np.where(x > 0, x, negative).astype(ctx.dtype, copy=False)


KERNELS = {"layernorm": layernorm, "scale": scale, "gelu": gelu, "elu": elu}
