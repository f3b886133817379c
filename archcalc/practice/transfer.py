"""Transfer learning on cached features, in NumPy.

The course's advice for a small data set: take a network (ideally with pretrained weights),
freeze it up to some layer, and train only what follows, with a new softmax layer for your k
classes. Since the frozen part never changes, run it once over the data set, keep its outputs
on disk, and train on those: every epoch then costs only the head.

- `split(graph, through, classes)`: the frozen part (`through` and every layer it reads) and
  the trainable head after it, a chain of fc / activation / dropout / flatten layers ending in
  the classifier fc (made k wide) and an optional softmax.
- `extract(...)`: the executor runs the frozen part once over the images, batch by batch, into
  a memory-mapped float32 .npy (progress on stderr for long runs); a cache whose key (spec,
  weights, images) matches is reused without running anything.
- `train_head(...)`: mini-batch gradient descent on softmax cross-entropy plus weight decay
  (decay/2 * sum of squared fc weights; biases are not decayed). The classifier starts from a
  fresh seeded initialisation; earlier head layers start from the given weights. Dropout is
  inverted dropout while training, the identity afterwards (as in the executor).
- `finetune(...)`: the whole run on a train/test split, the full network's weights saved as an
  .npz keyed 'LAYER/KEY' (the executor's format), and the costs from the analysis.
"""
from __future__ import annotations

import contextlib
import hashlib
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import networkx as nx
import numpy as np

from ..analysis import costs
from ..executor import weights as wts
from ..analysis.analyzer import analyze
from ..errors import SpecError, did_you_mean
from ..network import Network
from ..executor.forward import as_feeds, inferred, plan, run, weights_for

HEAD_KINDS = ("flatten", "fc", "relu", "tanh", "sigmoid", "dropout", "softmax")


# ---------------------------------------------------------------- the split

@dataclass(frozen=True)
class Split:
    net: Network             # the network, classifier k wide, `through` recorded as its freeze
    through: str
    frozen: tuple            # layer names, in the graph's order
    head: tuple              # trainable layer names after the frozen part, in order
    classifier: str          # the last fc: the new softmax layer
    classes: int


def split(net: Network, through: str, classes: int | None = None) -> Split:
    """The network cut after `through`. `classes`: the classifier's new width (default: as in
    the spec). A SpecError explains a head this module cannot train."""
    graph = net.graph
    if through not in graph:
        hint = did_you_mean(through, graph.nodes)
        raise SpecError(f"cannot freeze through unknown layer '{through}'", None, (hint,) if hint else ())
    names = list(graph.nodes)
    ancestors = nx.ancestors(graph, through)
    frozen = tuple(n for n in names if n in ancestors or n == through)
    head = tuple(n for n in names if n not in frozen)
    def layer(name):
        return graph.nodes[name]["layer"]

    previous = through
    for name in head:
        node = layer(name)
        where = f"{node.kind} '{name}'"
        if node.kind not in HEAD_KINDS:
            raise SpecError(f"{where} follows the frozen part, and only fully connected heads are "
                            f"trained here ({', '.join(HEAD_KINDS)})", node.span,
                            ("freeze through a later layer, e.g. the flatten before the first fc",))
        if node.inputs != (previous,):
            raise SpecError(f"{where} reads {', '.join(node.inputs)}, not the layer before it: the "
                            "layers after the frozen part must form a chain", node.span)
        previous = name
    fcs = [n for n in head if layer(n).kind == "fc"]
    if not fcs:
        raise SpecError(f"nothing to train after '{through}': the layers after it hold no fc",
                        None, ("freeze through an earlier layer",))
    classifier = fcs[-1]
    after = head[head.index(classifier) + 1:]
    if any(layer(n).kind != "softmax" for n in after) or \
            any(layer(n).kind == "softmax" for n in head[:head.index(classifier)]):
        raise SpecError(f"the classifier fc '{classifier}' must be the last layer but an optional "
                        f"softmax; after it: {', '.join(after)}")
    g = graph.copy()
    width = layer(classifier).op.c
    if classes is not None and classes != width:
        if classes < 2:
            raise SpecError(f"a classifier needs at least 2 classes, got {classes}")
        node = layer(classifier)
        g.nodes[classifier]["layer"] = replace(node, op=replace(node.op, c=classes))
    k = int(g.nodes[classifier]["layer"].op.c)
    return Split(net.with_(graph=g, freeze=through), through, frozen, head, classifier, k)


def frozen_network(s: Split) -> Network:
    """The frozen part alone, a network whose output is `through`, its layers in the graph's
    order (analyze and run expect a topological order; a networkx subgraph view can iterate a
    set instead, so the head is removed from a copy)."""
    g = s.net.graph.copy()
    g.remove_nodes_from(s.head)
    return s.net.with_(graph=g, freeze=None)


def bindings(net: Network, images) -> dict:
    """Symbols fixed by the images' size (H, W of an ImageNet spec), for the executor."""
    return inferred(net, as_feeds(net, np.asarray(images[:1])), {})


def network_weights(s: Split, weights=None, seed=0, at=None) -> dict:
    """{layer: {key: float32 array}} for the whole (k-wide) network: seeded initialisation,
    overlaid with `weights` (an .npz path or {'LAYER/KEY': array}) for every layer but the
    classifier, which is new."""
    the_plan = plan(s.net, at or {})
    params = weights_for(the_plan, None, seed, np.float32)
    if weights is None:
        return params
    flat = wts.read(weights) if isinstance(weights, (str, Path)) else dict(weights)
    given = {k: v for k, v in flat.items() if not k.startswith(s.classifier + "/")}
    expected = {k: v for k, v in the_plan.weight_shapes.items() if v and k != s.classifier}
    params.update(wts.fit(given, expected, s.net.graph, np.float32, f"'{weights}'"
                          if isinstance(weights, (str, Path)) else "the weights given"))
    return params


