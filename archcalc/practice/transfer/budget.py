"""What a finetune run will hold, worked out from sizes before anything is made: the feature
cache (a file of images x feature elements x 4 bytes, read whole into memory to train the
head) and the working memory of the run's three phases; refused past the memory limit, or
past the free space of the cache's disk, with the figure and the limit."""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import SpecError
from ...executor.forward import plan, size_text
from .splitting import Split, frozen_network

F32 = np.dtype(np.float32)


@dataclass(frozen=True)
class Budget:
    images: int
    feature_elements: int   # per image, at the frozen part's output
    cache_bytes: int        # images x feature_elements x 4
    weight_bytes: int       # the whole network's float32 weights, held throughout
    extract_bytes: int      # the frozen part run on one batch of images
    train_bytes: int        # the head's activations over the train images, its weights x 3
    verify_bytes: int       # the whole network run on the test images

    @property
    def working_bytes(self) -> int:
        """The weights, and the largest phase (each phase's arrays go before the next)."""
        return self.weight_bytes + max(self.extract_bytes, self.train_bytes, self.verify_bytes)

    @property
    def total_bytes(self) -> int:
        return self.cache_bytes + self.working_bytes


def budget_for(s: Split, at: dict, n_images: int, n_train: int, n_test: int, batch: int) -> Budget:
    """The bytes of each part of a finetune of `s` over n_images images (n_train and n_test
    of them), the frozen part run `batch` images at a time."""
    whole = plan(s.net, at)
    frozen = plan(frozen_network(s), at)
    features = math.prod(int(v) for v in frozen.analysis.row(s.through).out_shape)
    head = [whole.analysis.row(name) for name in s.head]
    head_elements = sum(math.prod(int(v) for v in row.out_shape) for row in head)
    head_weights = sum(math.prod(shape) for name in s.head
                       for shape in whole.weight_shapes.get(name, {}).values())
    acts, _, scratch, temps = frozen.memory(min(batch, n_images), F32)
    whole_acts, whole_weights, whole_scratch, whole_temps = whole.memory(n_test, F32)
    return Budget(n_images, features, n_images * features * F32.itemsize, whole_weights,
                  acts + scratch + temps,
                  (n_train * head_elements + 3 * head_weights) * F32.itemsize,
                  whole_acts + whole_weights + whole_scratch + whole_temps)


def refuse_if_large(b: Budget, network: str, through: str, limit: int | None) -> None:
    if limit is None or b.total_bytes <= limit:
        return
    raise SpecError(
        f"finetuning {network} frozen through '{through}' on {b.images:,} images would need "
        f"about {size_text(b.total_bytes)} ({size_text(b.cache_bytes)} of cached features, "
        f"{b.images:,} images x {b.feature_elements:,} numbers x 4 bytes, + "
        f"{size_text(b.working_bytes)} of working memory), over the limit of {size_text(limit)}",
        None, ("freeze through a later layer (fewer features), use fewer or smaller images, "
               "or raise the limit (--max-memory)",))


def refuse_if_no_room(cache, images: int, elements: int) -> None:
    """The cache's disk must hold images x elements float32 numbers: checked on the nearest
    folder that exists (the cache's own is made only after this check)."""
    need = images * elements * F32.itemsize
    folder = Path(cache).resolve().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # no figure to compare with: writing will say what is wrong
    if need > free:
        raise SpecError(f"the feature cache '{cache}' needs {size_text(need)} ({images:,} images "
                        f"x {elements:,} numbers x 4 bytes), but its disk has {size_text(free)} "
                        "free", None,
                        ("write the cache elsewhere (--cache), or freeze through a later layer",))
