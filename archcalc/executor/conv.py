"""The convolution kernels: im2col in row tiles, 1x1 as a plain matmul, depthwise as shifted
products, and conv_hw's fh x fw filters (see kernels.py for the conventions every kernel keeps:
NHWC arrays, its own output sizes, MACs counted by the Context)."""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import compiled, winograd
from .tiling import band_bytes, end_tiles, fill_slab, finish, out_hw, step, tile_rows, tiles, window_count  # noqa: F401 (window_count: its users import it here)



def conv(op, xs, w, ctx):
    (x,) = xs
    if op.ws:
        w = w | {"W": standardised(w["W"], float(op.eps), w.get("gain"))}
    how = method(op, x.shape[-1])
    if how == "depthwise":
        return depthwise(op, x, w, ctx)
    if how == "grouped":
        return grouped(op, x, w, ctx)
    if how == "pointwise":
        return pointwise(op, x, w, ctx)
    if how == "winograd":
        return winograd.winograd(op, x, w, ctx)
    return conv_im2col(op, x, w, ctx)


def standardised(W, eps, gain=None):
    """Weight standardisation: each filter (the last axis) minus its mean over its taps, divided
    by sqrt(variance + eps), times its gain."""
    mean = W.mean(axis=(0, 1, 2))
    var = ((W - mean) ** 2).mean(axis=(0, 1, 2))
    out = (W - mean) / np.sqrt(var + W.dtype.type(eps))
    return out * gain if gain is not None else out


def dwconv(op, xs, w, ctx):
    return conv(op.as_conv(xs[0].shape[-1]), xs, w, ctx)


def conv_transpose(op, xs, w, ctx):
    """Each input pixel times each f x f tap, one matrix product per tap and group (the MACs:
    every input pixel times every tap), scatter-added s pixels apart into the full output,
    (n - 1)*s + f wide (and out_pad more), whose border p is then cut off."""
    (x,) = xs
    N, H, W_in, C = x.shape
    f, s, p, extra = op.f, op.s, op.p, op.out_pad
    oh, ow = (H - 1) * s + f - 2 * p + extra, (W_in - 1) * s + f - 2 * p + extra
    full = np.zeros((N, max((H - 1) * s + f, p + oh), max((W_in - 1) * s + f, p + ow), op.c), ctx.dtype)
    cg, mg = C // op.groups, op.c // op.groups
    for g in range(op.groups):
        src = x[..., g * cg:(g + 1) * cg]
        for kh in range(f):
            for kw in range(f):
                taps = ctx.matmul(src, w["W"][kh, kw, :, g * cg:(g + 1) * cg].T)
                full[:, kh:kh + (H - 1) * s + 1:s, kw:kw + (W_in - 1) * s + 1:s, g * mg:(g + 1) * mg] += taps
    y = np.ascontiguousarray(full[:, p:p + oh, p:p + ow])
    if op.bias:
        y += w["b"]
    return y


def method(op, n_C_prev) -> str:
    """Which kernel a conv runs (and `workspace` counts for): one filter per input map, a
    product per group, a 1x1 matrix product, or im2col."""
    if op.table is None and op.groups > 1 and op.groups == n_C_prev:
        return "depthwise"
    if op.table is None and op.groups > 1:
        return "grouped"
    if op.f == 1 and op.pad() == 0 and op.table is None and op.groups == 1:
        return "pointwise"
    if winograd.fits(op, n_C_prev):
        return "winograd"
    return "im2col"



def pointwise(op, x, w, ctx):
    """A 1x1 convolution is a matrix product over every position, in row blocks; a stride
    gathers the positions it keeps into the workspace first."""
    N, H, W, C = x.shape
    s = op.s
    oh, ow = len(range(0, H, s)), len(range(0, W, s))
    y = np.empty((N, oh, ow, op.c), ctx.dtype)
    flat, matrix = y.reshape(-1, op.c), w["W"].reshape(C, op.c)
    for n0, n1, i0, i1 in tiles(N, oh, ow * max(C, op.c) * ctx.dtype.itemsize, pointwise_bytes(ctx.tile_bytes)):
        src = x[n0:n1, i0 * s:(i1 - 1) * s + 1:s, ::s]
        if s > 1:
            gathered = ctx.workspace(src.shape, "gather")
            gathered[...] = src
            src = gathered
        block = flat[tile_rows((n0, n1, i0, i1), oh, ow)]
        ctx.matmul(src.reshape(-1, C), matrix, out=block)
        finish(block, op, w, ctx)
    return y



