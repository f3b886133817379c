"""What every transform shares: a batch (N, n_H, n_W, n_C) as an array of floats, a value
per image, a crop's size, and a Generator from a seed."""
from __future__ import annotations

import numpy as np


def generator(rng) -> np.random.Generator:
    """A Generator from a Generator, a seed, or None (fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def as_batch(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"images must be a batch (N, n_H, n_W, n_C), got shape {x.shape}")
    return x


def as_float(x) -> np.ndarray:
    """The batch as floats: float arrays keep their dtype, integers become float32."""
    x = as_batch(x)
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def per_image(value, n, width=None) -> np.ndarray:
    """A scalar (or a vector of `width`) for the whole batch, or one per image, as (N, ...)."""
    a = np.asarray(value, dtype=np.float64)
    shape = (n,) if width is None else (n, width)
    if a.ndim == len(shape) - 1:
        a = np.broadcast_to(a, shape)
    if a.shape != shape:
        raise ValueError(f"expected one value for the batch or {shape}, got shape {a.shape}")
    return a


def pair(size) -> tuple[int, int]:
    if np.ndim(size) == 0:
        return int(size), int(size)
    h, w = size
    return int(h), int(w)
