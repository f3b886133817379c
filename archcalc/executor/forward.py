"""Graph -> a forward pass on NumPy arrays, and its check against the analysis.

`run` binds the graph's symbols (from `at`, from the input's size, then defaults) by analysing
it, runs every layer's kernel in the graph's order, frees each activation after its last
reader (the schedule of analysis.peak_activations) and returns a Result: the output, the
executed shapes, the multiply-accumulates the kernels counted, the memory and the time.
`check(result)` lists every disagreement with the analysis; none means the static figures
were right. Arrays are NHWC: (N, n_H, n_W, n_C).
"""
from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import sympy

from . import weights as wts
from ..analysis.analyzer import Analysis, analyze, bind_op
from ..errors import SpecError
from ..network import Network
from .fusion import fuse
from .kernels import KERNELS, TILE_BYTES, WORKSPACE, Context
from .scratch import TEMPORARIES
from .shards import run_shards, shard_sizes
from ..sizes import symbol

MEMORY_LIMIT = 8 * 2**30  # bytes; a run predicted to need more is refused before it starts


class Step(NamedTuple):
    name: str
    kind: str
    op: object
    inputs: tuple
    frees: tuple          # activations whose last reader is this step
    relu: bool = False    # the ReLU after it runs inside its kernel
    skip: bool = False    # folded into the step before: passes its input through


@dataclass(frozen=True)
class Plan:
    """What a run needs from the analysis: bound ops in order, the freeing schedule, and the
    weight shapes each layer's rule asks for."""
    network: Network
    analysis: Analysis
    steps: tuple
    weight_shapes: dict  # layer -> {key: shape}

    @property
    def graph(self):
        return self.network.graph

    def weight_count(self) -> int:
        return sum(int(np.prod(s)) for shapes in self.weight_shapes.values() for s in shapes.values())

    def workspace_bytes(self, n: int, dtype: np.dtype) -> int:
        """The kernels' reused workspace at batch n: each slot grows to its largest use."""
        slots = {}
        for step, shape in self.rule_inputs(WORKSPACE, n):
            for slot, size in WORKSPACE[step.kind](step.op, shape, dtype.itemsize, TILE_BYTES).items():
                slots[slot] = max(slots.get(slot, 0), size)
        return sum(slots.values()) * dtype.itemsize

    def temporary_bytes(self, n: int, dtype: np.dtype) -> int:
        """The largest of the arrays a kernel makes and drops within its call at batch n
        (a padded copy, repeated channels: executor.scratch), one layer at a time."""
        return max((TEMPORARIES[step.kind](step.op, shape, dtype.itemsize, TILE_BYTES)
                    for step, shape in self.rule_inputs(TEMPORARIES, n)), default=0)

    def memory(self, n: int, dtype: np.dtype, shards=None) -> tuple[int, int, int, int]:
        """Bytes a run at batch n will hold, from sizes alone: (live activations' peak,
        weights, workspace, temporaries); in shards of the given sizes, run at once, each
        with a workspace and temporaries of its own."""
        sizes = shards or [n]
        return (self.analysis.totals["peak_activations"] * n * dtype.itemsize,
                self.weight_count() * dtype.itemsize, sum(self.workspace_bytes(k, dtype) for k in sizes),
                sum(self.temporary_bytes(k, dtype) for k in sizes))

    def rule_inputs(self, rules: dict, n: int):
        """(step, its first input's shape at batch n) for the steps `rules` has a rule for."""
        for step, row in zip(self.steps, self.analysis.rows):
            if step.kind in rules:
                yield step, (n, *(int(v) for v in row.in_shapes[0]))


@dataclass
class Result:
    output: np.ndarray                  # the last layer's activation
    analysis: Analysis
    batch: int
    dtype: np.dtype
    shapes: dict                        # layer -> executed shape (N, n_H, n_W, n_C)
    macs: dict                          # layer -> multiply-accumulates counted, whole batch
    seconds: float                      # the forward pass alone
    layer_seconds: dict
    peak_bytes: int                     # largest sum of live activation buffers
    predicted_bytes: int                # analysis peak_activations * N * itemsize
    workspace_bytes: int
    traced_bytes: int | None = None     # tracemalloc's peak during the pass, when asked
    activations: dict = field(default_factory=dict)  # every layer's output, with keep=True
    weights: dict = field(default_factory=dict)      # {layer: {key: array}}, as loaded or drawn
    executed: dict = field(default_factory=dict)     # layer -> multiplications run (Winograd: fewer)
    shards: int = 1                                  # passes run at once (run's threads)

    @property
    def total_macs(self) -> int:
        return sum(self.macs.values())

    @property
    def weight_counts(self) -> dict:
        """layer -> numbers in its weight arrays."""
        return {k: sum(a.size for a in v.values()) for k, v in self.weights.items()}

    @property
    def weight_bytes(self) -> int:
        return sum(a.nbytes for v in self.weights.values() for a in v.values())


