"""Constant folding: a node whose inputs are all constant (and `Shape` of an activation) is
evaluated at import, on NumPy arrays whose entries may be sympy sizes, so the shape
arithmetic exporters put around a Reshape (Shape, Gather, Concat, Div ...) folds to numbers
or formulas. FOLD maps an operator type to a function (ctx, node) -> its output values.

Shapes and indexing (Shape, Gather, Slice, Concat ...) and + - * / fold on sympy sizes too;
every other operator (Ceil, Sqrt, Max, Pow, comparisons ...) folds with NumPy on numbers only,
and on a symbolic size raises `Dynamic` (the importer names the chain). Every folded tensor is
bounded before it is made (`bounded`): at most MAX_FOLD_ELEMENTS, or no more than its inputs
hold (a Transpose of a large weight moves numbers the model holds; a broadcast makes new ones).
"""
from __future__ import annotations

import numpy as np
import sympy

from .common import Dynamic, Unsupported, attr_or_input, axes_of, same, slice_args
from ..sizes import floor_div, is_int, product, ratio, show

INT64_MAX = 2**63 - 1
# Folding makes constants of the sizes a model states: a 168-byte ConstantOfShape could ask for
# gigabytes. Shape arithmetic needs a handful of numbers; this leaves room for masks and tables.
MAX_FOLD_ELEMENTS = 10**7


def bounded(node, shape, inputs=()) -> list[int]:
    """The dims of a constant a node would make, refused before it is made when too large:
    over MAX_FOLD_ELEMENTS and over what its `inputs` hold together."""
    dims = [int(v) for v in shape]
    if any(d < 0 for d in dims):
        raise Unsupported(f"{node.op_type} of the shape {dims}, which has a negative dimension")
    n = int(np.prod(dims, dtype=object))
    if n > MAX_FOLD_ELEMENTS and n > sum(int(a.size) for a in inputs):
        raise Unsupported(f"{node.op_type} would make a constant of shape {dims}: {n:,} elements, "
                          f"over the limit of {MAX_FOLD_ELEMENTS:,} for constants folded at import")
    return dims


def obj(values) -> np.ndarray:
    """An int64 array if every entry is a number, an object array of sympy sizes otherwise."""
    a = np.asarray(values, dtype=object)
    flat = [v.item() if isinstance(v, np.generic) else v for v in a.reshape(-1)]
    flat = [int(v) if isinstance(v, sympy.Integer) else v for v in flat]
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in flat):
        return np.array(flat, dtype=np.int64).reshape(a.shape)
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(a.shape)


def ins(ctx, node):
    return [ctx.const(n) for n in node.input]


def concrete(node, *arrays):
    """Refuse symbolic sizes: past + - * / archcalc folds with NumPy, on numbers only."""
    for a in arrays:
        if a is not None and a.dtype == object:
            values = [show(v) for v in a.reshape(-1)[:6]] + (["..."] if a.size > 6 else [])
            raise Dynamic(f"{node.op_type} of [{', '.join(values)}]")


def broadcast(node, arrays) -> list[int]:
    """The shape element-wise arithmetic makes, bounded before it is made."""
    return bounded(node, np.broadcast_shapes(*(a.shape for a in arrays)), arrays)


def fold_constant(ctx, node):
    a = ctx.attrs(node)
    onnx = ctx.onnx
    if "value" in a:
        return [onnx.numpy_helper.to_array(a["value"])]
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in a:
            return [np.array(a[key], dtype=dtype)]
    raise Unsupported(f"Constant with {', '.join(a)}")


def fold_shape(ctx, node):
    a = ctx.attrs(node)
    x = node.input[0]
    dims = list(ctx.const(x).shape) if ctx.is_const(x) else ctx.dims(ctx.tensor(x))
    start, end = a.get("start", 0), a.get("end", None)
    return [obj(dims[start:end])]


def fold_gather(ctx, node):
    data, index = ins(ctx, node)[:2]
    axis = ctx.attrs(node).get("axis", 0) % max(data.ndim, 1)
    bounded(node, data.shape[:axis] + index.shape + data.shape[axis + 1:], (data, index))
    return [obj(np.take(data, index.astype(np.int64), axis=axis))]


def fold_unsqueeze(ctx, node):
    data = ins(ctx, node)[0]
    axes = axes_of(ctx, node, ctx.attrs(node), data.ndim + len(attr_or_input(
        ctx, node, ctx.attrs(node), "axes", 1) or [0]))
    for axis in axes:
        data = np.expand_dims(data, axis)
    return [data]


def fold_squeeze(ctx, node):
    data = ins(ctx, node)[0]
    axes = axes_of(ctx, node, ctx.attrs(node), max(data.ndim, 1))
    return [np.squeeze(data, axis=tuple(axes) if axes is not None else None)]


def fold_concat(ctx, node):
    arrays = [a for a in ins(ctx, node) if a is not None]
    axis = ctx.attrs(node).get("axis", 0)
    if any(a.dtype == object for a in arrays):
        return [obj(np.concatenate([a.astype(object) for a in arrays], axis=axis))]
    return [np.concatenate(arrays, axis=axis)]


