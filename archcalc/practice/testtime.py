"""Test-time averaging: multi-crop evaluation and ensembles, with their cost checked.

- Multi-crop (Krizhevsky et al. 2012; torchvision's TenCrop): the network runs on several
  crops of each image and the outputs are averaged. The 10 crops are the four corners and the
  centre, then the mirror image of each of those five; 5 is the first five; 2 the centre and
  its mirror; 1 the centre alone. The centre crop starts at round((H - h)/2), as torchvision's.
- Ensembles: k networks (the same spec with different weights, or different specs with the
  same input and output) each run on every crop; their outputs are averaged, never their
  weights.

The cost is the analysis' MACs per image x crops x models (costs.test_time); `evaluate` runs
every pass with the executor and compares its counted multiplications with that figure.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..analysis import costs
from .augment import as_batch, crop_at
from ..errors import SpecError
from ..network import Network
from ..executor.forward import run, single_input

CROP_SETS = {1: "the centre crop", 2: "the centre crop and its mirror",
             5: "4 corners + centre", 10: "4 corners + centre, and their mirrors"}


# ---------------------------------------------------------------- crops

def crop_boxes(shape, size, n=10) -> list[tuple[int, int, bool]]:
    """(top, left, mirrored) of each of the n crops of `size` (h, w or one side) in images of
    `shape` (H, W): corners top-left, top-right, bottom-left, bottom-right, then the centre."""
    check_crop_count(n, "n")
    H, W = (int(v) for v in shape[:2])
    h, w = (int(size), int(size)) if np.ndim(size) == 0 else (int(size[0]), int(size[1]))
    if h > H or w > W:
        raise SpecError(f"a {h}x{w} crop does not fit {H}x{W} images", None,
                        ("the images must be at least the network's input size",))
    centre = (int(round((H - h) / 2)), int(round((W - w) / 2)), False)
    corners = [(0, 0, False), (0, W - w, False), (H - h, 0, False), (H - h, W - w, False)]
    if n == 1:
        return [centre]
    if n == 2:
        return [centre, centre[:2] + (True,)]
    five = corners + [centre]
    return five if n == 5 else five + [(t, l, True) for t, l, _ in five]


def check_crop_count(n, name: str) -> None:
    """The error speaks of the caller's own parameter (`name`); a command names its option."""
    if n not in CROP_SETS:
        raise SpecError(f"{name}, the number of crops, must be one of "
                        f"{', '.join(map(str, CROP_SETS))}; got {n}")


def crops(x, size, n=10) -> np.ndarray:
    """The n crops of every image, (n, N, h, w, C), in crop_boxes' order; mirrored crops are
    the crop flipped left-right."""
    x = as_batch(x)
    h, w = (size, size) if np.ndim(size) == 0 else size
    out = []
    for top, left, mirrored in crop_boxes(x.shape[1:3], (h, w), n):
        c = crop_at(x, top, left, (h, w))
        out.append(c[:, :, ::-1] if mirrored else c)
    return np.stack(out)


def ten_crops(x, size) -> np.ndarray:
    return crops(x, size, 10)


# ---------------------------------------------------------------- members and evaluation

@dataclass(frozen=True)
class Member:
    """One network of an ensemble: a graph, its weights (None: seeded, an .npz path, or a
    dict) and the seed of a seeded initialisation."""
    net: Network
    weights: object = None
    seed: int = 0
    label: str = ""


@dataclass
class Evaluation:
    output: np.ndarray          # (N, ...) the average over models and crops
    outputs: np.ndarray         # (models, crops, N, ...) every pass's output
    crops: int
    models: int
    images: int
    crop_size: tuple
    macs_per_image: list        # each member's forward MACs per image, from the analysis
    predicted_macs: int         # analysis: sum over members of MACs x crops, times N
    counted_macs: int           # the executor's count over every pass
    params: int                 # sum of the members' params (an ensemble stores them all)
    seconds: float
    labels: list = field(default_factory=list)

    @property
    def multiplier(self) -> float:
        """Cost against one pass of the first network: crops x models for a plain ensemble."""
        return self.predicted_macs / (self.macs_per_image[0] * self.images)

    @property
    def agrees(self) -> bool:
        return self.predicted_macs == self.counted_macs


def evaluate(members, images, n_crops=10, at=None, dtype=np.float32,
             memory_limit=None) -> Evaluation:
    """Run every member on every crop of `images` (N, H, W, C) and average the outputs. The
    crop size is each member's input size (the members must agree on it)."""
    check_crop_count(n_crops, "n_crops")
    members = list(members)
    if not members:
        raise SpecError("an ensemble needs at least one network")
    images = as_batch(images)
    sizes, analyses = zip(*(single_input(m.net, at, "test-time averaging") for m in members))
    if len(set(sizes)) > 1:
        raise SpecError("the ensemble's networks take different inputs: "
                        + ", ".join(str(s) for s in sizes))
    h, w, c = sizes[0]
    if images.shape[3] != c:
        raise SpecError(f"the images have {images.shape[3]} channels, the network takes {c}")
    views = crops(images, (h, w), n_crops)
    binding = {k: v for k, v in analyses[0].symbols.items() if v is not None}
    outputs, counted = [], 0
    start = time.perf_counter()
    for m, a in zip(members, analyses):
        weights, per_crop = m.weights, []
        for view in views:
            r = run(m.net, view, weights, seed=m.seed, at=binding, dtype=dtype,
                    memory_limit=memory_limit)
            weights = r.weights  # the same weights for every crop, initialised once
            per_crop.append(r.output)
            counted += r.total_macs
        outputs.append(np.stack(per_crop))
    shapes = {o.shape[2:] for o in outputs}
    if len(shapes) > 1:
        raise SpecError("the ensemble's networks give outputs of different shapes: "
                        + ", ".join(str(s) for s in shapes))
    seconds = time.perf_counter() - start
    outputs = np.stack(outputs)
    n = len(images)
    predicted = sum(int(costs.test_time(a, n_crops, 1).macs) for a in analyses) * n
    return Evaluation(outputs.mean(axis=(0, 1)), outputs, n_crops, len(members), n, (h, w),
                      [int(a.totals["macs"]) for a in analyses], predicted, counted,
                      sum(int(a.totals["params"]) for a in analyses), seconds,
                      [m.label for m in members])