def run(net, x=None, weights=None, *, seed=0, at=None, batch=None, dtype=np.float32, keep=False,
        memory_limit=MEMORY_LIMIT, strict=False, trace_memory=False, threads=1) -> Result:
    """Run `net` (a Network) forward on `x` (NHWC array, or {input: array};
    None: seeded random input of `batch` images). `weights`: None (seeded He/Glorot), a path
    to an .npz, or {'LAYER/KEY': array} or {layer: {key: array}}. `at` binds symbols (an
    input's size binds those its shape names; defaults fill the rest); `keep` keeps every
    activation (and runs each layer on its own, unfused); `trace_memory` measures the real
    peak with tracemalloc; `threads` > 1 runs the batch in that many shards at once (shards.py;
    not with keep or trace_memory). A run predicted to need over `memory_limit` bytes is refused."""
    dtype = run_dtype(dtype)
    feeds = as_feeds(net, x)
    the_plan = plan(net, {**inferred(net, feeds, at or {}), **(at or {})}, strict)
    n = batch_size(feeds, batch)
    sizes = [n] if keep or trace_memory else shard_sizes(n, threads)
    need = the_plan.memory(n, dtype, sizes)
    refuse_if_large(the_plan, n, *need, memory_limit)
    feeds = feeds_for(the_plan, feeds, n, seed, dtype)  # only now: an input can be huge too
    params = weights_for(the_plan, weights, seed, dtype)
    steps, folded = (the_plan.steps, params) if keep else fuse(the_plan, params)
    result = forward(the_plan, steps, feeds, folded, dtype, keep, need[0], trace_memory, len(sizes))
    result.weights = params
    return result


def run_dtype(dtype) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype not in (np.float32, np.float64):
        raise SpecError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


# ---------------------------------------------------------------- planning

def plan(net: Network, at: dict, strict=False) -> Plan:
    analysis = analyze(net, at=at, strict=strict)
    if analysis.free:
        name = analysis.free[0]
        raise SpecError(f"symbol '{name}' has no value", None,
                        (f"bind it: --set {name}=VALUE, or run(..., at={{'{name}': VALUE}})",))
    subs = {symbol(k): v for k, v in analysis.symbols.items()}
    graph = net.graph
    order = list(graph.nodes)
    index = {name: i for i, name in enumerate(order)}
    frees = [[] for _ in order]
    for name in order:
        readers = [index[r] for r in graph.successors(name)]
        if readers:  # layers nobody reads are outputs: they live to the end
            frees[max(readers)].append(name)
    steps, shapes = [], {}
    for i, (name, row) in enumerate(zip(order, analysis.rows)):
        layer = graph.nodes[name]["layer"]
        op = bind_op(layer.op, subs)
        steps.append(Step(name, layer.kind, op, layer.inputs, tuple(frees[i])))
        shapes[name] = {k: tuple(int(v) for v in s) for k, s in op.weights(row.in_shapes).items()}
    return Plan(net, analysis, tuple(steps), shapes)


def refuse_if_large(the_plan, n, activations, weights, workspace, temporaries, limit):
    need = activations + weights + workspace + temporaries
    if limit is not None and need > limit:
        scratch = f" + {size_text(workspace)} of workspace" if workspace else ""
        scratch += f" + {size_text(temporaries)} of temporaries" if temporaries else ""
        raise SpecError(
            f"running {the_plan.analysis.network} at batch {n} would need about {size_text(need)} "
            f"({size_text(activations)} of live activations + {size_text(weights)} of weights"
            f"{scratch}), over the limit of {size_text(limit)}", None,
            ("lower the batch or the input size, or raise the limit (--max-memory)",))


