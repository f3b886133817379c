"""Network -> ONNX model, with weights from the executor's initialisation, a .npz or given:
`export`, and KINDS, what each layer kind becomes (one small function per kind; the
machinery they call, and the weights, are in `exporter`).

Layout: the model is NCHW-native, as PyTorch's exports are: its input is (N, C, H, W), maps
stay (N, C, H, W) and vectors are (N, n); archcalc's (H, W, C) weights are transposed into
ONNX's layouts (conv (c, C/groups, f, f), Gemm (c, n) with transB=1). No transposes at the
edges: the one place where the two layouts differ in meaning is a flatten of a map, whose
elements archcalc orders (H, W, C) and PyTorch (C, H, W); it is exported as
Transpose(0, 2, 3, 1) then Flatten, so every weight keeps its meaning and the model's output
equals the executor's. Nodes that only change a vector's rank ((N, n, 1, 1) <-> (N, n)) carry
the doc string 'archcalc: layout', and an import skips them.

Kinds without an ONNX operator are model-local functions in the domain 'archcalc', whose
bodies are standard operators (so onnx.checker and onnxruntime take them, and an import reads
them back as the same kind): Subsample and RBF (LeNet-5, 1998), TableConv (a convolution
through a connection table: a dense weight with zeros where a filter reads no map; the import
takes back only the table's entries) and AdaptiveAvgPool (PyTorch's windows, for the input
size the model is exported at).

Symbols left free (`free=`) become named dimensions; their defaults are recorded in the
model's metadata ('archcalc.defaults'), so an import gets them back.
"""
from __future__ import annotations

import re

import numpy as np

from ..analysis.analyzer import analyze
from ..errors import SpecError
from ..sizes import is_int, show, symbol
from .attention import ex_attention, ex_token, ex_tokens
from .common import need_onnx
from .exporter import Exporter, ref, referred
from .normalisation import ex_gelu, ex_layernorm, ex_scale
from .reshapes import ex_crop
from .radix import ex_radix_softmax, ex_split_sum


def export(net, path=None, weights=None, at=None, free=(), seed=0, fold_bn=False, check=True):
    """The ONNX model of `net` (a Network; a ModelProto; written to `path` if given). `weights`: None
    (the executor's seeded initialisation), a path to an .npz, or {layer: {key: array}}.
    Symbols are bound as for `analyze` (`at`, then defaults); names in `free` stay free.
    `fold_bn` folds each BatchNorm that alone reads a convolution into that convolution's
    weights and bias, as PyTorch's exporter does in eval mode."""
    onnx = need_onnx()
    analysis = analyze(net, at=at, free=free)
    subs = {symbol(k): v for k, v in analysis.symbols.items() if v is not None}
    ex = Exporter(onnx, net, analysis, subs, fold_bn)
    params = ex.weights(weights, seed)
    model = ex.build(params, KINDS)
    if check:
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as e:  # the checker's ValidationError or shape inference's
            raise SpecError(f"the exported model does not pass onnx.checker: {e}") from None
    if path is not None:
        try:
            onnx.save(model, str(path))
        except OSError as e:
            raise SpecError(f"cannot write model '{path}': {e.strerror or e}") from None
    return model


# ---------------------------------------------------------------- one exporter per kind

def pads(op):
    p = op.pad() if hasattr(op, "pad") else op.p
    return [int(p)] * 4


def ex_input(ex, layer, op, row, w):
    n_H, n_W, n_C = op.shape
    dim = lambda v: int(v) if is_int(v) else str(v)
    ex.inputs.append(ex.h.make_tensor_value_info(layer.name, 1, ["N", dim(n_C), dim(n_H), dim(n_W)]))
    return layer.name, 4


def ex_conv(ex, layer, op, row, w):
    if op.round == "ceil":
        raise SpecError(f"conv '{layer.name}': round=ceil has no ONNX form (Conv rounds down)")
    x = ex.source(0, 4)
    if op.table is not None:
        return ex_table_conv(ex, layer, op, row, w, x)
    W = ex.init("W", w["W"].transpose(3, 2, 0, 1))
    inputs = [x, standardise(ex, layer.name, op, W, w) if op.ws else W]
    if "b" in w:
        inputs.append(ex.init("b", w["b"]))
    return ex.node("Conv", inputs, kernel_shape=[op.f, op.f], strides=[op.s, op.s], pads=pads(op),
                   dilations=[op.dilation, op.dilation], group=int(op.groups)), 4


