"""Winograd's F(2x2, 3x3) for stride-1 3x3 convolutions (Lavin and Gray, 2016): each 2x2 block
of outputs from its 4x4 input tile with 16 products per input and output map instead of 36, so
the matrix products (16 of them, one per tile position, in one batched np.matmul) do 2.25x
fewer multiplications than im2col's. The Context counts the convolution's MACs by their
definition (oh * ow * 9 * n_C * n_c an image: what `--verify` compares with the analysis) and
the multiplications the products executed apart, in `executed` (the filters' transform,
9 x 16 n_C n_c a band, is not among them: a fixed cost, like im2col's copies).

Transforms (the paper's B^T, G, A^T): only adds and halves, applied with strided views."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .tiling import end_tiles, fill_slab, finish, out_hw, tiles

G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def fits(op, n_C_prev) -> bool:
    """A dense 3x3 stride-1 conv, wide enough that the transforms' passes cost less than the
    products they save (below 16 maps im2col is faster)."""
    return (op.f == 3 and op.s == 1 and op.dilation == 1 and op.groups == 1 and op.table is None
            and min(n_C_prev, op.c) >= 16)


def winograd(op, x, w, ctx):
    N, H, W_in, C = x.shape
    oh, ow = out_hw(op, H, W_in)
    th, tw = -(-oh // 2), -(-ow // 2)   # 2x2 output blocks down and across
    U = transformed_filters(w["W"].reshape(9, C * op.c)).reshape(16, C, op.c)
    y = np.empty((N, oh, ow, op.c), ctx.dtype)
    for tile in tiles(N, th, band_row_bytes(tw, C, op.c, ctx.dtype.itemsize), ctx.tile_bytes):
        n0, n1, t0, t1 = tile
        i0, i1 = 2 * t0, min(oh, 2 * t1)
        V = input_tiles(x, op.pad(), tile, tw, ctx)                     # (16, P, n_C)
        M = ctx.workspace((16, V.shape[1], op.c), "products")
        np.matmul(V, U, out=M)
        # the conv's MACs by definition; the products it ran apart
        ctx.count((n1 - n0) * (i1 - i0) * ow * 9 * C * op.c, executed=16 * V.shape[1] * C * op.c)
        block = y[n0:n1, i0:i1]
        output_tiles(M.reshape(4, 4, n1 - n0, t1 - t0, tw, op.c), block)
        finish(block, op, w, ctx)
    return y


def band_row_bytes(tw, C, c, itemsize) -> int:
    """A row of 2x2 blocks: its 16 transformed tiles in, or its 16 products out. Bands take
    im2col's tile (8 MiB), not the 1 MiB of depthwise and grouped convs: the 16 products
    want hundreds of rows each (VGG-16's 14 x 14 x 512 convs ran 1.6x faster)."""
    return 16 * tw * max(C, c) * itemsize


# G g G^T's 16 entries, each a weighted sum of the 9 taps: COEFFICIENTS[a*4 + b, i*3 + j]
COEFFICIENTS = np.einsum("ai,bj->abij", G, G).reshape(16, 9)


def transformed_filters(taps):
    """G g G^T for every (input map, filter): (16, n_C * n_c), once a call (16/9 of the
    weights, 16 MiB for 512 maps into 512; made again for each band, VGG-16's took 9% of its
    time)."""
    return COEFFICIENTS.astype(taps.dtype) @ taps


def input_tiles(x, p, tile, tw, ctx):
    """B^T d B for every 4x4 input tile of a band (tiles overlap by 2), zero where the tile
    reads padding: (16, tiles, n_C) in the workspace."""
    n0, n1, t0, t1 = tile
    _, H, _, C = x.shape
    rows, cols = 2 * (t1 - t0) + 2, 2 * tw + 2
    d = ctx.workspace((n1 - n0, rows, cols, C), "pad")
    top = 2 * t0 - p
    a = min(rows, max(0, -top))                          # the real rows [a, b), within the slab
    b = max(a, min(rows, H - top))
    fill_slab(d, x, n0, n1, a, b, top, p)
    sN, sH, sW, sC = d.strides
    D = as_strided(d, (4, 4, n1 - n0, t1 - t0, tw, C), (sH, sW, sN, 2 * sH, 2 * sW, sC), writeable=False)
    rows_t = ctx.workspace((4, 4, n1 - n0, t1 - t0, tw, C), "cols")  # im2col's slot
    transform_in(D, rows_t, axis=0)
    V = ctx.workspace((4, 4, n1 - n0, t1 - t0, tw, C), "wino_in")
    transform_in(rows_t, V, axis=1)
    return V.reshape(16, -1, C)


def transform_in(d, out, axis):
    """B^T along one axis of 4: d0 - d2, d1 + d2, d2 - d1, d1 - d3."""
    take = (lambda k: d[k]) if axis == 0 else (lambda k: d[:, k])
    put = (lambda k: out[k]) if axis == 0 else (lambda k: out[:, k])
    np.subtract(take(0), take(2), out=put(0))
    np.add(take(1), take(2), out=put(1))
    np.subtract(take(2), take(1), out=put(2))
    np.subtract(take(1), take(3), out=put(3))


def output_tiles(M, block):
    """A^T m A for every tile, written into the band's outputs (its last row and column of
    blocks cut where oh or ow is odd): m0 + m1 + m2 and m1 - m2 - m3 along each axis, the
    first axis's in place (into m0 and m3), the second's straight into the output."""
    np.subtract(M[1], M[3], out=M[3])
    M[3] -= M[2]
    M[0] += M[1]
    M[0] += M[2]
    for i, sums in enumerate((M[0], M[3])):
        for j in range(2):
            part = block[:, i::2, j::2]
            cut = (slice(None), slice(part.shape[1]), slice(part.shape[2]))
            if j == 0:
                np.add(sums[0][cut], sums[1][cut], out=part)
                part += sums[2][cut]
            else:
                np.subtract(sums[1][cut], sums[2][cut], out=part)
                part -= sums[3][cut]


def temporaries(op, x_shape, itemsize, tile_bytes) -> int:
    """The transformed filters (16 n_C n_c), and their coefficients (16 x 9, float64)."""
    return 16 * x_shape[-1] * op.c * itemsize + 16 * 9 * 8


def workspace(op, x_shape, itemsize, tile_bytes) -> dict:
    """Elements of each slot for the largest band: its padded slab, its row- and fully-
    transformed tiles, and the products."""
    N, H, W, C = x_shape
    oh, ow = out_hw(op, H, W)
    th, tw = -(-oh // 2), -(-ow // 2)
    bands = end_tiles(N, th, band_row_bytes(tw, C, op.c, itemsize), tile_bytes)
    blocks = max((n1 - n0) * (t1 - t0) for n0, n1, t0, t1 in bands) * tw
    slab = max((n1 - n0) * (2 * (t1 - t0) + 2) for n0, n1, t0, t1 in bands) * (2 * tw + 2) * C
    return {"pad": slab, "cols": 16 * blocks * C, "wino_in": 16 * blocks * C,
            "products": 16 * blocks * op.c}
