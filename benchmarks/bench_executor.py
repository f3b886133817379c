"""Executor speed and memory, run by hand:
`python benchmarks/bench_executor.py [--quick] [--shards] [NAME | PATH ...]` (a name is a spec in specs/:
resnet50; a path is read as given: specs/resnet50.arch, my.onnx). --quick runs batch 2 at
112 x 112 (and the kinds' layers at batch 2), for iterating; the figures to quote are without.

Prints, in one run:
- the NumPy float32 matmul peak (GFLOP/s) measured now, with the same BLAS threads;
- each conv kernel on layers of its kind (depthwise, grouped, 1x1, 3x3 by Winograd, 3x3 by
  im2col) at batch 8: GMAC/s of the counted MACs (the conv's definition, what `--verify`
  checks), of the multiplications executed (fewer for Winograd), and the counted rate's share
  of the matmul peak;
- for ResNet-50, VGG-16, GoogLeNet, MobileNetV3-large, EfficientNet-B0 and RegNetY-400MF
  (those present in specs/) at batch 8: the forward pass's time (fastest of 5, after a
  warm-up; weights drawn and BatchNorm folded beforehand), ms per image, GMAC/s overall and on
  the conv layers alone, the conv layers' share of the matmul peak, and executed
  multiplications / MACs; then the GMAC/s of its depthwise and of its grouped convs within
  that pass (the analysis's families: their MACs over their layers' time);
- memory at batch 8: the live activations' peak vs the analysis's prediction, and the real
  peak traced by tracemalloc (workspace and temporaries included) plus weights vs the
  predicted activations plus weights;
- where PyTorch is installed: its eager CPU time on the same network with the same weights
  (a graph -> torch.nn.functional translation written below, never part of the package) and
  the ratio ours/PyTorch; likewise onnxruntime (the model archcalc's ONNX export makes on the
  same weights, on as many threads as NumPy's BLAS); and the largest output difference from
  either, as a cross-check.
Set OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 to compare on one core (PyTorch follows OMP).
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, where set, are unset for this command only (it runs
itself again without them, and says so) to measure NumPy as its users get it.
"""
from __future__ import annotations

import operator
import os
import platform
import sys
import time
from datetime import date
from fractions import Fraction
from functools import reduce
from pathlib import Path

import numpy as np

import archcalc
from archcalc import run

SPECS = Path(__file__).resolve().parents[1] / "specs"
NETWORKS = ("resnet50", "vgg16", "googlenet", "mobilenet_v3_large", "efficientnet_b0", "regnet_y_400mf")
BATCH, QUICK_BATCH, QUICK_SIZE = 8, 2, 112
PINNED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # tuning a user's NumPy doesn't have
JOINS = ("input", "add", "mul", "concat")  # the kinds torch_model's forward joins itself


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


def measure(graph, batch, size=None, repeat=5, threads=1):
    """Our fastest pass, and for each reference runtime installed its fastest on the same
    weights and input with the largest output difference; the runs are interleaved so that
    all see the same machine (other work comes and goes). The first run draws the weights."""
    x = random_input(graph, batch, size)
    first = run(graph, x)
    models = {name: make(graph, first) for name, make in REFERENCES.items() if available(name)}
    ours, theirs = [], {name: [] for name, m in models.items() if m is not None}
    for _ in range(repeat):
        ours.append(run(graph, x, first.weights, threads=threads))
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


def random_input(graph, batch, size=None):
    """A batch at the spec's own input size, or at size x size (the run binds H and W)."""
    shape = input_shape(graph)
    if size is not None:
        shape = (size, size, *shape[2:])
    return np.random.default_rng(0).standard_normal((batch, *shape), dtype=np.float32)