# ---------------------------------------------------------------- cached features

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


# ---------------------------------------------------------------- the head

@dataclass(frozen=True)
class HeadLayer:
    name: str
    kind: str
    rate: float = 0.0  # dropout


def head_layers(s: Split) -> tuple:
    out = []
    for name in s.head:
        op = s.net.layer(name).op
        out.append(HeadLayer(name, op.kind, float(op.rate) if op.kind == "dropout" else 0.0))
    return tuple(out)


def head_forward(layers, params, x, rng=None):
    """Logits of the head for features x (N, ...), and what the backward pass needs. With
    `rng`, dropout is on (inverted: kept units scaled by 1/(1 - rate))."""
    h = np.asarray(x)
    h = (h if h.dtype.kind == "f" else h.astype(np.float32)).reshape(len(h), -1)
    saved = []
    for layer in layers:
        if layer.kind == "fc":
            saved.append(h)
            p = params[layer.name]
            h = h @ p["W"] + p["b"] if "b" in p else h @ p["W"]
        elif layer.kind == "relu":
            h = np.maximum(h, 0)
            saved.append(h)
        elif layer.kind == "tanh":
            h = np.tanh(h)
            saved.append(h)
        elif layer.kind == "sigmoid":
            h = 1 / (1 + np.exp(-h))
            saved.append(h)
        elif layer.kind == "dropout" and rng is not None and layer.rate > 0:
            mask = (rng.random(h.shape) >= layer.rate) / h.dtype.type(1 - layer.rate)
            h = h * mask
            saved.append(mask)
        else:  # flatten (already flat), softmax (folded into the loss), dropout at test time
            saved.append(None)
    return h, saved


def softmax(z) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(logits, labels) -> float:
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def head_backward(layers, params, saved, probs, labels, decay) -> dict:
    """Gradients of mean cross-entropy + decay/2 * sum ||W||^2 for each fc's W and b."""
    g = probs.copy()
    g[np.arange(len(labels)), labels] -= 1
    g /= len(labels)
    grads = {}
    first_fc = next(i for i, layer in enumerate(layers) if layer.kind == "fc")
    for i in range(len(layers) - 1, first_fc - 1, -1):
        layer, s = layers[i], saved[i]
        if layer.kind == "fc":
            p = params[layer.name]
            grads[layer.name] = {"W": s.T @ g + p["W"].dtype.type(decay) * p["W"]}
            if "b" in p:
                grads[layer.name]["b"] = g.sum(axis=0)
            if i > first_fc:
                g = g @ p["W"].T
        elif layer.kind == "relu":
            g = g * (s > 0)
        elif layer.kind == "tanh":
            g = g * (1 - s * s)
        elif layer.kind == "sigmoid":
            g = g * s * (1 - s)
        elif layer.kind == "dropout" and s is not None:
            g = g * s
    return grads


def objective(layers, params, x, labels, decay) -> float:
    logits, _ = head_forward(layers, params, x)
    penalty = sum(float((params[l.name]["W"].astype(np.float64) ** 2).sum())
                  for l in layers if l.kind == "fc")
    return cross_entropy(logits, labels) + decay / 2 * penalty


def predict(layers, params, x, batch=4096) -> np.ndarray:
    """Class probabilities of the head for features x, in batches (x may be a memmap)."""
    return np.concatenate([softmax(head_forward(layers, params, x[i:i + batch])[0])
                           for i in range(0, len(x), batch)])


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
              for l in layers if l.kind == "fc"}
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


# ---------------------------------------------------------------- data

def digits(shape) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes, shipped with the
    package, no download), scaled to [0, 1], resized bilinearly to the spec's input (n_H,
    n_W) and repeated over its n_C channels: (images float32 NHWC, labels int64)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SpecError("the digits demo needs scikit-learn",
                        None, ("pip install 'archcalc[demo]'",)) from None
    from .augment import resize
    d = load_digits()
    x = (d.images.astype(np.float32) / 16)[..., None]
    H, W, C = (int(v) for v in shape)
    if (H, W) != (8, 8):
        x = resize(x, (H, W))
    return np.ascontiguousarray(np.repeat(x, C, axis=-1)), d.target.astype(np.int64)


def train_test_split(n, test_fraction, seed) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    if not 0 < n_test < n:
        raise SpecError(f"a test fraction of {test_fraction} leaves no train or no test images "
                        f"of {n}")
    return np.sort(order[n_test:]), np.sort(order[:n_test])


# ---------------------------------------------------------------- the whole run

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
             out=None, progress=None, verify=True) -> Finetune:
    """Freeze `net` through `through`, cache the frozen part's outputs for every image, train
    a new k-way softmax head on the train split's features, measure accuracy on the test
    split, and save the full network's weights to `out` (an .npz keyed 'LAYER/KEY')."""
    images = np.asarray(images)  # no copy of an array or a memory-mapped one
    labels = np.asarray(labels, dtype=np.int64)
    if len(images) != len(labels):
        raise SpecError(f"{len(images)} images but {len(labels)} labels")
    k = int(labels.max()) + 1 if classes is None else classes
    if labels.min() < 0 or labels.max() >= k:
        raise SpecError(f"labels must be 0 .. {k - 1}, got {labels.min()} .. {labels.max()}")
    s = split(net, through, k)
    at = bindings(s.net, images)
    params = network_weights(s, weights, seed, at)
    feats = extract(s, images, cache, {n: params[n] for n in s.frozen if n in params},
                    at=at, progress=progress)
    train, test = train_test_split(len(images), test_fraction, seed)
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

