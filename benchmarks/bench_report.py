"""Report speed against a baseline revision, run by hand (never by tests):

    python benchmarks/bench_report.py [--baseline REV] [--repeat N] [SPEC_DIR]

Measures, in one run, how long `archcalc report SPEC_DIR --out TMPDIR` takes and how many times it
calls the analysis (`archcalc.analyze`), for (a) a baseline revision, checked out into a temporary
`git worktree`, and (b) the current working tree. Both sides read the same specs (the current
tree's `specs/` unless SPEC_DIR is given) and run in fresh subprocesses, so each imports its own
package. The target: current / baseline time at most 0.50, and a small constant number of analysis
calls per spec. The exit status is 0 whether or not the target is met; 1 if a side failed to run."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = "7341459"  # the last commit before the redesign
TARGET = 0.50

# Runs inside each side's subprocess: argv = checkout root, spec dir, repeats. One untimed run
# counts the analyses; then the timed runs, each as a user runs it (all cores, when it can).
RUNNER = r'''
import contextlib, functools, importlib, inspect, io, json, pkgutil, sys, tempfile, time
from pathlib import Path

root, spec_dir, repeat = Path(sys.argv[1]).resolve(), sys.argv[2], int(sys.argv[3])
import archcalc
from archcalc.cli import main

# An editable install elsewhere must not shadow the checkout under test.
if not Path(archcalc.__file__).resolve().is_relative_to(root):
    sys.exit(f"imported archcalc from {archcalc.__file__}, not from {root}")

calls, depth = 0, 0

def counting(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        global calls, depth
        calls += depth == 0  # the facade delegating to the analyzer is still one analysis
        depth += 1
        try:
            return fn(*args, **kwargs)
        finally:
            depth -= 1
    return wrapper

# Import every module first, so that each `from ... import analyze` copy exists to be replaced,
# wherever this version defines the function. __main__ would run the CLI; onnx ones may not import.
for info in pkgutil.walk_packages(archcalc.__path__, "archcalc.", onerror=lambda name: None):
    if info.name != "archcalc.__main__":
        try:
            importlib.import_module(info.name)
        except Exception:
            pass
ours = {n: m for n, m in sys.modules.items() if n == "archcalc" or n.startswith("archcalc.")}
# archcalc.analyze may itself be a facade over the analyzer's function (then report calls only the
# latter), so wrap it and every other package function named analyze, found by identity.
targets = {id(f): f for m in ours.values() for f in [getattr(m, "analyze", None)]
           if inspect.isfunction(f) and f.__module__.startswith("archcalc")}
targets[id(archcalc.analyze)] = archcalc.analyze
wrappers = {i: counting(f) for i, f in targets.items()}
for module in ours.values():
    for attr, value in list(vars(module).items()):
        if id(value) in wrappers:  # targets keep the originals alive: ids are unique
            setattr(module, attr, wrappers[id(value)])

def report(*options):
    with tempfile.TemporaryDirectory() as tmp:  # a fresh output folder each time
        with contextlib.redirect_stdout(io.StringIO()):  # keep stdout for the JSON line
            return main(["report", spec_dir, "--out", str(Path(tmp) / "reports"), *options])

# A version that draws in worker processes analyses there too, out of the counter's sight:
# its calls are counted in one more run, on one process.
usage = io.StringIO()
with contextlib.redirect_stdout(usage), contextlib.suppress(SystemExit):
    main(["report", "--help"])
serial = ["--jobs", "1"] if "--jobs" in usage.getvalue() else []
calls = 0
code = report(*serial)
count = calls
seconds = []
for _ in range(repeat):
    if code:
        break
    start = time.perf_counter()
    code = report()
    seconds.append(time.perf_counter() - start)
print(json.dumps({"seconds": seconds, "calls": [count] * len(seconds), "exit": code,
                  "counted": sorted(f"{f.__module__}.{f.__name__}" for f in targets.values()),
                  "specs": len(list(Path(spec_dir).glob("*.arch")))}))
'''


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def run_side(label: str, root: Path, spec_dir: Path, repeat: int) -> dict | None:
    """Times the report in a fresh interpreter importing `root`'s package; None if it failed."""
    env = {**os.environ, "PYTHONPATH": str(root), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(root), str(spec_dir), str(repeat)],
                          cwd=root, env=env, capture_output=True, text=True)
    result = json.loads(proc.stdout.splitlines()[-1]) if proc.returncode == 0 else None
    if result is None or result["exit"] != 0:
        why = f"exit {proc.returncode}" if result is None else f"report exit {result['exit']}"
        print(f"{label} side failed ({why}):\n{proc.stderr}", file=sys.stderr)
        return None
    return result


def measure_baseline(rev: str, spec_dir: Path, repeat: int) -> dict | None:
    with tempfile.TemporaryDirectory(prefix="bench_report_") as tmp:
        checkout = Path(tmp) / "baseline"
        git("worktree", "add", "--detach", str(checkout), rev)
        try:
            return run_side("baseline", checkout, spec_dir, repeat)
        finally:  # never leave a stray worktree registered in the repository
            git("worktree", "remove", "--force", str(checkout))


def row(side: str, rev: str, result: dict) -> str:
    calls = result["calls"][result["seconds"].index(min(result["seconds"]))]
    return (f"{side:<10} {rev:<13} {min(result['seconds']):>10.2f} {calls:>15} "
            f"{calls / result['specs']:>10.2f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec_dir", nargs="?", default=str(REPO / "specs"))
    p.add_argument("--baseline", default=BASELINE, help=f"baseline revision (default {BASELINE})")
    p.add_argument("--repeat", type=int, default=3, help="runs per side; the fastest counts")
    args = p.parse_args()
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    spec_dir = Path(args.spec_dir).resolve()  # the same input for both sides
    try:
        rev = git("rev-parse", "--short", "--verify", f"{args.baseline}^{{commit}}")
    except subprocess.CalledProcessError:
        p.error(f"no such revision in {REPO}: {args.baseline}")

    baseline = measure_baseline(rev, spec_dir, args.repeat)
    current = run_side("current", REPO, spec_dir, args.repeat)

    print(f"archcalc report {spec_dir} --out TMPDIR; wall-clock seconds on this machine "
          f"({os.cpu_count()} cores), fastest of {args.repeat} run(s) per side")
    print(f"{'side':<10} {'revision':<13} {'fastest s':>10} {'calls per run':>15} "
          f"{'per spec':>10}")
    if baseline:
        print(row("baseline", rev, baseline))
    if current:
        print(row("current", "working tree", current))
    if not (baseline and current):
        return 1
    for side, result in (("baseline", baseline), ("current", current)):
        print(f"{side} counts calls of: {', '.join(result['counted'])}")
    ratio = min(current["seconds"]) / min(baseline["seconds"])
    verdict = "meets" if ratio <= TARGET else "does NOT meet"
    print(f"ratio (current / baseline): {ratio:.2f}; {verdict} the target: at most {TARGET:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
