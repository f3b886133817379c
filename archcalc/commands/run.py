"""`archcalc run SPEC`: the network run forward on NumPy arrays (NHWC), timed; `--verify`
checks every layer's shape, multiply-accumulates and weight count against the analysis."""
from __future__ import annotations

import os
import zipfile

import numpy as np

from dataclasses import replace

from ..analysis import latency
from ..analysis.latency import device_profile
from ..present import traffic
from ..source import load
from ..executor import weights as wts
from ..executor.weights import NPY_MAGIC, array_header
from ..errors import SpecError
from ..executor.forward import check, run, size_text
from . import (add_binding_options, add_memory_option, add_spec_argument, add_weights_option,
               memory_limit, parse_sets, positive_int, repeat_count, seed_value, testtime,
               thread_count)


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run the network forward with NumPy and time it")
    add_spec_argument(p)
    p.add_argument("--batch", type=positive_int, metavar="N",
                   help="images in the random input (default 1; with --input, its first axis)")
    p.add_argument("--seed", type=seed_value, default=0, help="seed of the random input and weights")
    add_weights_option(p)
    p.add_argument("--save-weights", metavar="FILE.npz", help="write the weights used")
    p.add_argument("--input", metavar="X.npy", help="input array (N, n_H, n_W, n_C)")
    p.add_argument("--output", metavar="Y.npy", help="write the output array (N, n_H, n_W, n_C)")
    p.add_argument("--verify", action="store_true",
                   help="check shapes, MACs and weight counts against the analysis")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--repeat", type=repeat_count, default=1, metavar="K",
                   help="run K times and report the fastest")
    p.add_argument("--threads", type=thread_count, default=1, metavar="K",
                   help="split the batch into K shards run at once, one BLAS thread each "
                        "(default 1: one pass, on as many BLAS threads as NumPy has; not with "
                        "--verify, which traces one pass's memory)")
    p.add_argument("--profile", metavar="DEVICE",
                   help="per layer measured time against the latency estimate on DEVICE (a "
                        "profile from `archcalc calibrate`, or a shipped profile's name)")
    add_memory_option(p)
    add_binding_options(p)
    testtime.add_options(p)  # --crops, --crop-from, --ensemble
    p.set_defaults(main=main)


def main(args) -> int:
    net = load(args.spec)
    x = read_array(args.input, memory_limit(args)) if args.input else None
    model = net.layout  # an ONNX model: its weights, arrays in its layout (NCHW)
    weights = args.weights  # args keeps what the user gave: --ensemble K refuses --weights
    if model is not None:
        from ..onnx.layout import model_input
        x = model_input(net, x)
        weights = weights or net.weights
    if testtime.wanted(args):  # multi-crop and ensembles: practice.testtime
        lines, evaluation = testtime.command(args, net, x, parse_sets(args.set), weights)
        print("\n".join(lines))
        if args.output:
            last = net.layers[-1].name  # the analysis' last row, the executor's output
            write_array(args.output, in_model_layout(net, last, evaluation.output))
        return 0
    device = device_profile(args.profile) if args.profile else None  # errors before the run
    options = dict(seed=args.seed, at=parse_sets(args.set), batch=args.batch, dtype=args.dtype,
                   memory_limit=memory_limit(args), strict=args.strict,
                   trace_memory=args.verify, threads=args.threads)
    best = result = run(net, x, weights, **options)
    for _ in range(args.repeat - 1):  # the same weights again: only the pass is timed
        result = run(net, x, result.weights, **options)
        best = min(best, result, key=lambda r: r.seconds)
    best.output = in_model_layout(net, best.analysis.rows[-1].name, best.output)
    print("\n".join(summary(best, args, weights)))
    if args.verify:
        print(verify_line(best))
    if device is not None:
        estimate = latency.estimate(replace(best.analysis, device=device, batch=best.batch))
        print("\n".join(traffic.profile_lines(estimate, best.layer_seconds, best.seconds)))
    if args.output:
        write_array(args.output, best.output)
    if args.save_weights:
        wts.save(args.save_weights, best.weights)
    return 0


