"""Token sequences as torch.onnx writes a Vision Transformer (torchvision's VisionTransformer,
timm's): a model tensor (N, T, d) of T tokens of width d is archcalc's (1, T, d) map
(`Tensor.rank` 3). What each pattern becomes:
- the patchify Reshape (N, d, H*W) (or Flatten at axis 2), Transpose (0, 2, 1), then a Concat
  with the class token (a (1, 1, d) constant, Expanded to the batch) and an Add of a (1, T, d)
  position embedding: one `tokens` layer;
- LayerNormalization over the last axis: `layernorm`; MatMul by a (d, c) constant (+ bias) on
  the tokens: a per-token linear, `conv : f=1`; Gather of index i on the token axis: `token : i`;
- nn.MultiheadAttention's graph: the projection by in_proj_weight (d, 3d) + bias, split into
  Q, K, V (Gather, Split or Slice), heads by Reshape/Transpose, a scale (Mul or Div, on Q and K
  or on the scores, multiplying to 1/sqrt(d_h)), MatMul QK^T, Softmax, MatMul AV, heads joined,
  out_proj (Gemm or MatMul + Add): one `attention` layer (on MobileViT's `patches`: patch=p).
The attention's island of nodes is found by following its readers from the projection to the
out_proj; its shapes come from ONNX shape inference (the exporter's Reshape targets), and each
fact the layer relies on is checked: Q, K, V from parts 0, 1, 2, the scale, the output (N, T, d).

SEQUENCES maps an operator to its matcher, tried before the plain handler (None: not this).
"""
from __future__ import annotations

import math

import numpy as np

from .common import Unsupported, reader, real, same
from .fold import FOLD, fold_node, resolve
from .normalisation import const, emit_layernorm

MOVES = {"Reshape", "Transpose", "Unsqueeze", "Squeeze", "Identity", "Cast"}  # no arithmetic
ISLAND = MOVES | {"Gather", "Split", "Slice", "Shape", "Sqrt", "Div", "Mul", "MatMul", "Softmax",
                  "Concat", "Gemm", "Mod"}
MAX_ISLAND = 400  # nodes of one attention; torch.onnx writes about 70


# ---------------------------------------------------------------- tokens

def patchify(ctx, node):
    """Reshape (N, d, H*W) or Flatten(axis=2), then Transpose (0, 2, 1) [Concat cls] [Add pos]."""
    x = ctx.tensors.get(node.input[0])
    if x is None or x.rank != 4 or x.perm is not None:
        return None
    N, C, H, W = ctx.dims(x)
    if node.op_type == "Flatten":
        if ctx.attrs(node).get("axis", 1) != 2:
            return None
    else:
        target = const(ctx, node, node.input[1])
        out = None if target is None else resolve(ctx, list(target.reshape(-1)), [N, C, H, W], 0)
        if out is None or len(out) != 3 or not (same(out[0], N) and same(out[1], C) and same(out[2], H * W)):
            return None
    turn = reader(ctx, node.output[0], "Transpose")
    if turn is None or list(ctx.attrs(turn).get("perm", [])) != [0, 2, 1]:
        return None
    nodes, y, weights, shared = [turn], turn.output[0], {}, []
    cat = reader(ctx, y, "Concat")
    if cat is not None and ctx.attrs(cat).get("axis") in (1, -2) and len(cat.input) == 2 and cat.input[1] == y:
        cls, source = class_token(ctx, cat, cat.input[0], C)
        if cls is not None:
            nodes, y, weights["cls"] = nodes + [cat], cat.output[0], cls
            shared.append(source)
    add = reader(ctx, y, "Add")
    name = add and next((n for n in add.input if n != y), None)
    pos = name and const(ctx, add, name)
    T = H * W + (1 if "cls" in weights else 0)
    if pos is not None and pos.ndim == 3 and pos.shape[0] == 1 and same(pos.shape[1], T) and same(pos.shape[2], C):
        nodes, y, weights["pos"] = nodes + [add], add.output[0], pos.reshape(pos.shape[1], -1).astype(np.float32)
        shared.append(name)
    for n in nodes:
        ctx.skip(n)
    return ctx.emit(node, "tokens", [x], 3, weights, output=y, shared=shared,
                    class_token="cls" in weights, position="pos" in weights)


def class_token(ctx, cat, name, d):
    """The (d,) class token of a Concat's first input: a constant (1, 1, d), or an Expand of one
    to the batch (the Expand folded, or not when the batch is a symbol)."""
    value = const(ctx, cat, name)
    if value is None:
        expand = next((n for n in ctx.g.node if name in n.output), None)
        if expand is None or expand.op_type != "Expand" or not ctx.is_const(expand.input[0]):
            return None, None
        ctx.skip(expand)
        name, value = expand.input[0], ctx.const(expand.input[0])
    if value.dtype.kind != "f" or value.shape[-1:] != (d,) or value.size not in (d, int(value.shape[0]) * d):
        return None, None
    return value.reshape(-1, d)[0].astype(np.float32), next(iter(ctx.origins.get(name, {name})))


