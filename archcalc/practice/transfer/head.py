"""The trainable head on (N, n) matrices: one table (HEAD) holds each kind's forward and
backward; the loss is softmax cross-entropy plus weight decay (decay/2 * sum of squared fc
weights; biases are not decayed), minimised by mini-batch gradient descent with momentum.

The forward is written here rather than taken from the executor's kernels (NHWC, in place,
sigmoid in its tanh form): the head trains in float32 and is checked in float64, and its
numbers must not move when a kernel is tuned. Dropout is inverted dropout while training
(kept units scaled by 1/(1 - rate)), the identity afterwards, as in the executor."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np


class HeadKind(NamedTuple):
    """forward(layer, p, h, rng) -> (output, saved): `p` the layer's weights (None without),
    `rng` None at test time. backward(layer, p, saved, g) -> the gradient at the input.
    grads(p, saved, g, decay) -> the gradients of the weights, for kinds that have them."""
    forward: Callable
    backward: Callable
    grads: Callable | None = None


def activation(f, backward) -> HeadKind:
    """An element-wise kind whose derivative is read from its output y, which is saved."""
    def forward(layer, p, h, rng):
        y = f(h)
        return y, y
    return HeadKind(forward, lambda layer, p, y, g: backward(g, y))


def fc_forward(layer, p, h, rng):
    return (h @ p["W"] + p["b"] if "b" in p else h @ p["W"]), h  # its input, for the grads


def fc_grads(p, x, g, decay) -> dict:
    grads = {"W": x.T @ g + p["W"].dtype.type(decay) * p["W"]}
    if "b" in p:
        grads["b"] = g.sum(axis=0)
    return grads


def dropout_forward(layer, p, h, rng):
    if rng is None or layer.rate <= 0:
        return h, None
    mask = (rng.random(h.shape) >= layer.rate) / h.dtype.type(1 - layer.rate)
    return h * mask, mask


# flatten: the features arrive flat; softmax: folded into the loss
PASS = HeadKind(lambda layer, p, h, rng: (h, None), lambda layer, p, s, g: g)
HEAD = {
    "flatten": PASS,
    "fc": HeadKind(fc_forward, lambda layer, p, x, g: g @ p["W"].T, fc_grads),
    "relu": activation(lambda h: np.maximum(h, 0), lambda g, y: g * (y > 0)),
    "tanh": activation(np.tanh, lambda g, y: g * (1 - y * y)),
    "sigmoid": activation(lambda h: 1 / (1 + np.exp(-h)), lambda g, y: g * y * (1 - y)),
    "dropout": HeadKind(dropout_forward, lambda layer, p, mask, g: g if mask is None else g * mask),
    "softmax": PASS,
}
HEAD_KINDS = tuple(HEAD)


@dataclass(frozen=True)
class HeadLayer:
    name: str
    kind: str
    rate: float = 0.0  # dropout


def head_layers(s) -> tuple:
    """The head of a Split `s`, as the layers the table runs."""
    out = []
    for name in s.head:
        op = s.net.layer(name).op
        out.append(HeadLayer(name, op.kind, float(op.rate) if op.kind == "dropout" else 0.0))
    return tuple(out)


def weighted(layer) -> bool:
    return HEAD[layer.kind].grads is not None


def head_forward(layers, params, x, rng=None):
    """Logits of the head for features x (N, ...), and what the backward pass needs. With
    `rng`, dropout is on."""
    h = np.asarray(x)
    h = (h if h.dtype.kind == "f" else h.astype(np.float32)).reshape(len(h), -1)
    saved = []
    for layer in layers:
        h, s = HEAD[layer.kind].forward(layer, params.get(layer.name), h, rng)
        saved.append(s)
    return h, saved


def softmax(z) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(logits, labels) -> float:
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def head_backward(layers, params, saved, probs, labels, decay) -> dict:
    """Gradients of mean cross-entropy + decay/2 * sum ||W||^2 for each fc's W and b. The
    pass stops at the first fc: nothing below it is trained."""
    g = probs.copy()
    g[np.arange(len(labels)), labels] -= 1
    g /= len(labels)
    grads = {}
    first = next(i for i, layer in enumerate(layers) if weighted(layer))
    for i in range(len(layers) - 1, first - 1, -1):
        layer, kind, p = layers[i], HEAD[layers[i].kind], params.get(layers[i].name)
        if kind.grads:
            grads[layer.name] = kind.grads(p, saved[i], g, decay)
        if i > first:
            g = kind.backward(layer, p, saved[i], g)
    return grads


def objective(layers, params, x, labels, decay) -> float:
    logits, _ = head_forward(layers, params, x)
    penalty = sum(float((params[l.name]["W"].astype(np.float64) ** 2).sum())
                  for l in layers if weighted(l))
    return cross_entropy(logits, labels) + decay / 2 * penalty


def predict(layers, params, x, batch=4096) -> np.ndarray:
    """Class probabilities of the head for features x, in batches (x may be a memmap)."""
    return np.concatenate([softmax(head_forward(layers, params, x[i:i + batch])[0])
                           for i in range(0, len(x), batch)])


# ---------------------------------------------------------------- training

@dataclass
class Training:
    params: dict             # the head's trained weights {layer: {key: array}}
    losses: list             # training objective before training and after each epoch
    epochs: int
    batch: int
    lr: float
    decay: float
    momentum: float
    seconds: float


def train_head(layers, params, x, labels, epochs=30, batch=32, lr=0.05, decay=1e-4,
               momentum=0.9, seed=0) -> Training:
    """Mini-batch gradient descent (with momentum; 0 for the plain form) on the head's fc
    weights, starting from `params` (copied, never changed). `x`: cached features (may be a
    memory-mapped array; it is read once into memory, the head's data being small)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    labels = np.asarray(labels, dtype=np.int64)
    params = {l.name: {k: np.array(a, dtype=np.float32) for k, a in params[l.name].items()}
              for l in layers if weighted(l)}
    step_macs = batch * sum(p["W"].size for p in params.values())
    with blas_threads(1 if step_macs < SMALL_STEP else None):
        return descend(layers, params, x, labels, epochs, batch, lr, decay, momentum, rng)


SMALL_STEP = 50_000_000  # MACs of a step below which BLAS runs best on one thread


def blas_threads(n):
    """Limit BLAS to n threads (None: leave it). A head's products are small: on two busy
    cores, OpenBLAS's threads waiting on each other made LeNet's head 200x slower (12 s
    against 0.06 s). Uses threadpoolctl, which scikit-learn installs; without it, a no-op."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        n = None
    return contextlib.nullcontext() if n is None else threadpool_limits(n, user_api="blas")


def descend(layers, params, x, labels, epochs, batch, lr, decay, momentum, rng) -> Training:
    velocity = {n: {k: np.zeros_like(a) for k, a in p.items()} for n, p in params.items()}
    losses = [objective(layers, params, x, labels, decay)]
    start = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            logits, saved = head_forward(layers, params, x[idx], rng)
            grads = head_backward(layers, params, saved, softmax(logits), labels[idx], decay)
            for name, g in grads.items():
                for k, d in g.items():
                    v = velocity[name][k]
                    v *= np.float32(momentum)
                    v -= np.float32(lr) * d
                    params[name][k] += v
        losses.append(objective(layers, params, x, labels, decay))
    return Training(params, losses, epochs, batch, lr, decay, momentum,
                    time.perf_counter() - start)
