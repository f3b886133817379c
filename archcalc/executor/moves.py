"""The kernels that move numbers rather than compute with them: channel shuffle, zero
padding, channel slices, centre crops and upsampling (see kernels.py for the conventions)."""
from __future__ import annotations

import numpy as np


def shuffle(op, xs, w, ctx):
    """Channel j*groups + g of the output is channel g*(C/groups) + j of the input: PyTorch's
    view(N, groups, C/groups, H, W).transpose(1, 2), in NHWC."""
    x = xs[0]
    N, H, W, C = x.shape
    g = op.groups
    return np.ascontiguousarray(x.reshape(N, H, W, g, C // g).swapaxes(3, 4)).reshape(N, H, W, C)


def pad(op, xs, w, ctx):
    return np.pad(xs[0], ((0, 0), (op.top, op.bottom), (op.left, op.right), (0, 0)))


def slice_(op, xs, w, ctx):
    return np.ascontiguousarray(xs[0][..., op.start:op.stop])


def crop(op, xs, w, ctx):
    """The centre of each map: of d rows (columns), floor(d/2) cut at the top (left)."""
    x, (n_H, n_W) = xs[0], op.size or xs[1].shape[1:3]
    top, left = (x.shape[1] - n_H) // 2, (x.shape[2] - n_W) // 2
    return np.ascontiguousarray(x[:, top:top + n_H, left:left + n_W])


def upsample(op, xs, w, ctx):
    """PyTorch's nn.Upsample (ONNX's Resize), rows then columns: output i of n_out reads input
    floor(i n/n_out) (nearest), or mixes the two inputs around (i + 1/2) n/n_out - 1/2, clamped
    to the map (bilinear, align_corners=False)."""
    y = xs[0]
    for dim in (1, 2):
        n = y.shape[dim]
        o = op.scale * n if op.size is None else op.size[dim - 1]
        if op.mode == "nearest":
            y = np.take(y, np.arange(o) * n // o, axis=dim)
            continue
        lo, hi, t = linear_taps(n, o)
        a, y = np.take(y, lo, axis=dim), np.take(y, hi, axis=dim)
        y -= a  # a + (b - a) t, in place: np.take made fresh arrays
        y *= t.astype(ctx.dtype).reshape((-1,) + (1,) * (3 - dim))  # t along `dim`
        y += a
    return y


def linear_taps(n, o):
    """For each output i, the input pixels lo, hi around src = (i + 1/2) n/o - 1/2 (at least 0)
    and the weight t of hi: src in exact integers, ((2i + 1) n - o)/(2o)."""
    num, den = np.maximum((2 * np.arange(o) + 1) * n - o, 0), 2 * o
    lo = num // den
    return lo, np.minimum(lo + 1, n - 1), (num - lo * den) / den


KERNELS = {"shuffle": shuffle, "pad": pad, "slice": slice_, "crop": crop, "upsample": upsample}
