"""ShuffleNet v2's guidelines G1 and G2 (Ma et al. 2018, Tables 1 and 2), run by hand:
`python benchmarks/bench_guidelines.py [--quick] [--batch 8] [--repeat 3] [--device FILE]` (--quick:
batch 2, repeat 2), or
`python benchmarks/bench_guidelines.py --report > reports/guidelines.md` for the static tables.

The networks are specs/guidelines/*.arch: 10 blocks of two 1x1 convs (c1 -> c2 -> c1) at 56x56,
every one at exactly 1,229,312,000 MACs an image (c1*c2/g = 19,600). G1 varies c1:c2 (1:1, 1:2,
1:6, 1:12), G2 the groups g (1, 2, 4, 8) with widths growing with g. For each the benchmark
prints MACs, memory traffic (bytes an image at float32, and the paper's memory access cost
MAC = sum over layers of h*w*(c1 + c2) + c1*c2/g numbers, which is that traffic / 4), MACs per
byte, the latency predicted on the shipped profiles and on this machine's calibrated one
(archcalc.calibrate(repeats=5), unless --device gives a profile), and the executor's measured
pass (fastest of --repeat after one warm-up); then whether each estimate orders the rows as the
measured times do: every pair of rows whose measured times differ by 3% or more (closer ones are
within the noise) must be ordered the same way (a tie in the estimate orders neither way)."""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import archcalc
from archcalc.analysis.latency import device_profile, shipped

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_latency, beside this file
from bench_latency import blas_threads, measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GUIDELINES = ROOT / "specs" / "guidelines"
TABLES = {
    "G1": ("equal channel width minimizes memory access cost (Table 1)", "c1:c2",
           (("1:1", "g1_1to1"), ("1:2", "g1_1to2"), ("1:6", "g1_1to6"), ("1:12", "g1_1to12"))),
    "G2": ("excessive group convolution increases memory access cost (Table 2)", "g",
           (("1", "g2_g1"), ("2", "g2_g2"), ("4", "g2_g4"), ("8", "g2_g8"))),
}
REPORT_DEVICE, REPORT_BATCH = "nvidia_t4", 8
BATCH, REPEAT, QUICK_BATCH, QUICK_REPEAT = 8, 3, 2, 2
TIE = 0.03  # measured times closer than this are within a loaded machine's noise


def widths(net) -> str:
    """c1, c2 (and g) of the first block, as the spec's first two layers read them."""
    a = archcalc.analyze(net)
    first, second = a.rows[1], a.rows[2]
    groups = first.params and first.in_shapes[0].n_C * first.out_shape.n_C // first.params
    return f"{first.in_shapes[0].n_C}, {second.in_shapes[0].n_C}" + (f" (g={groups})" if groups > 1 else "")


def static(name: str, device, batch: int) -> dict:
    net = archcalc.load(GUIDELINES / f"{name}.arch")
    a = archcalc.analyze(net, device=device, batch=batch)
    moved = a.totals["traffic_bytes"]
    return {"net": net, "widths": widths(net), "macs": a.totals["macs"], "bytes": moved,
            "mac": moved // 4, "intensity": a.totals["macs"] / moved,
            "latency_s": float(a.totals.get("latency_s", 0))}