def pointwise_bytes(tile_bytes) -> int:
    """A 1x1 conv's output block: 2 MiB ran 1.2-1.5x faster than 8 MiB where the input has
    few maps (ResNet-50's 56 x 56 x 64 -> 256: 30 vs 22 GMAC/s; 112 x 112 x 16 -> 64: 14 vs
    10), and the same within 4% elsewhere."""
    return min(tile_bytes, 2**21)


def conv_im2col(op, x, w, ctx):
    N, H, W, C = x.shape
    oh, ow = out_hw(op, H, W)
    sets = filters(op, w["W"], C)
    y = np.empty((N, oh, ow, op.c), ctx.dtype)
    flat = y.reshape(-1, op.c)
    row_bytes = ow * max(m.shape[0] for _, m, _ in sets) * ctx.dtype.itemsize
    for tile in tiles(N, oh, row_bytes, ctx.tile_bytes):
        block = flat[tile_rows(tile, oh, ow)]
        src = slab(x, op, ow, tile, ctx)
        # no name holds a set's patches past its product, so a wider set's workspace
        # replaces them instead of joining them
        for channels, matrix, outs in sets:
            ctx.matmul(im2col(src[..., channels], op, tile[3] - tile[2], ow, ctx),
                       matrix, out=block[:, outs])
        finish(block, op, w, ctx)
    return y


def slab(x, op, ow, tile, ctx):
    """The input rows a tile of outputs reads, inside zero borders (the padding, and the
    overhang of a ceil-mode window) in a reused buffer; the rows themselves if none is needed."""
    n0, n1, i0, i1 = tile
    _, H, W, C = x.shape
    p = op.pad()
    top, bottom, right = slab_bounds(op, H, W, ow, tile)
    if slab_is_view(op, H, top, bottom, right):
        return x[n0:n1, top:bottom]
    xp = ctx.workspace((n1 - n0, bottom - top, p + W + right, C), "pad")
    a, b = max(top, 0) - top, min(bottom, H) - top       # the real rows, within the slab
    return fill_slab(xp, x, n0, n1, a, b, top, p)


def filters(op, W, C):
    """(input channels, weight matrix (f*f*k, m), output channels) for each independent set
    of filters: one set, one per group, or one per output map of a connection table."""
    if op.table is not None:
        sets, start = [], 0
        for j, row in enumerate(op.table):
            sets.append((list(row), W[:, :, start:start + len(row)].reshape(-1, 1), slice(j, j + 1)))
            start += len(row)
        return sets
    cg, mg = C // op.groups, op.c // op.groups
    return [(slice(g * cg, (g + 1) * cg), W[..., g * mg:(g + 1) * mg].reshape(-1, mg),
             slice(g * mg, (g + 1) * mg)) for g in range(op.groups)]



def im2col(src, op, oh, ow, ctx):
    """The patches of oh x ow outputs as a (positions, f*f*C) matrix, channel axis innermost:
    for each kernel row, one copy from a strided view of the slab. With dilation 1 a window's
    row is f*C contiguous numbers, so each copy moves long runs."""
    n, f, s, d, C = src.shape[0], op.f, op.s, op.dilation, src.shape[-1]
    block = ctx.workspace((n, oh, ow, f, f, C), "cols")
    sN, sH, sW, sC = src.strides
    for kh in range(f):
        block[:, :, :, kh] = as_strided(src[:, kh * d:], (n, oh, ow, f, C),
                                        (sN, step(oh, s * sH), step(ow, s * sW), step(f, d * sW), sC),
                                        writeable=False)
    return block.reshape(-1, f * f * C)


def windows(src, op, oh, ow):
    """Every window of a slab as a strided view (n, oh, ow, f, f, C): no copy."""
    sN, sH, sW, sC = src.strides
    s, d = op.s, op.dilation
    return as_strided(src, (src.shape[0], oh, ow, op.f, op.f, src.shape[-1]),
                      (sN, step(oh, s * sH), step(ow, s * sW), step(op.f, d * sH), step(op.f, d * sW), sC),
                      writeable=False)


