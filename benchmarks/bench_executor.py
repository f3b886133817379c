"""Executor speed and memory, run by hand: `python benchmarks/bench_executor.py [NAME | PATH ...]`
(a name is a spec in specs/: resnet50; a path is read as given: specs/resnet50.arch, my.onnx).

Prints, in one run:
- the NumPy float32 matmul peak (GFLOP/s) measured now, with the same BLAS threads;
- for ResNet-50, VGG-16 and GoogLeNet (those present in specs/) at batch 1 and 8: the forward
  pass's time (fastest of 5, after a warm-up; weights drawn and BatchNorm folded beforehand),
  ms per image, GMAC/s overall and on the conv layers alone, and the conv layers' share of the
  matmul peak;
- memory at batch 8: the live activations' peak vs the analysis's prediction, and the real
  peak traced by tracemalloc (workspace and temporaries included) plus weights vs the
  predicted activations plus weights;
- where PyTorch is installed: its eager CPU time on the same network with the same weights
  (a graph -> torch.nn.functional translation written below, never part of the package) and
  the ratio ours/PyTorch; likewise onnxruntime (the model archcalc's ONNX export makes on the
  same weights, on as many threads as NumPy's BLAS); and the largest output difference from
  either, as a cross-check.
Set OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 to compare on one core (PyTorch follows OMP).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

import archcalc
from archcalc import run

SPECS = Path(__file__).resolve().parents[1] / "specs"
NETWORKS = ("resnet50", "vgg16", "googlenet")
BATCHES = (1, 8)


def best_of(fn, repeat=3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(n=4096) -> float:
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b, c = a.copy(), np.empty_like(a)
    np.matmul(a, b, out=c)
    return 2 * n**3 / best_of(lambda: np.matmul(a, b, out=c), 5) / 1e9


def measure(graph, batch, weights=None, repeat=5):
    """Our fastest pass, and for each reference runtime installed its fastest on the same
    weights and input with the largest output difference; the runs are interleaved so that
    all see the same machine (other work comes and goes). The first run draws the weights."""
    x = np.random.default_rng(0).standard_normal((batch, *input_shape(graph)), dtype=np.float32)
    first = run(graph, x, weights)
    models = {name: make(graph, first) for name, make in REFERENCES.items() if available(name)}
    ours, theirs = [], {name: [] for name, m in models.items() if m is not None}
    for _ in range(repeat):
        ours.append(run(graph, x, first.weights))
        for name in theirs:
            theirs[name].append(models[name](x))
    best = min(ours, key=lambda r: r.seconds)
    found = {}
    for name, passes in theirs.items():
        seconds, out = min(passes, key=lambda t: t[0])
        out = out.reshape(best.output.shape)
        found[name] = (seconds, np.abs(out - best.output).max() / max(1e-30, np.abs(out).max()))
    return best, found


def input_shape(graph):
    analysis = archcalc.analyze(graph)
    return tuple(analysis.rows[0].out_shape)


def conv_rate(result) -> float:
    convs = [r.name for r in result.analysis.rows if r.kind == "conv"]
    seconds = sum(result.layer_seconds[n] for n in convs)
    return sum(result.macs[n] for n in convs) / seconds / 1e9


# ---------------------------------------------------------------- PyTorch, when installed

def torch_model(graph, result):
    """A callable running the graph with torch.nn.functional (NCHW) on the same weights, or
    None when a layer has no direct counterpart."""
    import torch
    import torch.nn.functional as F

    w = {layer: {k: torch.from_numpy(np.ascontiguousarray(a)) for k, a in arrays.items()}
         for layer, arrays in result.weights.items()}
    ops = {row.name: graph.layer(row.name).op for row in result.analysis.rows}

    def conv(op, x, p):
        if op.table is not None or op.round != "floor" or op.p == "same" and op.f % 2 == 0:
            raise NotImplementedError
        return F.conv2d(x, p["W"].permute(3, 2, 0, 1), p.get("b"), op.s, op.pad(), op.dilation, op.groups)

    def vector(x):
        return x.reshape(x.shape[0], -1, 1, 1)

    table = {
        "conv": conv,
        "maxpool": lambda op, x, p: F.max_pool2d(x, op.f, op.stride(), op.p, ceil_mode=op.round == "ceil"),
        "avgpool": lambda op, x, p: F.avg_pool2d(x, op.f, op.stride(), op.p, op.round == "ceil", op.count_pad),
        "gap": lambda op, x, p: x.mean((2, 3), keepdim=True),
        "adaptive_avgpool": lambda op, x, p: F.adaptive_avg_pool2d(x, op.out_size),
        "flatten": lambda op, x, p: vector(x.permute(0, 2, 3, 1)),  # our NHWC order
        "fc": lambda op, x, p: vector(F.linear(x.flatten(1), p["W"].T, p.get("b"))),
        "relu": lambda op, x, p: F.relu(x),
        "tanh": lambda op, x, p: torch.tanh(x),
        "sigmoid": lambda op, x, p: torch.sigmoid(x),
        "softmax": lambda op, x, p: F.softmax(x, 1),
        "dropout": lambda op, x, p: x,
        "batchnorm": lambda op, x, p: F.batch_norm(x, p["mean"], p["var"], p["gamma"], p["beta"],
                                                   False, 0.0, float(op.eps)),
        "lrn": lambda op, x, p: F.local_response_norm(x, op.size, float(op.alpha) * op.size,
                                                      float(op.beta), float(op.k)),
    }
    order = [(n, graph.layer(n)) for n in graph.graph.nodes]
    if any(layer.kind not in table and layer.kind not in ("input", "add", "concat") for _, layer in order):
        return None

    def forward(x):
        acts = {}
        for name, layer in order:
            xs = [acts[i] for i in layer.inputs]
            if layer.kind == "input":
                acts[name] = x
            elif layer.kind == "add":
                acts[name] = sum(xs[1:], xs[0])
            elif layer.kind == "concat":
                acts[name] = torch.cat(xs, 1)
            else:
                acts[name] = table[layer.kind](ops[name], xs[0], w.get(name, {}))
        return acts[order[-1][0]]

    try:
        with torch.inference_mode():
            forward(torch.zeros(1, *np.array(input_shape(graph))[[2, 0, 1]]))
    except NotImplementedError:
        return None

    def timed(x):
        """One eager pass (PyTorch's default CPU inference); (seconds, output as NHWC)."""
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        with torch.inference_mode():
            start = time.perf_counter()
            out = forward(xt)
            seconds = time.perf_counter() - start
        return seconds, out.permute(0, 2, 3, 1).numpy()
    return timed


# ---------------------------------------------------------------- onnxruntime, when installed

def onnx_model(graph, result):
    """A callable running the graph in onnxruntime: the model archcalc's export makes (NCHW)
    on the executor's weights and sizes, in its default session (every graph optimisation) on
    as many threads as NumPy's BLAS; None when a layer has no ONNX form."""
    import onnxruntime
    from archcalc.errors import SpecError
    from archcalc.onnx.export import export

    at = {name: value for name, value in result.analysis.symbols.items() if value is not None}
    try:
        model = export(graph, weights=result.weights, at=at)
    except SpecError:
        return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = blas_threads()  # the same cores as NumPy's BLAS
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    del model
    x_name = session.get_inputs()[0].name
    y_name = session.get_outputs()[0].name  # the export's first output is the network's

    def timed(x):
        xt = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        start = time.perf_counter()
        (out,) = session.run([y_name], {x_name: xt})
        seconds = time.perf_counter() - start
        return seconds, (out.transpose(0, 2, 3, 1) if out.ndim == 4 else out)
    return timed


REFERENCES = {"torch": torch_model, "onnxruntime": onnx_model}


def available(module) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


# ---------------------------------------------------------------- the report

def spec_path(arg: str) -> tuple[str, Path]:
    """A network's name and spec: 'resnet50' is specs/resnet50.arch; a path ('specs/resnet50.arch',
    'my.onnx') is itself, named by its stem."""
    if arg.endswith((".arch", ".onnx")) or os.sep in arg or "/" in arg:
        return Path(arg).stem, Path(arg)
    return arg, SPECS / f"{arg}.arch"


def main(names) -> None:
    peak = matmul_peak()
    print(f"NumPy {np.__version__}: float32 matmul peak {peak:,.1f} GFLOP/s "
          f"(4096 x 4096 x 4096, fastest of 5{threads_text()})")
    print(f"PyTorch: {torch_version() or 'not installed'}; onnxruntime: {ort_version() or 'not installed'}")
    print(f"\n{'network':<11}{'batch':>6}{'ms':>9}{'ms/image':>10}{'GMAC/s':>8}{'conv GMAC/s':>13}"
          f"{'of peak':>9}{'torch ms':>10}{'ours/torch':>12}{'ort ms':>9}{'ours/ort':>10}{'max diff':>10}")
    memory = []
    for name, path in map(spec_path, names):
        if not path.exists():
            print(f"{name:<11}  (no {path}: skipped)")
            continue
        graph = archcalc.load(path)
        weights = None
        for batch in BATCHES:
            r, theirs = measure(graph, batch, weights)
            weights = r.weights
            print(row_text(name, batch, r, peak, theirs))
        x = np.random.default_rng(0).standard_normal((batch, *input_shape(graph)), dtype=np.float32)
        memory.append((name, batch, run(graph, x, weights, trace_memory=True)))
    print(f"\n{'memory':<11}{'batch':>6}{'live peak':>13}{'predicted':>13}{'traced + weights':>19}"
          f"{'predicted + weights':>22}{'ratio':>8}")
    for name, batch, r in memory:
        measured, predicted = r.traced_bytes + r.weight_bytes, r.predicted_bytes + r.weight_bytes
        print(f"{name:<11}{batch:>6}{mib(r.peak_bytes):>13}{mib(r.predicted_bytes):>13}"
              f"{mib(measured):>19}{mib(predicted):>22}{measured / predicted:>8.2f}")


def row_text(name, batch, r, peak, theirs) -> str:
    gmacs, conv = r.total_macs / r.seconds / 1e9, conv_rate(r)
    text = (f"{name:<11}{batch:>6}{r.seconds * 1e3:>9.1f}{r.seconds * 1e3 / batch:>10.2f}{gmacs:>8.1f}"
            f"{conv:>13.1f}{2 * conv / peak:>9.0%}")
    for ref, widths in (("torch", (10, 12)), ("onnxruntime", (9, 10))):
        if ref in theirs:
            seconds, _ = theirs[ref]
            text += f"{seconds * 1e3:>{widths[0]}.1f}{r.seconds / seconds:>{widths[1]}.2f}"
        else:
            text += f"{'-':>{widths[0]}}{'-':>{widths[1]}}"
    diff = max((d for _, d in theirs.values()), default=None)
    return text + (f"{diff:>10.1e}" if diff is not None else f"{'-':>10}")


def mib(n) -> str:
    return f"{n / 2**20:,.1f} MiB"


def torch_version():
    try:
        import torch
    except ImportError:
        return None
    return f"{torch.__version__}, {torch.get_num_threads()} threads"


def ort_version():
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


def blas_threads() -> int:
    """OpenBLAS's thread count: its environment variables, else one per core."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return len(os.sched_getaffinity(0))


def threads_text() -> str:
    return f", OpenBLAS {blas_threads()} thread(s)"


if __name__ == "__main__":
    main(sys.argv[1:] or NETWORKS)
