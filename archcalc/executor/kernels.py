"""One NumPy kernel per layer kind, in a closed table (KERNELS); the convolutions are in conv.py.

Activations are NHWC arrays (N, n_H, n_W, n_C): the course's (n_H, n_W, n_C) with the batch in
front; a vector is (N, 1, 1, n). A kernel takes its bound op (every size an int), its inputs,
its weights (key -> array, shapes from the kind's weight layout, `Op.weights`) and a Context
that counts the multiply-accumulates of the products it actually runs and lends a reused
workspace.

Kernels work out their output sizes from their own semantics (the windows that fit, as
PyTorch defines them), never from the kinds' shape rules, so `--verify` compares two
independent computations.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from . import compiled
from .attention import attention, token, tokens, workspace as attention_workspace
from .conv import conv, conv_hw, conv_transpose, dwconv, window_count, workspace as conv_workspace
from .moves import KERNELS as MOVES
from .normalisation import KERNELS as NORMALISATION
from .radix import KERNELS as RADIX

# An im2col tile: large enough for BLAS, small enough that the block and the matmul's reads
# of it stay in the 32 MiB L3 (VGG-16 at batch 8: 8 MiB tiles ran 10-15% faster than 24 MiB)
TILE_BYTES = 8 * 2**20


class Context:
    """What a kernel may use besides its inputs: a MAC counter, a workspace, and whether it
    may overwrite its first input (no later layer reads it)."""

    def __init__(self, dtype=np.float32, tile_bytes=TILE_BYTES):
        self.dtype = np.dtype(dtype)
        compiled.warm(self.dtype.name)  # before any pass is timed
        self.tile_bytes = tile_bytes
        self.macs = 0      # multiply-accumulates by the layer's definition (what --verify checks)
        self.executed = 0  # multiplications run: fewer than macs where Winograd saves some
        self.own = False
        self.relu = False  # a ReLU fused into this layer's output (set by the executor)
        self.feed = None   # the array an input layer returns
        self._buffers = {}

    def workspace(self, shape, slot="cols") -> np.ndarray:
        """A scratch array of `shape`, reusing one buffer per slot: fresh large allocations go
        back to the OS and fault in again on every call (2x slower on VGG-16)."""
        size = math.prod(shape)  # np.prod costs 5 us a call, a conv's whole setup on small maps
        if slot not in self._buffers or self._buffers[slot].size < size:
            self._buffers.pop(slot, None)  # let go first: never the old and the new at once
            self._buffers[slot] = compiled.aligned_empty(size, self.dtype)
        return self._buffers[slot][:size].reshape(shape)

    @property
    def workspace_bytes(self) -> int:
        return sum(b.nbytes for b in self._buffers.values())

    def count(self, macs, executed=None):
        """Products a kernel ran itself: `macs` by the definition, `executed` if it ran fewer."""
        self.macs += macs
        self.executed += macs if executed is None else executed

    def matmul(self, a, b, out=None):
        """a @ b, counting the multiply-accumulates of the operands as they are."""
        n = int(np.prod(a.shape[:-1])) * a.shape[-1] * b.shape[-1]
        self.macs += n
        self.executed += n
        return np.matmul(a, b, out=out)


# ---------------------------------------------------------------- windows along one axis

class Axis(NamedTuple):
    """The pooling windows of one spatial axis: `size` outputs, and for each offset k in the
    window the outputs [lo, hi) whose tap k reads a real input (not padding), at i*s + shift."""
    size: int
    stride: int
    taps: tuple


def axis(n, f, s, p, ceil=False) -> Axis:
    """Only the offsets k that some output reads a real input through, 0 <= i*s + k - p < n:
    at most n + (o - 1)*s of them however large f is (a window of 10^8 taps over padding)."""
    o = window_count(n, f, s, p, ceil)
    first, last = max(0, p - (o - 1) * s), min(f - 1, p + n - 1)
    return Axis(o, s, tuple(reach(o, n, s, k - p) for k in range(first, last + 1)))


def reach(o, n, s, shift):
    """Outputs i in [lo, hi) with 0 <= i*s + shift < n."""
    lo = min(o, max(0, -(shift // s)))
    hi = min(o, max(lo, (n - 1 - shift) // s + 1))
    return lo, hi, shift


def source(lo, hi, s, shift) -> slice:
    """Input indices read by outputs lo..hi-1 through a tap at `shift`."""
    return slice(lo * s + shift, (hi - 1) * s + shift + 1, s)


def along(dim, index) -> tuple:
    return (slice(None),) * dim + (index,)


def reduce_axis(x, ax: Axis, dim, ufunc, init):
    """Combine each window's taps along one axis (max or sum); padding never takes part."""
    shape = list(x.shape)
    shape[dim] = ax.size
    y = np.full(shape, init, x.dtype)
    for lo, hi, shift in ax.taps:
        if lo < hi:
            dst = y[along(dim, slice(lo, hi))]
            ufunc(dst, x[along(dim, source(lo, hi, ax.stride, shift))], out=dst)
    return y