def depthwise(op, x, w, ctx):
    """Each filter reads one input map: per band of output rows (small enough to stay in
    cache), one einsum over the f x f taps of the windows' strided view, channels innermost,
    output map j reading input map j // m. No im2col copy and no per-tap pass over memory
    (shifted products over the whole map ran at 1.4 GMAC/s). With numba, one filter per map
    (m = 1, the usual case) runs simd.py's microkernel instead (4-20 GMAC/s on one core)."""
    N, H, W_in, C = x.shape
    oh, ow = out_hw(op, H, W_in)
    m = op.c // op.groups
    taps = w["W"].reshape(op.f, op.f, C, m)
    y = np.empty((N, oh, ow, op.c), ctx.dtype)
    if compiled.depthwise_applies(m, op.s, op.dilation, op.pad()):
        bias = w["b"] if op.bias else np.zeros(C, ctx.dtype)
        compiled.depthwise(x, taps[..., 0], bias, y, op.s, op.dilation, op.pad(), ctx.relu, ctx.workspace)
        ctx.count(y.size * op.f * op.f)
        return y
    for tile in tiles(N, oh, ow * op.c * ctx.dtype.itemsize, band_bytes(ctx.tile_bytes)):
        n0, n1, i0, i1 = tile
        block = y[n0:n1, i0:i1]
        src = windows(slab(x, op, ow, tile, ctx), op, i1 - i0, ow)
        np.einsum("nhwijc,ijcm->nhwcm", src, taps, out=block.reshape(*block.shape[:3], C, m))
        ctx.count(block.size * op.f * op.f)
        finish(block, op, w, ctx)
    return y


