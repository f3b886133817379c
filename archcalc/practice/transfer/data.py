"""The data of the digits demo and the train/test split of a run."""
from __future__ import annotations

import numpy as np

from ...errors import SpecError
from ..augment import resize


def digits(shape) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes, shipped with the
    package, no download), scaled to [0, 1], resized bilinearly to the spec's input (n_H,
    n_W) and repeated over its n_C channels: (images float32 NHWC, labels int64)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SpecError("the digits demo needs scikit-learn",
                        None, ("pip install 'archcalc[demo]'",)) from None
    d = load_digits()
    x = (d.images.astype(np.float32) / 16)[..., None]
    H, W, C = (int(v) for v in shape)
    if (H, W) != (8, 8):
        x = resize(x, (H, W))
    return np.ascontiguousarray(np.repeat(x, C, axis=-1)), d.target.astype(np.int64)


def train_test_split(n, test_fraction, seed) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices of the train and the test images: a seeded permutation's tail and head."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    if not 0 < n_test < n:
        raise SpecError(f"a test fraction of {test_fraction} leaves no train or no test images "
                        f"of {n}")
    return np.sort(order[n_test:]), np.sort(order[:n_test])