def fold_slice(ctx, node):
    data = ins(ctx, node)[0]
    starts, ends, axes, steps = slice_args(ctx, node)
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * data.ndim
    for s, e, axis, step in zip(starts, ends, axes, steps):
        index[int(axis)] = slice(int(s), int(e) if abs(int(e)) < INT64_MAX // 2 else None, int(step))
    return [data[tuple(index)]]


def fold_cast(ctx, node):
    data = ins(ctx, node)[0]
    dtype = ctx.onnx.helper.tensor_dtype_to_np_dtype(ctx.attrs(node)["to"])
    if data.dtype == object:
        return [data]
    return [data.astype(dtype)]


def arithmetic(op):
    def fold(ctx, node):
        x, y = ins(ctx, node)[:2]
        broadcast(node, (x, y))
        if op == "Div" and (x.dtype.kind in "iuO" and y.dtype.kind in "iuO"):
            if x.dtype == object or y.dtype == object:
                f = np.frompyfunc(lambda a, b: floor_div(a, b), 2, 1)
                return [obj(f(x.astype(object), y.astype(object)))]
            return [np.trunc(x / y).astype(np.result_type(x, y))]
        fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
        if x.dtype == object or y.dtype == object:
            return [obj(fn(x.astype(object), y.astype(object)))]
        return [fn(x, y).astype(np.result_type(x, y))]
    return fold


def unary(fn):
    """Ceil, Sqrt, Neg ... on numbers, keeping the input's type (ONNX's rule)."""
    def fold(ctx, node):
        x = ins(ctx, node)[0]
        concrete(node, x)
        return [np.asarray(fn(x)).astype(x.dtype)]
    return fold


def numeric(fn, logical=False):
    """Max, Min (variadic), Pow, Mod, comparisons and logic on numbers: NumPy's broadcasting,
    which is ONNX's; the result has the first input's type, or bool for `logical`."""
    def fold(ctx, node):
        xs = [a for a in ins(ctx, node) if a is not None]
        concrete(node, *xs)
        broadcast(node, xs)
        out = xs[0]
        for y in xs[1:]:
            out = fn(ctx, node)(out, y)
        return [np.asarray(out).astype(bool if logical else xs[0].dtype)]
    return fold


def fold_mod(ctx, node):
    return np.fmod if ctx.attrs(node).get("fmod", 0) else np.mod


def fold_size(ctx, node):
    x = node.input[0]
    dims = list(ctx.const(x).shape) if ctx.is_const(x) else ctx.dims(ctx.tensor(x))
    return [obj(product(*dims))]


def fold_tile(ctx, node):
    data, repeats = ins(ctx, node)[:2]
    concrete(node, repeats)
    reps = [int(v) for v in repeats.reshape(-1)]
    bounded(node, [d * r for d, r in zip(data.shape, reps)], (data,))
    return [np.tile(data, reps)]


def fold_constant_of_shape(ctx, node):
    shape = bounded(node, ins(ctx, node)[0].reshape(-1))
    value = ctx.attrs(node).get("value")
    fill = ctx.onnx.numpy_helper.to_array(value).reshape(-1) if value is not None else np.zeros(1, np.float32)
    return [np.full(shape, fill[0], dtype=fill.dtype)]


def fold_reshape(ctx, node):
    data, target = ins(ctx, node)[:2]
    dims = resolve(ctx, list(target.reshape(-1)), list(data.shape), ctx.attrs(node).get("allowzero", 0))
    return [data.reshape([int(v) for v in dims])]


def fold_expand(ctx, node):
    data, shape = ins(ctx, node)[:2]
    target = np.broadcast_shapes(data.shape, tuple(int(v) for v in shape.reshape(-1)))
    bounded(node, target)
    return [np.broadcast_to(data, target).copy()]


def fold_equal(ctx, node):
    x, y = ins(ctx, node)[:2]
    f = np.frompyfunc(lambda a, b: same(a, b), 2, 1)
    return [f(x.astype(object), y.astype(object)).astype(bool)]


def fold_where(ctx, node):
    c, x, y = ins(ctx, node)[:3]
    broadcast(node, (c, x, y))
    out = np.where(c.astype(bool), x.astype(object), y.astype(object))
    return [obj(out) if x.dtype.kind in "iuO" else out.astype(x.dtype)]


def fold_range(ctx, node):
    concrete(node, *ins(ctx, node)[:3])
    start, limit, delta = (v.item() for v in ins(ctx, node)[:3])
    if delta == 0:
        raise Unsupported("Range with a step of 0")
    bounded(node, [max(0, -(-(limit - start) // delta))])
    return [np.arange(start, limit, delta)]


def fold_reduce_prod(ctx, node):
    data = ins(ctx, node)[0]
    keep = ctx.attrs(node).get("keepdims", 1)
    value = product(*data.reshape(-1).tolist())
    return [obj([value]) if keep else obj(value)]


def fold_transpose(ctx, node):
    perm = ctx.attrs(node).get("perm")
    return [np.transpose(ins(ctx, node)[0], perm)]


def fold_reduce_mean(ctx, node):
    """On constants only: a weight standardisation's mean and variance (onnx/convolutions.py)."""
    data = ins(ctx, node)[0].astype(np.float64)
    a = ctx.attrs(node)
    axes = axes_of(ctx, node, a, data.ndim)
    keep = bool(a.get("keepdims", 1))
    if axes is None and a.get("noop_with_empty_axes", 0):
        return [data]
    return [np.mean(data, axis=tuple(axes) if axes else None, keepdims=keep).astype(np.float32)]


def fold_batchnorm(ctx, node):
    """BatchNormalization of a constant (timm's StdConv2d: F.batch_norm over the reshaped
    weight): in training mode over its own statistics (every axis but 1), else the given ones."""
    x, scale, shift, mean, var = (v.astype(np.float64) for v in ins(ctx, node)[:5])
    a = ctx.attrs(node)
    along = (-1,) + (1,) * (x.ndim - 2)
    if a.get("training_mode", 0):
        axes = tuple(i for i in range(x.ndim) if i != 1)
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    y = (x - mean.reshape(along)) / np.sqrt(var.reshape(along) + a.get("epsilon", 1e-5))
    return [(y * scale.reshape(along) + shift.reshape(along)).astype(np.float32)]


FOLD = {
    "Constant": fold_constant, "Shape": fold_shape, "Gather": fold_gather,
    "Unsqueeze": fold_unsqueeze, "Squeeze": fold_squeeze, "Concat": fold_concat,
    "Slice": fold_slice, "Cast": fold_cast, "Add": arithmetic("Add"), "Sub": arithmetic("Sub"),
    "Mul": arithmetic("Mul"), "Div": arithmetic("Div"), "Identity": lambda ctx, node: ins(ctx, node)[:1],
    "ConstantOfShape": fold_constant_of_shape, "Reshape": fold_reshape, "Expand": fold_expand,
    "Equal": fold_equal, "Where": fold_where, "Range": fold_range, "ReduceProd": fold_reduce_prod,
    "Transpose": fold_transpose,
    "Floor": unary(np.floor), "Ceil": unary(np.ceil), "Sqrt": unary(np.sqrt), "Neg": unary(np.negative),
    "Abs": unary(np.abs), "Reciprocal": unary(np.reciprocal), "Sign": unary(np.sign),
    "Round": unary(np.round), "Not": unary(np.logical_not),
    "Max": numeric(lambda ctx, node: np.maximum), "Min": numeric(lambda ctx, node: np.minimum),
    "Pow": numeric(lambda ctx, node: np.power), "Mod": numeric(fold_mod),
    "Less": numeric(lambda ctx, node: np.less, True), "Greater": numeric(lambda ctx, node: np.greater, True),
    "LessOrEqual": numeric(lambda ctx, node: np.less_equal, True),
    "GreaterOrEqual": numeric(lambda ctx, node: np.greater_equal, True),
    "And": numeric(lambda ctx, node: np.logical_and, True),
    "Or": numeric(lambda ctx, node: np.logical_or, True),
    "Xor": numeric(lambda ctx, node: np.logical_xor, True),
    "Size": fold_size, "Tile": fold_tile,
    "ReduceMean": fold_reduce_mean, "BatchNormalization": fold_batchnorm,
}
SIZES = ("Shape", "Size")  # fold on an activation too: the analysis knows its dims


def origins(ctx, node) -> set:
    """The initializers a folded node's values come from (for the messages)."""
    found = set()
    for n in node.input:
        found |= ctx.origins.get(n, {n} if n in ctx.initializers else set())
    return found


def fold_node(ctx, node):
    """The node's outputs become constants."""
    for name, value in zip(node.output, FOLD[node.op_type](ctx, node)):
        ctx.consts[name] = value
        ctx.origins[name] = origins(ctx, node)


def fold_inputs(ctx, node, skip):
    """Fold the constant nodes that compute `node`'s other inputs, when they sit between the
    current node and `node` (a shape computed after the Transpose of a shuffle)."""
    wanted = {n for n in node.input if n and n != skip and not ctx.is_const(n)}
    if not wanted:
        return
    start = ctx.index[id(ctx.node)]
    end = ctx.index[id(node)]
    for i in range(start + 1, end):
        n = ctx.g.node[i]
        if i in ctx.done or n.op_type not in FOLD:
            continue
        if n.op_type in SIZES and n.input[0] in ctx.tensors or \
                all(ctx.is_const(k) for k in n.input):
            fold_node(ctx, n)
            ctx.done.add(i)


def resolve(ctx, target, dims, allowzero):
    """A Reshape's target with 0 (copy) and -1 (the rest) worked out."""
    out = []
    for i, v in enumerate(target):
        v = v if not isinstance(v, np.generic) else v.item()
        if is_int(v) and v == 0 and not allowzero:
            v = dims[i]
        out.append(v)
    unknown = [i for i, v in enumerate(out) if is_int(v) and v == -1]
    if unknown:
        rest = product(*(v for v in out if not (is_int(v) and v == -1)))
        out[unknown[0]] = ratio(product(*dims), rest)
    return out