def standardise(ex, name, op, W, w):
    """Weight standardisation over each filter's taps (axes 1-3 of ONNX's (c, C/groups, f, f)),
    as PyTorch's exporter decomposes it: (W - mean)/sqrt(var + eps), times the gain."""
    step = lambda op_type, inputs, tag, **attrs: ex.node(op_type, inputs, [f"{name}/ws_{tag}"],
                                                         name=f"{name}/ws_{tag}", **attrs)
    mean = step("ReduceMean", [W], "mean", axes=[1, 2, 3], keepdims=1)
    d = step("Sub", [W, mean], "centred")
    var = step("ReduceMean", [step("Mul", [d, d], "squared")], "var", axes=[1, 2, 3], keepdims=1)
    std = step("Sqrt", [step("Add", [var, ex.init("eps", np.float32(float(op.eps)))], "var_eps")], "std")
    Wn = step("Div", [d, std], "standardised")
    if not op.gain:
        return Wn
    return step("Mul", [Wn, ex.init("gain", w["gain"].reshape(-1, 1, 1, 1))], "gained")


def ex_conv_transpose(ex, layer, op, row, w):
    """ConvTranspose: archcalc's W (f, f, n_C/groups, n_C_prev) is ONNX's (C, M/group, f, f)."""
    inputs = [ex.source(0, 4), ex.init("W", w["W"].transpose(3, 2, 0, 1))]
    if op.bias:
        inputs.append(ex.init("b", w["b"]))
    return ex.node("ConvTranspose", inputs, kernel_shape=[op.f, op.f], strides=[op.s, op.s],
                   pads=[int(op.p)] * 4, output_padding=[int(op.out_pad)] * 2, group=int(op.groups)), 4


def ex_table_conv(ex, layer, op, row, w, x):
    n_C = int(row.in_shapes[0].n_C)
    dense = np.zeros((op.c, n_C, op.f, op.f), np.float32)
    start = 0
    for j, maps in enumerate(op.table):
        for k, m in enumerate(maps):
            dense[j, m] = w["W"][:, :, start + k]
        start += len(maps)
    attrs = ("kernel_shape", "strides", "pads", "dilations")
    body = [ex.h.make_node("Conv", ["x", "W", "b"], ["y"])]
    for a in attrs:
        body[0].attribute.append(ref(ex, a, "ints"))
    ex.function("TableConv", ["x", "W", "b"], ["y"], body, attrs)
    bias = w["b"] if op.bias else np.zeros(op.c, np.float32)
    return ex.node("TableConv", [x, ex.init("W", dense), ex.init("b", bias)], domain="archcalc",
                   kernel_shape=[op.f, op.f], strides=[op.s, op.s], pads=pads(op),
                   dilations=[op.dilation] * 2, table=[m for maps in op.table for m in maps],
                   table_rows=[len(maps) for maps in op.table], bias=int(bool(op.bias))), 4


def ex_conv_hw(ex, layer, op, row, w):
    inputs = [ex.source(0, 4), ex.init("W", w["W"].transpose(3, 2, 0, 1))]
    if op.bias:
        inputs.append(ex.init("b", w["b"]))
    return ex.node("Conv", inputs, kernel_shape=[op.fh, op.fw], strides=[op.s, op.s],
                   pads=[int(op.ph), int(op.pw)] * 2, group=int(op.groups)), 4


def ex_pool(ex, layer, op, row, w):
    attrs = dict(kernel_shape=[op.f, op.f], strides=[op.stride()] * 2, pads=[int(op.p)] * 4,
                 ceil_mode=int(op.round == "ceil"))
    if layer.kind == "avgpool":
        attrs["count_include_pad"] = int(bool(op.count_pad))
    return ex.node("MaxPool" if layer.kind == "maxpool" else "AveragePool", [ex.source(0, 4)], **attrs), 4


