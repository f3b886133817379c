"""Handlers of the convolutions beyond Conv itself: ConvTranspose (U-Net's up-convolution), and
the weight standardisation that NFNet's exports compute from a Conv's weight initializer
(ReduceMean, Sub, Pow or Mul, ReduceMean, Add eps, Sqrt, Div, or a BatchNormalization over the
reshaped weight, then Mul by the gain), read back as conv's ws=on with its gain and eps."""
from __future__ import annotations

import numpy as np

from .common import Unsupported, need_map, real, square, symmetric

# Operators that standardise a weight; a constant chain holding one of them is read as ws=on
STANDARDISING = ("ReduceMean", "BatchNormalization")
SPREAD = ("BatchNormalization", "Sqrt", "Pow", "Reciprocal")  # dividing by sqrt(var + eps) takes one
CHAIN = STANDARDISING + ("Sub", "Mul", "Pow", "Add", "Sqrt", "Div", "Reshape", "Identity", "Cast",
                         "Constant", "Reciprocal", "Unsqueeze", "Squeeze")


def conv_transpose(ctx, node):
    """ConvTranspose with square kernel, strides, pads and output padding, dilations 1; weight
    (C, M/group, f, f) becomes archcalc's (f, f, M/group, C)."""
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    W = ctx.weight(node, 1, "weight")
    b = ctx.weight(node, 2, "bias")
    if W.ndim != 4:
        raise Unsupported(f"{W.ndim - 2}-D transposed convolution: archcalc's are 2-D")
    for key, plain in (("auto_pad", "NOTSET"), ("output_shape", None)):
        if a.get(key, plain) not in (plain, "VALID"):
            raise Unsupported(f"ConvTranspose with {key}={a[key]}: archcalc's conv_transpose takes "
                              "pads and output_padding")
    if square(a.get("dilations", [1, 1]), "dilations", node) != 1:
        raise Unsupported(f"ConvTranspose with dilations {list(a['dilations'])}: archcalc's "
                          "conv_transpose has dilation 1")
    n_C_prev, per_group, kh, kw = W.shape
    f = square((kh, kw), "kernel", node)
    groups = int(a.get("group", 1))
    pads = list(a.get("pads", [0, 0, 0, 0])) if a.get("auto_pad", "NOTSET") == "NOTSET" else [0] * 4
    p = symmetric(pads)
    if p is None:
        raise Unsupported(f"ConvTranspose with pads {pads}: archcalc's conv_transpose cuts the same "
                          "border p on every side")
    weights = {"W": W.transpose(2, 3, 1, 0)} | ({"b": b} if b is not None else {})
    return ctx.emit(node, "conv_transpose", [x], 4, weights, shared=[n for n in node.input[1:3] if n],
                    f=f, c=per_group * groups, s=square(a.get("strides", [1, 1]), "strides", node), p=p,
                    out_pad=square(a.get("output_padding", [0, 0]), "output_padding", node),
                    groups=groups, bias=b is not None)


# ---------------------------------------------------------------- weight standardisation

def producers(ctx) -> dict:
    if not hasattr(ctx, "made_by"):
        ctx.made_by = {out: n for n in ctx.g.node for out in n.output}
    return ctx.made_by


def chain(ctx, name):
    """The nodes and initializers a constant tensor is computed from (nodes in CHAIN only)."""
    nodes, sources, seen, todo, made_by = [], set(), set(), [name], producers(ctx)
    while todo:
        t = todo.pop()
        n = made_by.get(t)
        if n is None:
            if t in ctx.consts:
                sources.add(t)
            continue
        if id(n) in seen:
            continue
        if n.op_type not in CHAIN:
            return None, ()
        seen.add(id(n))
        nodes.append(n)
        todo.extend(i for i in n.input if i)
    return nodes, sorted(sources)


def standardisation(ctx, node):
    """{'ws': True, 'gain': ..., 'eps': ..., 'W': raw weight (c, C/g, f, f), 'source': its name}
    when the Conv's weight is a standardised initializer, else None. The chain's arithmetic is
    checked numerically: the computed weight must equal the raw one standardised per filter,
    times a factor per filter (the gain; with ScaledStdConv2d, gain*gamma/sqrt(fan-in))."""
    nodes, sources = chain(ctx, node.input[1]) if len(node.input) > 1 else (None, ())
    if not nodes or not any(n.op_type in STANDARDISING for n in nodes) \
            or not any(n.op_type in SPREAD for n in nodes):
        return None  # centring alone, or other weight arithmetic: the import names it as such
    W = np.asarray(ctx.consts[node.input[1]], dtype=np.float64)
    raw = [s for s in sources if ctx.consts[s].size == W.size and ctx.consts[s].dtype.kind == "f"]
    if len(raw) != 1:
        raise Unsupported(f"Conv whose weight '{node.input[1]}' is computed from {len(raw)} weight-sized "
                          "initializers: archcalc reads one standardised weight")
    eps = epsilon(ctx, nodes)
    W0 = np.asarray(ctx.consts[raw[0]], dtype=np.float64).reshape(W.shape)
    flat = W0.reshape(len(W0), -1)
    unit = (flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, keepdims=True) + float(eps))
    gain = np.sum(W.reshape(len(W), -1) * unit, 1) / np.maximum(np.sum(unit * unit, 1), 1e-30)
    if not np.allclose(W.reshape(len(W), -1), unit * gain[:, None], rtol=1e-4, atol=1e-6):
        raise Unsupported(f"Conv whose weight '{node.input[1]}' is computed from '{raw[0]}' by "
                          f"{', '.join(sorted({n.op_type for n in nodes}))}, but not as a weight "
                          "standardisation (W - mean)/sqrt(var + eps) per filter times a gain")
    # a BatchNormalization's shift and statistics are no gain, nor its scale when it is all ones
    # (F.batch_norm with weight=None); ScaledStdConv2d's scale, gain*gamma/sqrt(fan-in), is computed
    statistics = {i for n in nodes if n.op_type == "BatchNormalization" for i in n.input[2:5]} | \
        {n.input[1] for n in nodes if n.op_type == "BatchNormalization" and n.input[1] in ctx.consts
         and np.all(ctx.consts[n.input[1]] == 1)}
    gains = [t for t in sources if t != raw[0] and t not in statistics and ctx.consts[t].size == len(W)
             and ctx.consts[t].dtype.kind == "f"]
    if not gains and not np.allclose(gain, 1, rtol=1e-5):
        raise Unsupported(f"Conv whose standardised weight '{node.input[1]}' is scaled by "
                          f"{float(gain[0]):.6g} without a gain per filter: archcalc's ws scales by "
                          "a learnt gain (gain=on) or not at all")
    return {"ws": True, "gain": bool(gains), "eps": eps, "W": W0, "source": raw[0],
            "weights": {"gain": gain} if gains else {}}


def epsilon(ctx, nodes):
    """eps: a BatchNormalization's epsilon, or the scalar added before the square root."""
    for n in nodes:
        if n.op_type == "BatchNormalization":
            return real(ctx.attrs(n).get("epsilon", 1e-5))
    for n in nodes:
        if n.op_type == "Add":
            scalars = [ctx.consts[i] for i in n.input if i in ctx.consts and ctx.consts[i].size == 1]
            if scalars:
                return real(float(np.asarray(scalars[0]).reshape(-1)[0]))
    raise Unsupported("a weight standardisation without an eps (an Add of a scalar, or a "
                      "BatchNormalization's epsilon) before its square root")
