"""The data of the digits demo and the train/test split of a run."""
from __future__ import annotations

import numpy as np

from ...errors import SpecError
from ...executor.forward import size_text
from ..augment import resize


DIGITS = 1797  # images in scikit-learn's digits


def digits(shape, memory_limit=None) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes, shipped with the
    package, no download), scaled to [0, 1], resized bilinearly to the spec's input (n_H,
    n_W) and repeated over its n_C channels: (images float32 NHWC, labels int64). Images
    that would pass `memory_limit` bytes at that size are refused before they are made."""
    H, W, C = (int(v) for v in shape)
    need = DIGITS * H * W * C * 4
    if memory_limit is not None and need > memory_limit:
        raise SpecError(f"the digits at the spec's input {H}x{W}x{C} would need {size_text(need)} "
                        f"({DIGITS:,} images x {H * W * C:,} numbers x 4 bytes), over the limit "
                        f"of {size_text(memory_limit)}", None,
                        ("give smaller images (--data), or raise the limit (--max-memory)",))
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SpecError("the digits demo needs scikit-learn",
                        None, ("pip install 'archcalc[demo]'",)) from None
    d = load_digits()
    x = (d.images.astype(np.float32) / 16)[..., None]
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
