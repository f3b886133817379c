"""The feature cache: the frozen part run once over the images, batch by batch, into a
memory-mapped float32 .npy, reused while its key (frozen layers, their weights, the images)
matches; and the progress bar of a long run."""
from __future__ import annotations

import hashlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...analysis.analyzer import analyze
from ...executor.forward import run
from .budget import refuse_if_no_room
from .splitting import Split, frozen_network


class Progress:
    """A one-line progress bar on `stream` (stderr), shown once a run has taken longer than
    `after` seconds (short runs print nothing), updated at most ten times a second."""

    def __init__(self, total, label, stream=None, after=1.0, width=30):
        self.total, self.label, self.after, self.width = total, label, after, width
        self.stream = sys.stderr if stream is None else stream
        self.start = time.perf_counter()
        self.last = -1.0
        self.shown = False

    def update(self, done) -> None:
        now = time.perf_counter()
        elapsed = now - self.start
        if elapsed < self.after or (now - self.last < 0.1 and done < self.total):
            return
        self.last, self.shown = now, True
        filled = self.width * done // max(1, self.total)
        eta = elapsed / done * (self.total - done) if done else 0
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                          f"{done:,}/{self.total:,} images, {elapsed:,.1f} s, about {eta:,.0f} s left")
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class Features:
    array: np.ndarray      # memory-mapped (N, n_H, n_W, n_C) float32, read-only
    path: Path
    reused: bool           # the cache matched: the frozen part did not run
    counted_macs: int      # multiply-accumulates the executor counted (0 when reused)
    seconds: float
    key: str


def cache_key(s: Split, frozen_weights: dict, images) -> str:
    """sha256 of what the features depend on: the frozen layers, their weights, the images."""
    h = hashlib.sha256()
    for name in s.frozen:
        node = s.net.layer(name)
        h.update(repr((name, node.op, node.inputs)).encode())
        for k, a in sorted(frozen_weights.get(name, {}).items()):
            h.update(k.encode() + np.ascontiguousarray(a, np.float32).tobytes())
    h.update(repr((np.shape(images), np.asarray(images[:0]).dtype.str)).encode())
    for start in range(0, len(images), 1024):
        h.update(np.ascontiguousarray(images[start:start + 1024]).tobytes())
    return h.hexdigest()


def extract(s: Split, images, cache, frozen_weights: dict, batch=256, at=None,
            progress=None, reuse=True) -> Features:
    """Run the frozen part over `images` (N, n_H, n_W, n_C) once, `batch` images at a time,
    into the .npy file `cache` (memory-mapped, float32), and return it opened read-only.
    A cache with the same key (its `.key` file beside it) is reused. `progress`: a stream for
    the progress bar (default stderr, shown for runs over a second), or False for none."""
    path = Path(cache)
    key_path = path.with_name(path.name + ".key")
    key = cache_key(s, frozen_weights, images)
    start = time.perf_counter()
    if reuse and path.exists() and key_path.exists() and key_path.read_text().strip() == key:
        array = np.load(path, mmap_mode="r")
        if len(array) == len(images):
            return Features(array, path, True, 0, time.perf_counter() - start, key)
    sub = frozen_network(s)
    shape = tuple(int(v) for v in analyze(sub, at=at or {}).row(s.through).out_shape)
    refuse_if_no_room(path, len(images), math.prod(shape))  # before any folder or file
    path.parent.mkdir(parents=True, exist_ok=True)
    key_path.unlink(missing_ok=True)  # a half-written cache must never look valid
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(len(images), *shape))
    bar = Progress(len(images), f"features '{s.through}'", progress or None) \
        if progress is not False else None
    counted = 0
    for i in range(0, len(images), batch):
        r = run(sub, np.asarray(images[i:i + batch]), frozen_weights, at=at, memory_limit=None)
        out[i:i + len(r.output)] = r.output
        counted += r.total_macs
        if bar:
            bar.update(i + len(r.output))
    if bar:
        bar.close()
    out.flush()
    del out
    key_path.write_text(key + "\n")
    return Features(np.load(path, mmap_mode="r"), path, False, counted,
                    time.perf_counter() - start, key)
