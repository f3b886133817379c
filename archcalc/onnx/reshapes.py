"""Handlers of the operators that move a tensor's elements without arithmetic: Flatten,
Transpose, Reshape (and the channel shuffle it spells with a Transpose), Squeeze, Unsqueeze,
Pad, Split, Slice. Most of them archcalc reads as a flatten, an alias of the same activation
(a change of rank only), a slice of the channels or a centred crop of the rows and columns
(exported here too: `ex_crop`); `handlers.HANDLERS` lists them.

Flattening a map is where the two layouts differ in meaning: the model orders the elements
(C, H, W), archcalc (H, W, C); the vector remembers the model's order (`Tensor.perm`).
"""
from __future__ import annotations

import numpy as np

from . import channels_last
from .common import Tensor, Unsupported, attr_or_input, axes_of, chw_order, need_map, reader, same, slice_args
from .fold import fold_inputs, resolve
from ..errors import SpecError
from .radix import radix_softmax, splits
from ..sizes import is_int, product, show


def layout_helper(node) -> bool:
    """A node archcalc's export inserted only to change the model's rank of a vector."""
    return node.doc_string.startswith("archcalc: layout")


def flatten(ctx, node):
    x = ctx.tensor(node.input[0])
    axis = ctx.attrs(node).get("axis", 1)
    if axis % max(x.rank, 1) != 1 and not (axis == x.rank and x.rank == 2):
        raise Unsupported(f"Flatten at axis {axis} (archcalc flattens each image: axis 1)")
    if layout_helper(node):
        return ctx.alias(node.output[0], Tensor(x.layer, 2, x.perm))
    perm = chw_order(ctx.shape(x)) if x.rank == 4 and not x.last else x.perm  # (H, W, C): ours
    return ctx.emit(node, "flatten", [x], 2, perm=perm)


def transpose(ctx, node):
    """Only as a flatten in (H, W, C) order: Transpose(0, 2, 3, 1) then Flatten (archcalc's
    own export; Keras's Flatten), or inside a channel shuffle (see reshape)."""
    x = ctx.tensor(node.input[0])
    perm = list(ctx.attrs(node).get("perm", []))
    nxt = ctx.only_reader(node.output[0])
    if perm == [0, 2, 3, 1] and x.rank == 4 and nxt is not None and \
            nxt.op_type in ("Flatten", "Reshape") and flattens(ctx, nxt, x):
        ctx.skip(nxt)
        return ctx.emit(nxt, "flatten", [x], 2)  # named after the Flatten
    region = channels_last.transpose(ctx, node, x, perm)
    if region is not None:
        return region
    raise Unsupported(f"Transpose with perm {perm} (archcalc keeps one layout; it reads a Transpose "
                      "before a flatten, into a channels-last region and back, or inside a channel "
                      "shuffle)")


def flattens(ctx, node, x) -> bool:
    """Whether a Flatten or Reshape turns each image of x into one vector."""
    if node.op_type == "Flatten":
        return ctx.attrs(node).get("axis", 1) == 1
    target = ctx.const(node.input[1])
    if target is None or len(target) != 2:
        return False
    dims = ctx.dims(x)
    first = target[0]
    return (first in (-1, 0) or same(first, ctx.batch)) and \
        (target[1] == -1 or same(target[1], product(*dims[1:])))


