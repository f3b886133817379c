"""ResNeSt's split attention in ONNX, both ways (kinds/radix.py): the export of `split_sum` and
`radix_softmax`, and the import of the patterns PyTorch writes for timm's SplitAttn:
- the radix splits: Reshape (N, r*C, H, W) -> (N, r, C, H, W), read by a ReduceSum over axis 1
  (`split_sum`) or a Mul of two such (the attention weights times the splits). archcalc keeps
  the map, whose elements are the same in the same order, and remembers r (`Tensor.splits`);
- RadixSoftmax: Reshape (N, groups, r, -1), Transpose (0, 2, 1, 3), Softmax over axis 1,
  Reshape back to (N, r*C) or to the input's shape (`radix_softmax`).
"""
from __future__ import annotations

import numpy as np

from .common import Tensor, Unsupported, axes_of, reader, same
from .fold import fold_inputs, resolve
from ..sizes import is_int


# ---------------------------------------------------------------- export

def ex_split_sum(ex, layer, op, row, w):
    """Reshape (N, r, n_C/r, H, W) with H and W read from the tensor's shape, ReduceSum axis 1."""
    x = ex.source(0, 4)
    r, n_C, name = int(op.r), int(row.in_shapes[0].n_C), layer.name
    hw = ex.node("Shape", [x], [f"{name}/hw"], name=f"{name}/hw", start=2)
    five = ex.node("Concat", [ex.init("splits", [0, r, n_C // r], np.int64), hw], [f"{name}/shape5"],
                   name=f"{name}/shape5", axis=0)
    y = ex.node("Reshape", [x, five], [f"{name}/splits"], name=f"{name}/splits")
    # the ReduceSum, which the import reads as the layer, carries the layer's name
    return ex.node("ReduceSum", [y, ex.init("axis", [1], np.int64)], keepdims=0), 4


def ex_radix_softmax(ex, layer, op, row, w):
    """timm's RadixSoftmax: Reshape (N, groups, r, -1), Transpose (0, 2, 1, 3), Softmax over
    axis 1, Reshape back to the input's shape."""
    x = ex.source(0, 4)
    name = layer.name
    shape = ex.node("Shape", [x], [f"{name}/shape"], name=f"{name}/shape")
    y = ex.node("Reshape", [x, ex.init("grouped", [0, int(op.groups), int(op.r), -1], np.int64)],
                [f"{name}/grouped"])
    y = ex.node("Transpose", [y], [f"{name}/swapped"], name=f"{name}/swapped", perm=[0, 2, 1, 3])
    y = ex.node("Softmax", [y], [f"{name}/softmax"], name=f"{name}/softmax", axis=1)
    return ex.node("Reshape", [y, shape], [name], name=f"{name}/back"), 4


# ---------------------------------------------------------------- import

def map_dims(ctx, x: Tensor):
    """[N, C, H, W] of a map, or of a vector (N, n) as (N, n, 1, 1)."""
    dims = ctx.dims(x)
    return dims + [1, 1] if x.rank == 2 else dims


def splits(ctx, node, x: Tensor, out):
    """Reshape (N, r*C, H, W) -> (N, r, C, H, W): the same map, seen as r splits."""
    N, C, H, W = map_dims(ctx, x)
    r = out[1]
    if x.perm is not None or not (is_int(r) and same(out[0], N) and same(out[2] * r, C) and
                                  same(out[3], H) and same(out[4], W)):
        return None
    t = Tensor(x.layer, 5, None, splits=int(r))
    ctx.alias(node.output[0], t)
    return t


def reduce_sum(ctx, node):
    x = ctx.tensor(node.input[0])
    axes = axes_of(ctx, node, ctx.attrs(node), x.rank)
    if x.rank != 5 or axes != [1] or ctx.attrs(node).get("keepdims", 1):
        raise Unsupported(f"ReduceSum over axes {axes} of a rank-{x.rank} tensor (archcalc reads "
                          "the sum over the splits (N, r, C, H, W) -> (N, C, H, W) of ResNeSt's "
                          "split attention: axis 1, keepdims=0)")
    return ctx.emit(node, "split_sum", [x], 4, r=x.splits)


def radix_softmax(ctx, node, x: Tensor, out):
    """Reshape (N, groups, r, -1), Transpose (0, 2, 1, 3), Softmax axis 1, Reshape back; None if
    the nodes after this Reshape are not that pattern."""
    dims = map_dims(ctx, x)
    t = reader(ctx, node.output[0], "Transpose")
    soft = t is not None and reader(ctx, t.output[0], "Softmax")
    back = soft and reader(ctx, soft.output[0], "Reshape")
    if len(out) != 4 or x.perm is not None or not back or not same(out[0], dims[0]) or \
            list(ctx.attrs(t).get("perm", [])) != [0, 2, 1, 3] or ctx.opset < 13 or \
            ctx.attrs(soft).get("axis", -1) % 4 != 1:
        return None
    groups, r = out[1], out[2]
    fold_inputs(ctx, back, skip=back.input[0])
    target = ctx.const(back.input[1])
    if target is None or not (is_int(groups) and is_int(r)):
        return None
    final = resolve(ctx, list(target.reshape(-1)), [dims[0], r, groups, out[3]],
                    ctx.attrs(back).get("allowzero", 0))
    if all(same(a, b) for a, b in zip(final, dims)) and len(final) == 4:
        rank = 4
    elif len(final) == 2 and same(dims[2] * dims[3], 1) and same(final[1], dims[1]):
        rank = 2
    else:
        raise Unsupported(f"RadixSoftmax whose result is reshaped to {ctx.shape_text(final)}: "
                          f"archcalc reads it back to the input's shape {ctx.shape_text(dims)} or, "
                          "for one position, to (N, n)")
    for n in (t, soft, back):
        ctx.skip(n)
    return ctx.emit(node, "radix_softmax", [x], rank, output=back.output[0], r=int(r),
                    groups=int(groups))