def pool_axes(op, x):
    _, H, W, _ = x.shape
    ceil = op.round == "ceil"
    return axis(H, op.f, op.stride(), op.p, ceil), axis(W, op.f, op.stride(), op.p, ceil)


def window_sum(op, x):
    """Sum of each f x f window, in two passes (rows, then columns): sums are separable."""
    rows, cols = pool_axes(op, x)
    return reduce_axis(reduce_axis(x, rows, 1, np.add, 0), cols, 2, np.add, 0)


# ---------------------------------------------------------------- pooling

def maxpool(op, xs, w, ctx):
    (x,) = xs
    rows, cols = pool_axes(op, x)
    y = compiled.max_pool(x, op.f, op.stride(), op.p, rows.size, cols.size)
    if y is not None:
        return y
    return reduce_axis(reduce_axis(x, rows, 1, np.maximum, -np.inf), cols, 2, np.maximum, -np.inf)


def avgpool(op, xs, w, ctx):
    (x,) = xs
    _, H, W, _ = x.shape
    y = window_sum(op, x)
    rows = divisor(H, op.f, op.stride(), op.p, y.shape[1], op.count_pad)
    cols = divisor(W, op.f, op.stride(), op.p, y.shape[2], op.count_pad)
    y /= np.outer(rows, cols)[:, :, None].astype(ctx.dtype)
    return y


def divisor(n, f, s, p, o, count_pad):
    """PyTorch's avg_pool2d divisor per output along one axis: the window clipped to the
    padded input (count_include_pad), or to the real input only."""
    start = np.arange(o) * s - p
    if count_pad:
        return np.minimum(start + f, n + p) - start
    return np.minimum(start + f, n) - np.maximum(start, 0)


def subsample(op, xs, w, ctx):
    """LeNet-5's S layers: each window's sum times a trainable coefficient, plus a bias."""
    y = window_sum(op, xs[0])
    y *= w["coeff"]
    y += w["b"]
    return y


def gap(op, xs, w, ctx):
    return xs[0].mean(axis=(1, 2), keepdims=True, dtype=ctx.dtype)