def grouped(op, x, w, ctx):
    """Groups as one batched matrix product: per band of output rows, the patches copied
    group by group ((positions, groups, f*f*c_g), so each group's rows are a strided matrix
    BLAS reads in place) and multiplied by the groups' filters (groups, f*f*c_g, m_g) in one
    np.matmul over a group axis, straight into the output's columns. With numba, 3x3 convs of
    narrow groups run simd.py's microkernel instead (BLAS is slow on 8-column products)."""
    N, H, W_in, C = x.shape
    oh, ow = out_hw(op, H, W_in)
    if compiled.grouped_applies(op.f, C // op.groups, op.dilation, op.s, op.pad()):
        y = np.empty((N, oh, ow, op.c), ctx.dtype)
        bias = w["b"] if op.bias else np.zeros(op.c, ctx.dtype)
        compiled.grouped(x, w["W"], bias, y, op.s, op.pad(), op.groups, ctx.relu, ctx.workspace)
        ctx.count(y.size * op.f * op.f * (C // op.groups))
        return y
    G, f, d = op.groups, op.f, op.dilation
    cg, mg = C // G, op.c // G
    filters_ = np.ascontiguousarray(w["W"].reshape(f, f, cg, G, mg).transpose(3, 0, 1, 2, 4))
    y = np.empty((N, oh, ow, op.c), ctx.dtype)
    flat = y.reshape(-1, op.c)
    for tile in tiles(N, oh, ow * f * f * C * ctx.dtype.itemsize, band_bytes(ctx.tile_bytes)):
        n0, n1, i0, i1 = tile
        src = slab(x, op, ow, tile, ctx)
        sN, sH, sW, sC = src.strides
        cols = ctx.workspace((n1 - n0, i1 - i0, ow, G, f, f, cg), "cols")
        for kh in range(f):
            cols[:, :, :, :, kh] = as_strided(src[:, kh * d:], (n1 - n0, i1 - i0, ow, G, f, cg),
                                              (sN, step(i1 - i0, op.s * sH), step(ow, op.s * sW), cg * sC,
                                               step(f, d * sW), sC), writeable=False)
        block = flat[tile_rows(tile, oh, ow)]
        ctx.matmul(cols.reshape(-1, G, f * f * cg).transpose(1, 0, 2), filters_.reshape(G, -1, mg),
                   out=block.reshape(-1, G, mg).transpose(1, 0, 2))
        finish(block, op, w, ctx)
    return y



def conv_hw(op, xs, w, ctx):
    """An fh x fw convolution: the padded input's patches (a strided view, copied once with
    the channel axis innermost) times the filters, one matmul per group."""
    x = np.pad(xs[0], ((0, 0), (op.ph, op.ph), (op.pw, op.pw), (0, 0)))
    N, H, W, C = x.shape
    s, fh, fw = op.s, op.fh, op.fw
    oh, ow = (H - fh) // s + 1, (W - fw) // s + 1
    sN, sH, sW, sC = x.strides
    patches = as_strided(x, (N, oh, ow, fh, fw, C), (sN, step(oh, s * sH), step(ow, s * sW), sH, sW, sC),
                         writeable=False)
    y = np.empty((N * oh * ow, op.c), ctx.dtype)
    cg, mg = C // op.groups, op.c // op.groups
    for g in range(op.groups):
        cols = np.ascontiguousarray(patches[..., g * cg:(g + 1) * cg]).reshape(-1, fh * fw * cg)
        ctx.matmul(cols, w["W"][..., g * mg:(g + 1) * mg].reshape(-1, mg), out=y[:, g * mg:(g + 1) * mg])
    if op.bias:
        y += w["b"]
    return y.reshape(N, oh, ow, op.c)


# ---------------------------------------------------------------- the workspace, counted first

def workspace(op, x_shape, itemsize, tile_bytes) -> dict:
    """Elements each Context workspace slot holds after `conv` runs on an input of `x_shape`:
    the same path and tiles, counted instead of made, so a run is refused before a huge slab
    (a 1x1 input padded by 30,000 is a 60,001^2 map) is allocated."""
    N, H, W, C = x_shape
    s = op.s
    oh, ow = out_hw(op, H, W)
    how = method(op, C)
    if how == "winograd":
        return winograd.workspace(op, x_shape, itemsize, tile_bytes)
    shapes = None
    if how == "depthwise" and compiled.depthwise_applies(op.c // C, s, op.dilation, op.pad()):
        shapes = compiled.depthwise_workspace(x_shape, ow, op.f, s, op.dilation, op.pad())
    if how == "grouped" and compiled.grouped_applies(op.f, C // op.groups, op.dilation, s, op.pad()):
        shapes = compiled.grouped_workspace(x_shape, ow, s, op.pad())
    if shapes:
        return {slot: math.prod(shape) for slot, shape in shapes.items()}
    if how in ("depthwise", "grouped"):
        # a band of depthwise outputs is its slab's only use; a grouped one copies its patches
        per_row, patch = (ow * op.c, 0) if how == "depthwise" else (ow * op.f * op.f * C,) * 2
        bands = end_tiles(N, oh, per_row * itemsize, band_bytes(tile_bytes))
        return banded_workspace(op, x_shape, ow, bands, patch)
    if how == "pointwise":
        rows, cols = len(range(0, H, s)), len(range(0, W, s))
        if s == 1:
            return {}
        bands = end_tiles(N, rows, cols * max(C, op.c) * itemsize, pointwise_bytes(tile_bytes))
        return {"gather": max((n1 - n0) * (i1 - i0) * cols * C for n0, n1, i0, i1 in bands)}
    # the input maps of the widest filter set: all, one group's, or a table row's
    widest = max(len(r) for r in op.table) if op.table is not None else C // op.groups
    patch = ow * op.f * op.f * widest
    return banded_workspace(op, x_shape, ow, end_tiles(N, oh, patch * itemsize, tile_bytes), patch)


def banded_workspace(op, x_shape, ow, bands, patch) -> dict:
    """The slab of each band, and its patches, `patch` elements an output row (0: none)."""
    sizes = {"pad": 0, "cols": 0}
    for tile in bands:
        n0, n1, i0, i1 = tile
        sizes["pad"] = max(sizes["pad"], slab_size(op, x_shape, ow, tile))
        sizes["cols"] = max(sizes["cols"], (n1 - n0) * (i1 - i0) * patch)
    return {k: v for k, v in sizes.items() if v}


def slab_size(op, x_shape, ow, tile) -> int:
    """Elements of the slab `slab` builds for a tile; 0 where it returns a view."""
    _, H, W, C = x_shape
    top, bottom, right = slab_bounds(op, H, W, ow, tile)
    return 0 if slab_is_view(op, H, top, bottom, right) else slab_elements(op, x_shape, ow, tile, C)


def slab_elements(op, x_shape, ow, tile, channels) -> int:
    """Elements of a tile's slab (padded, or the input's rows themselves) over `channels` maps."""
    n0, n1, _, _ = tile
    _, H, W, _ = x_shape
    top, bottom, right = slab_bounds(op, H, W, ow, tile)
    return (n1 - n0) * (bottom - top) * (op.pad() + W + right) * channels


def slab_bounds(op, H, W, ow, tile) -> tuple[int, int, int]:
    """The input rows [top, bottom) a tile of outputs reads, and the columns read past the
    input's right edge."""
    _, _, i0, i1 = tile
    p, s, extent = op.pad(), op.s, op.dilation * (op.f - 1) + 1
    return i0 * s - p, (i1 - 1) * s + extent - p, max(0, (ow - 1) * s + extent - p - W)


def slab_is_view(op, H, top, bottom, right) -> bool:
    """No border to add: the rows themselves are the slab."""
    return op.pad() == 0 and right == 0 and top >= 0 and bottom <= H
