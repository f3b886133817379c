"""The ONNX operator table of the import: one small function per operator type, in a plain
dict (fvcore's style). HANDLERS maps a node on activations to archcalc layers, through
`Importer.emit`; the operators that only move elements (Flatten, Reshape, ...) have their
handlers in `reshapes`, the constant arithmetic around them is folded by `fold`, and
archcalc's own function domain is read by `functions`. A handler that meets a use it cannot
express raises `Unsupported` with the reason; the importer lists every such node at once.

Layouts: the model's maps are (N, C, H, W) and its vectors (N, n); archcalc's are (H, W, C)
per image. Kernel weights (c, C/groups, kh, kw) become (kh, kw, C/groups, c); Gemm's (c, n)
becomes (n, c).

Why this module is long: each handler stands beside the others of its family and the two
tables (HANDLERS, IMPORTS) that list them; the shape-only and resizing handlers are apart.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from .channels_last import bias_fits, pointwise_linear
from .convolutions import conv_transpose, standardisation
from .common import Tensor, Unsupported, attr_or_input, axes_of, need_map, real, same, square, \
    symmetric
from .reshapes import flatten, pad, reshape, slice_, split, squeeze, transpose, unsqueeze
from .normalisation import (channels_last_layernorm, decomposed_layernorm, elu, first_of, gelu_op,
                            gelu_pattern, layer_normalization, layer_scale)
from .radix import reduce_sum
from .resizing import resize
from .patches import PATCHES
from .sequences import SEQUENCES, before
from ..sizes import is_int, show

FLOAT_MAX = 3.4e38  # Clip's open ends in old opsets


# ---------------------------------------------------------------- helpers

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


def explicit_pad(ctx, node, x, pads) -> Tensor:
    """A `pad` layer in front, for padding that differs between sides."""
    t, l, b, r = pads
    return ctx.emit(node, "pad", [x], 4, output=f"{node.output[0]}#pad", suffix="pad",
                    top=t, bottom=b, left=l, right=r)


def elementwise(ctx, node, kind, output=None, **args):
    x = ctx.tensor(node.input[0])
    return ctx.emit(node, kind, [x], x.rank, perm=x.perm, output=output, **args)


def activations(ctx, node, what):
    names = [n for n in node.input if n]
    if any(ctx.is_const(n) for n in names):
        raise Unsupported(f"{node.op_type} with a constant operand (archcalc's {what} joins "
                          "activations; a bias after MatMul is read as part of fc)")
    xs = [ctx.tensor(n) for n in names]
    if len({t.last for t in xs if t.rank == 4}) > 1:
        raise Unsupported(f"{node.op_type} of a channels-last map (N, H, W, C) and a map (N, C, H, W)")
    if len({(t.rank, t.splits) for t in xs}) > 1 and any(t.rank == 5 for t in xs):
        raise Unsupported(f"{node.op_type} of radix splits (N, r, C, H, W) and a tensor of another "
                          "shape")
    perms = {t.perm for t in xs}
    if len(perms) > 1:
        raise Unsupported(f"{node.op_type} of vectors whose elements archcalc keeps in different orders")
    return xs, perms.pop()


# ---------------------------------------------------------------- weighted layers

def conv(ctx, node):
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    ws = standardisation(ctx, node)  # NFNet's weight standardisation: ws=on, the raw weight
    W = ctx.weight(node, 1, "weight") if ws is None else np.asarray(ws.pop("W"), np.float32)
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
    weights = {"W": W.transpose(2, 3, 1, 0)} | (ws.pop("weights") if ws else {})
    if b is not None:
        weights["b"] = b
    shared = [ws.pop("source") if ws else node.input[1]] + [n for n in node.input[2:3] if n]
    if kh != kw:  # Inception v3's 1x7 and 7x1
        if ws:
            raise Unsupported(f"Conv with a standardised {kh}x{kw} weight: archcalc's ws is conv's")
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
                    groups=groups, dilation=d, bias=b is not None, **(ws or {}))


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
    linear = pointwise_linear if x.last else fc  # channels-last: the same fc at each position
    add = ctx.only_reader(node.output[0])
    if add is not None and add.op_type == "Add":
        other = [n for n in add.input if n != node.output[0]]
        bias = ctx.const(other[0]) if len(other) == 1 else None
        if bias is not None and bias_fits(bias, W.shape[1], x):
            ctx.skip(add)
            return linear(ctx, node, x, W, bias.reshape(-1).astype(np.float32),
                          [node.input[1], other[0]], output=add.output[0])
    return linear(ctx, node, x, W, None, [node.input[1]])


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
    if x.rank != 4 or axes != ([1, 2] if x.last else [2, 3]):
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
                                   (same(shape.n_H, 1) and same(shape.n_W, 1))) or \
        x.last and axis == 3 and ctx.opset >= 13
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


def identity(ctx, node):
    return elementwise(ctx, node, "identity")


HANDLERS = {
    "Conv": conv, "Gemm": gemm, "MatMul": matmul, "BatchNormalization": batchnorm,
    "MaxPool": pool, "AveragePool": pool, "GlobalAveragePool": global_average,
    "GlobalMaxPool": global_max, "ReduceMean": first_of(decomposed_layernorm, reduce_mean),
    "Relu": lambda ctx, node: elementwise(ctx, node, "relu"),
    "Tanh": lambda ctx, node: elementwise(ctx, node, "tanh"),
    "Sigmoid": sigmoid, "HardSigmoid": hardsigmoid, "LeakyRelu": leaky_relu,
    "HardSwish": lambda ctx, node: elementwise(ctx, node, "hardswish"),
    "Clip": clip, "Softmax": softmax, "Dropout": dropout, "LRN": lrn, "Identity": identity,
    "Cast": cast, "Add": add, "Sum": add, "Mul": first_of(gelu_pattern, layer_scale, mul),
    "Concat": concat, "Flatten": flatten, "Transpose": first_of(channels_last_layernorm, transpose),
    "Reshape": reshape, "Squeeze": squeeze, "Unsqueeze": unsqueeze,
    "Pad": pad, "Split": split, "Slice": slice_, "Resize": resize, "Upsample": resize,
    "LayerNormalization": layer_normalization, "Gelu": gelu_op, "Elu": elu,
    "Div": first_of(gelu_pattern), "Pow": first_of(gelu_pattern), "Erf": first_of(), "Sqrt": first_of(),
    "ConvTranspose": conv_transpose, "ReduceSum": reduce_sum,
}


# Which operators the import turns into each kind of archcalc.kinds.KINDS (a test checks that
# the keys are the vocabulary and that each operator has a handler); 'archcalc.X' is X of
# archcalc's own function domain (functions.ARCHCALC), written by the export.
IMPORTS = {
    "input": (),  # the model's graph inputs, not an operator (Importer.graph_input)
    "conv": ("Conv", "archcalc.TableConv", "MatMul"),  # MatMul: a Linear in a channels-last region
    "conv_hw": ("Conv",),  # conv_hw: a kh x kw kernel
    "maxpool": ("MaxPool", "GlobalMaxPool"), "avgpool": ("AveragePool",),
    "subsample": ("archcalc.Subsample",), "gap": ("GlobalAveragePool", "ReduceMean"),
    "adaptive_avgpool": ("archcalc.AdaptiveAvgPool_*",),  # one function per input size
    "flatten": ("Flatten", "Reshape", "Transpose"),  # Transpose (0, 2, 3, 1) then Flatten
    "fc": ("Gemm", "MatMul"), "rbf": ("archcalc.RBF",),
    "relu": ("Relu", "Clip"), "tanh": ("Tanh",), "sigmoid": ("Sigmoid",),
    "softmax": ("Softmax",), "dropout": ("Dropout",), "batchnorm": ("BatchNormalization",),
    "lrn": ("LRN",), "add": ("Add", "Sum"), "concat": ("Concat",),
    "leaky_relu": ("LeakyRelu",), "clip": ("Clip",), "hardsigmoid": ("HardSigmoid",),
    "hardswish": ("HardSwish", "HardSigmoid"),  # HardSigmoid(1/6, 1/2) times its input
    "swish": ("Sigmoid",),  # Sigmoid times its input
    "identity": ("Identity",), "mul": ("Mul",),
    "shuffle": ("Reshape",),  # Reshape, Transpose (0, 2, 1, 3, 4), Reshape back
    "pad": ("Pad", "Conv", "AveragePool"),  # Conv and AveragePool: padding uneven between sides
    "slice": ("Slice", "Split"),
    "tokens": ("archcalc.Tokens", "archcalc.Tokens_cls", "archcalc.Tokens_pos", "archcalc.Tokens_cls_pos"),
     "token": ("archcalc.Token",), "attention": ("archcalc.Attention", "archcalc.PatchAttention"),
    "upsample": ("Resize", "Upsample"),
    # Transpose (0, 2, 3, 1) then LayerNormalization; ReduceMean: the decomposed form
    "layernorm": ("LayerNormalization", "ReduceMean"),
    "gelu": ("Gelu", "Div", "Mul", "Pow"),  # Div, Mul, Pow: the first node of its pattern
    "elu": ("Elu",), "scale": ("Mul",),  # Mul by one factor per channel
    "conv_transpose": ("ConvTranspose",),
    "dwconv": (),  # a depthwise Conv is read as conv groups=c=n_C_prev; the spec writer writes dwconv
    "crop": ("Slice",),  # of the rows and columns (axes 2, 3), keeping the centre
    "split_sum": ("ReduceSum",),  # over axis 1 of a Reshape to (N, r, C/r, H, W)
    "radix_softmax": ("Reshape",),  # Reshape (N, groups, r, -1), Transpose, Softmax, Reshape back
}


# token sequences (N, T, d), as torch.onnx writes a ViT: each matcher before the plain handler
HANDLERS.update({op: before(match, HANDLERS[op]) if op in HANDLERS else match
                 for op, match in SEQUENCES.items()})
HANDLERS.update({op: before(match, HANDLERS[op]) for op, match in PATCHES.items()})  # MobileViT
IMPORTS.update({"tokens": IMPORTS["tokens"] + ("Reshape", "Flatten"), "token": IMPORTS["token"] + ("Gather",),
                "attention": IMPORTS["attention"] + ("Transpose", "MatMul"),
                "conv": IMPORTS["conv"] + ("MatMul",)})  # MatMul: a per-token linear