def adaptive_avgpool(op, xs, w, ctx):
    """PyTorch's adaptive average pool: output i averages [floor(i*n/o), ceil((i+1)*n/o))."""
    y = xs[0]
    for dim in (1, 2):
        n, o = y.shape[dim], op.out_size
        spans = [((i * n) // o, -((-(i + 1) * n) // o)) for i in range(o)]
        y = np.stack([y[along(dim, slice(a, b))].sum(axis=dim) / (b - a) for a, b in spans], axis=dim)
    return y.astype(ctx.dtype, copy=False)


# ---------------------------------------------------------------- vectors

def flatten(op, xs, w, ctx):
    x = xs[0]  # NHWC order: the channel index runs fastest
    return x.reshape(x.shape[0], 1, 1, -1)


def fc(op, xs, w, ctx):
    x = xs[0]
    y = ctx.matmul(x.reshape(x.shape[0], -1), w["W"])
    if op.bias:
        y += w["b"]
    return y.reshape(x.shape[0], 1, 1, op.c)


def rbf(op, xs, w, ctx):
    """y_i = sum_j (x_j - P_ij)^2: the distance to each fixed prototype (not counted as MACs,
    by the house convention: only conv and fc products are)."""
    x = xs[0].reshape(xs[0].shape[0], 1, -1)
    d = x - w["P"][None]
    return np.einsum("ncj,ncj->nc", d, d).reshape(x.shape[0], 1, 1, -1)


# ---------------------------------------------------------------- element-wise

def target(ctx, x):
    """Where an element-wise result goes: over the input when nobody reads it later."""
    return x if ctx.own else None


def relu(op, xs, w, ctx):
    return np.maximum(xs[0], 0, out=target(ctx, xs[0]))


def tanh(op, xs, w, ctx):
    y = compiled.activation("tanh", xs[0], ctx.own)
    return y if y is not None else np.tanh(xs[0], out=target(ctx, xs[0]))


def sigmoid(op, xs, w, ctx):
    y = compiled.activation("sigmoid", xs[0], ctx.own)
    if y is not None:
        return y
    y = np.multiply(xs[0], 0.5, out=target(ctx, xs[0]))  # 1/(1 + e^-x) = (1 + tanh(x/2))/2:
    np.tanh(y, out=y)                                     # no overflow for large -x
    y += 1
    y *= 0.5
    return y


def softmax(op, xs, w, ctx):
    """Over the channels; the maximum is subtracted first so exp cannot overflow."""
    x = xs[0]
    y = np.subtract(x, x.max(axis=-1, keepdims=True), out=target(ctx, x))
    np.exp(y, out=y)
    y /= y.sum(axis=-1, keepdims=True)
    return y


def dropout(op, xs, w, ctx):
    return xs[0]  # the identity at inference (PyTorch scales during training instead)


def batchnorm(op, xs, w, ctx):
    """Inference form: gamma (x - mean)/sqrt(var + eps) + beta, as one scale and one shift."""
    scale = w["gamma"] / np.sqrt(w["var"] + ctx.dtype.type(float(op.eps)))
    y = np.multiply(xs[0], scale, out=target(ctx, xs[0]))
    y += w["beta"] - w["mean"] * scale
    return y


def lrn(op, xs, w, ctx):
    """AlexNet's normalisation across channels (Krizhevsky et al. 2012, section 3.3):
    b_c = a_c / (k + alpha * sum of a^2 over `size` channels around c)^beta. The sum is over
    channels c - size//2 .. c + (size-1)//2 that exist; the paper's alpha is not divided by
    size (PyTorch's and Caffe's is)."""
    x = xs[0]
    C = x.shape[-1]
    squares = x * x
    total = np.zeros_like(x)
    # shifts past the channels there are read nothing: at most 2C - 1 of them, whatever `size`
    for shift in range(max(-(op.size // 2), 1 - C), min((op.size - 1) // 2, C - 1) + 1):
        lo, hi = max(0, -shift), min(C, C - shift)
        total[..., lo:hi] += squares[..., lo + shift:hi + shift]
    dtype = ctx.dtype.type
    total *= dtype(float(op.alpha))
    total += dtype(float(op.k))
    return x / total ** dtype(float(op.beta))


# ---------------------------------------------------------------- joins and the input

def add(op, xs, w, ctx):
    """The sum, through the ReLU fused into it (ResNet's) if there is one."""
    y = compiled.add(xs, ctx.own, ctx.relu)
    if y is not None:
        return y
    y = np.add(xs[0], xs[1], out=target(ctx, xs[0]))
    for x in xs[2:]:
        y += x
    return np.maximum(y, 0, out=y) if ctx.relu else y


def concat(op, xs, w, ctx):
    return np.concatenate(xs, axis=-1)


def input_(op, xs, w, ctx):
    return ctx.feed


# ---------------------------------------------------------------- kinds of modern CNNs

def leaky_relu(op, xs, w, ctx):
    x = xs[0]
    return np.where(x > 0, x, x * ctx.dtype.type(float(op.alpha))).astype(ctx.dtype, copy=False)


def clip(op, xs, w, ctx):
    dtype = ctx.dtype.type
    return np.clip(xs[0], dtype(float(op.lo)), dtype(float(op.hi)), out=target(ctx, xs[0]))


def hardsigmoid(op, xs, w, ctx):
    dtype = ctx.dtype.type
    y = np.multiply(xs[0], dtype(float(op.alpha)), out=target(ctx, xs[0]))
    y += dtype(float(op.beta))
    return np.clip(y, 0, 1, out=y)


def hardswish(op, xs, w, ctx):
    x = xs[0]
    y = compiled.activation("hardswish", x, ctx.own)
    if y is not None:
        return y
    gate = np.multiply(x, ctx.dtype.type(1 / 6))
    gate += ctx.dtype.type(0.5)
    np.clip(gate, 0, 1, out=gate)
    return np.multiply(x, gate, out=target(ctx, x))


def swish(op, xs, w, ctx):
    x = xs[0]
    y = compiled.activation("swish", x, ctx.own)
    if y is not None:
        return y
    gate = sigmoid(op, (x,), w, Context(ctx.dtype))  # a fresh context: never over x
    return np.multiply(x, gate, out=gate)


def identity(op, xs, w, ctx):
    return xs[0]


def mul(op, xs, w, ctx):
    """Element-wise, a size of 1 broadcast (squeeze-and-excitation's (N, 1, 1, C) scales)."""
    shape = np.broadcast_shapes(*(x.shape for x in xs))
    out = target(ctx, xs[0]) if xs[0].shape == shape else None
    y = np.multiply(xs[0], xs[1], out=out)
    for x in xs[2:]:
        y *= x
    return y


KERNELS: dict[str, Callable] = {  # kind -> kernel (op, xs, w, ctx) -> y
    "input": input_, "conv": conv, "maxpool": maxpool, "avgpool": avgpool, "subsample": subsample,
    "gap": gap, "adaptive_avgpool": adaptive_avgpool, "flatten": flatten, "fc": fc, "rbf": rbf,
    "relu": relu, "tanh": tanh, "sigmoid": sigmoid, "softmax": softmax, "dropout": dropout,
    "batchnorm": batchnorm, "lrn": lrn, "add": add, "concat": concat, "leaky_relu": leaky_relu,
    "clip": clip, "hardsigmoid": hardsigmoid, "hardswish": hardswish, "swish": swish,
    "identity": identity, "mul": mul, "conv_hw": conv_hw,
    **MOVES,  # shuffle, pad, slice, crop, upsample
    **NORMALISATION,  # layernorm, scale, gelu, elu
    "tokens": tokens, "token": token, "attention": attention,
    "conv_transpose": conv_transpose, "dwconv": dwconv,
    **RADIX,  # split_sum, radix_softmax
}

# kind -> (op, input shape (N, n_H, n_W, n_C), itemsize, tile bytes) -> {slot: elements}: the
# Context workspace a kernel will hold, counted before the run (kinds without one are absent)
WORKSPACE: dict[str, Callable] = {"conv": conv_workspace, "attention": attention_workspace,
                                  "dwconv": lambda op, x, *rest: conv_workspace(op.as_conv(x[-1]), x, *rest)}
