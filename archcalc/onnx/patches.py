"""MobileViT's unfold and fold as torch.onnx writes timm's MobileVitBlock (Mehta & Rastegari
2022): a map (B, C, H, W) cut into p x p patches becomes P = p*p token sequences of the
N = H*W/P patches, (B*P, N, C), sequence a*p + b holding the pixels at offset (a, b):
  Reshape (B*C*H/p, p, W/p, p), Transpose (0, 2, 1, 3), Reshape (B, C, N, P),
  Transpose (0, 3, 2, 1), Reshape (B*P, N, C);
and back: Reshape (B, P, N, C), Transpose (0, 3, 2, 1), Reshape (B*C*H/p, W/p, p, p),
  Transpose (0, 2, 1, 3), Reshape (B, C, H, W).
Both are permutations: the map keeps its layer, marked `Tensor.patch` = p while the model holds
it as sequences. Per-token layers (LayerNorm, MatMul by a constant, element-wise, residual
adds) read it as they read tokens; an attention over those sequences is `attention : patch=p`.
"""
from __future__ import annotations

from ..sizes import is_int, product, ratio
from .common import reader, same
from .fold import resolve
from .normalisation import const


def target(ctx, node, dims):
    """A Reshape's output dims, its constant target worked out against `dims`; None if unknown."""
    t = const(ctx, node, node.input[1]) if len(node.input) > 1 else None
    if t is None or t.dtype.kind not in "iuO":
        return None
    return resolve(ctx, list(t.reshape(-1)), dims, ctx.attrs(node).get("allowzero", 0))


def follow(ctx, name, dims, steps):
    """The nodes of `steps` ((op type, perm or the dims a Reshape must give), ...) reading one
    another from `name`, each the only reader; None when the chain departs from them."""
    nodes = []
    for op_type, want in steps:
        n = reader(ctx, name, op_type)
        if n is None:
            return None
        if op_type == "Transpose":
            if list(ctx.attrs(n).get("perm", [])) != want:
                return None
            dims = [dims[i] for i in want]
        else:
            dims = target(ctx, n, dims)
            if dims is None or len(dims) != len(want) or not all(same(a, b) for a, b in zip(dims, want)):
                return None
        nodes.append(n)
        name = n.output[0]
    return nodes


def unfold(ctx, node):
    """The unfold chain from this Reshape of a map: the map, as p*p sequences; else None."""
    x = ctx.tensors.get(node.input[0])
    if x is None or x.rank != 4 or x.perm is not None or x.last:
        return None
    B, C, H, W = dims = ctx.dims(x)
    cut = target(ctx, node, dims)
    p = cut[1] if cut is not None and len(cut) == 4 else None
    if not is_int(p) or p < 2 or not same(cut[3], p):
        return None
    n_h, n_w = ratio(H, p), ratio(W, p)
    if not (same(cut[0], product(B, C, n_h)) and same(cut[2], n_w)):
        return None
    N, P = product(n_h, n_w), p * p
    chain = follow(ctx, node.output[0], cut, [("Transpose", [0, 2, 1, 3]), ("Reshape", [B, C, N, P]),
                                              ("Transpose", [0, 3, 2, 1]), ("Reshape", [product(B, P), N, C])])
    if chain is None:
        return None
    return view(ctx, [node] + chain, x._replace(rank=3, patch=p))


def fold(ctx, node):
    """The fold chain from this Reshape of p*p sequences: the map again; else None."""
    x = ctx.tensors.get(node.input[0])
    if x is None or x.rank != 3 or x.patch == 1:
        return None
    p, s = x.patch, ctx.shape(x)
    B, C, n_h, n_w = ctx.batch, s.n_C, ratio(s.n_H, x.patch), ratio(s.n_W, x.patch)
    N, P = product(n_h, n_w), p * p
    chain = follow(ctx, node.input[0], ctx.dims(x), [
        ("Reshape", [B, P, N, C]), ("Transpose", [0, 3, 2, 1]), ("Reshape", [product(B, C, n_h), n_w, p, p]),
        ("Transpose", [0, 2, 1, 3]), ("Reshape", [B, C, s.n_H, s.n_W])])
    if chain is None:
        return None
    return view(ctx, chain, x._replace(rank=4, patch=1))


def view(ctx, nodes, t):
    """The chain's nodes read as one move of the same map: its last output is `t`."""
    for n in nodes[1:]:
        ctx.skip(n)
    ctx.alias(nodes[0].output[0], t)
    ctx.alias(nodes[-1].output[0], t)
    return t


def either(ctx, node):
    return unfold(ctx, node) or fold(ctx, node)


PATCHES = {"Reshape": either}
