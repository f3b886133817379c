"""Tokens and multi-head self-attention (ViT, Dosovitskiy et al. 2021; MobileViT).

A sequence of N tokens of width d is the map (n_H, n_W, n_C) = (1, N, d): the course's view
stays for CNNs, and per-position kinds apply to tokens unchanged (a per-token Linear is
`conv : f=1 c=...`, a residual is `add`). Tokens are numbered row by row over (n_H, n_W),
PyTorch's flatten(2).transpose(1, 2) of an NCHW map; a class token comes first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


from ..errors import RuleError
from ..sizes import is_int, is_integer, is_nonnegative, product, ratio, show
from .base import Cost, Op, Out, Shape, arg


def positions(x: Shape):
    return product(x.n_H, x.n_W)


@dataclass(frozen=True)
class Tokens(Op):
    """(n_H, n_W, n_C) -> (1, N, d) with N = n_H*n_W (+1 with a class token), d = n_C.
    class_token: a learnt d-vector put first (d params); position: a learnt (N, d) embedding
    added to every token (N*d params, N*d adds). torchvision's vit_b_16: class_token
    (1, 1, 768), encoder.pos_embedding (1, 197, 768)."""
    kind: ClassVar[str] = "tokens"
    keeps_sign: ClassVar[bool] = True
    class_token: bool = arg("flag", False)
    position: bool = arg("flag", False)

    def out(self, ins, strict=False):
        x = ins[0]
        return Out(Shape(1, positions(x) + (1 if self.class_token else 0), x.n_C))

    def cost(self, ins, out):
        d, N = out.n_C, out.n_W
        embedding = product(N, d) if self.position else 0
        return Cost(weights=(d if self.class_token else 0) + embedding, other=embedding)

    def weights(self, ins):
        """cls (d,) and pos (N, d)."""
        d, N = ins[0].n_C, self.out(ins).shape.n_W
        return ({"cls": (d,)} if self.class_token else {}) | ({"pos": (N, d)} if self.position else {})


@dataclass(frozen=True)
class Token(Op):
    """One token of a (n_H, n_W, d) map, by its number over the n_H*n_W positions: (1, 1, d)
    (ViT's head reads the class token, `token : 0`)."""
    kind: ClassVar[str] = "token"
    keeps_sign: ClassVar[bool] = True
    view: ClassVar[bool] = True  # one position of the map: an index, no copy
    index: object = arg("count", 0, positional=0)

    def out(self, ins, strict=False):
        x = ins[0]
        N = positions(x)
        if is_nonnegative(N - 1 - self.index) is False:
            raise RuleError(f"token {show(self.index)} is past the input's N = n_H*n_W = {show(N)} tokens "
                            f"(0 to {show(N - 1)})", argument="index")
        return Out(Shape(1, 1, x.n_C))


@dataclass(frozen=True)
class Attention(Op):
    """Multi-head self-attention over the N = n_H*n_W positions of a map, d = n_C, heads h,
    d_h = d/h (Vaswani et al. 2017; PyTorch's nn.MultiheadAttention): Q, K, V = X W_qkv + b,
    per head softmax(Q K^T / sqrt(d_h)) V, heads concatenated, times W_o plus b_o.
    params 4d^2 + 4d. MACs: projections N*3d*d + N*d*d, and the two activation-activation
    products QK^T and AV, N*N*d each over all heads (`attention_macs`, shown apart). Other
    ops: 4 bias adds per token and channel (N*4d), Q scaled by 1/sqrt(d_h) (N*d), softmax
    3 per score (3*h*N*N).
    patch=p (MobileViT, Mehta & Rastegari 2022): the map cut into p x p patches, attention among
    the positions with the same offset inside their patch: P = p*p sequences of N = n_H*n_W/P
    tokens. Projections as before over all n_H*n_W positions; products 2*P*N*N*d; softmax 3*h*P*N*N."""
    kind: ClassVar[str] = "attention"
    weighted: ClassVar[bool] = True
    global_view: ClassVar[bool] = True
    heads: object = arg("size", positional=0, required=True)
    patch: object = arg("size", 1)

    def out(self, ins, strict=False):
        x = ins[0]
        if is_integer(ratio(x.n_C, self.heads)) is False:
            raise RuleError(f"heads={show(self.heads)} does not divide d = n_C = {show(x.n_C)}",
                            f"d_h = d/heads = {show(x.n_C)}/{show(self.heads)} is not an integer",
                            argument="heads")
        for letter, n in (("n_H", x.n_H), ("n_W", x.n_W)):
            if is_integer(ratio(n, self.patch)) is False:
                raise RuleError(f"patch={show(self.patch)} does not divide {letter} = {show(n)}",
                                f"{letter}/patch = {show(n)}/{show(self.patch)} is not an integer",
                                argument="patch")
        return Out(x, (self.note(x),))

    def sequences(self, x: Shape):
        """(P, N): P sequences of N tokens each."""
        P = product(self.patch, self.patch)
        return P, ratio(positions(x), P)

    def note(self, x: Shape) -> str:
        (P, N), d = self.sequences(x), x.n_C
        n, d_text, p_text = (show(v) if is_int(v) else f"({show(v)})" for v in (N, d, P))
        if self.patch == 1:
            return f"MACs include the products QK^T and AV: 2*N*N*d = 2*{n}*{n}*{d_text} = {show(2 * product(N, N, d))}"
        return (f"MACs include the products QK^T and AV: 2*P*N*N*d = 2*{p_text}*{n}*{n}*{d_text} = "
                f"{show(2 * product(P, N, N, d))} (P = {show(self.patch)}*{show(self.patch)} offsets "
                f"in a patch, N = n_H*n_W/P tokens each)")

    def cost(self, ins, out):
        x = ins[0]
        (P, N), d = self.sequences(x), x.n_C
        products = 2 * product(P, N, N, d)
        return Cost(weights=4 * d * d + 4 * d, macs=4 * product(positions(x), d, d) + products,
                    other=5 * product(positions(x), d) + 3 * product(self.heads, P, N, N),
                    attention_macs=products)

    def family(self, ins):
        return "matmul"

    def weights(self, ins):
        """W_qkv (d, 3d): Q, K, V side by side, head j in columns j*d_h .. (j+1)*d_h - 1 of
        each; b_qkv (3d,); W_o (d, d), b_o (d,). x @ W, as fc's W (n_C_prev, n_C)."""
        d = ins[0].n_C
        return {"W_qkv": (d, 3 * d), "b_qkv": (3 * d,), "W_o": (d, d), "b_o": (d,)}
