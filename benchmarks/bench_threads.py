"""One BLAS thread against all of them, for the executor's matrix products, run by hand:
`python benchmarks/bench_threads.py` (needs threadpoolctl, installed with scikit-learn, the
test extra; it switches OpenBLAS's threads inside one process so the runs can interleave).

Prints, in one run (fastest of interleaved rounds, so both see the same machine):
- float32 matmuls of the executor's sizes, (M x K) @ (K x N): fc layers at batch 1 and 8,
  1x1 convs on small maps, im2col tiles of 3x3 convs, cubes; microseconds on one thread and on
  all, and the ratio all/one (above 1: the threads cost more than they save);
- the cost of switching the thread count (threadpoolctl's `limit`, OpenBLAS's own setter);
- whole forward passes (LeNet-5, MobileNetV3-small, ResNet-50 at 112 x 112; batch 8) on one
  thread, on all in one pass, and in as many shards as threads (run(threads=K), one BLAS
  thread a shard).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController, threadpool_limits

import archcalc

SPECS = Path(__file__).resolve().parents[1] / "specs"
SIZES = ((1, 400, 120), (1, 84, 10), (8, 576, 1024), (8, 1280, 1000), (8, 2048, 1000),
         (1568, 24, 72), (1568, 40, 120), (392, 96, 576), (392, 160, 960),
         (1568, 256, 1024), (6272, 128, 512), (25088, 64, 256), (25088, 576, 64),
         (6272, 1152, 128), (1568, 2304, 256), (2048, 4608, 512),
         (64, 64, 64), (128, 128, 128), (256, 256, 256), (512, 512, 512))
NETWORKS = (("lenet5", {}), ("mobilenet_v3_small", {}), ("resnet50", {"H": 112, "W": 112}))


def fastest(fn, budget=0.15) -> float:
    times, start = [], time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < budget and len(times) < 2000):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def interleaved(calls, rounds) -> list:
    """Each call's fastest time (each returns its own), one call of each a round."""
    best = [float("inf")] * len(calls)
    for _ in range(rounds):
        for i, call in enumerate(calls):
            best[i] = min(best[i], call())
    return best


def on_blas_threads(n, fn):
    def call():
        with threadpool_limits(n, "blas"):
            return fn()
    return call


def one_and_all(fn, cores, rounds=3) -> list:
    return interleaved([on_blas_threads(1, fn), on_blas_threads(cores, fn)], rounds)


def main() -> None:
    blas = ThreadpoolController().select(user_api="blas")
    info = blas.info()[0]
    cores = info["num_threads"]
    print(f"{os.uname().nodename}, load {os.getloadavg()[0]:.2f}: {info['internal_api']} "
          f"{info['version']}, {cores} threads")
    print(f"\n{'M':>6}{'K':>6}{'N':>6}{'M*K*N':>15}{'1 thread us':>13}"
          f"{f'{cores} threads us':>14}{'ratio':>7}")
    rng = np.random.default_rng(0)
    for M, K, N in SIZES:
        a, b = rng.random((M, K), dtype=np.float32), rng.random((K, N), dtype=np.float32)
        c = np.empty((M, N), np.float32)
        one, all_ = one_and_all(lambda: fastest(lambda: np.matmul(a, b, out=c)), cores)
        print(f"{M:>6}{K:>6}{N:>6}{M * K * N:>15,}{one * 1e6:>13.1f}{all_ * 1e6:>14.1f}"
              f"{all_ / one:>7.2f}")
    lib = blas.lib_controllers[0]
    t = time.perf_counter()
    for i in range(2000):
        lib.set_num_threads(1 + i % 2)
    setter = (time.perf_counter() - t) / 2000
    t = time.perf_counter()
    for i in range(200):
        blas.limit(limits=1 + i % 2)
    print(f"\nswitching threads: {setter * 1e6:.1f} us (OpenBLAS's setter), "
          f"{(time.perf_counter() - t) / 200 * 1e6:.1f} us (threadpoolctl's limit)")
    blas.limit(limits=cores)
    print(f"\n{'network (batch 8)':<32}{'1 thread ms':>12}{f'{cores} threads ms':>15}{'ratio':>7}"
          f"{f'{cores} shards ms':>14}{'ratio':>7}")
    for name, at in NETWORKS:
        net = archcalc.load(SPECS / f"{name}.arch")
        x = archcalc.run(net, batch=8, at=at)

        def forward(threads=1):
            return archcalc.run(net, batch=8, at=at, weights=x.weights, threads=threads).seconds
        # one BLAS thread, all in one pass, all in shards (run(threads=K) sets one BLAS
        # thread a shard itself)
        one, all_, shards = interleaved([on_blas_threads(1, forward), on_blas_threads(cores, forward),
                                         lambda: forward(cores)], rounds=5)
        label = f"{name}{' at 112 x 112' if at else ''}"
        print(f"{label:<32}{one * 1e3:>12.2f}{all_ * 1e3:>15.2f}{all_ / one:>7.2f}"
              f"{shards * 1e3:>14.2f}{shards / one:>7.2f}")


if __name__ == "__main__":
    main()