# ---------------------------------------------------------------- per-token layers

def sequence(ctx, node):
    """The node's first input if it is a token sequence (N, T, d), else None."""
    x = ctx.tensors.get(node.input[0]) if node.input else None
    return x if x is not None and x.rank == 3 else None


def token_layernorm(ctx, node):
    x = sequence(ctx, node)
    if x is None or ctx.attrs(node).get("axis", -1) % 3 != 2:
        return None
    return emit_layernorm(ctx, node, x, node, real(ctx.attrs(node).get("epsilon", 1e-5)))


def token_linear(ctx, node):
    """MatMul by a (d, c) constant on the tokens, and the Add of its bias: conv f=1."""
    x = sequence(ctx, node)
    W = ctx.const(node.input[1]) if x is not None else None
    if W is None or W.ndim != 2 or W.dtype.kind != "f" or not same(W.shape[0], ctx.shape(x).n_C):
        return None
    found = attention(ctx, node, x)
    if found is not None:
        return found
    weights, shared, out = {"W": W.astype(np.float32).reshape(1, 1, *W.shape)}, [node.input[1]], None
    add = reader(ctx, node.output[0], "Add")
    bias = add and next((n for n in add.input if n != node.output[0]), None)
    b = bias and const(ctx, add, bias)
    if b is not None and b.size == W.shape[1] and b.shape[-1:] == (W.shape[1],):
        weights["b"], out = b.reshape(-1).astype(np.float32), add.output[0]
        shared.append(bias)
        ctx.skip(add)
    return ctx.emit(node, "conv", [x], 3, weights, output=out, shared=shared, f=1, c=int(W.shape[1]),
                    bias="b" in weights)


def token_gather(ctx, node):
    """x[:, i]: one token of the sequence, a vector."""
    x = sequence(ctx, node)
    index = ctx.const(node.input[1]) if x is not None else None
    if index is None or index.size != 1 or ctx.attrs(node).get("axis", 0) % 3 != 1:
        raise Unsupported("Gather on activations other than x[:, i], one token of a sequence (N, T, d)")
    T = ctx.shape(x).n_W
    i = int(index.reshape(-1)[0])
    return ctx.emit(node, "token", [x], 2, index=i + T if i < 0 else i)


def seq_first(ctx, node):
    """Transpose (1, 0, 2) on the tokens: the start of nn.MultiheadAttention's graph."""
    x = sequence(ctx, node)
    if x is None or list(ctx.attrs(node).get("perm", [])) != [1, 0, 2]:
        return None
    found = attention(ctx, node, x)
    if found is None:
        raise Unsupported("Transpose (1, 0, 2) of a token sequence that does not start a multi-head "
                          "attention as torch.onnx writes nn.MultiheadAttention (projection by a "
                          "(d, 3d) constant, Q K^T, Softmax, A V, output projection)")
    return found


# ---------------------------------------------------------------- attention

def attention(ctx, start, x):
    """The `attention` layer for the island of nodes from `start`, or None if it is not one."""
    d = ctx.shape(x).n_C
    proj = start if start.op_type == "MatMul" else reader(ctx, start.output[0], "MatMul")
    W = proj and ctx.const(proj.input[1])
    add = proj and reader(ctx, proj.output[0], "Add")
    bias = add and next((n for n in add.input if n != proj.output[0]), None)
    b = bias and const(ctx, add, bias)
    if W is None or W.shape != (d, 3 * d) or b is None or b.size != 3 * d:
        return None
    island = gather_island(ctx, add.output[0])
    if island is None:
        return None
    nodes, out = island
    shapes = inferred(ctx)
    matmuls = [n for n in nodes if n.op_type == "MatMul" and not ctx.is_const(n.input[1])]
    softmax = [n for n in nodes if n.op_type == "Softmax"]
    if len(matmuls) != 2 or len(softmax) != 1:
        return None
    scores, p = back(ctx, softmax[0].input[0], nodes)
    qk = scores if scores is not None and scores.op_type == "MatMul" else None
    av = next((n for n in matmuls if n.input[0] == softmax[0].output[0]), None)
    q_shape = qk and shapes.get(qk.input[0])
    if qk is None or av is None or qk is av or not q_shape or softmax_axis(ctx, softmax[0], shapes) is False:
        return None
    d_h = q_shape[-1]
    heads = d // d_h if d_h and d % d_h == 0 else None
    parts, factors = {}, {}
    for role, name in (("q", qk.input[0]), ("k", qk.input[1]), ("v", av.input[1])):
        parts[role], factors[role] = trace(ctx, name, add.output[0], nodes, d)
    scale = p * factors["q"] * factors["k"]
    if heads is None or sorted(parts.values(), key=str) != [0, 1, 2] or factors["v"] != 1 or \
            not math.isclose(scale, 1 / math.sqrt(d_h), rel_tol=1e-5):
        return None
    end = finish(ctx, out, shapes, ctx.dims(x))
    if end is None:
        return None
    W_o, b_o, o_names = out_projection(ctx, out)
    order = [parts["q"], parts["k"], parts["v"]]
    cols = np.concatenate([np.arange(k * d, (k + 1) * d) for k in order])
    weights = {"W_qkv": W.astype(np.float32)[:, cols], "b_qkv": b.reshape(-1).astype(np.float32)[cols],
               "W_o": W_o, "b_o": b_o}
    for n in [start, proj, add] + nodes + end[0]:
        if n is not start:
            ctx.skip(n)
    return ctx.emit(start, "attention", [x], 3, weights, output=end[1],
                    shared=[proj.input[1], bias, *o_names], heads=heads, patch=x.patch)