def ex_subsample(ex, layer, op, row, w):
    attrs = ("kernel_shape", "strides", "pads", "ceil_mode")
    body = [ex.h.make_node("AveragePool", ["x"], ["mean"], count_include_pad=1),
            referred(ex, "area", "area", "float"),
            ex.h.make_node("Mul", ["mean", "area"], ["sum"]),
            ex.h.make_node("Mul", ["sum", "coeff"], ["scaled"]),
            ex.h.make_node("Add", ["scaled", "b"], ["y"])]
    for a in attrs:
        body[0].attribute.append(ref(ex, a, "int" if a == "ceil_mode" else "ints"))
    ex.function("Subsample", ["x", "coeff", "b"], ["y"], body, attrs + ("area",))
    n_C = len(w["coeff"])
    return ex.node("Subsample", [ex.source(0, 4), ex.init("coeff", w["coeff"].reshape(n_C, 1, 1)),
                                 ex.init("b", w["b"].reshape(n_C, 1, 1))], domain="archcalc",
                   kernel_shape=[op.f, op.f], strides=[op.stride()] * 2, pads=[int(op.p)] * 4,
                   ceil_mode=int(op.round == "ceil"), area=float(op.f * op.f)), 4


def ex_gap(ex, layer, op, row, w):
    return ex.node("GlobalAveragePool", [ex.source(0, 4)]), 4


