"""Kernels of token maps and multi-head self-attention (NHWC: a sequence is (N, 1, T, d)).

Every matrix product goes through Context.matmul, so the counted MACs include QK^T and AV."""
from __future__ import annotations

import numpy as np


def tokens(op, xs, w, ctx):
    """The positions row by row, the class token first, then the position embedding added."""
    x = xs[0]
    B, H, W, d = x.shape
    seq = x.reshape(B, H * W, d)
    if op.class_token:
        seq = np.concatenate([np.broadcast_to(w["cls"], (B, 1, d)), seq], axis=1)
    if op.position:
        seq = seq + w["pos"]
    return np.ascontiguousarray(seq, dtype=ctx.dtype).reshape(B, 1, -1, d)


def token(op, xs, w, ctx):
    x = xs[0]
    B, H, W, d = x.shape
    return np.ascontiguousarray(x.reshape(B, H * W, d)[:, op.index]).reshape(B, 1, 1, d)


def workspace(op, x_shape, itemsize, tile_bytes) -> dict:
    """The Context slots `attention` takes, counted before the run: Q, K, V side by side and
    the h scores of every pair of positions in a sequence (B h P N^2 floats, N = T/P: 37 GiB at
    float32 for 10^5 tokens, one head and P = 1)."""
    B, H, W, d = x_shape
    T, P = H * W, op.patch * op.patch
    return {"qkv": B * T * 3 * d, "scores": B * op.heads * P * (T // P) ** 2}


def unfold(x, p):
    """(B, H, W, d) -> (B*P, N, d): sequence a*p + b holds the pixels at offset (a, b) of every
    p x p patch, patches row by row (MobileViT's unfold)."""
    B, H, W, d = x.shape
    cut = x.reshape(B, H // p, p, W // p, p, d).transpose(0, 2, 4, 1, 3, 5)
    return cut.reshape(B * p * p, (H // p) * (W // p), d)


def fold(seq, shape, p):
    """unfold's inverse."""
    B, H, W, d = shape
    cut = seq.reshape(B, p, p, H // p, W // p, d).transpose(0, 3, 1, 4, 2, 5)
    return cut.reshape(B, H, W, d)


def attention(op, xs, w, ctx):
    """softmax(Q K^T / sqrt(d_h)) V per head over each sequence (all H*W positions, or with
    patch=p the P = p*p sequences of N = H*W/P), then the output projection; Q is scaled
    before its product (N*d multiplications, not N*N*h)."""
    x = xs[0]
    p = op.patch
    y = attend(op, unfold(x, p), w, ctx)
    return fold(y, x.shape, p)


def attend(op, seq, w, ctx):
    """Attention over sequences (S, T, d)."""
    S, T, d = seq.shape
    h = op.heads
    d_h = d // h
    qkv = ctx.matmul(seq, w["W_qkv"], out=ctx.workspace((S, T, 3 * d), "qkv"))
    qkv += w["b_qkv"]
    q, k, v = qkv.reshape(S, T, 3, h, d_h).transpose(2, 0, 3, 1, 4)  # each (S, h, T, d_h)
    q = q * ctx.dtype.type(1 / np.sqrt(d_h))
    scores = ctx.matmul(q, k.swapaxes(-1, -2), out=ctx.workspace((S, h, T, T), "scores"))
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    heads = ctx.matmul(scores, v)                                      # (S, h, T, d_h)
    y = ctx.matmul(heads.transpose(0, 2, 1, 3).reshape(S, T, d), w["W_o"])
    y += w["b_o"]
    return y