def size_text(n_bytes) -> str:
    """Bytes in binary units (KiB, MiB, GiB, ...: 2^10 steps, never mixed with MB)."""
    value, unit = n_bytes / 2**10, "KiB"
    for bigger in ("MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 2**10:
            break
        value, unit = value / 2**10, bigger
    return f"{value:,.1f} {unit}"


# ---------------------------------------------------------------- inputs

def input_layers(net: Network) -> list:
    return [layer.name for layer in net.layers if layer.op.network_input]


def as_feeds(net: Network, x) -> dict | None:
    """x as {input layer: array}, or None for a random input."""
    if x is None:
        return None
    names = input_layers(net)
    if not isinstance(x, dict):
        if len(names) != 1:
            raise SpecError(f"the network has {len(names)} inputs ({', '.join(names)}): give x as "
                            "{input name: array}")
        x = {names[0]: x}
    for name in x:
        if name not in names:
            raise SpecError(f"'{name}' is not an input of the network (inputs: {', '.join(names)})")
    feeds = {}
    for name, a in x.items():
        a = np.asarray(a)
        if a.ndim != 4 or a.dtype.kind not in "fiu":
            raise SpecError(f"input '{name}' must be a real array (N, n_H, n_W, n_C); got "
                            f"{a.dtype} of shape {a.shape}")
        if a.shape[0] == 0:  # nothing to run; the kernels would fail on empty arrays
            raise SpecError(f"input '{name}' holds no images: its shape is {a.shape}")
        feeds[name] = a
    missing = [n for n in names if n not in feeds]
    if missing:
        raise SpecError(f"no array for input '{missing[0]}'")
    return feeds


def inferred(net: Network, feeds, at) -> dict:
    """Symbols an input's size determines: (H, W, 3) fed a (N, 64, 64, 3) array binds H, W."""
    if feeds is None:
        return {}
    found = {}
    for name, a in feeds.items():
        for size, n in zip(net.layer(name).op.shape, a.shape[1:]):
            if isinstance(size, sympy.Symbol) and size.name not in at:
                found.setdefault(size.name, int(n))
    return found


def batch_size(feeds, batch) -> int:
    """Images per run: the inputs' first axis, else `batch`, else 1."""
    if feeds is None:
        return 1 if batch is None else batch
    sizes = {a.shape[0] for a in feeds.values()}
    if len(sizes) > 1:
        raise SpecError(f"the inputs have different batch sizes: {sorted(sizes)}")
    if batch is not None and sizes != {batch}:
        raise SpecError(f"the input holds {sizes.pop()} images but the batch is {batch}")
    return sizes.pop()


def feeds_for(the_plan, feeds, n, seed, dtype) -> dict:
    """Checked copies of the input arrays in `dtype` (copies: kernels may overwrite their
    inputs in place), or seeded random ones of n images."""
    shapes = {s.name: the_plan.analysis.row(s.name).out_shape for s in the_plan.steps if s.op.network_input}
    if feeds is None:
        rng = np.random.default_rng(seed)
        return {name: rng.standard_normal((n, *shape), dtype=dtype) for name, shape in shapes.items()}
    for name, shape in shapes.items():
        got = feeds[name].shape[1:]
        if got != tuple(shape):
            hint = ("arrays are NHWC, (N, n_H, n_W, n_C); an NCHW array x needs "
                    "x.transpose(0, 2, 3, 1)",) if got[0] == shape[2] else ()
            raise SpecError(f"input '{name}' has images of shape {got}, the spec expects "
                            f"{tuple(shape)}", None, hint)
    return {name: np.array(a, dtype=dtype, order="C") for name, a in feeds.items()}


def weights_for(the_plan, weights, seed, dtype) -> dict:
    expected = {k: v for k, v in the_plan.weight_shapes.items() if v}
    ops = {s.name: s.op for s in the_plan.steps}
    return wts.weights_for(the_plan.graph, ops, expected, weights, seed, dtype)


# ---------------------------------------------------------------- the pass

def forward(the_plan, steps, feeds, params, dtype, keep, predicted, trace_memory, shards=1) -> Result:
    contexts, n = [Context(dtype) for _ in range(shards)], next(iter(feeds.values())).shape[0]
    tracing = trace_memory and start_tracing()
    start = time.perf_counter()
    live, trail = (run_shards(execute, steps, feeds, params, contexts) if shards > 1
                   else execute(steps, feeds, params, contexts[0], keep))
    seconds = time.perf_counter() - start
    traced = stop_tracing(tracing) if trace_memory else None
    return Result(live[steps[-1].name], the_plan.analysis, n, dtype, trail["shapes"],
                  trail["macs"], seconds, trail["times"], trail["peak"], predicted,
                  sum(c.workspace_bytes for c in contexts), traced, trail["kept"], executed=trail["executed"],
                  shards=shards)


def execute(steps, feeds, params, ctx, keep):
    """Every step in order; an activation is dropped right after its last reader (inputs
    too: `feeds` gives each up to its layer)."""
    live, trail = {}, {"shapes": {}, "macs": {}, "executed": {}, "times": {}, "kept": {}, "peak": 0}
    for step in steps:
        t0, before, ran = time.perf_counter(), ctx.macs, ctx.executed
        xs = tuple(live[i] for i in step.inputs)
        ctx.feed, ctx.relu = feeds.pop(step.name, None), step.relu
        ctx.own = not keep and may_overwrite(step, xs, live)
        y = xs[0] if step.skip else KERNELS[step.kind](step.op, xs, params.get(step.name, {}), ctx)
        live[step.name] = y
        trail["peak"] = max(trail["peak"], live_bytes(live))
        trail["shapes"][step.name], trail["macs"][step.name] = y.shape, ctx.macs - before
        trail["executed"][step.name] = ctx.executed - ran
        if keep:
            trail["kept"][step.name] = y
        for name in step.frees:
            del live[name]
        trail["times"][step.name] = time.perf_counter() - t0
    return live, trail


def may_overwrite(step, xs, live) -> bool:
    """A kernel may write over its first input when this step is that input's last reader
    and no other live activation (a view, or the same array) shares its buffer."""
    if not xs or step.inputs[0] not in step.frees:
        return False
    base = owner(xs[0])
    sharing = [n for n, a in live.items() if owner(a) is base]
    return sharing == [step.inputs[0]] and step.inputs.count(step.inputs[0]) == 1 \
        and all(owner(x) is not base for x in xs[1:])


def owner(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def live_bytes(live: dict) -> int:
    """Bytes held by the live activations, each buffer counted once (a flatten is a view)."""
    return sum(b.nbytes for b in {id(owner(a)): owner(a) for a in live.values()}.values())


def start_tracing():
    """Begin measuring the real peak of NumPy's allocations (NumPy reports them to tracemalloc)."""
    if started := not tracemalloc.is_tracing():
        tracemalloc.start()
    tracemalloc.reset_peak()
    return started, tracemalloc.get_traced_memory()[0]


def stop_tracing(tracing) -> int:
    started, baseline = tracing
    peak = tracemalloc.get_traced_memory()[1] - baseline
    if started:
        tracemalloc.stop()
    return peak


# ---------------------------------------------------------------- the check

def check(result: Result) -> list[str]:
    """Every disagreement between the run and the analysis, one line each (none: all agree).
    Shapes per layer, multiply-accumulates per image, weight numbers vs params + state."""
    problems, n = [], result.batch
    for row in result.analysis.rows:
        where = f"{row.kind} '{row.name}'"
        got = result.shapes[row.name]
        want = (n, *row.out_shape)
        if tuple(got) != tuple(want):
            problems.append(f"{where}: executed shape {shape_text(got[1:])}, the analysis says "
                            f"{shape_text(row.out_shape)}")
        counted = result.macs[row.name]
        if counted != n * row.macs:
            per_image = f"{counted // n:,}" if counted % n == 0 else f"{counted / n:,.2f}"
            problems.append(f"{where}: counted {per_image} multiply-accumulates per image, "
                            f"the analysis says {row.macs:,}")
        numbers = result.weight_counts.get(row.name, 0)
        if numbers != row.params + row.state:
            problems.append(f"{where}: its weight arrays hold {numbers:,} numbers, the analysis "
                            f"counts {row.params + row.state:,} (params + state)")
    return problems


def shape_text(shape) -> str:
    return "(" + ", ".join(str(v) for v in shape) + ")"


def single_input(net: Network, at=None, purpose="this command") -> tuple[tuple, Analysis]:
    """(n_H, n_W, n_C) of the network's one input with symbols bound (`at`, then defaults),
    and the analysis that bound them; commands that make their own inputs need exactly one."""
    a = analyze(net, at=at or {})
    rows = [r for r in a.rows if net.layer(r.name).op.network_input]
    if len(rows) != 1:
        raise SpecError(f"{purpose} needs a network with one input, this one has {len(rows)}")
    if a.free:
        raise SpecError(f"symbol '{a.free[0]}' has no value", None, (f"bind it: --set {a.free[0]}=VALUE",))
    return tuple(int(v) for v in rows[0].out_shape), a
