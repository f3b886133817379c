"""Mirroring and crops: pixels moved, never resampled."""
from __future__ import annotations

import numpy as np

from .batch import as_batch, generator, pair


def mirror(x) -> np.ndarray:
    """Left-right mirror of every image (mirroring twice is the identity)."""
    return as_batch(x)[:, :, ::-1].copy()


def random_mirror(x, rng=None, p=0.5) -> np.ndarray:
    """Mirror each image with probability p."""
    x = as_batch(x)
    flip = generator(rng).random(len(x)) < p
    out = x.copy()
    out[flip] = x[flip][:, :, ::-1]
    return out


def crop_at(x, tops, lefts, size) -> np.ndarray:
    """Image n cropped to rows tops[n] .. tops[n] + h - 1 and columns lefts[n] .. + w - 1;
    `size` is (h, w) or one side; tops and lefts are ints or one per image."""
    x = as_batch(x)
    n, H, W = x.shape[:3]
    h, w = pair(size)
    tops = np.broadcast_to(np.asarray(tops, dtype=np.int64), (n,))
    lefts = np.broadcast_to(np.asarray(lefts, dtype=np.int64), (n,))
    if h > H or w > W or (tops < 0).any() or (lefts < 0).any() \
            or (tops + h > H).any() or (lefts + w > W).any():
        raise ValueError(f"a {h}x{w} crop at the given offsets does not fit a {H}x{W} image")
    out = np.empty((n, h, w) + x.shape[3:], x.dtype)
    for i, (t, l) in enumerate(zip(tops, lefts)):
        out[i] = x[i, t:t + h, l:l + w]
    return out


def crop_offsets(shape, size, n, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random (tops, lefts) of n crops of `size` within images of `shape` (H, W)."""
    H, W = shape[:2]
    h, w = pair(size)
    if h > H or w > W:
        raise ValueError(f"a {h}x{w} crop does not fit a {H}x{W} image")
    g = generator(rng)
    return g.integers(0, H - h + 1, n), g.integers(0, W - w + 1, n)


def random_crop(x, size, rng=None) -> np.ndarray:
    """One random crop of `size` per image (AlexNet: 224x224 patches of 256x256 images)."""
    x = as_batch(x)
    tops, lefts = crop_offsets(x.shape[1:3], size, len(x), rng)
    return crop_at(x, tops, lefts, size)
