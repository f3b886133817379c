"""The ONNX operator table: one small function per operator type, in plain dicts.

HANDLERS map a node on activations to archcalc layers (through `Importer.emit`); FOLD
evaluates a node whose inputs are all constant (and `Shape` of an activation) on NumPy
arrays whose entries may be sympy sizes, so the shape arithmetic exporters emit around a
Reshape folds to numbers or formulas at import. A handler that meets a use it cannot express
raises `Unsupported` with the reason; the importer lists every such node at once.

Layouts: the model's maps are (N, C, H, W) and its vectors (N, n); archcalc's are (H, W, C)
per image. Kernel weights (c, C/groups, kh, kw) become (kh, kw, C/groups, c); Gemm's (c, n)
becomes (n, c).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import sympy

from .importer import Tensor, Unsupported, chw_order, real
from ..sizes import differ, floor_div, is_int, product, ratio, show

INT64_MAX = 2**63 - 1
FLOAT_MAX = 3.4e38  # Clip's open ends in old opsets


def known(node) -> bool:
    if node.domain == "archcalc":
        return node.op_type in ARCHCALC
    return node.domain in ("", "ai.onnx") and (node.op_type in HANDLERS or node.op_type in FOLD)


def supported() -> list[str]:
    return sorted(set(HANDLERS) | set(FOLD))


def translate(ctx, node):
    if node.domain == "archcalc":
        return ARCHCALC[node.op_type](ctx, node)
    op = node.op_type
    if op in FOLD and (op == "Shape" or all(ctx.is_const(n) for n in node.input)):
        for name, value in zip(node.output, FOLD[op](ctx, node)):
            ctx.consts[name] = value
        return None
    if op not in HANDLERS:
        raise Unsupported(f"{op} on activations (archcalc evaluates it only on constants, such "
                          "as the shape arithmetic around a Reshape)")
    return HANDLERS[op](ctx, node)


# ---------------------------------------------------------------- helpers

def same(a, b) -> bool:
    a, b = (v.item() if isinstance(v, np.generic) else v for v in (a, b))
    return differ(a, b) is False


def square(values, what, node) -> int:
    values = list(values)
    if len(values) != 2:
        raise Unsupported(f"{node.op_type} with {len(values)}-D {what}: archcalc's layers are 2-D")
    if values[0] != values[1]:
        raise Unsupported(f"{node.op_type} with {what} {values[0]}x{values[1]}: archcalc's "
                          f"{what} are square")
    return int(values[0])


def need_map(ctx, t: Tensor, node):
    if t.rank != 4:
        raise Unsupported(f"{node.op_type} on a vector: it needs a map (N, C, H, W)")
    if t.perm is not None:
        raise Unsupported(f"{node.op_type} on a map made from a flattened vector whose elements "
                          "archcalc keeps in another order")


def pads_of(ctx, node, a, x: Tensor, f_eff, s, kernel=None):
    """(top, left, bottom, right), from auto_pad or pads; `kernel` (kh, kw) when not square."""
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        shape = ctx.shape(x)
        out = []
        for n, f_eff in zip((shape.n_H, shape.n_W), kernel or (f_eff, f_eff)):
            if s == 1:
                total = f_eff - 1
            elif is_int(n):
                total = max((-(-n // s) - 1) * s + f_eff - n, 0)
            else:
                raise Unsupported(f"{node.op_type} with auto_pad={auto} and stride {s} on a symbolic "
                                  f"size {show(n)}: the padding depends on the size")
            low = total // 2 if auto == "SAME_UPPER" else total - total // 2
            out.append((low, total - low))
        (t, b), (l, r) = out
        return t, l, b, r
    if auto == "VALID":
        return 0, 0, 0, 0
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if len(pads) != 4:
        raise Unsupported(f"{node.op_type} with {len(pads) // 2}-D pads")
    if min(pads) < 0:
        raise Unsupported(f"{node.op_type} with negative pads {pads}")
    return tuple(pads)


def symmetric(pads) -> int | None:
    return pads[0] if len(set(pads)) == 1 else None


def explicit_pad(ctx, node, x, pads) -> Tensor:
    """A `pad` layer in front, for padding that differs between sides."""
    t, l, b, r = pads
    return ctx.emit(node, "pad", [x], 4, output=f"{node.output[0]}#pad", suffix="pad",
                    top=t, bottom=b, left=l, right=r)


def attr_or_input(ctx, node, a, name, position, default=None):
    """An argument given as an attribute (old opsets) or as a constant input (new ones)."""
    if name in a:
        return a[name]
    if len(node.input) > position and node.input[position]:
        value = ctx.const(node.input[position])
        if value is None:
            raise Unsupported(f"{node.op_type} whose '{name}' is computed, not a constant")
        return value.tolist() if isinstance(value, np.ndarray) else value
    return default


def axes_of(ctx, node, a, rank, position=1):
    axes = attr_or_input(ctx, node, a, "axes", position)
    if axes is None:
        return None
    axes = [axes] if isinstance(axes, int) else list(axes)
    return sorted(int(v) % rank for v in axes)


def elementwise(ctx, node, kind, output=None, **args):
    x = ctx.tensor(node.input[0])
    return ctx.emit(node, kind, [x], x.rank, perm=x.perm, output=output, **args)


def activations(ctx, node, what):
    names = [n for n in node.input if n]
    if any(ctx.is_const(n) for n in names):
        raise Unsupported(f"{node.op_type} with a constant operand (archcalc's {what} joins "
                          "activations; a bias after MatMul is read as part of fc)")
    xs = [ctx.tensor(n) for n in names]
    perms = {t.perm for t in xs}
    if len(perms) > 1:
        raise Unsupported(f"{node.op_type} of vectors whose elements archcalc keeps in different orders")
    return xs, perms.pop()


# ---------------------------------------------------------------- weighted layers

def conv(ctx, node):
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    W = ctx.weight(node, 1, "weight")
    b = ctx.weight(node, 2, "bias")
    if W.ndim != 4:
        raise Unsupported(f"{W.ndim - 2}-D convolution: archcalc's are 2-D")
    c, per_group, kh, kw = W.shape
    s = square(a.get("strides", [1, 1]), "strides", node)
    d = square(a.get("dilations", [1, 1]), "dilations", node)
    groups = int(a.get("group", 1))
    n_C = ctx.shape(x).n_C
    if is_int(n_C) and per_group * groups != n_C:
        raise Unsupported(f"Conv whose weight reads {per_group} x {groups} group(s) = "
                          f"{per_group * groups} maps of an input with {n_C}")
    weights = {"W": W.transpose(2, 3, 1, 0)}
    if b is not None:
        weights["b"] = b
    shared = [n for n in node.input[1:3] if n]
    if kh != kw:  # Inception v3's 1x7 and 7x1
        if d != 1:
            raise Unsupported(f"Conv with a dilated {kh}x{kw} kernel")
        t, l, bottom, r = pads_of(ctx, node, a, x, None, s, (kh, kw))
        if (t, l) != (bottom, r):
            x, t, l = explicit_pad(ctx, node, x, (t, l, bottom, r)), 0, 0
        return ctx.emit(node, "conv_hw", [x], 4, weights, shared=shared, fh=kh, fw=kw, c=c, s=s,
                        ph=t, pw=l, groups=groups, bias=b is not None)
    f = kh
    pads = pads_of(ctx, node, a, x, d * (f - 1) + 1, s)
    p = symmetric(pads)
    if p is None:
        x, p = explicit_pad(ctx, node, x, pads), 0
    return ctx.emit(node, "conv", [x], 4, weights, shared=shared, f=f, c=c, s=s, p=p,
                    groups=groups, dilation=d, bias=b is not None)


def fc(ctx, node, x, W, b, shared, output=None):
    """W (n, c) in the model's element order, reordered to ours."""
    if x.rank != 2:
        raise Unsupported(f"{node.op_type} on a map: archcalc's fc reads a vector (N, n)")
    n = ctx.shape(x).n_C
    if is_int(n) and W.shape[0] != n:
        raise Unsupported(f"{node.op_type} whose weight reads {W.shape[0]} numbers of a vector of {n}")
    if x.perm is not None:
        W = W[list(x.perm)]
    weights = {"W": W}
    if b is not None:
        weights["b"] = b
    return ctx.emit(node, "fc", [x], 2, weights, output=output, shared=shared, c=int(W.shape[1]),
                    bias=b is not None)