def report() -> str:
    """reports/guidelines.md: the static columns, deterministic."""
    lines = ["# ShuffleNet v2's guidelines G1 and G2, statically", "",
             "Ma, Zhang, Zheng, Sun (2018), \"ShuffleNet V2: Practical Guidelines for Efficient CNN "
             "Architecture Design\", ECCV, Section 2: 10 blocks of two 1x1 convs (c1 -> c2, c2 -> c1) "
             "at 56x56 (specs/guidelines/). Every network does 1,229,312,000 MACs an image "
             "(c1*c2/g = 19,600 in every block). Traffic: bytes read and written an image at float32; "
             "MAC: the paper's memory access cost, h*w*(c1 + c2) + c1*c2/g numbers a layer, summed; "
             f"latency: the roofline on the shipped `{REPORT_DEVICE}` profile at batch {REPORT_BATCH}. "
             "Measured times: benchmarks/bench_guidelines.py (README).", ""]
    for key, (title, column, rows) in TABLES.items():
        lines += [f"## {key}: {title}", "",
                  f"| {column} | c1, c2 | MACs | traffic (bytes) | MAC (numbers) | MACs/byte | latency (ms) |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for label, name in rows:
            s = static(name, REPORT_DEVICE, REPORT_BATCH)
            lines.append(f"| {label} | {s['widths']} | {s['macs']:,} | {s['bytes']:,} | {s['mac']:,} "
                         f"| {float(s['intensity']):.2f} | {s['latency_s'] * 1e3:.3f} |")
        lines.append("")
    return "\n".join(lines)


def order(values) -> str:
    """Row indices from fastest to slowest, '=' between equal values."""
    ranked = sorted(range(len(values)), key=lambda i: values[i])
    text = str(ranked[0] + 1)
    for before, i in zip(ranked, ranked[1:]):
        text += ("=" if values[i] == values[before] else "<") + str(i + 1)
    return text


def agreement(predicted, measured) -> tuple[int, int]:
    """(pairs the estimate orders as measured, pairs whose measured times differ by TIE or
    more): a tie in the estimate orders neither way."""
    pairs = [(i, j) for i in range(len(measured)) for j in range(i + 1, len(measured))
             if abs(measured[i] - measured[j]) >= TIE * min(measured[i], measured[j])]
    agree = sum((predicted[i] - predicted[j]) * (measured[i] - measured[j]) > 0 for i, j in pairs)
    return agree, len(pairs)


def table(key: str, devices: dict, batch: int, repeat: int) -> None:
    title, column, rows = TABLES[key]
    print(f"\n{key}: {title}, batch {batch}")
    print(f"{column:>6} {'c1, c2':>16} {'MACs':>15} {'traffic B':>13} {'MACs/B':>7}"
          + "".join(f"{name[:14]:>16}" for name in devices) + f"{'measured ms':>13}")
    predicted = {name: [] for name in devices}
    measured = []
    for label, spec in rows:
        s = static(spec, None, 1)
        for name, device in devices.items():
            predicted[name].append(static(spec, device, batch)["latency_s"])
        measured.append(measure(s["net"], batch, repeat))
        print(f"{label:>6} {s['widths']:>16} {s['macs']:>15,} {s['bytes']:>13,} "
              f"{float(s['intensity']):>7.2f}"
              + "".join(f"{predicted[name][-1] * 1e3:>16.3f}" for name in devices)
              + f"{measured[-1] * 1e3:>13.1f}")
    print(f"  measured order {order(measured)} (rows within {TIE:.0%} of each other count as tied)")
    for name, values in predicted.items():
        agree, pairs = agreement(values, measured)
        print(f"  {name}: predicted order {order(values)}; orders {agree} of the {pairs} measurably "
              f"different pairs as measured: {'yes' if agree == pairs else 'no'}")


def tables(here, quick=False, batch: int = BATCH, repeat: int = REPEAT) -> None:
    """G1 and G2, estimated on the shipped profiles and on `here` (this machine's)."""
    batch, repeat = (QUICK_BATCH, QUICK_REPEAT) if quick else (batch, repeat)
    devices = {**{name: device_profile(name) for name in shipped()}, "this machine": here}
    for key in TABLES:
        table(key, devices, batch, repeat)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--report", action="store_true", help="print reports/guidelines.md and stop")
    p.add_argument("--quick", action="store_true", help=f"batch {QUICK_BATCH}, repeat {QUICK_REPEAT}")
    p.add_argument("--device", help="a profile instead of calibrating now")
    p.add_argument("--batch", type=int, default=BATCH)
    p.add_argument("--repeat", type=int, default=REPEAT)
    args = p.parse_args()
    if args.report:
        print(report(), end="")
        return
    start = time.perf_counter()
    here = device_profile(args.device) if args.device else archcalc.calibrate(repeats=5)
    print(f"{platform.node() or 'machine'} ({platform.machine()}), {time.strftime('%Y-%m-%d')}, "
          f"{blas_threads()}; "
          f"calibrated in {time.perf_counter() - start:.1f} s: {here.name}")
    tables(here, args.quick, args.batch, args.repeat)


if __name__ == "__main__":
    main()