def reshape(ctx, node):
    x = ctx.tensor(node.input[0])
    target = ctx.const(node.input[1])
    if target is None:
        raise Unsupported("Reshape to a shape computed from activations that does not fold to "
                          "constants")
    dims = ctx.dims(x)
    out = resolve(ctx, list(target.reshape(-1)), dims, ctx.attrs(node).get("allowzero", 0))
    shape = ctx.shape(x)
    batch_first = same(out[0], ctx.batch)
    if len(out) == 2 and batch_first and same(out[1], product(*dims[1:])):
        if x.rank == 2:
            return ctx.alias(node.output[0], x)
        return ctx.emit(node, "flatten", [x], 2, perm=chw_order(shape))
    if len(out) == 4 and batch_first and same(out[2], 1) and same(out[3], 1) and \
            same(out[1], product(*dims[1:])) and (x.rank == 2 or same(shape.n_H * shape.n_W, 1)):
        return ctx.alias(node.output[0], Tensor(x.layer, 4, x.perm))
    if len(out) == len(dims) and all(same(a, b) for a, b in zip(out, dims)):
        return ctx.alias(node.output[0], x)
    if len(out) == 5 and x.rank == 4 and reader(ctx, node.output[0], "Transpose"):
        return shuffle(ctx, node, x, out, dims)
    if len(out) == 5 and x.rank in (2, 4):  # ResNeSt's radix splits
        found = splits(ctx, node, x, out)
        if found is not None:
            return found
        raise Unsupported(f"Reshape of {ctx.shape_text(dims)} to {ctx.shape_text(out)} that is neither "
                          "a channel shuffle (Reshape, Transpose (0, 2, 1, 3, 4), Reshape back) nor "
                          "radix splits (N, r, C/r, H, W)")
    found = radix_softmax(ctx, node, x, out) if x.rank in (2, 4) else None
    if found is not None:
        return found
    raise Unsupported(f"Reshape of {ctx.shape_text(dims)} to {ctx.shape_text(out)}")


def shuffle(ctx, node, x, out, dims):
    """ShuffleNet's channel shuffle: Reshape (N, g, C/g, H, W), Transpose (0, 2, 1, 3, 4),
    Reshape back to (N, C, H, W)."""
    N, C, H, W = dims
    g = out[1]
    t = ctx.only_reader(node.output[0])
    back = t is not None and t.op_type == "Transpose" and ctx.only_reader(t.output[0])
    ok = is_int(g) and same(out[2] * g, C) and same(out[3], H) and same(out[4], W) and back and \
        list(ctx.attrs(t).get("perm", [])) == [0, 2, 1, 3, 4] and back.op_type == "Reshape"
    if ok:
        fold_inputs(ctx, back, skip=back.input[0])
        target = ctx.const(back.input[1])
        if target is None:
            ok = False
        else:
            final = resolve(ctx, list(target.reshape(-1)), [N, out[2], g, H, W],
                            ctx.attrs(back).get("allowzero", 0))
            ok = len(final) == 4 and all(same(a, b) for a, b in zip(final, dims))
    if not ok:
        raise Unsupported(f"Reshape of {ctx.shape_text(dims)} to {ctx.shape_text(out)} that is not "
                          "a channel shuffle (Reshape, Transpose (0, 2, 1, 3, 4), Reshape back)")
    ctx.skip(t)
    ctx.skip(back)
    return ctx.emit(node, "shuffle", [x], 4, output=back.output[0], groups=int(g))


def squeeze(ctx, node):
    x = ctx.tensor(node.input[0])
    axes = axes_of(ctx, node, ctx.attrs(node), x.rank)
    shape = ctx.shape(x)
    if x.rank == 4 and axes in ([2, 3], None) and same(shape.n_H, 1) and same(shape.n_W, 1):
        return ctx.alias(node.output[0], Tensor(x.layer, 2, x.perm))
    raise Unsupported(f"Squeeze of axes {axes} of a rank-{x.rank} tensor")


def unsqueeze(ctx, node):
    x = ctx.tensor(node.input[0])
    axes = axes_of(ctx, node, ctx.attrs(node), x.rank + 2)
    if x.rank == 2 and axes == [2, 3]:
        return ctx.alias(node.output[0], Tensor(x.layer, 4, x.perm))
    raise Unsupported(f"Unsqueeze at axes {axes} of a rank-{x.rank} tensor")


def pad(ctx, node):
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    mode = a.get("mode", "constant")
    pads = attr_or_input(ctx, node, a, "pads", 1)
    value = attr_or_input(ctx, node, a, "value", 2, 0.0)
    axes = attr_or_input(ctx, node, a, "axes", 3)
    pads = [int(v) for v in np.asarray(pads).reshape(-1)]
    if axes is not None:
        full = [0] * 8
        axes = [int(v) % 4 for v in np.asarray(axes).reshape(-1)]
        for k, axis in enumerate(axes):
            full[axis], full[4 + axis] = pads[k], pads[len(axes) + k]
        pads = full
    value = float(np.asarray(value).reshape(-1)[0]) if np.asarray(value).size else 0.0
    if mode != "constant" or value != 0:
        raise Unsupported(f"Pad in mode '{mode}' with value {value} (archcalc pads with zeros)")
    if len(pads) != 8 or pads[0] or pads[1] or pads[4] or pads[5] or min(pads) < 0:
        raise Unsupported(f"Pad {pads} (archcalc pads the rows and columns of each map)")
    return ctx.emit(node, "pad", [x], 4, top=pads[2], bottom=pads[6], left=pads[3], right=pads[7])


