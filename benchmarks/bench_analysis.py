"""Analysis speed, run by hand: `python benchmarks/bench_analysis.py`.

Prints ResNet-152 (concrete and with H, W free), synthetic chains of 1k and 10k layers, and
the shapes that were quadratic once (a `repeat` of 10k and 40k layers; a fan of 10k and 40k
branches that all live to the end), each as milliseconds and as a ratio against a baseline
measured in the same run: a bare propagation of floor-rounded H and W through ResNet-152's
number of layers with plain sympy. Linear work shows as a steady us/layer."""
from __future__ import annotations

import time
from pathlib import Path

import sympy

import archcalc

SPECS = Path(__file__).resolve().parents[1] / "specs"


def best_of(fn, repeat=3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bare_propagation(layers: int) -> None:
    """The baseline: n_H = floor((n_H + 2 - 3)/1) + 1 per layer, sympy only."""
    h = w = sympy.Symbol("H", integer=True, positive=True)
    for _ in range(layers):
        h = sympy.floor((h + 2 - 3) / 1) + 1
        w = sympy.floor((w + 2 - 3) / 1) + 1


def chain_spec(layers: int) -> str:
    body = "\n".join("    conv : f=3 p=1 c=16\n    relu" for _ in range(layers // 2))
    return f"network Chain(H=64, W=64) {{\n    input x : (H, W, 16)\n{body}\n}}\n"


def main() -> None:
    rows = []
    resnet = archcalc.load(SPECS / "resnet152.arch")
    nodes = resnet.graph.number_of_nodes()
    base = best_of(lambda: bare_propagation(nodes))
    rows.append(("bare sympy propagation", nodes, base))
    rows.append(("ResNet-152 at 224", nodes, best_of(lambda: archcalc.analyze(resnet))))
    rows.append(("ResNet-152, H and W free", nodes,
                 best_of(lambda: archcalc.analyze(resnet, free=("H", "W")))))
    rows.append(("ResNet-152 at 448", nodes,
                 best_of(lambda: archcalc.analyze(resnet, at={"H": 448, "W": 448}))))
    for layers in (1_000, 10_000):
        graph = archcalc.loads(chain_spec(layers))
        n = graph.graph.number_of_nodes()
        rows.append((f"chain of {n:,} layers, parse+build", n,
                     best_of(lambda: archcalc.loads(chain_spec(layers)), 1)))
        rows.append((f"chain of {n:,} layers, concrete", n, best_of(lambda: archcalc.analyze(graph), 1)))
        rows.append((f"chain of {n:,} layers, H and W free", n,
                     best_of(lambda: archcalc.analyze(graph, free=("H", "W")), 1)))
    for layers in (10_000, 40_000):
        repeat = f"network R {{ input x : (8, 8, 3)\n repeat {layers} {{ relu }} }}"
        fan = f"network F {{ input x : (8, 8, 3)\n repeat {layers} {{ relu <- x }} }}"
        rows.append((f"repeat of {layers:,} layers, parse+build", layers + 1,
                     best_of(lambda: archcalc.loads(repeat), 1)))
        wide = archcalc.loads(fan)
        rows.append((f"fan of {layers:,} branches, analyse", layers + 1,
                     best_of(lambda: archcalc.analyze(wide), 1)))
    print(f"{'case':<40} {'layers':>7} {'ms':>9} {'us/layer':>9} {'x baseline':>11}")
    for name, n, seconds in rows:
        print(f"{name:<40} {n:>7,} {seconds * 1e3:>9.1f} {seconds * 1e6 / n:>9.1f} {seconds / base:>11.2f}")
    print(f"baseline: bare sympy propagation of floor-rounded H and W through {nodes} layers")


if __name__ == "__main__":
    main()