def gemm(ctx, node):
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    if a.get("transA", 0):
        raise Unsupported("Gemm with transA=1")
    B = ctx.weight(node, 1, "weight")
    C = ctx.weight(node, 2, "bias")
    W = (B.T if a.get("transB", 0) else B) * np.float32(a.get("alpha", 1.0))
    b = None
    if C is not None:
        try:
            b = np.broadcast_to(C, (1, W.shape[1])).reshape(-1) * np.float32(a.get("beta", 1.0))
        except ValueError:
            raise Unsupported(f"Gemm whose bias of shape {C.shape} is not one per output") from None
    return fc(ctx, node, x, W, b, [n for n in node.input[1:3] if n])


def matmul(ctx, node):
    x = ctx.tensor(node.input[0])
    W = ctx.weight(node, 1, "weight")
    if W.ndim != 2:
        raise Unsupported(f"MatMul by a {W.ndim}-D constant")
    add = ctx.only_reader(node.output[0])
    if add is not None and add.op_type == "Add":
        other = [n for n in add.input if n != node.output[0]]
        bias = ctx.const(other[0]) if len(other) == 1 else None
        if bias is not None and bias.size == W.shape[1]:
            ctx.skip(add)
            return fc(ctx, node, x, W, bias.reshape(-1).astype(np.float32),
                      [node.input[1], other[0]], output=add.output[0])
    return fc(ctx, node, x, W, None, [node.input[1]])


