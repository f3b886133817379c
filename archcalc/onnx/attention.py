"""Tokens, token and attention in ONNX: each a model-local function of the domain 'archcalc'
whose body is standard operators (Reshape, Transpose, MatMul, Softmax, Gather, Concat), so
onnxruntime runs it and an import reads it back as the same kind. Maps are NCHW: a sequence
of N tokens of width d is (B, d, 1, N), as archcalc's (1, N, d)."""
from __future__ import annotations

import numpy as np

from .common import need_map
from .exporter import referred


def constant(ex, out, **value):
    return ex.h.make_node("Constant", [], [out], **value)


def attention_body(ex, seq, y):
    """Attention over the sequences `seq` (S, T, d) into `y` (S, T, d); the caller defines
    flat3 = (0, 0, -1)."""
    n = ex.h.make_node
    body = [n("MatMul", [seq, "W_qkv"], ["qkv0"]), n("Add", ["qkv0", "b_qkv"], ["qkv"]),
            referred(ex, "split5", "split", "ints"), n("Reshape", ["qkv", "split5"], ["qkv5"]),
            n("Transpose", ["qkv5"], ["parts"], perm=[2, 0, 3, 1, 4])]
    for i, part in enumerate("qkv"):
        body += [constant(ex, f"i{i}", value_int=i), n("Gather", ["parts", f"i{i}"], [part], axis=0)]
    return body + [
        referred(ex, "scale", "scale", "float"), n("Mul", ["q", "scale"], ["qs"]),
        n("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]), n("MatMul", ["qs", "kt"], ["scores"]),
        n("Softmax", ["scores"], ["p"], axis=-1), n("MatMul", ["p", "v"], ["heads"]),
        n("Transpose", ["heads"], ["joined4"], perm=[0, 2, 1, 3]),
        n("Reshape", ["joined4", "flat3"], ["joined"]),
        n("MatMul", ["joined", "W_o"], ["y0"]), n("Add", ["y0", "b_o"], [y])]


# MobileViT's unfold of an NCHW map (B, d, H, W) into (B*P, N, d), and its fold back
UNFOLD, FOLD = [0, 3, 5, 2, 4, 1], [0, 5, 3, 1, 4, 2]


def ex_attention(ex, layer, op, row, w):
    x_in = row.in_shapes[0]
    d, h, p = int(x_in.n_C), int(op.heads), int(op.patch)
    n = ex.h.make_node
    if p == 1:
        name, extra = "Attention", {}
        body = [n("Reshape", ["x", "flat3"], ["flat"]),
                n("Transpose", ["flat"], ["seq"], perm=[0, 2, 1])] + attention_body(ex, "seq", "y1") + \
            [n("Transpose", ["y1"], ["y2"], perm=[0, 2, 1])]
    else:
        name = "PatchAttention"
        n_h, n_w = int(x_in.n_H) // p, int(x_in.n_W) // p
        extra = {"patch": p, "cut": [0, 0, n_h, p, n_w, p], "tokens": [-1, n_h * n_w, d],
                 "sequences": [-1, p, p, n_h, n_w, d]}
        body = [referred(ex, "cut", "cut", "ints"), n("Reshape", ["x", "cut"], ["cut6"]),
                n("Transpose", ["cut6"], ["offsets"], perm=UNFOLD),
                referred(ex, "tokens", "tokens", "ints"), n("Reshape", ["offsets", "tokens"], ["seq"])] + \
            attention_body(ex, "seq", "y1") + \
            [referred(ex, "sequences", "sequences", "ints"), n("Reshape", ["y1", "sequences"], ["y6"]),
             n("Transpose", ["y6"], ["y2"], perm=FOLD)]
    body = [constant(ex, "flat3", value_ints=[0, 0, -1])] + body + \
        [n("Shape", ["x"], ["xshape"]), n("Reshape", ["y2", "xshape"], ["y"])]
    ex.function(name, ["x", "W_qkv", "b_qkv", "W_o", "b_o"], ["y"], body, ("split", "scale") + tuple(extra))
    inputs = [ex.source(0, 4)] + [ex.init(k, w[k]) for k in ("W_qkv", "b_qkv", "W_o", "b_o")]
    return ex.node(name, inputs, domain="archcalc", split=[0, 0, 3, h, d // h],
                   scale=float(1 / np.sqrt(d // h)), heads=h, **extra), 4


def tokens_function(op) -> str:
    return "Tokens" + ("_cls" if op.class_token else "") + ("_pos" if op.position else "")


def ex_tokens(ex, layer, op, row, w):
    n = ex.h.make_node
    name, inputs = tokens_function(op), ["x"]
    body = [constant(ex, "seq4", value_ints=[0, 0, 1, -1]), n("Reshape", ["x", "seq4"], ["seq"])]
    y = "seq"
    if op.class_token:
        inputs.append("cls")
        body += [n("Shape", ["x"], ["batch"], end=1), constant(ex, "ones", value_ints=[1, 1, 1]),
                 n("Concat", ["batch", "ones"], ["spread"], axis=0), n("Expand", ["cls", "spread"], ["first"]),
                 n("Concat", ["first", "seq"], ["with_cls"], axis=3)]
        y = "with_cls"
    if op.position:
        inputs.append("pos")
        body.append(n("Add", [y, "pos"], ["with_pos"]))
        y = "with_pos"
    body.append(n("Identity", [y], ["y"]))
    ex.function(name, inputs, ["y"], body)
    d = int(row.in_shapes[0].n_C)
    weights = ([ex.init("cls", w["cls"].reshape(1, d, 1, 1))] if op.class_token else []) + \
        ([ex.init("pos", w["pos"].T.reshape(1, d, 1, -1))] if op.position else [])
    return ex.node(name, [ex.source(0, 4)] + weights, domain="archcalc"), 4


def ex_token(ex, layer, op, row, w):
    n = ex.h.make_node
    body = [constant(ex, "flat3", value_ints=[0, 0, -1]), n("Reshape", ["x", "flat3"], ["flat"]),
            referred(ex, "at", "index", "int"), n("Gather", ["flat", "at"], ["y"], axis=2)]
    ex.function("Token", ["x"], ["y"], body, ("index",))
    return ex.node("Token", [ex.source(0, 4)], domain="archcalc", index=int(op.index)), 2


# ---------------------------------------------------------------- import

def ac_attention(ctx, node):
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    weights = {k: ctx.weight(node, i, k) for i, k in enumerate(("W_qkv", "b_qkv", "W_o", "b_o"), start=1)}
    attrs = ctx.attrs(node)
    return ctx.emit(node, "attention", [x], 4, weights, heads=int(attrs["heads"]), patch=int(attrs.get("patch", 1)))


def ac_tokens(ctx, node):
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    cls, pos = "_cls" in node.op_type, "_pos" in node.op_type
    weights, k = {}, 1
    if cls:
        weights["cls"], k = ctx.weight(node, k, "class token").reshape(-1), k + 1
    if pos:
        p = ctx.weight(node, k, "position embedding")
        weights["pos"] = p.reshape(p.shape[1], -1).T
    return ctx.emit(node, "tokens", [x], 4, weights, class_token=cls, position=pos)


def ac_token(ctx, node):
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    return ctx.emit(node, "token", [x], 2, index=int(ctx.attrs(node)["index"]))