def gather_island(ctx, qkv):
    """Every node reachable from the projection's output up to the out_proj (included), or None
    if the walk meets another operator, leaves through a graph output, or grows too large."""
    seen, todo, out, outputs = {}, [qkv], None, {o.name for o in ctx.g.output}
    while todo:
        name = todo.pop()
        if name in outputs:
            return None
        for n in ctx.readers(name):
            if id(n) in seen:
                continue
            if n.op_type not in ISLAND or len(seen) >= MAX_ISLAND:
                return None
            seen[id(n)] = n
            if n.op_type in ("Gemm", "MatMul") and ctx.is_const(n.input[1]):
                if out is not None:
                    return None
                out = n
                continue  # the out_proj ends the island
            todo.extend(o for o in n.output if o)
    if out is None:
        return None
    order = {id(n): i for i, n in enumerate(ctx.g.node)}
    return sorted(seen.values(), key=lambda n: order[id(n)]), out


def back(ctx, name, nodes):
    """(the node before any scaling of `name`, the scaling's factor)."""
    factor, ids = 1.0, {id(n) for n in nodes}
    while True:
        n = next((m for m in nodes if name in m.output), None)
        if n is None or id(n) not in ids:
            return None, factor
        found = scaled(ctx, n, nodes)
        if found is None:
            return n, factor
        name, factor = found[0], factor * found[1]


def trace(ctx, name, qkv, nodes, d):
    """(which third of the projection `name` comes from, the scale on the way), or (None, _)."""
    part, factor = None, 1.0
    while name != qkv:
        n = next((m for m in nodes if name in m.output), None)
        if n is None:
            return None, factor
        if n.op_type in ("Mul", "Div"):
            found = scaled(ctx, n, nodes)
            if found is None:
                return None, factor
            name, factor = found[0], factor * found[1]
            continue
        if n.op_type == "Gather":
            index = ctx.const(n.input[1])
            if index is None or index.size != 1 or part is not None:
                return None, factor
            part = int(index.reshape(-1)[0])
        elif n.op_type == "Split":
            if part is not None or len(n.output) != 3:
                return None, factor
            part = list(n.output).index(name)
        elif n.op_type == "Slice":
            starts = ctx.const(n.input[1])
            if starts is None or starts.size != 1 or part is not None:
                return None, factor
            part = int(starts.reshape(-1)[0]) // third(ctx, n, d)
        elif n.op_type not in MOVES:
            return None, factor
        name = n.input[0]
    return part, factor


def third(ctx, n, d):
    """A third of the sliced axis: d for Q, K, V side by side (N, T, 3d), 1 for (3, ...)."""
    axes, dims = ctx.const(n.input[3]) if n.input[3:] and n.input[3] else None, inferred(ctx).get(n.input[0])
    axis = int(axes.reshape(-1)[0]) if axes is not None and axes.size == 1 else 0
    return dims[axis] // 3 if dims and dims[axis] else d


def scaled(ctx, n, nodes):
    """(the activation, the factor) of a Mul or Div by one number, else None."""
    if n.op_type not in ("Mul", "Div"):
        return None
    for a, c in ((0, 1), (1, 0)) if n.op_type == "Mul" else ((0, 1),):
        v = scalar_value(ctx, n.input[c], nodes)
        if v:
            return n.input[a], v if n.op_type == "Mul" else 1 / v
    return None