def in_model_layout(net, layer, y):
    """An ONNX model's output in its own layout ((N, C, H, W) or (N, n)); a spec's as it is."""
    if net.layout is None:
        return y
    from ..onnx.layout import model_output
    return model_output(net, layer, y)


def summary(r, args, weights) -> list[str]:
    a = r.analysis
    inputs = f"'{args.input}'" if args.input else f"random (seed {args.seed})"
    weights = f"random (seed {args.seed})" if not weights else \
        "the model's" if isinstance(weights, dict) else f"'{weights}'"
    macs = r.total_macs
    rate = f", {macs / r.seconds / 1e9:,.1f} GMAC/s" if r.seconds > 0 else ""
    best = f", fastest of {args.repeat}" if args.repeat > 1 else ""
    best += f", in {r.shards} shards at once" if r.shards > 1 else ""
    bound = ", ".join(f"{k}={v}" for k, v in a.symbols.items())
    ran = sum(r.executed.values())
    saved = f" (multiplied: {ran // r.batch:,}; Winograd F(2x2, 3x3) computes a 3x3 conv's MACs " \
        "with fewer products)" if r.executed and ran != macs else ""
    return [
        f"{a.network}{f' ({bound})' if bound else ''}: batch {r.batch}, {r.dtype}, "
        f"input {inputs}, weights {weights}",
        f"output '{a.rows[-1].name}': {tuple(r.output.shape)}",
        f"time: {r.seconds * 1e3:,.1f} ms ({r.seconds * 1e3 / r.batch:,.2f} ms per image){best}; "
        f"{macs // r.batch:,} MACs per image{saved}{rate}",
        f"memory: live activations peak {size_text(r.peak_bytes)} (predicted {size_text(r.predicted_bytes)}), "
        f"weights {size_text(r.weight_bytes)}, workspace {size_text(r.workspace_bytes)}",
    ]


def verify_line(r) -> str:
    """One line when every figure agrees; a SpecError listing each disagreement otherwise."""
    problems = check(r)
    if problems:
        raise SpecError(f"verify: {len(problems)} disagreement(s) with the analysis", None,
                        tuple(problems))
    predicted = r.predicted_bytes + r.weight_bytes
    measured = r.traced_bytes + r.weight_bytes
    return (f"verify: {len(r.analysis.rows)} layers: every shape, MAC count and weight count equals "
            f"the analysis ({r.total_macs // r.batch:,} MACs per image); measured peak "
            f"{size_text(measured)} = {measured / predicted:.2f} x predicted (activations + weights)")


def read_array(path, limit: int) -> np.ndarray:
    """An .npy array, its header checked first: a file shorter than its header says, or an
    array over the memory limit, is refused before its data is read."""
    try:
        check_array_header(path, limit)
        a = np.load(path, allow_pickle=False)
    except OSError as e:
        raise SpecError(f"cannot read input '{path}': {e.strerror or e}") from None
    except (ValueError, EOFError, zipfile.BadZipFile) as e:
        raise SpecError(f"input '{path}' is not a readable .npy array: {e}") from None
    if not isinstance(a, np.ndarray):
        a.close()
        raise SpecError(f"input '{path}' is an .npz archive; give one .npy array (N, n_H, n_W, n_C)")
    return a


def check_array_header(path, limit: int) -> None:
    with open(path, "rb") as f:
        if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
            return  # not an .npy: np.load says what it is
        f.seek(0)
        shape, dtype, nbytes, offset = array_header(f, f"input '{path}'")
        size = os.fstat(f.fileno()).st_size
    if size < offset + nbytes:
        raise SpecError(f"input '{path}' is truncated: its header's {shape} of {dtype} needs "
                        f"{offset + nbytes:,} bytes, the file holds {size:,}")
    if nbytes > limit:
        raise SpecError(f"input '{path}' holds {nbytes:,} bytes, over the limit of {limit:,}", None,
                        ("give fewer images, or raise the limit (--max-memory)",))


def write_array(path, a) -> None:
    try:
        with open(path, "wb") as f:  # a file object: np.save would otherwise append '.npy'
            np.save(f, a)
    except OSError as e:
        raise SpecError(f"cannot write output '{path}': {e.strerror or e}") from None
