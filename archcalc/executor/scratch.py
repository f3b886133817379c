"""The temporaries each kernel makes, counted before the run: the arrays a kernel allocates
and drops within its own call, besides its output and the Context's reused workspace (counted
by WORKSPACE). A padded copy, a repeat of the channels, a first pass over the rows of a
pooling, the squares of an LRN: each can dwarf the output (conv_hw pads a 1x1 map by 30,000
into a 60,001^2 copy), so the plan adds the largest of them to its estimate.

A rule follows its kernel's code, allocation by allocation, and gives bytes at most (index
arrays are int64 or float64 whatever the run's dtype); kinds absent from TEMPORARIES make
nothing besides their output.
"""
from __future__ import annotations

from typing import Callable

from . import winograd
from .conv import end_tiles, method, out_hw, slab_elements, window_count

INDEX = 8  # bytes of an int64 or float64 index or weight array


def conv(op, x_shape, itemsize, tile_bytes) -> int:
    """depthwise: nothing (its einsum writes the output in place); Winograd: its transformed
    filters; grouped: the filters
    copied group-major; im2col over a connection table: the filters copied set by set, and a
    table row's input maps gathered from the slab."""
    N, H, W, C = x_shape
    oh, ow = out_hw(op, H, W)
    how = method(op, C)
    if how == "winograd":
        return winograd.temporaries(op, x_shape, itemsize, tile_bytes)
    if how in ("depthwise", "pointwise") or (op.table is None and op.groups == 1):
        return 0
    if how == "grouped":
        return op.f * op.f * (C // op.groups) * op.c * itemsize
    widest = max(len(r) for r in op.table)
    filters = op.f * op.f * sum(len(r) for r in op.table)
    tiles = end_tiles(N, oh, ow * op.f * op.f * widest * itemsize, tile_bytes)
    gathered = max(slab_elements(op, x_shape, ow, tile, widest) for tile in tiles)
    return (filters + gathered) * itemsize


def conv_hw(op, x_shape, itemsize, tile_bytes) -> int:
    """The padded copy of the input, and each group's patches copied whole (the next group's
    made while the last is held), or a group's filters copied out of W."""
    N, H, W, C = x_shape
    Hp, Wp = H + 2 * op.ph, W + 2 * op.pw
    oh, ow = (Hp - op.fh) // op.s + 1, (Wp - op.fw) // op.s + 1
    cg = C // op.groups
    cols = N * oh * ow * op.fh * op.fw * cg
    if op.groups > 1:
        cols += max(cols, op.fh * op.fw * cg * (op.c // op.groups))
    return (N * Hp * Wp * C + cols) * itemsize


def first_pass(op, x_shape, itemsize, tile_bytes) -> int:
    """Pooling reduces the rows first: an (N, o_H, n_W, n_C) array before the columns (the
    compiled max pooling, one (n_W, n_C) row: less)."""
    N, H, W, C = x_shape
    return N * pooled(op, H) * W * C * itemsize


def pooled(op, n) -> int:
    """Windows along an axis of n, as the pooling kernels count them."""
    return window_count(n, op.f, op.stride(), op.p, op.round == "ceil")


def avgpool(op, x_shape, itemsize, tile_bytes) -> int:
    """The first pass; then the o_H x o_W divisors (int64, and in the run's dtype) and the
    index vectors they are made from."""
    _, H, W, _ = x_shape
    oh, ow = pooled(op, H), pooled(op, W)
    divisors = oh * ow * (INDEX + itemsize) + 4 * INDEX * (oh + ow)
    return max(first_pass(op, x_shape, itemsize, tile_bytes), divisors)


def adaptive_avgpool(op, x_shape, itemsize, tile_bytes) -> int:
    """Per axis, one sum per output before they are stacked: the rows' sums and their stack,
    then the rows' result held while the columns' sums are made."""
    N, H, W, C = x_shape
    o = op.out_size
    rows = N * o * W * C
    return max(2 * rows, rows + N * o * o * C) * itemsize


def rbf(op, x_shape, itemsize, tile_bytes) -> int:
    """x - P for every prototype at once: (N, n_out, n_in)."""
    N, H, W, C = x_shape
    return N * op.c * H * W * C * itemsize


def lrn(op, x_shape, itemsize, tile_bytes) -> int:
    """The squares, their windowed sum and its power beta, each the input's size."""
    return 3 * _elements(x_shape) * itemsize


def leaky_relu(op, x_shape, itemsize, tile_bytes) -> int:
    """x > 0 (one byte each) and x * alpha."""
    return _elements(x_shape) * (1 + itemsize)


def hardswish(op, x_shape, itemsize, tile_bytes) -> int:
    """The gate, the input's size."""
    return _elements(x_shape) * itemsize


def softmax(op, x_shape, itemsize, tile_bytes) -> int:
    """The maximum and the sum over the channels, one per position each."""
    N, H, W, _ = x_shape
    return 2 * N * H * W * itemsize


def upsample(op, x_shape, itemsize, tile_bytes) -> int:
    """Rows, then columns: the rows' result (N, o_H, n_W, n_C) held while the columns are made;
    bilinear also takes the two neighbours along each axis (one a fresh array besides the
    result; the rows' one is still held while the columns are taken) and makes up to six
    index and weight vectors per axis."""
    N, H, W, C = x_shape
    oH, oW = (op.scale * H, op.scale * W) if op.size is None else op.size
    first, second = N * oH * W * C * itemsize, N * oH * oW * C * itemsize
    if op.mode == "nearest":
        return first + 3 * INDEX * max(oH, oW)
    return 2 * first + max(6 * INDEX * oH, second + 6 * INDEX * oW)


def _elements(shape) -> int:
    n = 1
    for v in shape:
        n *= v
    return n


# kind -> (op, input shape (N, n_H, n_W, n_C), itemsize, tile bytes) -> bytes: the largest
# memory the kernel holds at once besides its inputs, its output and the Context workspace
TEMPORARIES: dict[str, Callable] = {
    "conv": conv, "conv_hw": conv_hw, "maxpool": first_pass, "subsample": first_pass,
    "avgpool": avgpool, "adaptive_avgpool": adaptive_avgpool, "rbf": rbf, "lrn": lrn,
    "leaky_relu": leaky_relu, "hardswish": hardswish, "softmax": softmax, "upsample": upsample,
}
