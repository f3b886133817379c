"""The whole run, `finetune`: a train/test split, the cached features, the head trained on
the train split and measured on both, the full network's weights saved as an .npz keyed
'LAYER/KEY' (the executor's format) and checked by the executor; and its report, with the
costs from the analysis."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...analysis import costs
from ...analysis.analyzer import analyze
from ...errors import SpecError
from ...executor import weights as wts
from ...executor.forward import MEMORY_LIMIT, run
from ...network import Network
from .budget import budget_for, refuse_if_large
from .data import train_test_split
from .features import Features, extract
from .head import Training, head_layers, predict, softmax, train_head
from .splitting import Split, bindings, network_weights, split


EXTRACT_BATCH = 256  # images the frozen part runs on at a time


@dataclass
class Finetune:
    split: Split
    features: Features
    training: Training
    train_accuracy: float
    test_accuracy: float
    chance: float               # the most frequent test class's share
    n_train: int
    n_test: int
    cost: costs.Transfer        # per the analysis, for n_train images over the epochs
    frozen_macs: int            # per image, from the analysis
    weights: dict               # the full network's weights
    weights_path: Path | None
    executor_agrees: bool | None  # the saved network, run by the executor, predicts as the head
    at: dict = field(default_factory=dict)  # the symbols the images bound


def finetune(net: Network, images, labels, through, *, classes=None, test_fraction=0.25, epochs=30,
             batch=32, lr=0.05, decay=1e-4, momentum=0.9, seed=0, weights=None, cache,
             out=None, progress=None, verify=True, memory_limit=MEMORY_LIMIT) -> Finetune:
    """Freeze `net` through `through`, cache the frozen part's outputs for every image, train
    a new k-way softmax head on the train split's features, measure accuracy on the test
    split, and save the full network's weights to `out` (an .npz keyed 'LAYER/KEY').
    A run whose feature cache and working memory (budget.py) pass `memory_limit` bytes, or
    whose cache its disk cannot hold, is refused before any file is made."""
    images = np.asarray(images)  # no copy of an array or a memory-mapped one
    labels = np.asarray(labels, dtype=np.int64)
    if len(images) != len(labels):
        raise SpecError(f"{len(images)} images but {len(labels)} labels")
    k = int(labels.max()) + 1 if classes is None else classes
    if labels.min() < 0 or labels.max() >= k:
        raise SpecError(f"labels must be 0 .. {k - 1}, got {labels.min()} .. {labels.max()}")
    s = split(net, through, k)
    at = bindings(s.net, images)
    train, test = train_test_split(len(images), test_fraction, seed)
    need = budget_for(s, at, len(images), len(train), len(test), EXTRACT_BATCH)
    refuse_if_large(need, s.net.name, through, memory_limit)
    params = network_weights(s, weights, seed, at)
    feats = extract(s, images, cache, {n: params[n] for n in s.frozen if n in params},
                    batch=EXTRACT_BATCH, at=at, progress=progress)
    layers = head_layers(s)
    x = np.asarray(feats.array)
    training = train_head(layers, params, x[train], labels[train], epochs, batch, lr, decay,
                          momentum, seed)
    full = {**params, **training.params}
    p_train = predict(layers, training.params, x[train])
    p_test = predict(layers, training.params, x[test])
    a = analyze(s.net, at=at, freeze=through)
    cost = costs.transfer(a, through, len(train), epochs)
    counts = np.bincount(labels[test], minlength=k)
    result = Finetune(s, feats, training, float((p_train.argmax(1) == labels[train]).mean()),
                      float((p_test.argmax(1) == labels[test]).mean()),
                      float(counts.max() / counts.sum()), len(train), len(test), cost,
                      int(cost.frozen_macs), full, Path(out) if out else None, None, at)
    if out:
        wts.save(out, full)
    if verify:
        r = run(s.net, np.asarray(images[test]), str(out) if out else full, at=at,
                memory_limit=None)
        y = r.output.reshape(len(test), -1)
        result.executor_agrees = bool((y.argmax(1) == p_test.argmax(1)).all()
                                      and np.allclose(softmax_if_needed(s, y), p_test, atol=1e-4))
    return result


def softmax_if_needed(s: Split, y):
    last = s.net.layer(s.head[-1]).kind
    return y if last == "softmax" else softmax(y)


# ---------------------------------------------------------------- the report

def report(f: Finetune, data: str) -> str:
    """The run in a few lines: data, split, features, the head's loss and accuracy, and the
    costs with and without the feature cache."""
    s, c, t = f.split, f.cost, f.training
    a = analyze(s.net, at=f.at, freeze=s.through)
    per_image = costs.training(a).macs_per_image
    saved = c.epoch_macs_without_cache - c.epoch_macs_with_cache
    shape = tuple(int(v) for v in c.feature_shape)
    feats = f.features
    n_all = len(feats.array)
    lines = [
        f"{a.network}: frozen through '{s.through}' ({len(s.frozen)} layers, "
        f"{a.totals['frozen_params']:,} frozen params), head {' -> '.join(s.head)} "
        f"({a.totals['trainable_params']:,} trainable params, new {s.classes}-way classifier "
        f"'{s.classifier}')",
        f"data: {data}; {f.n_train:,} train / {f.n_test:,} test images",
        f"features: {shape} per image, {feats.path} ({feats.array.nbytes / 1e6:,.2f} MB, float32, "
        + ("reused: the cache key matched, nothing ran)" if feats.reused else
           f"computed once in {feats.seconds:,.2f} s; the executor counted "
           f"{feats.counted_macs:,} MACs = {n_all:,} images x {f.frozen_macs:,} "
           f"{'(agrees with the analysis)' if feats.counted_macs == n_all * f.frozen_macs else '(DISAGREES with the analysis)'})"),
        f"head: {t.epochs} epochs of mini-batch gradient descent, batch {t.batch}, lr {t.lr:g}, "
        f"momentum {t.momentum:g}, weight decay {t.decay:g}; {t.seconds:,.2f} s",
        "loss (cross-entropy + decay): " + ", ".join(
            f"{e}: {t.losses[e]:.4f}" for e in sorted({0, 1, 2, 5, 10, 20, t.epochs} & set(range(t.epochs + 1)))),
        f"accuracy: train {f.train_accuracy:.2%}, test {f.test_accuracy:.2%} "
        f"(chance {1 / s.classes:.0%}; most frequent test class {f.chance:.2%})",
        "",
        f"cost of {t.epochs} epochs over {f.n_train:,} images (MACs, from the analysis; "
        "training = forward + 2 x forward MACs of the trainable layers):",
        f"  per image: frozen part {f.frozen_macs:,} forward; whole network "
        f"{a.totals['macs']:,} forward, {per_image:,} per training step",
        f"  frozen layers run every epoch: {c.epoch_macs_without_cache:,}",
        f"  frozen part run once, cached:  {c.epoch_macs_with_cache:,}",
        f"  saved by the cache: {saved:,} ({saved / c.epoch_macs_without_cache:.1%}; "
        f"{c.epoch_macs_without_cache / c.epoch_macs_with_cache:.2f}x fewer); "
        f"cache {c.cache_bytes / 1e6:,.2f} MB for the train images",
    ]
    if f.weights_path:
        check = {True: "the executor, running the saved network on the test images, predicts "
                       "exactly as the head", False: "the executor DISAGREES with the head",
                 None: "not re-run"}[f.executor_agrees]
        lines.append(f"weights: {f.weights_path} ({sum(len(v) for v in f.weights.values())} arrays "
                     f"keyed 'LAYER/KEY'; {check})")
    return "\n".join(lines) + "\n"

