"""Predicted against measured latency, run by hand:
`python benchmarks/bench_latency.py [--quick] [--device FILE] [--batch 8] [--repeat 2]`.

Calibrates this machine (archcalc.calibrate(repeats=5), unless --device gives a profile), then for every
spec in specs/ (with --quick, a small subset) prints the roofline estimate of a forward pass at
the batch (archcalc.analyze(..., device=, batch=)) against the executor's measured pass
(fastest of --repeat, after one warm-up run), their ratio, and at the end the median absolute
relative error |predicted - measured| / measured and Spearman's rank correlation of predicted
against measured (ranks with ties averaged, computed below with NumPy).

After the specs, the same for the ONNX models the tests import (with the onnx extra), each at
its own input size: the real torch exports in tests/data/*.onnx and the models
tests/onnx_models.py builds (its FAMILIES; small models, a pass takes milliseconds). The
summary gives the error and correlation over all rows, over the specs alone (the issue's
targets are across the specs) and over the imported models alone."""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import archcalc
from archcalc.analysis.latency import device_profile

ROOT = Path(__file__).resolve().parents[1]
SPECS, TESTS = ROOT / "specs", ROOT / "tests"
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


def measure(net, batch: int, repeat: int, at=None) -> float:
    weights = archcalc.run(net, batch=batch, at=at).weights  # warm-up, and the weights reused
    return min(archcalc.run(net, batch=batch, at=at, weights=weights).seconds for _ in range(repeat))


def imported() -> list:
    """(name, network, symbols bound) of the ONNX models the tests import; none without onnx."""
    try:
        from archcalc.onnx.importer import from_model
    except ImportError:
        return []
    sys.path.insert(0, str(TESTS))  # onnx_models.py is test data, not a package
    from onnx_models import FAMILIES
    models = [(path.name, archcalc.load(path), {}) for path in sorted((TESTS / "data").glob("*.onnx"))]
    for name, build in sorted(FAMILIES.items()):
        model, at = build()
        models.append((f"onnx_models.{name}", from_model(model, f"{name}.onnx"), at))
    return models


def calibrated(path=None):
    """The profile at `path`, else this machine's calibrated now; said in one line."""
    start = time.perf_counter()
    device = device_profile(path) if path else archcalc.calibrate(repeats=5)
    print(f"{platform.node() or 'machine'} ({platform.machine()}), {time.strftime('%Y-%m-%d')}, "
          f"{blas_threads()}; "
          f"device: {device.name}: peak {float(device.peak_macs_per_s) / 1e9:.2f} GMAC/s, "
          f"{float(device.bandwidth_bytes_per_s) / 1e9:.2f} GB/s, overhead "
          f"{float(device.overhead_s) * 1e6:.1f} us, efficiency "
          + ", ".join(f"{k} {float(v):.3f}" for k, v in device.efficiency.items())
          + f" (calibrated in {time.perf_counter() - start:.1f} s)")
    return device


def row(name, net, at, device, batch, repeat) -> tuple[float, float]:
    """Print one network's predicted and measured seconds; return them."""
    guess = float(archcalc.analyze(net, at=at, device=device, batch=batch).totals["latency_s"])
    seconds = measure(net, batch, repeat, at)
    print(f"{name:<30}{guess * 1e3:>14,.2f}{seconds * 1e3:>14,.2f}{guess / seconds:>8.2f}")
    return guess, seconds


def summary(label: str, rows, batch: int) -> None:
    predicted, measured = np.array(rows).T
    error = np.median(np.abs(predicted - measured) / measured)
    print(f"{label} at batch {batch}: median absolute error {error:.1%}, "
          f"Spearman rank correlation {spearman(predicted, measured):.3f}")


def latency_table(device, batch: int = 8, repeat: int = 2, quick: bool = False) -> None:
    names = QUICK if quick else sorted(p.stem for p in SPECS.glob("*.arch"))
    print(f"{'spec':<30}{'predicted ms':>14}{'measured ms':>14}{'ratio':>8}")
    specs = [row(name, archcalc.load(SPECS / f"{name}.arch"), {}, device, batch, repeat) for name in names]
    print("imported from ONNX, each at its own input size (tests/data, tests/onnx_models.py):")
    models = [row(*model, device, batch, repeat) for model in imported()]
    summary(f"{len(specs)} specs and {len(models)} imported models", specs + models, batch)
    summary(f"{len(specs)} specs alone", specs, batch)
    if models:
        summary(f"{len(models)} imported models alone", models, batch)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    p.add_argument("--device", help="a profile instead of calibrating now")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    latency_table(calibrated(args.device), args.batch, args.repeat, args.quick)


if __name__ == "__main__":
    main()