def ex_adaptive(ex, layer, op, row, w):
    """PyTorch's windows [floor(i n/o), ceil((i+1) n/o)), for this input's size: a function
    per input size (its body depends on it)."""
    n_H, n_W = row.in_shapes[0].n_H, row.in_shapes[0].n_W
    o = int(op.out_size)
    name = re.sub(r"[^A-Za-z0-9_]+", "_", f"AdaptiveAvgPool_{show(n_H)}x{show(n_W)}_to_{o}")
    if o == 1:
        body = [ex.h.make_node("GlobalAveragePool", ["x"], ["y"])]
    elif not (is_int(n_H) and is_int(n_W)):
        raise SpecError(f"adaptive_avgpool '{layer.name}': its windows over a symbolic input "
                        f"({show(n_H)}, {show(n_W)}) have no ONNX form", None,
                        ("bind the symbols to export (--set NAME=VALUE)",))
    else:
        body, rows = [], []
        spans = lambda n: [((i * n) // o, -(-(i + 1) * n // o)) for i in range(o)]
        const = lambda out, values: ex.h.make_node("Constant", [], [out], value=ex.onnx.numpy_helper.from_array(
            np.array(values, np.int64), out))
        body.append(const("axes", [2, 3]))
        for i, (r0, r1) in enumerate(spans(n_H)):
            cells = []
            for j, (c0, c1) in enumerate(spans(n_W)):
                tag = f"{i}_{j}"
                body += [const(f"lo{tag}", [r0, c0]), const(f"hi{tag}", [r1, c1]),
                         ex.h.make_node("Slice", ["x", f"lo{tag}", f"hi{tag}", "axes"], [f"win{tag}"]),
                         ex.h.make_node("ReduceMean", [f"win{tag}"], [f"mean{tag}"], axes=[2, 3], keepdims=1)]
                cells.append(f"mean{tag}")
            body.append(ex.h.make_node("Concat", cells, [f"row{i}"], axis=3))
            rows.append(f"row{i}")
        body.append(ex.h.make_node("Concat", rows, ["y"], axis=2))
    ex.function(name, ["x"], ["y"], body)
    return ex.node(name, [ex.source(0, 4)], domain="archcalc", out_size=o), 4


def ex_flatten(ex, layer, op, row, w):
    tensor, rank = ex.out[layer.inputs[0]]
    x = row.in_shapes[0]
    if rank == 4 and not (x.n_H == 1 and x.n_W == 1 or x.n_C == 1):
        tensor = ex.node("Transpose", [tensor], [f"{layer.name}/hwc"], name=f"{layer.name}/hwc",
                         perm=[0, 2, 3, 1])
    return ex.node("Flatten", [tensor], axis=1), 2


def ex_fc(ex, layer, op, row, w):
    inputs = [ex.source(0, 2), ex.init("W", w["W"].T)]
    if op.bias:
        inputs.append(ex.init("b", w["b"]))
    return ex.node("Gemm", inputs, transB=1), 2


def ex_rbf(ex, layer, op, row, w):
    const = lambda out, values: ex.h.make_node("Constant", [], [out], value=ex.onnx.numpy_helper.from_array(
        np.array(values, np.int64), out))
    body = [const("one", [1]), const("last", [2]),
            ex.h.make_node("Unsqueeze", ["x", "one"], ["x3"]),
            ex.h.make_node("Sub", ["x3", "P"], ["d"]),
            ex.h.make_node("Mul", ["d", "d"], ["d2"]),
            ex.h.make_node("ReduceSum", ["d2", "last"], ["y"], keepdims=0)]
    ex.function("RBF", ["x", "P"], ["y"], body)
    return ex.node("RBF", [ex.source(0, 2), ex.init("P", w["P"])], domain="archcalc"), 2


def same_rank(op_type, **fixed):
    def export_(ex, layer, op, row, w):
        tensor, rank = ex.out[layer.inputs[0]]
        attrs = {k: (v(op) if callable(v) else v) for k, v in fixed.items()}
        return ex.node(op_type, [tensor], **attrs), rank
    return export_


def ex_clip(ex, layer, op, row, w):
    tensor, rank = ex.out[layer.inputs[0]]
    return ex.node("Clip", [tensor, ex.init("lo", np.float32(float(op.lo))),
                            ex.init("hi", np.float32(float(op.hi)))]), rank


def ex_swish(ex, layer, op, row, w):
    tensor, rank = ex.out[layer.inputs[0]]
    # the first node carries the layer's name: the importer names the fused layer after it
    gate = ex.node("Sigmoid", [tensor], [f"{layer.name}/sigmoid"])
    return ex.node("Mul", [tensor, gate], [layer.name], name=f"{layer.name}/mul"), rank


def ex_dropout(ex, layer, op, row, w):
    tensor, rank = ex.out[layer.inputs[0]]
    return ex.node("Dropout", [tensor, ex.init("ratio", np.float32(float(op.rate)))]), rank


def ex_softmax(ex, layer, op, row, w):
    tensor, rank = ex.out[layer.inputs[0]]
    return ex.node("Softmax", [tensor], axis=1), rank


def ex_batchnorm(ex, layer, op, row, w):
    tensor, rank = ex.out[layer.inputs[0]]
    inputs = [tensor] + [ex.init(k, w[k]) for k in ("gamma", "beta", "mean", "var")]
    return ex.node("BatchNormalization", inputs, epsilon=float(op.eps)), rank


def ex_lrn(ex, layer, op, row, w):
    if op.size % 2 == 0:
        raise SpecError(f"lrn '{layer.name}': an even size {op.size} has no ONNX form (ONNX centres "
                        "the window one channel lower)")
    # archcalc (the paper): x / (k + alpha*sum)^beta; ONNX: x / (bias + alpha/size*sum)^beta
    return ex.node("LRN", [ex.source(0, 4)], size=int(op.size), alpha=float(op.alpha * op.size),
                   beta=float(op.beta), bias=float(op.k)), 4


def join(op_type, **attrs):
    def export_(ex, layer, op, row, w):
        inputs, rank = ex.sources()
        if op_type == "Add" and len(inputs) > 2:
            return ex.node("Sum", inputs), rank
        while op_type == "Mul" and len(inputs) > 2:  # Mul takes two
            k = len(inputs)
            inputs = [ex.node("Mul", inputs[:2], [f"{layer.name}/product{k}"],
                              name=f"{layer.name}/product{k}")] + inputs[2:]
        return ex.node(op_type, inputs, **attrs), rank
    return export_


def ex_shuffle(ex, layer, op, row, w):
    """Reshape (N, g, C/g, H, W), Transpose (0, 2, 1, 3, 4), Reshape (N, C, H, W): the
    pattern PyTorch exports, with H and W read from the tensor's shape."""
    x = ex.source(0, 4)
    g, n_C = int(op.groups), int(row.in_shapes[0].n_C)
    name = layer.name
    hw = ex.node("Shape", [x], [f"{name}/hw"], name=f"{name}/hw", start=2)
    five = ex.node("Concat", [ex.init("groups", [0, g, n_C // g], np.int64), hw], [f"{name}/shape5"],
                   name=f"{name}/shape5", axis=0)
    four = ex.node("Concat", [ex.init("maps", [0, n_C], np.int64), hw], [f"{name}/shape4"],
                   name=f"{name}/shape4", axis=0)
    y = ex.node("Reshape", [x, five], [f"{name}/grouped"])  # named as the layer, as in ex_swish
    y = ex.node("Transpose", [y], [f"{name}/swapped"], name=f"{name}/swapped", perm=[0, 2, 1, 3, 4])
    return ex.node("Reshape", [y, four], [name], name=f"{name}/back"), 4


def ex_pad(ex, layer, op, row, w):
    sizes = [0, 0, op.top, op.left, 0, 0, op.bottom, op.right]
    return ex.node("Pad", [ex.source(0, 4), ex.init("pads", [int(v) for v in sizes], np.int64)]), 4


def ex_slice(ex, layer, op, row, w):
    tensor, rank = ex.out[layer.inputs[0]]
    return ex.node("Slice", [tensor, ex.init("start", [int(op.start)], np.int64),
                             ex.init("stop", [int(op.stop)], np.int64),
                             ex.init("axis", [1], np.int64)]), rank


def ex_upsample(ex, layer, op, row, w):
    """Resize as PyTorch exports nn.Upsample: nearest with asymmetric coordinates and floor,
    bilinear as linear with half_pixel; a scale as scales (1, 1, k, k), a size as sizes whose
    N and C are read from the tensor's shape."""
    x = ex.source(0, 4)
    attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor") \
        if op.mode == "nearest" else dict(mode="linear", coordinate_transformation_mode="half_pixel")
    target = [op.scale] if op.size is None else list(op.size)
    if not all(is_int(v) for v in target):
        what = "scale" if op.size is None else "size"
        raise SpecError(f"upsample '{layer.name}': its {what} is symbolic ({', '.join(show(v) for v in target)})",
                        None, ("bind the symbols to export (--set NAME=VALUE)",))
    if op.size is None:
        return ex.node("Resize", [x, "", ex.init("scales", [1, 1, op.scale, op.scale])], **attrs), 4
    name = layer.name
    nc = ex.node("Shape", [x], [f"{name}/nc"], name=f"{name}/nc", end=2)
    sizes = ex.node("Concat", [nc, ex.init("size", target, np.int64)], [f"{name}/sizes"],
                    name=f"{name}/sizes", axis=0)
    return ex.node("Resize", [x, "", "", sizes], **attrs), 4


KINDS = {
    "input": ex_input, "conv": ex_conv, "maxpool": ex_pool, "avgpool": ex_pool,
    "subsample": ex_subsample, "gap": ex_gap, "adaptive_avgpool": ex_adaptive,
    "flatten": ex_flatten, "fc": ex_fc, "rbf": ex_rbf,
    "relu": same_rank("Relu"), "tanh": same_rank("Tanh"), "sigmoid": same_rank("Sigmoid"),
    "softmax": ex_softmax, "dropout": ex_dropout, "batchnorm": ex_batchnorm, "lrn": ex_lrn,
    "add": join("Add"), "concat": join("Concat", axis=1),
    "leaky_relu": same_rank("LeakyRelu", alpha=lambda op: float(op.alpha)), "clip": ex_clip,
    "hardsigmoid": same_rank("HardSigmoid", alpha=lambda op: float(op.alpha),
                             beta=lambda op: float(op.beta)),
    "hardswish": same_rank("HardSwish"), "swish": ex_swish, "identity": same_rank("Identity"),
    "mul": join("Mul"), "shuffle": ex_shuffle, "pad": ex_pad, "slice": ex_slice,
    "conv_hw": ex_conv_hw,
    "upsample": ex_upsample,
    "layernorm": ex_layernorm, "scale": ex_scale, "gelu": ex_gelu,
    "elu": same_rank("Elu", alpha=lambda op: float(op.alpha)),
    "tokens": ex_tokens, "token": ex_token, "attention": ex_attention,
    "conv_transpose": ex_conv_transpose,
    "dwconv": lambda ex, layer, op, row, w: ex_conv(ex, layer, op.as_conv(row.in_shapes[0].n_C), row, w),
    "crop": ex_crop,
    "split_sum": ex_split_sum, "radix_softmax": ex_radix_softmax,
}