def split(ctx, node):
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    axis = a.get("axis", 0) % x.rank
    if axis != 1 or x.perm is not None:
        raise Unsupported(f"Split along axis {axis} (archcalc splits the channels)")
    n_C = ctx.shape(x).n_C
    sizes = attr_or_input(ctx, node, a, "split", 1)
    if sizes is None:
        k = a.get("num_outputs", len(node.output))
        if not is_int(n_C):
            raise Unsupported(f"Split of a symbolic number of channels {show(n_C)}")
        step = -(-n_C // k)
        sizes = [min(step, n_C - i * step) for i in range(k)]
    start = 0
    for k, (name, size) in enumerate(zip(node.output, sizes)):
        size = int(size)
        if name:
            ctx.emit(node, "slice", [x], x.rank, output=name, suffix=str(k), start=start,
                     stop=start + size)
        start += size
    return None


def slice_(ctx, node):
    x = ctx.tensor(node.input[0])
    starts, ends, axes, steps = slice_args(ctx, node)
    starts, ends = list(starts), list(ends)
    axes = list(range(len(starts))) if axes is None else [int(v) % x.rank for v in axes]
    steps = [1] * len(starts) if steps is None else list(steps)
    if x.rank == 4 and axes and set(axes) <= {2, 3} and steps == [1] * len(axes):
        return crop(ctx, node, x, dict(zip(axes, zip(starts, ends))))
    n_C = ctx.shape(x).n_C
    if axes != [1] or steps != [1] or x.perm is not None or not is_int(n_C):
        raise Unsupported(f"Slice of axes {axes} with steps {steps} (archcalc slices the channels, "
                          "or crops the rows and columns)")
    start, stop = (int(v) + n_C if int(v) < 0 else min(int(v), n_C) for v in (starts[0], ends[0]))
    return ctx.emit(node, "slice", [x], x.rank, start=start, stop=stop)


def crop(ctx, node, x, ranges):
    """A Slice of the rows and columns (axes 2, 3 of NCHW) is a crop when it keeps the centre:
    of d rows cut, floor(d/2) at the top (columns alike), as archcalc's crop cuts them."""
    need_map(ctx, x, node)
    shape, size = ctx.shape(x), []
    for axis, letter, n in ((2, "rows", shape.n_H), (3, "columns", shape.n_W)):
        if axis not in ranges:
            size.append(n)
            continue
        if not is_int(n):
            raise Unsupported(f"Slice of the {letter} of a map of symbolic size {show(n)}")
        start, end = (min(int(v) + n if int(v) < 0 else int(v), n) for v in ranges[axis])
        kept = max(end - start, 0)
        if kept == 0 or start != (n - kept) // 2:
            raise Unsupported(f"Slice of {letter} {start} to {end} of {n} is not a centred crop "
                              f"(a crop of {kept} starts at floor(({n} - {kept})/2) = {(n - kept) // 2})")
        size.append(kept)
    return ctx.emit(node, "crop", [x], 4, size=tuple(size))


def ex_crop(ex, layer, op, row, w):
    """A Slice of rows and columns from floor(d/2) on: constant starts and ends, so the sizes
    must be numbers."""
    n_prev, n = tuple(row.in_shapes[0][:2]), tuple(row.out_shape[:2])
    if not all(is_int(v) for v in (*n_prev, *n)):
        raise SpecError(f"crop '{layer.name}': its sizes are symbolic ({', '.join(map(show, n))})", None,
                        ("bind the symbols to export (--set NAME=VALUE)",))
    starts = [(p - k) // 2 for p, k in zip(n_prev, n)]
    return ex.node("Slice", [ex.source(0, 4), ex.init("starts", starts, np.int64),
                             ex.init("ends", [a + k for a, k in zip(starts, n)], np.int64),
                             ex.init("axes", [2, 3], np.int64)]), 4
