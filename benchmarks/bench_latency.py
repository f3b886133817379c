"""Predicted against measured latency, run by hand:
`python benchmarks/bench_latency.py [--quick] [--device FILE] [--batch 8] [--repeat 2]`.

Calibrates this machine (archcalc.calibrate(repeats=5), unless --device gives a profile), then for every
spec in specs/ (with --quick, a small subset) prints the roofline estimate of a forward pass at
the batch (archcalc.analyze(..., device=, batch=)) against the executor's measured pass
(fastest of --repeat, after one warm-up run), their ratio, and at the end the median absolute
relative error |predicted - measured| / measured and Spearman's rank correlation of predicted
against measured (ranks with ties averaged, computed below with NumPy)."""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

import archcalc
from archcalc.analysis.latency import device_profile

SPECS = Path(__file__).resolve().parents[1] / "specs"
QUICK = ("lenet5", "alexnet", "squeezenet", "mobilenet_v2", "mobilenet_v3_small", "resnet18",
         "shufflenet_v2", "googlenet", "efficientnet_b0", "regnet_y_400mf")


def ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        r[tied] = r[tied].mean()
    return r


def spearman(a, b) -> float:
    """Pearson's correlation of the ranks."""
    ra, rb = ranks(np.asarray(a, float)), ranks(np.asarray(b, float))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / np.sqrt((ra * ra).sum() * (rb * rb).sum()))


def blas_threads() -> str:
    """The BLAS threads asked for: on a loaded machine two threads wait on each other in every
    small matmul, so measure there with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1."""
    asked = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    return f"BLAS threads {asked}" if asked else f"BLAS threads: default ({os.cpu_count()} cores)"


def measure(net, batch: int, repeat: int) -> float:
    weights = archcalc.run(net, batch=batch).weights  # warm-up, and the weights reused
    return min(archcalc.run(net, batch=batch, weights=weights).seconds for _ in range(repeat))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    p.add_argument("--device", help="a profile instead of calibrating now")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    start = time.perf_counter()
    device = device_profile(args.device) if args.device else archcalc.calibrate(repeats=5)
    print(f"{platform.node() or 'machine'} ({platform.machine()}), {time.strftime('%Y-%m-%d')}, "
          f"{blas_threads()}; "
          f"device: {device.name}: peak {float(device.peak_macs_per_s) / 1e9:.2f} GMAC/s, "
          f"{float(device.bandwidth_bytes_per_s) / 1e9:.2f} GB/s, overhead "
          f"{float(device.overhead_s) * 1e6:.1f} us, efficiency "
          + ", ".join(f"{k} {float(v):.3f}" for k, v in device.efficiency.items())
          + f" (calibrated in {time.perf_counter() - start:.1f} s)")
    names = QUICK if args.quick else sorted(p.stem for p in SPECS.glob("*.arch"))
    predicted, measured = [], []
    print(f"{'spec':<22}{'predicted ms':>14}{'measured ms':>14}{'ratio':>8}")
    for name in names:
        net = archcalc.load(SPECS / f"{name}.arch")
        guess = float(archcalc.analyze(net, device=device, batch=args.batch).totals["latency_s"])
        seconds = measure(net, args.batch, args.repeat)
        predicted.append(guess)
        measured.append(seconds)
        print(f"{name:<22}{guess * 1e3:>14,.1f}{seconds * 1e3:>14,.1f}{guess / seconds:>8.2f}")
    error = np.median(np.abs(np.array(predicted) - measured) / measured)
    print(f"{len(names)} specs at batch {args.batch}: median absolute error {error:.1%}, "
          f"Spearman rank correlation {spearman(predicted, measured):.3f}")


if __name__ == "__main__":
    main()
