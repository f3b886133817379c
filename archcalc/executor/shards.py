"""A batch split into shards that run the same pass at once, one thread each, every thread with
one BLAS thread (threadpoolctl), for `run(..., threads=K)`.

Why not K BLAS threads in one pass: BLAS then parallelises only the matrix products, while the
rest (im2col and Winograd's copies and transforms, the compiled loops, the element-wise kinds)
runs on one core, and BLAS's idle thread spins on the other core meanwhile; on 2 cores a pass
ran 1.0-1.4x faster than on one. Shards run all of their pass on their own core: NumPy, BLAS
and the compiled loops (nogil) release the GIL for their work.

Each shard is a pass of its own (Context, workspace, activations), so a sharded run holds
K workspaces and K kernels' temporaries at once; Plan.memory counts them before the run."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np


def shard_sizes(n: int, threads: int) -> list[int]:
    """n images as evenly as can be over min(threads, n) shards, the larger first."""
    k = max(1, min(threads, n))
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def split(feeds: dict, sizes: list[int]) -> list[dict]:
    """Each shard's inputs: consecutive images of every input (no copy). Each is an array
    over a memoryview of its rows, not a view of the whole batch, so that a shard's live
    memory counts its own images (forward.live_bytes counts a view's whole owner)."""
    bounds = np.cumsum([0, *sizes])
    return [{name: np.asarray(memoryview(a[lo:hi])) for name, a in feeds.items()}
            for lo, hi in zip(bounds[:-1], bounds[1:])]


def run_shards(execute, steps, feeds, params, contexts):
    """(live outputs, trail) of the whole batch from one `execute` per shard, run at once:
    outputs joined along the batch, shapes with the whole batch, MACs and multiplications
    summed, each layer's time the longest of its shards', the peaks added (they are held at
    once)."""
    from threadpoolctl import threadpool_limits

    n = len(next(iter(feeds.values())))
    parts = split(feeds, shard_sizes(n, len(contexts)))
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(len(contexts)) as pool:
        done = list(pool.map(lambda part, ctx: execute(steps, part, params, ctx, False), parts, contexts))
    return join(steps, [live for live, _ in done], [trail for _, trail in done])


def join(steps, lives, trails):
    last = steps[-1].name
    live = {last: np.concatenate([lv[last] for lv in lives])}
    n = live[last].shape[0]
    trail = {
        "shapes": {k: (n, *shape[1:]) for k, shape in trails[0]["shapes"].items()},
        "macs": {k: sum(t["macs"][k] for t in trails) for k in trails[0]["macs"]},
        "executed": {k: sum(t["executed"][k] for t in trails) for k in trails[0]["executed"]},
        "times": {k: max(t["times"][k] for t in trails) for k in trails[0]["times"]},
        "kept": {},
        "peak": sum(t["peak"] for t in trails),
    }
    return live, trail
