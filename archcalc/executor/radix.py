"""Kernels of ResNeSt's split attention: the sum of the radix splits and the softmax across
them (kinds/radix.py). NHWC arrays: split i of r is maps i*n_C/r .. (i+1)*n_C/r - 1 of the
last axis."""
from __future__ import annotations

import numpy as np


def split_sum(op, xs, w, ctx):
    x = xs[0]
    N, H, W, C = x.shape
    return x.reshape(N, H, W, op.r, C // op.r).sum(axis=3)


def radix_softmax(op, xs, w, ctx):
    """Channel g*(r*n) + i*n + j in, i*(groups*n) + g*n + j out, softmax over i; the maximum
    is subtracted first so exp cannot overflow."""
    x = xs[0]
    N, H, W, C = x.shape
    r, groups = op.r, op.groups
    z = x.reshape(N, H, W, groups, r, C // (groups * r))
    e = np.exp(z - z.max(axis=4, keepdims=True))
    e /= e.sum(axis=4, keepdims=True)
    return np.ascontiguousarray(e.swapaxes(3, 4)).reshape(N, H, W, C)


KERNELS = {"split_sum": split_sum, "radix_softmax": radix_softmax}
