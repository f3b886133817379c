"""Costs derived from an Analysis for the course's practical advice: training, transfer
learning with cached features, multi-crop and ensembles at test time. Pure functions.

Conventions (printed with every report):
- training MACs per image = forward MACs of every layer + 2 x forward MACs of the trainable
  layers (the gradients with respect to their inputs and to their weights); frozen layers run
  forward only. Frozen layers before the first trainable one need no backward at all.
- training memory = float32 weights + their gradients + Adam's two moments for trainable
  params, plus every activation kept for the backward pass, per image of the batch.
- cached features: the frozen part runs once; its output is stored as float32 per image."""
from __future__ import annotations

from dataclasses import dataclass

from .analyzer import Analysis
from ..sizes import total

BYTES = 4  # float32
ADAM_COPIES = 3  # gradient, first moment, second moment per trainable parameter


@dataclass(frozen=True)
class Training:
    forward_macs: object
    backward_macs: object
    macs_per_image: object
    memory_bytes: object  # at batch size `batch`
    batch: int


def weight_bytes(a: Analysis):
    return a.totals["params"] * BYTES


def training(a: Analysis, batch: int = 32) -> Training:
    backward = 2 * total(r.macs for r in a.rows if r.trainable_params != 0)
    forward = a.totals["macs"]
    memory = (a.totals["params"] + ADAM_COPIES * a.totals["trainable_params"]) * BYTES \
        + a.totals["activations"] * BYTES * batch
    return Training(forward, backward, forward + backward, memory, batch)


@dataclass(frozen=True)
class Transfer:
    frozen_through: str
    feature_shape: tuple
    feature_bytes_per_image: object
    cache_bytes: object        # for `images` images
    frozen_macs: object        # forward MACs of the frozen part, per image
    epoch_macs_without_cache: object
    epoch_macs_with_cache: object
    images: int
    epochs: int


def transfer(a: Analysis, frozen_through: str, images: int, epochs: int) -> Transfer:
    """Cost of training on top of a frozen part that is run once and cached: the frozen part is
    `frozen_through` and every layer it reads."""
    row = a.row(frozen_through)
    part = frozen_part(a, frozen_through)
    frozen_macs = total(r.macs for r in a.rows if r.name in part)
    per_image = training(a).macs_per_image
    features = row.activations * BYTES
    return Transfer(frozen_through, tuple(row.out_shape), features, features * images, frozen_macs,
                    per_image * images * epochs,
                    frozen_macs * images + (per_image - frozen_macs) * images * epochs,
                    images, epochs)


def frozen_part(a: Analysis, name: str) -> set:
    inputs = {r.name: r.inputs for r in a.rows}
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(inputs[current])
    return seen


@dataclass(frozen=True)
class TestTime:
    crops: int
    models: int
    macs: object
    params: object


def test_time(a: Analysis, crops: int = 10, models: int = 1) -> TestTime:
    """Multi-crop runs the network once per crop; an ensemble runs k networks and averages
    their outputs (each with its own weights)."""
    return TestTime(crops, models, a.totals["macs"] * crops * models, a.totals["params"] * models)
