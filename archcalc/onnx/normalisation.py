"""Handlers of ConvNeXt's and ViT's operators and of the patterns exporters write for them:
layer norm (LayerNormalization, opset 17, over a channels-last map or a vector; and the
decomposed form ReduceMean, Sub, Pow, ReduceMean, Add eps, Sqrt, Div, Mul gamma, Add beta over
the channels of an NCHW map), GELU (Gelu, opset 20; the erf form x/2 (1 + erf(x/sqrt(2))) and
the tanh form, the two final products in either order), Elu, and ConvNeXt's layer scale (a Mul
by one learnt factor per channel).

A pattern is matched at whichever of its nodes comes first in the model; the others are
skipped. `first_of` puts the matchers of an operator in front of its plain handler.
"""
from __future__ import annotations

import math

import numpy as np

from .common import Unsupported, axes_of, channel_axis, reader, real, same
from .fold import fold_inputs

KAPPA, BETA = 0.044715, math.sqrt(2 / math.pi)  # the tanh form's constants (PyTorch's)


def first_of(*handlers):
    """A handler that tries each matcher in turn (None: not this pattern); without a plain
    handler last, an unmatched node is refused."""
    def handle(ctx, node):
        for h in handlers:
            out = h(ctx, node)
            if out is not None:
                return out
        raise Unsupported(f"{node.op_type} on activations outside the patterns archcalc reads "
                          "(GELU's x/2 (1 + erf(x/sqrt(2))) and its tanh form, a layer norm over "
                          "the channels)")
    return handle


# ---------------------------------------------------------------- reading the pattern's nodes

def const(ctx, node, name):
    """A constant input of a node further on; Constant nodes before it are folded first."""
    if name and not ctx.is_const(name):
        fold_inputs(ctx, node, skip="")
    return ctx.const(name)


def scalar(ctx, node, name, target) -> bool:
    v = const(ctx, node, name)
    return v is not None and v.size == 1 and v.dtype.kind == "f" and \
        abs(float(v.reshape(-1)[0]) - target) <= 1e-6 * abs(target)


def other(node, name):
    """The input of a two-input node that is not `name` (None if both are)."""
    rest = [i for i in node.input if i != name]
    return rest[0] if len(rest) == 1 and len(node.input) == 2 else None


def per_channel(ctx, node, name, x):
    """A constant with one number per channel of x ((C, 1, 1) or (1, C, 1, 1) for a map, (C,)
    or (1, C) for a vector), in our channel order; None otherwise."""
    v = const(ctx, node, name)
    n_C = ctx.shape(x).n_C
    if v is None or v.dtype.kind != "f" or v.ndim > x.rank or not same(v.size, n_C):
        return None
    shape = (1,) * (x.rank - v.ndim) + v.shape
    if shape[channel_axis(x)] != n_C:
        return None
    v = v.reshape(-1).astype(np.float32)
    return v[list(x.perm)] if x.perm is not None else v


# ---------------------------------------------------------------- layer norm

def layer_normalization(ctx, node):
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    over_channels = (x.rank == 2 or x.last) and a.get("axis", -1) % x.rank == channel_axis(x)
    if not over_channels:
        raise Unsupported(f"LayerNormalization over axis {a.get('axis', -1)} of a rank-{x.rank} tensor "
                          "(archcalc's layernorm is over the channels at each position: of a vector, "
                          "or of a map as Transpose(0, 2, 3, 1), LayerNormalization, Transpose(0, 3, 1, 2))")
    return emit_layernorm(ctx, node, x, node, real(a.get("epsilon", 1e-5)))


