"""Sweep speed, run by hand: `python benchmarks/bench_sweep.py`.

A sweep analyses once with the varied symbols free, lambdifies the formula and evaluates it over
NumPy arrays. The baseline, measured in the same run, is re-running the full analysis at each
point (what a sweep without formulas would do), timed on a sample and scaled per point."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import archcalc
from archcalc.analysis.sweep import evaluate

SPECS = Path(__file__).resolve().parents[1] / "specs"


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def per_point_baseline(graph, name_values: list[dict]) -> float:
    return seconds(lambda: [archcalc.analyze(graph, at=v) for v in name_values]) / len(name_values)


def main() -> None:
    cases = [
        ("inception_bottleneck", {"b": np.arange(1, 1_000_001)}, [{"b": b} for b in range(1, 41)]),
        ("resnet50", {"H": np.arange(32, 1032), "W": np.arange(32, 1032)},
         [{"H": h, "W": h} for h in range(200, 240)]),
        ("googlenet", {"H": np.arange(64, 1064), "W": np.arange(64, 1064)},
         [{"H": h, "W": h} for h in range(200, 240)]),
    ]
    print(f"{'spec':<22} {'points':>10} {'sweep s':>9} {'us/point':>9} {'analysis us/point':>18} {'speed-up':>9}")
    for spec, ranges, sample in cases:
        graph = archcalc.load(SPECS / f"{spec}.arch")
        values = None

        def sweep():
            nonlocal values
            values = evaluate(graph, "macs", ranges)

        total = seconds(sweep)
        points = values.size
        base = per_point_baseline(graph, sample)
        print(f"{spec:<22} {points:>10,} {total:>9.3f} {total / points * 1e6:>9.3f} "
              f"{base * 1e6:>18,.0f} {base / (total / points):>9,.0f}x")


if __name__ == "__main__":
    main()