def family_text(result, family, width) -> str:
    """The layers of an analysis family (depthwise, grouped) within the pass: ms, GMAC/s."""
    names = [r.name for r in result.analysis.rows if r.family == family]
    if not names:
        return f"{'-':>{width}}{'-':>8}"
    seconds = sum(result.layer_seconds[n] for n in names)
    return f"{seconds * 1e3:>{width}.1f}{sum(result.macs[n] for n in names) / seconds / 1e9:>8.1f}"


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

    def hardsigmoid(op, x, p):
        if (op.alpha, op.beta) != (Fraction(1, 6), Fraction(1, 2)):  # F.hardsigmoid's only form
            raise NotImplementedError
        return F.hardsigmoid(x)

    def vector(x):
        return x.reshape(x.shape[0], -1, 1, 1)

    table = {
        "conv": conv,
        "dwconv": lambda op, x, p: conv(op.as_conv(x.shape[1]), x, p),
        "maxpool": lambda op, x, p: F.max_pool2d(x, op.f, op.stride(), op.p, ceil_mode=op.round == "ceil"),
        "avgpool": lambda op, x, p: F.avg_pool2d(x, op.f, op.stride(), op.p, op.round == "ceil", op.count_pad),
        "gap": lambda op, x, p: x.mean((2, 3), keepdim=True),
        "adaptive_avgpool": lambda op, x, p: F.adaptive_avg_pool2d(x, op.out_size),
        "flatten": lambda op, x, p: vector(x.permute(0, 2, 3, 1)),  # our NHWC order
        "fc": lambda op, x, p: vector(F.linear(x.flatten(1), p["W"].T, p.get("b"))),
        "relu": lambda op, x, p: F.relu(x),
        "tanh": lambda op, x, p: torch.tanh(x),
        "sigmoid": lambda op, x, p: torch.sigmoid(x),
        "swish": lambda op, x, p: F.silu(x),
        "hardswish": lambda op, x, p: F.hardswish(x),
        "hardsigmoid": hardsigmoid,
        "clip": lambda op, x, p: F.hardtanh(x, float(op.lo), float(op.hi)),  # ReLU6 at 0, 6
        "softmax": lambda op, x, p: F.softmax(x, 1),
        "dropout": lambda op, x, p: x,
        "batchnorm": lambda op, x, p: F.batch_norm(x, p["mean"], p["var"], p["gamma"], p["beta"],
                                                   False, 0.0, float(op.eps)),
        "lrn": lambda op, x, p: F.local_response_norm(x, op.size, float(op.alpha) * op.size,
                                                      float(op.beta), float(op.k)),
    }
    order = [(n, graph.layer(n)) for n in graph.graph.nodes]
    if any(layer.kind not in table and layer.kind not in JOINS for _, layer in order):
        return None

    def forward(x):
        acts = {}
        for name, layer in order:
            xs = [acts[i] for i in layer.inputs]
            if layer.kind == "input":
                acts[name] = x
            elif layer.kind == "add":
                acts[name] = sum(xs[1:], xs[0])
            elif layer.kind == "mul":  # squeeze-and-excitation's (N, C, 1, 1) gate broadcasts
                acts[name] = reduce(operator.mul, xs)
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
    # its idle threads otherwise spin on those cores while our pass runs next (oversubscription)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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


def main(names, quick=False, shards=False) -> None:
    """With `shards`, our pass runs in as many shards as BLAS has threads (run(threads=K):
    each shard on one BLAS thread), against the references on those threads."""
    peak = matmul_peak()
    threads = blas_threads() if shards else 1
    batch, size = (QUICK_BATCH, QUICK_SIZE) if quick else (BATCH, None)
    print(f"{platform.node()}, {date.today()}: {os.cpu_count()} cores{environment_note()}")
    print(f"NumPy {np.__version__}: float32 matmul peak {peak:,.1f} GFLOP/s "
          f"(4096 x 4096 x 4096, fastest of 5{threads_text()})")
    print(f"PyTorch: {torch_version() or 'not installed'}; onnxruntime: {ort_version() or 'not installed'}")
    if threads > 1:
        print(f"ours: the batch in {threads} shards at once, one BLAS thread each (run(threads={threads}))")
    kinds_table(batch, peak)
    print(f"\n{'network':<19}{'batch':>6}{'ms':>9}{'ms/image':>10}{'GMAC/s':>8}{'conv GMAC/s':>13}"
          f"{'of peak':>9}{'run/MACs':>10}{'torch ms':>10}{'ours/torch':>12}{'ort ms':>9}"
          f"{'ours/ort':>10}{'max diff':>10}")
    memory, families = [], []
    for name, path in map(spec_path, names):
        if not path.exists():
            print(f"{name:<19}  (no {path}: skipped)")
            continue
        graph = archcalc.load(path)
        r, theirs = measure(graph, batch, size, threads=threads)
        print(row_text(name, batch, r, peak, theirs))
        families.append((name, r))
        memory.append((name, batch, run(graph, random_input(graph, batch, size), r.weights, trace_memory=True)))
    print("run/MACs: the multiplications the kernels executed over the MACs counted by definition "
          "(Winograd's 3x3 convs run fewer; --verify checks the counted ones)")
    print(f"\n{'within the pass':<19}{'depthwise ms':>14}{'GMAC/s':>8}{'grouped ms':>12}{'GMAC/s':>8}")
    for name, r in families:
        if {row.family for row in r.analysis.rows} & {"depthwise", "grouped"}:
            print(f"{name:<19}{family_text(r, 'depthwise', 14)}{family_text(r, 'grouped', 12)}")
    print(f"\n{'memory':<19}{'batch':>6}{'live peak':>13}{'predicted':>13}{'traced + weights':>19}"
          f"{'predicted + weights':>22}{'ratio':>8}")
    for name, batch, r in memory:
        measured, predicted = r.traced_bytes + r.weight_bytes, r.predicted_bytes + r.weight_bytes
        print(f"{name:<19}{batch:>6}{mib(r.peak_bytes):>13}{mib(r.predicted_bytes):>13}"
              f"{mib(measured):>19}{mib(predicted):>22}{measured / predicted:>8.2f}")


