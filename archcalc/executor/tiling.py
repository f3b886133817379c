"""Where the convolution kernels work: the windows that fit, the output sizes, and the bands
of output rows a kernel takes at a time (and `workspace` counts), plus the epilogue every
band gets while it is in cache."""
from __future__ import annotations

import numpy as np

from . import compiled

# Depthwise, grouped and Winograd convs work on smaller bands than im2col's (kernels.py's
# TILE_BYTES): they gain nothing from one long BLAS call, and their blocks stay in L2
# (1 MiB ran 1.3-2x faster than 8 MiB)
BAND_BYTES = 2**20


def window_count(n, f, s, p, ceil=False) -> int:
    """Windows of f (stride s) that fit the input padded by p on both sides. Ceil mode
    (PyTorch's ceil_mode) also keeps a last window that overhangs the right edge, provided it
    starts inside the input or its left padding."""
    end = min(n + 2 * p - f + s, n + p) if ceil else n + 2 * p - f + 1
    return max(0, -(-end // s))  # len(range(0, end, s)), for sizes past C's ssize_t too

def out_hw(op, H, W) -> tuple[int, int]:
    """The conv's output rows and columns: the windows that fit, as PyTorch counts them."""
    ceil, extent = op.round == "ceil", op.dilation * (op.f - 1) + 1
    return window_count(H, extent, op.s, op.pad(), ceil), window_count(W, extent, op.s, op.pad(), ceil)

def finish(block, op, w, ctx):
    """Bias, and a ReLU the executor fused into this convolution, applied to a block of
    outputs while it is still in cache (in one compiled pass where numba is there)."""
    if compiled.bias_relu(block, w["b"] if op.bias else None, ctx.relu):
        return block
    if op.bias:
        block += w["b"]
    if ctx.relu:
        np.maximum(block, 0, out=block)
    return block


def fill_slab(slab, x, n0, n1, a, b, top, p):
    """Copy x's images n0..n1 into slab rows [a, b) (input row top + a on), p columns in,
    and zero every border around them: the padded slab a tile of outputs reads."""
    W = x.shape[2]
    slab[:, :a] = 0
    slab[:, b:] = 0
    slab[:, a:b, :p] = 0
    slab[:, a:b, p + W:] = 0
    slab[:, a:b, p:p + W] = x[n0:n1, a + top:b + top]
    return slab


def tiles(N, oh, row_bytes, budget):
    """(n0, n1, i0, i1): whole images, or row bands of one image, whose im2col block stays
    within `budget` bytes; either way the block's outputs are contiguous rows of y."""
    per_image = max(1, oh * row_bytes)
    if per_image <= budget:
        k = max(1, budget // per_image)
        return [(n0, min(N, n0 + k), 0, oh) for n0 in range(0, N, k)]
    r = max(1, budget // max(1, row_bytes))
    return [(n, n + 1, i0, min(oh, i0 + r)) for n in range(N) for i0 in range(0, oh, r)]


def tile_rows(tile, oh, ow) -> slice:
    n0, n1, i0, i1 = tile
    return slice((n0 * oh + i0) * ow, ((n1 - 1) * oh + i1) * ow)

def end_tiles(N, oh, row_bytes, budget):
    """The first and the last of `tiles(...)`, without listing the others (a huge map has
    billions of row bands): every other tile is as large as the first and lies inside it."""
    per_image = max(1, oh * row_bytes)
    if per_image <= budget:
        k = max(1, budget // per_image)
        return [(0, min(N, k), 0, oh), ((N - 1) // k * k, N, 0, oh)]
    r = max(1, budget // max(1, row_bytes))
    return [(0, 1, 0, min(oh, r)), (N - 1, N, (oh - 1) // r * r, oh)]

def band_bytes(tile_bytes) -> int:
    return min(tile_bytes, BAND_BYTES)


def step(count, stride_bytes):
    """A strided view's step along an axis of `count` elements: 0 for one element, whose step
    is never taken (a stride of 10**39 over a 1-wide map is one window, and its step in bytes
    fits no C long)."""
    return stride_bytes if count > 1 else 0
