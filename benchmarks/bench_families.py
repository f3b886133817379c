"""Depthwise and grouped convs within a network's pass, now against an earlier commit, run by
hand: `python benchmarks/bench_families.py [--baseline COMMIT] [--quick] [NAME ...]`.

Issue 14 asked for depthwise and grouped convs 10x faster than the executor ran them when it
was filed. This measures both in one run, on this machine: the baseline is the package as it
was at COMMIT (default 96338fd, the last commit before the conv kernels changed; `git archive`
into a temporary folder, imported from there in a child process), now is this checkout. For
MobileNetV3-large, EfficientNet-B0 and RegNetY-400MF (or the specs named) at batch 8 (--quick:
batch 2), each side's fastest of 6 passes (two children, each after a warm-up), it prints the
depthwise and grouped layers' MACs over their time (the layers' own timers) and now / baseline:
- on one core (OPENBLAS_NUM_THREADS=1 in both children);
- on all cores: the baseline on as many BLAS threads (it had no other way to use them), now in
  as many shards (run(threads=K), one BLAS thread each).
The sides' children alternate, so both see the same machine. Needs git and the history.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "96338fd"
NETWORKS = ("mobilenet_v3_large", "efficientnet_b0", "regnet_y_400mf")

# Run in a child with one side's package first on sys.path: prints, pass by pass, each
# family's (seconds, MACs) as JSON. Written for both sides' APIs (the baseline's run has no
# threads, its rows no family), so the families are told by the layer's kind and groups.
CHILD = r"""
import json, sys, numpy as np, archcalc
from archcalc.executor.forward import run
spec, batch, threads, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
net = archcalc.load(spec)
def family(row):
    op = net.layer(row.name).op
    if row.kind == "dwconv":
        return "depthwise"
    if row.kind == "conv" and op.groups > 1:
        c_g = row.in_shapes[0].n_C // op.groups
        return "depthwise" if c_g == 1 else "grouped" if c_g < 33 else None  # compiled.NARROW_GROUP's
    return None
x = np.random.default_rng(0).standard_normal((batch, *archcalc.analyze(net).rows[0].out_shape), dtype=np.float32)
kw = {"threads": threads} if threads > 1 else {}
first = run(net, x, **kw)
for _ in range(repeat):
    r = run(net, x, first.weights, **kw)
    out = {}
    for row in r.analysis.rows:
        f = family(row)
        if f:
            s, m = out.get(f, (0.0, 0))
            out[f] = (s + r.layer_seconds[row.name], m + r.macs[row.name])
    print(json.dumps(out), flush=True)
"""


def baseline_tree(commit: str, into: Path) -> Path:
    """The package as it was at `commit`, unpacked from git into `into`."""
    archive = into / "baseline.tar"
    try:
        subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), commit], check=True,
                       capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or e
        raise SystemExit(f"bench_families needs git and the commit {commit} in this clone's history "
                         f"(a shallow clone: git fetch --unshallow): {detail}".rstrip())
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.10.12+, 3.11.4+
            tar.extractall(into / "tree", filter="data")
        else:
            tar.extractall(into / "tree")
    return into / "tree"


def child(tree: Path, spec: Path, batch: int, threads: int, blas: int, passes: int) -> dict:
    """family -> (seconds, MACs) of the fastest of `passes` passes over `spec` (after a
    warm-up) in a child process importing the package from `tree`."""
    path = os.pathsep.join(p for p in (str(tree), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OPENBLAS_NUM_THREADS": str(blas), "OMP_NUM_THREADS": str(blas)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(spec), str(batch), str(threads), str(passes)],
                          cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the child measuring {spec} in {tree} failed:\n{done.stderr}")
    best = {}
    for line in done.stdout.splitlines():
        for family, (seconds, macs) in json.loads(line).items():
            if family not in best or seconds < best[family][0]:
                best[family] = (seconds, macs)
    return best


ROUNDS, PASSES = 2, 3


def fastest(sides, rounds=ROUNDS, passes=PASSES) -> list:
    """Each side's fastest, the sides' children alternating `rounds` times (each `passes`
    passes), so that both see the same machine. A side: (tree, spec, batch, threads, blas)."""
    best = [{} for _ in sides]
    for _ in range(rounds):
        for found, side in zip(best, sides):
            for family, (seconds, macs) in child(*side, passes).items():
                if family not in found or seconds < found[family][0]:
                    found[family] = (seconds, macs)
    return best


def rate(found, family) -> float | None:
    return found[family][1] / found[family][0] / 1e9 if family in found else None


def main(names, commit=BASELINE, quick=False) -> None:
    batch, cores = (2 if quick else 8), len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as folder:
        then = baseline_tree(commit, Path(folder))
        print(f"baseline: {commit}; now: this checkout; batch {batch}, fastest of {ROUNDS * PASSES} passes a side")
        print(f"{'network':<21}{'family':<11}{'cores':<28}{'baseline GMAC/s':>16}{'now GMAC/s':>12}{'ratio':>8}")
        for name in names:
            old_spec, new_spec = then / "specs" / f"{name}.arch", ROOT / "specs" / f"{name}.arch"
            missing = [f"{p.name} at {side}" for p, side in ((old_spec, commit), (new_spec, "now")) if not p.exists()]
            if missing:
                print(f"{name:<21}(no {' nor '.join(missing)}: skipped)")
                continue
            settings = [("1", (1, 1), (1, 1))]  # (threads, BLAS threads): baseline, now
            if cores > 1:
                settings.append((f"{cores}: BLAS threads / shards", (1, cores), (cores, 1)))
            for label, (t0, b0), (t1, b1) in settings:
                old, new = fastest([(then, old_spec, batch, t0, b0), (ROOT, new_spec, batch, t1, b1)])
                for family in ("depthwise", "grouped"):
                    a, b = rate(old, family), rate(new, family)
                    if a and b:
                        print(f"{name:<21}{family:<11}{label:<28}{a:>16.2f}{b:>12.2f}{b / a:>8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Depthwise and grouped convs within a pass, now against COMMIT.")
    parser.add_argument("names", nargs="*", help="specs in specs/ (default: %(default)s)", default=list(NETWORKS))
    parser.add_argument("--baseline", default=BASELINE, help="the commit to compare against")
    parser.add_argument("--quick", action="store_true", help="batch 2")
    args = parser.parse_args()
    main(args.names, args.baseline, quick=args.quick)
