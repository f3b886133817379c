"""Issue 14's benchmarks in one run, by hand: `python benchmarks/bench_all.py [--quick] [--device FILE]`.

One process (bench_families starts children of its own), one calibration
(archcalc.calibrate(repeats=5), or the --device profile) shared by:
1. bench_latency: predicted against measured latency at batch 8 for every spec (--quick: its
   subset) and the ONNX models the tests import; median absolute error and Spearman's rank
   correlation over all, the specs alone and the imported models alone;
2. bench_guidelines: ShuffleNet v2's G1 and G2 tables, the estimate's order against the measured
   one (--quick: batch 2, repeat 2);
3. bench_executor: the kernels, then the executor against PyTorch eager (where installed) and
   onnxruntime with ratios, the depthwise and grouped layers within each pass, and memory
   (--quick: batch 2 at 112 x 112);
4. bench_families: the depthwise and grouped layers against the executor as it was when the
   issue was filed, on one core and on all (--quick: batch 2).
Each script also runs on its own, with the same tables (bench_latency and bench_guidelines
then calibrate for themselves)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the four scripts, beside this file
import bench_executor  # noqa: E402
import bench_families  # noqa: E402
import bench_guidelines  # noqa: E402
import bench_latency  # noqa: E402


def main() -> None:
    bench_executor.unpin()  # first: it may run this command again
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="each benchmark's --quick")
    p.add_argument("--device", help="a profile instead of calibrating now")
    args = p.parse_args()
    device = bench_latency.calibrated(args.device)
    bench_latency.latency_table(device, quick=args.quick)
    bench_guidelines.tables(device, args.quick)
    print()
    bench_executor.main(bench_executor.NETWORKS, quick=args.quick)
    print()
    bench_families.main(bench_families.NETWORKS, quick=args.quick)


if __name__ == "__main__":
    main()