def batchnorm(ctx, node):
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    arrays = [ctx.weight(node, i, what) for i, what in
              ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance"))]
    if any(v is None for v in arrays):
        raise Unsupported("BatchNormalization without its four parameter tensors")
    if x.perm is not None:
        arrays = [v[list(x.perm)] for v in arrays]
    weights = dict(zip(("gamma", "beta", "mean", "var"), arrays))
    return ctx.emit(node, "batchnorm", [x], x.rank, weights, perm=x.perm,
                    shared=node.input[1:3], state=node.input[3:5], eps=real(a.get("epsilon", 1e-5)))


# ---------------------------------------------------------------- pooling

def pool(ctx, node):
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    if len(node.output) > 1 and node.output[1] and ctx.readers(node.output[1]):
        raise Unsupported("MaxPool whose indices are used")
    f = square(a["kernel_shape"], "windows", node)
    s = square(a.get("strides", [1, 1]), "strides", node)
    if square(a.get("dilations", [1, 1]), "dilations", node) != 1:
        raise Unsupported(f"{node.op_type} with dilated windows")
    avg = node.op_type == "AveragePool"
    count_pad = bool(a.get("count_include_pad", 0))
    pads = pads_of(ctx, node, a, x, f, s)
    p = symmetric(pads)
    if p is None:
        if not (avg and count_pad):
            raise Unsupported(f"{node.op_type} with pads {list(pads)} that differ between sides "
                              "(archcalc pads pooling windows evenly)")
        x, p = explicit_pad(ctx, node, x, pads), 0
    rounding = "ceil" if a.get("ceil_mode", 0) else "floor"
    if avg:
        return ctx.emit(node, "avgpool", [x], 4, f=f, s=s, p=p, round=rounding, count_pad=count_pad)
    return ctx.emit(node, "maxpool", [x], 4, f=f, s=s, p=p, round=rounding)


def global_average(ctx, node):
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    return ctx.emit(node, "gap", [x], 4)


def global_max(ctx, node):
    """The maximum over a square map of n x n is a max pool of f = s = n."""
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    shape = ctx.shape(x)
    if not (is_int(shape.n_H) and shape.n_H == shape.n_W):
        raise Unsupported(f"GlobalMaxPool over a map of {show(shape.n_H)} x {show(shape.n_W)}: "
                          "archcalc reads it as a max pool, which needs a square map of known size")
    return ctx.emit(node, "maxpool", [x], 4, f=shape.n_H, s=shape.n_H)


def reduce_mean(ctx, node):
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    axes = axes_of(ctx, node, a, x.rank)
    if x.rank != 4 or axes != [2, 3]:
        raise Unsupported(f"ReduceMean over axes {axes} of a rank-{x.rank} tensor (archcalc reads "
                          "the mean over H and W, a global average pool)")
    need_map(ctx, x, node)
    return ctx.emit(node, "gap", [x], 4 if a.get("keepdims", 1) else 2)


# ---------------------------------------------------------------- element-wise

def fused_with_mul(ctx, node):
    """The Mul that multiplies this node's input by its output (x * sigmoid(x)), if the
    output goes nowhere else."""
    m = ctx.only_reader(node.output[0])
    if m is not None and m.op_type == "Mul" and sorted(m.input) == sorted([node.input[0], node.output[0]]):
        return m
    return None


def sigmoid(ctx, node):
    m = fused_with_mul(ctx, node)
    if m is not None:
        ctx.skip(m)
        return elementwise(ctx, node, "swish", output=m.output[0])
    return elementwise(ctx, node, "sigmoid")


def hardsigmoid(ctx, node):
    a = ctx.attrs(node)
    alpha, beta = real(a.get("alpha", 0.2)), real(a.get("beta", 0.5))
    m = fused_with_mul(ctx, node)
    if m is not None and alpha == Fraction(1, 6) and beta == Fraction(1, 2):
        ctx.skip(m)
        return elementwise(ctx, node, "hardswish", output=m.output[0])
    if alpha < 0 or beta < 0:
        raise Unsupported(f"HardSigmoid with a negative alpha or beta ({alpha}, {beta})")
    return elementwise(ctx, node, "hardsigmoid", alpha=alpha, beta=beta)


def leaky_relu(ctx, node):
    alpha = real(ctx.attrs(node).get("alpha", 0.01))
    if alpha < 0:
        raise Unsupported(f"LeakyRelu with a negative alpha {alpha}")
    return elementwise(ctx, node, "leaky_relu", alpha=alpha)


def clip(ctx, node):
    a = ctx.attrs(node)
    lo = attr_or_input(ctx, node, a, "min", 1)
    hi = attr_or_input(ctx, node, a, "max", 2)
    lo = None if lo is None or float(lo) <= -FLOAT_MAX else real(lo)
    hi = None if hi is None or float(hi) >= FLOAT_MAX else real(hi)
    if lo is None or lo < 0:
        raise Unsupported(f"Clip with minimum {'none' if lo is None else lo}: archcalc's clip starts "
                          "at 0 or above (ReLU6 is clip lo=0 hi=6)")
    if hi is None:
        if lo == 0:
            return elementwise(ctx, node, "relu")
        raise Unsupported(f"Clip from {lo} without a maximum")
    return elementwise(ctx, node, "clip", lo=lo, hi=hi)


def softmax(ctx, node):
    x = ctx.tensor(node.input[0])
    axis = ctx.attrs(node).get("axis", 1 if ctx.opset < 13 else -1) % x.rank
    shape = ctx.shape(x)
    over_channels = axis == 1 and (x.rank == 2 or ctx.opset >= 13 or
                                   (same(shape.n_H, 1) and same(shape.n_W, 1)))
    if not over_channels:
        raise Unsupported(f"Softmax over axis {axis} of a rank-{x.rank} tensor (archcalc's is over "
                          "the channels)")
    return elementwise(ctx, node, "softmax")


def dropout(ctx, node):
    a = ctx.attrs(node)
    rate = attr_or_input(ctx, node, a, "ratio", 1, 0.5)
    return elementwise(ctx, node, "dropout", rate=real(rate))


def lrn(ctx, node):
    a = ctx.attrs(node)
    size = int(a["size"])
    if size % 2 == 0:
        raise Unsupported(f"LRN with an even size {size}: its window is not centred the way "
                          "archcalc's is")
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    # ONNX: x / (bias + alpha/size * sum)^beta; archcalc (the paper): x / (k + alpha * sum)^beta
    return ctx.emit(node, "lrn", [x], 4, size=size, alpha=real(a.get("alpha", 1e-4)) / size,
                    beta=real(a.get("beta", 0.75)), k=real(a.get("bias", 1.0)))


def cast(ctx, node):
    to = ctx.attrs(node).get("to")
    if to not in (1, 10, 11, 16):
        raise Unsupported("Cast of an activation to a type that is not real")
    ctx.alias(node.output[0], ctx.tensor(node.input[0]))


# ---------------------------------------------------------------- joins

def add(ctx, node):
    xs, perm = activations(ctx, node, "add")
    if len(xs) == 1:
        return ctx.alias(node.output[0], xs[0])
    return ctx.emit(node, "add", xs, max(t.rank for t in xs), perm=perm)


def mul(ctx, node):
    xs, perm = activations(ctx, node, "mul")
    return ctx.emit(node, "mul", xs, max(t.rank for t in xs), perm=perm)


def concat(ctx, node):
    xs = [ctx.tensor(n) for n in node.input if n]
    rank = xs[0].rank
    axis = ctx.attrs(node).get("axis", 1) % rank
    if axis != 1 or any(t.rank != rank for t in xs):
        raise Unsupported(f"Concat along axis {axis} (archcalc joins along the channels)")
    perm = None
    if any(t.perm is not None for t in xs):
        perm, start = [], 0
        for t in xs:
            n = ctx.shape(t).n_C
            perm += [start + i for i in (t.perm or range(n))]
            start += n
        perm = tuple(perm)
    return ctx.emit(node, "concat", xs, rank, perm=perm)


# ---------------------------------------------------------------- shapes

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
    perm = chw_order(ctx.shape(x)) if x.rank == 4 else x.perm
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
    raise Unsupported(f"Transpose with perm {perm} (archcalc keeps one layout; it reads a Transpose "
                      "before a flatten or inside a channel shuffle)")


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
    if len(out) == 5 and x.rank == 4:
        return shuffle(ctx, node, x, out, dims)
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
        if i in ctx.done or not n.op_type in FOLD:
            continue
        if n.op_type == "Shape" and n.input[0] in ctx.tensors or \
                all(ctx.is_const(k) for k in n.input):
            for name, value in zip(n.output, FOLD[n.op_type](ctx, n)):
                ctx.consts[name] = value
            ctx.done.add(i)


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
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    starts = attr_or_input(ctx, node, a, "starts", 1)
    ends = attr_or_input(ctx, node, a, "ends", 2)
    axes = attr_or_input(ctx, node, a, "axes", 3)
    steps = attr_or_input(ctx, node, a, "steps", 4)
    starts, ends = list(np.asarray(starts).reshape(-1)), list(np.asarray(ends).reshape(-1))
    axes = list(range(len(starts))) if axes is None else [int(v) % x.rank for v in np.asarray(axes).reshape(-1)]
    steps = [1] * len(starts) if steps is None else list(np.asarray(steps).reshape(-1))
    n_C = ctx.shape(x).n_C
    if axes != [1] or steps != [1] or x.perm is not None or not is_int(n_C):
        raise Unsupported(f"Slice of axes {axes} with steps {steps} (archcalc slices the channels)")
    start, stop = (int(v) + n_C if int(v) < 0 else min(int(v), n_C) for v in (starts[0], ends[0]))
    return ctx.emit(node, "slice", [x], x.rank, start=start, stop=stop)


def identity(ctx, node):
    return elementwise(ctx, node, "identity")


HANDLERS = {
    "Conv": conv, "Gemm": gemm, "MatMul": matmul, "BatchNormalization": batchnorm,
    "MaxPool": pool, "AveragePool": pool, "GlobalAveragePool": global_average,
    "GlobalMaxPool": global_max, "ReduceMean": reduce_mean,
    "Relu": lambda ctx, node: elementwise(ctx, node, "relu"),
    "Tanh": lambda ctx, node: elementwise(ctx, node, "tanh"),
    "Sigmoid": sigmoid, "HardSigmoid": hardsigmoid, "LeakyRelu": leaky_relu,
    "HardSwish": lambda ctx, node: elementwise(ctx, node, "hardswish"),
    "Clip": clip, "Softmax": softmax, "Dropout": dropout, "LRN": lrn, "Identity": identity,
    "Cast": cast, "Add": add, "Sum": add, "Mul": mul, "Concat": concat, "Flatten": flatten,
    "Transpose": transpose, "Reshape": reshape, "Squeeze": squeeze, "Unsqueeze": unsqueeze,
    "Pad": pad, "Split": split, "Slice": slice_,
}


# ---------------------------------------------------------------- resizing: upsample

HALF_PIXEL = ("half_pixel", "pytorch_half_pixel")  # the same for outputs of more than 1 pixel


def resize(ctx, node):
    """Resize (and Upsample, opsets 7-9) as archcalc's upsample, PyTorch's nn.Upsample:
    nearest with asymmetric coordinates and floor, or half_pixel coordinates rounded by a whole
    factor (both pick input floor(i n/n_out)); linear with half_pixel coordinates is bilinear
    (align_corners=False)."""
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    old = node.op_type == "Upsample" or ctx.opset < 11  # asymmetric, floor: no attributes yet
    coords = "asymmetric" if old else a.get("coordinate_transformation_mode", "half_pixel")
    rounding = "floor" if old else a.get("nearest_mode", "round_prefer_floor")
    for key, plain in (("antialias", 0), ("keep_aspect_ratio_policy", "stretch"), ("axes", None)):
        if a.get(key, plain) != plain:
            raise Unsupported(f"{node.op_type} with {key}={a[key]}")
    target = resize_target(ctx, node, a, x, old)
    mode = a.get("mode", "nearest")
    if mode == "nearest" and (coords, rounding) == ("asymmetric", "floor"):
        return ctx.emit(node, "upsample", [x], 4, mode="nearest", **target)
    if mode == "nearest" and coords in HALF_PIXEL and rounding.startswith("round_prefer") and \
            whole_factor(ctx.shape(x), target):
        return ctx.emit(node, "upsample", [x], 4, mode="nearest", **target)
    if mode == "linear" and coords in HALF_PIXEL:
        return ctx.emit(node, "upsample", [x], 4, mode="bilinear", **target)
    how = f"mode {mode}" + (f", nearest_mode {rounding}" if mode == "nearest" else "")
    raise Unsupported(f"{node.op_type} in {how} with coordinate_transformation_mode {coords} "
                      "(archcalc's upsample is PyTorch's nearest, and bilinear with align_corners=False)")


def resize_target(ctx, node, a, x, old) -> dict:
    """{'scale': k} for scales (1, 1, k, k) with a whole k, {'size': (n_H, n_W)} for sizes."""
    sizes = None if old else attr_or_input(ctx, node, a, "sizes", 3)
    sizes = [v.item() if isinstance(v, np.generic) else v
             for v in np.asarray(sizes if sizes is not None else [], dtype=object).reshape(-1)]
    if sizes:
        if len(sizes) != 4:
            raise Unsupported(f"{node.op_type} to {len(sizes)}-D sizes")
        n, c, n_H, n_W = sizes
        if not (same(n, ctx.batch) and same(c, ctx.shape(x).n_C)):
            raise Unsupported(f"{node.op_type} to sizes {ctx.shape_text(sizes)}: archcalc resizes "
                              "n_H and n_W only")
        return {"size": (n_H, n_W)}
    scales = attr_or_input(ctx, node, a, "scales", 1 if old else 2)
    scales = [float(v) for v in np.asarray(scales if scales is not None else []).reshape(-1)]
    if len(scales) != 4 or scales[:2] != [1, 1] or scales[2] != scales[3] or \
            scales[2] < 1 or not scales[2].is_integer():
        raise Unsupported(f"{node.op_type} by scales {scales}: archcalc's upsample takes one whole "
                          "factor for n_H and n_W, or sizes")
    return {"scale": int(scales[2])}


def whole_factor(x, target) -> bool:
    """Whether the output is a whole multiple of the input along both axes."""
    if "scale" in target:
        return True
    return all(is_int(n) and is_int(o) and o % n == 0 for n, o in zip((x.n_H, x.n_W), target["size"]))


HANDLERS.update({"Resize": resize, "Upsample": resize})


# ---------------------------------------------------------------- constant folding

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
    return [obj(np.take(data, index.astype(np.int64), axis=ctx.attrs(node).get("axis", 0)))]


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
    a = ctx.attrs(node)
    data = ins(ctx, node)[0]
    starts = attr_or_input(ctx, node, a, "starts", 1)
    ends = attr_or_input(ctx, node, a, "ends", 2)
    axes = attr_or_input(ctx, node, a, "axes", 3)
    steps = attr_or_input(ctx, node, a, "steps", 4)
    starts, ends = np.asarray(starts).reshape(-1), np.asarray(ends).reshape(-1)
    axes = range(len(starts)) if axes is None else np.asarray(axes).reshape(-1)
    steps = [1] * len(starts) if steps is None else np.asarray(steps).reshape(-1)
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


def fold_constant_of_shape(ctx, node):
    shape = [int(v) for v in ins(ctx, node)[0].reshape(-1)]
    value = ctx.attrs(node).get("value")
    fill = ctx.onnx.numpy_helper.to_array(value).reshape(-1) if value is not None else np.zeros(1, np.float32)
    return [np.full(shape, fill[0], dtype=fill.dtype)]


def fold_reshape(ctx, node):
    data, target = ins(ctx, node)[:2]
    dims = resolve(ctx, list(target.reshape(-1)), list(data.shape) + [0] * 8,
                   ctx.attrs(node).get("allowzero", 0))
    return [data.reshape([int(v) for v in dims])]


def fold_expand(ctx, node):
    data, shape = ins(ctx, node)[:2]
    target = np.broadcast_shapes(data.shape, tuple(int(v) for v in shape.reshape(-1)))
    return [np.broadcast_to(data, target).copy()]


def fold_equal(ctx, node):
    x, y = ins(ctx, node)[:2]
    f = np.frompyfunc(lambda a, b: same(a, b), 2, 1)
    return [f(x.astype(object), y.astype(object)).astype(bool)]


def fold_where(ctx, node):
    c, x, y = ins(ctx, node)[:3]
    out = np.where(c.astype(bool), x.astype(object), y.astype(object))
    return [obj(out) if x.dtype.kind in "iuO" else out.astype(x.dtype)]


def fold_range(ctx, node):
    start, limit, delta = (v.item() for v in ins(ctx, node)[:3])
    return [np.arange(start, limit, delta)]


def fold_reduce_prod(ctx, node):
    data = ins(ctx, node)[0]
    keep = ctx.attrs(node).get("keepdims", 1)
    value = product(*data.reshape(-1).tolist())
    return [obj([value]) if keep else obj(value)]


def fold_transpose(ctx, node):
    perm = ctx.attrs(node).get("perm")
    return [np.transpose(ins(ctx, node)[0], perm)]


FOLD = {
    "Constant": fold_constant, "Shape": fold_shape, "Gather": fold_gather,
    "Unsqueeze": fold_unsqueeze, "Squeeze": fold_squeeze, "Concat": fold_concat,
    "Slice": fold_slice, "Cast": fold_cast, "Add": arithmetic("Add"), "Sub": arithmetic("Sub"),
    "Mul": arithmetic("Mul"), "Div": arithmetic("Div"), "Identity": lambda ctx, node: ins(ctx, node)[:1],
    "ConstantOfShape": fold_constant_of_shape, "Reshape": fold_reshape, "Expand": fold_expand,
    "Equal": fold_equal, "Where": fold_where, "Range": fold_range, "ReduceProd": fold_reduce_prod,
    "Transpose": fold_transpose, "Floor": lambda ctx, node: [np.floor(ins(ctx, node)[0])],
}


# ---------------------------------------------------------------- archcalc's own functions

# The kinds onnx_export writes as model-local functions of the domain 'archcalc'.

def ac_table_conv(ctx, node):
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    dense = ctx.weight(node, 1, "weight")
    rows, flat, table, start = list(a["table_rows"]), list(a["table"]), [], 0
    for n in rows:
        table.append([int(m) for m in flat[start:start + n]])
        start += n
    f = square(a["kernel_shape"], "kernels", node)
    packed = np.concatenate([dense[j, maps].transpose(1, 2, 0) for j, maps in enumerate(table)], axis=2)
    weights = {"W": packed}
    if a.get("bias", 1):
        weights["b"] = ctx.weight(node, 2, "bias")
    return ctx.emit(node, "conv", [x], 4, weights, f=f, c=len(table), table=table,
                    s=square(a.get("strides", [1, 1]), "strides", node), p=symmetric(a["pads"]),
                    dilation=square(a.get("dilations", [1, 1]), "dilations", node),
                    bias=bool(a.get("bias", 1)))


def ac_subsample(ctx, node):
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    weights = {"coeff": ctx.weight(node, 1, "coeff").reshape(-1), "b": ctx.weight(node, 2, "bias").reshape(-1)}
    return ctx.emit(node, "subsample", [x], 4, weights, f=square(a["kernel_shape"], "windows", node),
                    s=square(a["strides"], "strides", node), p=symmetric(a["pads"]),
                    round="ceil" if a.get("ceil_mode", 0) else "floor")


def ac_rbf(ctx, node):
    x = ctx.tensor(node.input[0])
    P = ctx.weight(node, 1, "prototypes")
    if x.perm is not None:
        P = P[:, list(x.perm)]
    return ctx.emit(node, "rbf", [x], 2, {"P": P}, c=int(P.shape[0]))


def ac_adaptive(ctx, node):
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    return ctx.emit(node, "adaptive_avgpool", [x], 4, out_size=int(ctx.attrs(node)["out_size"]))


class _Functions(dict):
    """op_type -> handler; AdaptiveAvgPool_<sizes> names one function per input size."""

    def __contains__(self, op_type):
        return dict.__contains__(self, op_type) or op_type.startswith("AdaptiveAvgPool_")

    def __getitem__(self, op_type):
        if op_type.startswith("AdaptiveAvgPool_"):
            return ac_adaptive
        return dict.__getitem__(self, op_type)


ARCHCALC = _Functions(TableConv=ac_table_conv, Subsample=ac_subsample, RBF=ac_rbf)
