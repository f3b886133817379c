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
    the h scores of every pair of positions (B h T^2 floats: 37 GiB at float32 for 10^5 tokens and one head)."""
    B, H, W, d = x_shape
    T = H * W
    return {"qkv": B * T * 3 * d, "scores": B * op.heads * T * T}


def attention(op, xs, w, ctx):
    """softmax(Q K^T / sqrt(d_h)) V per head over the H*W positions, then the output
    projection; Q is scaled before its product (N*d multiplications, not N*N*h)."""
    x = xs[0]
    B, H, W, d = x.shape
    h = op.heads
    T, d_h = H * W, d // h
    qkv = ctx.matmul(x.reshape(B, T, d), w["W_qkv"], out=ctx.workspace((B, T, 3 * d), "qkv"))
    qkv += w["b_qkv"]
    q, k, v = qkv.reshape(B, T, 3, h, d_h).transpose(2, 0, 3, 1, 4)  # each (B, h, T, d_h)
    q = q * ctx.dtype.type(1 / np.sqrt(d_h))
    scores = ctx.matmul(q, k.swapaxes(-1, -2), out=ctx.workspace((B, h, T, T), "scores"))
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    heads = ctx.matmul(scores, v)                                      # (B, h, T, d_h)
    y = ctx.matmul(heads.transpose(0, 2, 1, 3).reshape(B, T, d), w["W_o"])
    y += w["b_o"]
    return y.reshape(B, H, W, d)