def scalar_value(ctx, name, nodes):
    """A one-number factor: a constant, or shape arithmetic on the island (Shape of a tensor whose
    size shape inference knows, then Slice, Cast, Sqrt, Div ...) folded here."""
    if not evaluate(ctx, name, nodes, 0):
        return None
    v = ctx.const(name)
    return float(v.reshape(-1)[0]) if v.size == 1 and v.dtype != object and v.dtype.kind in "fiu" else None


def evaluate(ctx, name, nodes, depth) -> bool:
    """Make `name` a constant if it is one in fact; whether it is."""
    if not name or ctx.is_const(name):
        return True
    n = next((m for m in nodes if name in m.output), None)
    if n is None or depth > 20:
        return False
    if n.op_type == "Shape":
        shape = inferred(ctx).get(n.input[0])
        if not shape or None in shape:
            return False
        a = ctx.attrs(n)
        ctx.consts[name] = np.array(shape[a.get("start", 0):a.get("end", None)], np.int64)
        return True
    if n.op_type not in FOLD or not all(evaluate(ctx, i, nodes, depth + 1) for i in n.input):
        return False
    fold_node(ctx, n)
    return True


def softmax_axis(ctx, node, shapes):
    rank = len(shapes.get(node.input[0]) or [])
    return rank > 0 and ctx.attrs(node).get("axis", -1) % rank == rank - 1


def out_projection(ctx, node):
    """W_o (d, d) for z @ W_o, b_o, and the initializers they come from."""
    a = ctx.attrs(node)
    B = np.asarray(ctx.const(node.input[1]), np.float32)
    if node.op_type == "Gemm":
        W = (B.T if a.get("transB", 0) else B) * np.float32(a.get("alpha", 1.0))
        C = ctx.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        b = np.zeros(W.shape[1], np.float32) if C is None else \
            np.asarray(C, np.float32).reshape(-1) * np.float32(a.get("beta", 1.0))
        return W, b, [n for n in node.input[1:3] if n]
    add = reader(ctx, node.output[0], "Add")
    bias = add and next((n for n in add.input if n != node.output[0]), None)
    b = bias and ctx.const(bias)
    b = np.zeros(B.shape[1], np.float32) if b is None else np.asarray(b, np.float32).reshape(-1)
    return B, b, [node.input[1]] + ([bias] if bias else [])


def finish(ctx, out, shapes, seq):
    """(the out_proj's bias Add and the moves after it, the tensor of dims `seq` they end at)."""
    nodes, name = [], out.output[0]
    if out.op_type == "MatMul":
        add = reader(ctx, name, "Add")
        if add is None:
            return None
        nodes, name = [add], add.output[0]
    while not batch_first(shapes.get(name), seq):
        n = ctx.only_reader(name)
        if n is None or n.op_type not in MOVES - {"Cast"}:
            return None
        nodes.append(n)
        name = n.output[0]
    return nodes, name


def batch_first(dims, seq) -> bool:
    return bool(dims) and len(dims) == 3 and same(dims[1], seq[1]) and same(dims[2], seq[2]) and \
        (dims[0] is None or same(dims[0], seq[0]))


def inferred(ctx) -> dict:
    """Tensor name -> dims (ints, or None where unknown), by ONNX shape inference on the model's
    graph with its large initializers given as inputs (no copy of the weights)."""
    cache = vars(ctx).get("_sequence_shapes")
    if cache is not None:
        return cache
    onnx = ctx.onnx
    g = ctx.g
    small = [t for t in g.initializer if t.data_type == onnx.TensorProto.INT64 or int(np.prod(t.dims)) <= 16]
    large = [onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
             for t in g.initializer if t not in small]
    graph = onnx.helper.make_graph(list(g.node), "shapes", list(g.input) + large, list(g.output), small)
    model = onnx.helper.make_model(graph, opset_imports=list(ctx.model.opset_import))
    model.ir_version = ctx.model.ir_version
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # a model inference cannot read: no shapes, no attention matched
        model = None
    cache = {}
    for v in (list(model.graph.value_info) + list(model.graph.output)) if model else []:
        dims = v.type.tensor_type.shape.dim
        cache[v.name] = [int(x.dim_value) if x.HasField("dim_value") else None for x in dims]
    vars(ctx)["_sequence_shapes"] = cache
    return cache


def before(match, plain):
    """`match` first, the plain handler when it answers None (a plain handler answers None for
    an alias, so `first_of` would refuse it)."""
    def handle(ctx, node):
        out = match(ctx, node)
        return out if out is not None else plain(ctx, node)
    return handle


SEQUENCES = {"Reshape": patchify, "Flatten": patchify, "LayerNormalization": token_layernorm,
             "MatMul": token_linear, "Gather": token_gather, "Transpose": seq_first}