def emit_layernorm(ctx, node, x, ln, eps, output=None):
    gamma, beta = ctx.weight(ln, 1, "scale"), ctx.weight(ln, 2, "bias")
    if beta is None:
        raise Unsupported("LayerNormalization without a bias (archcalc's layernorm learns gamma and beta)")
    weights = {"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)}
    n_C = ctx.shape(x).n_C
    if not all(same(v.size, n_C) for v in weights.values()):
        raise Unsupported(f"LayerNormalization whose scale and bias hold {gamma.size} and {beta.size} "
                          f"numbers for {n_C} channels")
    if x.perm is not None:
        weights = {k: v[list(x.perm)] for k, v in weights.items()}
    return ctx.emit(node, "layernorm", [x], x.rank, weights, output=output, perm=x.perm,
                    shared=ln.input[1:3], eps=eps)


def channels_last_layernorm(ctx, node):
    """Transpose(0, 2, 3, 1), LayerNormalization(axis=-1), Transpose(0, 3, 1, 2): torchvision's
    LayerNorm2d."""
    x = ctx.tensor(node.input[0])
    ln = reader(ctx, node.output[0], "LayerNormalization")
    back = ln and reader(ctx, ln.output[0], "Transpose")
    if x.rank != 4 or x.perm is not None or x.last or back is None or \
            list(ctx.attrs(node).get("perm", [])) != [0, 2, 3, 1] or \
            ctx.attrs(ln).get("axis", -1) % 4 != 3 or list(ctx.attrs(back).get("perm", [])) != [0, 3, 1, 2]:
        return None
    ctx.skip(ln)
    ctx.skip(back)
    return emit_layernorm(ctx, ln, x, ln, real(ctx.attrs(ln).get("epsilon", 1e-5)), output=back.output[0])


def decomposed_layernorm(ctx, node):
    """mu = ReduceMean(x), d = x - mu, ReduceMean(d^2) + eps, Sqrt, d / it, * gamma, + beta,
    the means over the channels (ConvNeXt's own LayerNorm, channels_first; F.layer_norm over the
    last axis of a channels-last map or a vector, as torch.onnx writes it before opset 17)."""
    x = ctx.tensor(node.input[0]) if node.input[0] in ctx.tensors else None
    if x is None or axes_of(ctx, node, ctx.attrs(node), x.rank) != [channel_axis(x)]:
        return None
    subs = ctx.readers(node.output[0])  # x - mu, once or (as written twice) twice
    if not 0 < len(subs) < 3 or any(n.op_type != "Sub" or list(n.input) != [node.input[0], node.output[0]]
                                    for n in subs) or node.output[0] in {o.name for o in ctx.g.output}:
        return None
    users = list({id(n): n for sub in subs for n in ctx.readers(sub.output[0])}.values())  # d*d: once
    square = next((n for n in users if n.op_type in ("Pow", "Mul")), None)
    div = next((n for n in users if n.op_type == "Div" and n.input[0] in {s.output[0] for s in subs}), None)
    if len(users) != 2 or square is None or div is None or \
            not (square.op_type == "Mul" and square.input[0] == square.input[1] or
                 square.op_type == "Pow" and scalar(ctx, square, square.input[1], 2)):
        return None
    var = reader(ctx, square.output[0], "ReduceMean")
    add = var and axes_of(ctx, var, ctx.attrs(var), x.rank) == [channel_axis(x)] and \
        reader(ctx, var.output[0], "Add")
    sqrt = add and reader(ctx, add.output[0], "Sqrt")
    if not sqrt or div.input[1] != sqrt.output[0] or \
            (eps := const(ctx, add, other(add, var.output[0]))) is None or eps.size != 1:
        return None
    mul = reader(ctx, div.output[0], "Mul")
    shift = mul and reader(ctx, mul.output[0], "Add")
    gamma = mul and per_channel(ctx, mul, other(mul, div.output[0]), x)
    beta = shift and per_channel(ctx, shift, other(shift, mul.output[0]), x)
    if gamma is None or beta is None:
        return None
    for n in (*subs, square, var, add, sqrt, div, mul, shift):
        ctx.skip(n)
    return ctx.emit(node, "layernorm", [x], x.rank, {"gamma": gamma, "beta": beta}, output=shift.output[0],
                    perm=x.perm, shared=[other(mul, div.output[0]), other(shift, mul.output[0])],
                    eps=real(float(eps.reshape(-1)[0])))


# ---------------------------------------------------------------- GELU, ELU, layer scale

def gelu_op(ctx, node):
    x = ctx.tensor(node.input[0])
    form = ctx.attrs(node).get("approximate", "none")
    return ctx.emit(node, "gelu", [x], x.rank, perm=x.perm, approximate=form)


def elu(ctx, node):
    alpha = real(ctx.attrs(node).get("alpha", 1.0))
    if alpha < 0:
        raise Unsupported(f"Elu with a negative alpha {alpha}")
    x = ctx.tensor(node.input[0])
    return ctx.emit(node, "elu", [x], x.rank, perm=x.perm, alpha=alpha)


def gelu_pattern(ctx, node):
    """GELU written out, matched from any of its nodes that reads x (the first one met)."""
    for x in dict.fromkeys(n for n in node.input if n in ctx.tensors):
        for form, match in (("none", erf_form), ("tanh", tanh_form)):
            found = match(ctx, x)
            if found is not None and any(n is node for n in found[0]):
                nodes, y = found
                for n in nodes:
                    if n is not node:
                        ctx.skip(n)
                t = ctx.tensor(x)
                return ctx.emit(node, "gelu", [t], t.rank, output=y, perm=t.perm, approximate=form)
    return None


def erf_form(ctx, x):
    """Div(x, sqrt 2) (or Mul by 1/sqrt 2), Erf, Add 1, then times x and 1/2."""
    for scaled in ctx.readers(x):
        c = other(scaled, x)
        if not (scaled.op_type == "Div" and scaled.input[0] == x and scalar(ctx, scaled, c, math.sqrt(2)) or
                scaled.op_type == "Mul" and scalar(ctx, scaled, c, math.sqrt(0.5))):
            continue
        erf = reader(ctx, scaled.output[0], "Erf")
        plus = erf and reader(ctx, erf.output[0], "Add")
        if plus and scalar(ctx, plus, other(plus, erf.output[0]), 1):
            return half_x_times(ctx, x, plus.output[0], [scaled, erf, plus])
    return None


def tanh_form(ctx, x):
    """x^3 (Pow, or Mul(x, x) then Mul by x), times 0.044715, plus x, times sqrt(2/pi), Tanh,
    Add 1, then times x and 1/2."""
    for first in ctx.readers(x):
        nodes = [first]
        if first.op_type == "Pow" and scalar(ctx, first, other(first, x), 3):
            cube = first
        elif first.op_type == "Mul" and list(first.input) == [x, x]:
            cube = reader(ctx, first.output[0], "Mul")
            if cube is None or other(cube, first.output[0]) != x:
                continue
            nodes.append(cube)
        else:
            continue
        k = reader(ctx, cube.output[0], "Mul")
        s = k and scalar(ctx, k, other(k, cube.output[0]), KAPPA) and reader(ctx, k.output[0], "Add")
        i = s and other(s, k.output[0]) == x and reader(ctx, s.output[0], "Mul")
        t = i and scalar(ctx, i, other(i, s.output[0]), BETA) and reader(ctx, i.output[0], "Tanh")
        plus = t and reader(ctx, t.output[0], "Add")
        if plus and scalar(ctx, plus, other(plus, t.output[0]), 1):
            return half_x_times(ctx, x, plus.output[0], nodes + [k, s, i, t, plus])
    return None


def half_x_times(ctx, x, gate, nodes):
    """(nodes, y) when gate is multiplied by x and 1/2 in two Muls, in any order: (x gate) / 2,
    (gate / 2) x, or (x / 2) gate; None otherwise."""
    need, t = {"x", "half"}, gate
    while need:
        m = reader(ctx, t, "Mul")
        o = m and other(m, t)
        if not o:
            return None
        if o == x and "x" in need:
            need.discard("x")
        elif "half" in need and scalar(ctx, m, o, 0.5):
            need.discard("half")
        elif need == {"x", "half"} and (h := halved(ctx, x, o, m)) is not None:
            need.clear()
            nodes.append(h)
        else:
            return None
        nodes.append(m)
        t = m.output[0]
    return nodes, t


def halved(ctx, x, name, m):
    """The node computing name = x * 0.5 (read only by m), if it is one."""
    for n in ctx.readers(x):
        if n.op_type == "Mul" and n.output[0] == name and ctx.only_reader(name) is m and \
                scalar(ctx, n, other(n, x), 0.5):
            return n
    return None


def layer_scale(ctx, node):
    """x times a constant with one factor per channel: ConvNeXt's layer scale."""
    acts = [n for n in node.input if n in ctx.tensors]
    if len(acts) != 1 or len(node.input) != 2:
        return None
    x = ctx.tensor(acts[0])
    name = other(node, acts[0])
    gamma = per_channel(ctx, node, name, x)
    if gamma is None:
        return None
    return ctx.emit(node, "scale", [x], x.rank, {"gamma": gamma}, perm=x.perm, shared=[name])


# ---------------------------------------------------------------- export

def ex_layernorm(ex, layer, op, row, w):
    """LayerNormalization (opset 17) over the last axis: a map goes channels-last and back,
    as torchvision's LayerNorm2d exports (ONNX's axis=1 on NCHW would take C, H and W)."""
    tensor, rank = ex.out[layer.inputs[0]]
    if rank == 2:
        return ex.node("LayerNormalization", [tensor, ex.init("gamma", w["gamma"]), ex.init("beta", w["beta"])],
                       axis=-1, epsilon=float(op.eps)), rank
    y = ex.step("Transpose", [tensor], "nhwc", perm=[0, 2, 3, 1])
    y = ex.step("LayerNormalization", [y, ex.init("gamma", w["gamma"]), ex.init("beta", w["beta"])], "norm",
             axis=-1, epsilon=float(op.eps))
    return ex.node("Transpose", [y], perm=[0, 3, 1, 2]), rank


def ex_gelu(ex, layer, op, row, w):
    """In standard operators of every opset (Gelu is opset 20's), as PyTorch exports nn.GELU:
    x/2 (1 + erf(x/sqrt(2))), or x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    x, rank = ex.out[layer.inputs[0]]
    const = lambda key, v: ex.init(key, np.float32(v))
    if op.approximate == "tanh":
        cube = ex.step("Mul", [x, ex.step("Mul", [x, x], "square")], "cube")
        inner = ex.step("Add", [x, ex.step("Mul", [const("kappa", 0.044715), cube], "kappa_cube")], "sum")
        gate = ex.step("Tanh", [ex.step("Mul", [const("beta", math.sqrt(2 / math.pi)), inner], "inner")], "tanh")
    else:
        gate = ex.step("Erf", [ex.step("Div", [x, const("sqrt2", math.sqrt(2))], "scaled")], "erf")
    gate = ex.step("Add", [gate, const("one", 1)], "gate")
    return ex.node("Mul", [ex.step("Mul", [x, gate], "gated"), const("half", 0.5)]), rank


def ex_scale(ex, layer, op, row, w):
    tensor, rank = ex.out[layer.inputs[0]]
    gamma = w["gamma"].reshape((-1, 1, 1) if rank == 4 else (-1,))
    return ex.node("Mul", [tensor, ex.init("gamma", gamma)]), rank