# ---------------------------------------------------------------- each conv kernel alone

KIND_LAYERS = (  # kind, where from, (n_H, n_C, f, n_c, s, groups)
    ("depthwise", "MobileNetV3 3x3, 56 x 56 x 72", (56, 72, 3, 72, 1, 72)),
    ("depthwise", "MobileNetV3 5x5, 28 x 28 x 120", (28, 120, 5, 120, 1, 120)),
    ("depthwise", "EfficientNet 3x3 s2, 112 x 112 x 96", (112, 96, 3, 96, 2, 96)),
    ("grouped", "RegNetY-400MF, 14 x 14 x 208 / 26", (14, 208, 3, 208, 1, 26)),
    ("grouped", "AlexNet conv2, 27 x 27 x 96 / 2", (27, 96, 5, 256, 1, 2)),
    ("1x1", "ResNet-50, 28 x 28 x 512 -> 128", (28, 512, 1, 128, 1, 1)),
    ("1x1", "ResNet-50, 56 x 56 x 64 -> 256", (56, 64, 1, 256, 1, 1)),
    ("3x3 Winograd", "VGG-16, 56 x 56 x 256", (56, 256, 3, 256, 1, 1)),
    ("3x3 Winograd", "VGG-16, 14 x 14 x 512", (14, 512, 3, 512, 1, 1)),
    ("3x3 im2col", "ResNet-50 s2, 56 x 56 x 128", (56, 128, 3, 128, 2, 1)),
)


def kinds_table(batch, peak) -> None:
    """Each kernel on layers of its kind, fastest of 5 (random weights, bias, no ReLU)."""
    from archcalc.executor.conv import conv
    from archcalc.executor.kernels import Context
    from archcalc.kinds.windowed import Conv

    print(f"\n{'kernel':<14}{'layer (batch ' + str(batch) + ')':<38}{'ms':>8}{'GMAC/s':>8}"
          f"{'run GMAC/s':>12}{'of peak':>9}")
    rng = np.random.default_rng(0)
    for kind, where, (n, C, f, c, s, groups) in KIND_LAYERS:
        op = Conv(f=f, c=c, s=s, p=f // 2, groups=groups)
        x = rng.standard_normal((batch, n, n, C), dtype=np.float32)
        w = {"W": rng.standard_normal((f, f, C // groups, c), dtype=np.float32),
             "b": rng.standard_normal(c, dtype=np.float32)}
        ctx = Context()
        seconds = best_of(lambda: conv(op, (x,), w, ctx), 5)
        macs, executed = ctx.macs // 5, ctx.executed // 5
        print(f"{kind:<14}{where:<38}{seconds * 1e3:>8.1f}{macs / seconds / 1e9:>8.1f}"
              f"{executed / seconds / 1e9:>12.1f}{2 * macs / seconds / 1e9 / peak:>9.0%}")


def row_text(name, batch, r, peak, theirs) -> str:
    gmacs, conv = r.total_macs / r.seconds / 1e9, conv_rate(r)
    text = (f"{name:<19}{batch:>6}{r.seconds * 1e3:>9.1f}{r.seconds * 1e3 / batch:>10.2f}{gmacs:>8.1f}"
            f"{conv:>13.1f}{2 * conv / peak:>9.0%}{sum(r.executed.values()) / r.total_macs:>10.2f}")
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


def environment_note() -> str:
    if os.environ.get("BENCH_UNPINNED"):
        return f"; {' and '.join(PINNED)} unset for this benchmark (NumPy as users get it)"
    return ""


def unpin() -> None:
    """Run again without the OpenBLAS tuning variables, if any is set."""
    if any(name in os.environ for name in PINNED):
        env = {k: v for k, v in os.environ.items() if k not in PINNED}
        env["BENCH_UNPINNED"] = "1"
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


if __name__ == "__main__":
    unpin()
    args = [a for a in sys.argv[1:] if a not in ("--quick", "--shards")]
    main(args or NETWORKS, quick="--quick" in sys.argv[1:], shards="--shards" in sys.argv[1:])
