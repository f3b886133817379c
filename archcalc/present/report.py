"""Report folders: one markdown report and its figures per spec, and an index comparing all.

Writing is atomic per file (a temporary file, then os.replace) and deterministic (sorted specs,
fixed figure sizes, no timestamps), so committed reports diff cleanly."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tabulate import tabulate

from ..source import load
from ..analysis import costs
from . import plots
from . import tables
from ..analysis.analyzer import Analysis, analyze
from .compare import depth
from ..errors import SpecError
from ..sizes import is_int
from ..analysis.sweep import evaluate
from .views import detail_view, overview

CACHED_IMAGES = 10_000
TEST_CROPS = 10
ENSEMBLE = 3
TRAIN_BATCH = 32


@dataclass(frozen=True)
class Written:
    spec: str
    analysis: Analysis
    files: tuple[str, ...]


def mb(x) -> str:
    return f"{x / 1e6:,.2f} MB" if is_int(x) else str(x)


def percent(part, whole) -> str:
    return f"{100 * part / whole:.1f}%" if is_int(part) and is_int(whole) and whole else "-"


def layer_table(a: Analysis) -> str:
    header = ["layer", "kind", "input", "output", "params", "MACs", "% MACs", "other ops",
              "activations", "RF"]
    rows = []
    for r in a.rows:
        cells = tables.layer_cells(r)
        rows.append(cells[:6] + [percent(r.macs, a.totals["macs"])] + cells[6:])
    return tabulate(rows, header, tablefmt="github", disable_numparse=True,
                    colalign=("left", "left") + ("right",) * 8)


def totals_table(a: Analysis) -> str:
    t = a.totals
    train = costs.training(a, TRAIN_BATCH)
    rows = [
        ("params (total / trainable / frozen)",
         f"{t['params']:,} / {t['trainable_params']:,} / {t['frozen_params']:,}"),
        ("BatchNorm running statistics (state)", tables.number(t["state"])),
        ("MACs per image", tables.scaled(t["macs"])),
        ("FLOPs per image (2 x MACs)", tables.scaled(t["flops"])),
        ("other ops per image", tables.scaled(t["other_ops"])),
        ("weights, float32", mb(costs.weight_bytes(a))),
        ("peak live activations per image, float32", mb(t["peak_activations"] * costs.BYTES)),
        ("all activations per image, float32", mb(t["activations"] * costs.BYTES)),
        (f"training memory at batch {TRAIN_BATCH} (weights, gradients, Adam, activations)",
         mb(train.memory_bytes)),
        ("training MACs per image (forward + backward)", tables.scaled(train.macs_per_image)),
        ("depth (weighted layers on the longest path)", str(depth(a))),
    ]
    return tabulate(rows, ("total", "value"), tablefmt="github", disable_numparse=True,
                    colalign=("left", "right"))


def blocks_table(a: Analysis) -> str:
    items = plots.folded(a) if len(a.rows) > plots.FOLD_ABOVE else []
    if not items:
        return ""
    rows = [(name, tables.number(p), percent(p, a.totals["params"]), tables.number(m),
             percent(m, a.totals["macs"])) for name, p, m in items]
    return tabulate(rows, ("block", "params", "% params", "MACs", "% MACs"), tablefmt="github",
                    disable_numparse=True, colalign=("left",) + ("right",) * 4)


def head_layer(a: Analysis) -> str | None:
    """The layer feeding the last layer with weights: freeze through it to train a new head."""
    weighted = [r for r in a.rows if r.params != 0]
    if len(weighted) < 2 or len(weighted[-1].inputs) != 1:
        return None
    return weighted[-1].inputs[0]


def advice_section(net, a: Analysis) -> list[str]:
    lines = ["## Test time and transfer learning", ""]
    crop = costs.test_time(a, TEST_CROPS, 1)
    both = costs.test_time(a, TEST_CROPS, ENSEMBLE)
    ensemble = costs.test_time(a, 1, ENSEMBLE)
    rows = [("one crop, one network", tables.scaled(a.totals["macs"]), tables.number(a.totals["params"])),
            (f"{TEST_CROPS} crops (corners, centre, mirrored)", tables.scaled(crop.macs), tables.number(crop.params)),
            (f"ensemble of {ENSEMBLE} networks", tables.scaled(ensemble.macs), tables.number(ensemble.params)),
            (f"{TEST_CROPS} crops x {ENSEMBLE} networks", tables.scaled(both.macs), tables.number(both.params))]
    lines += [tabulate(rows, ("at test time", "MACs per image", "params held"), tablefmt="github",
                       disable_numparse=True, colalign=("left", "right", "right")), ""]
    head = head_layer(a)
    if head is None:
        return lines
    frozen = analyze(net, at={k: v for k, v in a.symbols.items() if v is not None},
                     free=a.free, freeze=head)
    t = costs.transfer(frozen, head, CACHED_IMAGES, epochs=10)
    train = costs.training(frozen, TRAIN_BATCH)
    rows = [("frozen through", f"`{head}`"),
            ("trainable / frozen params", f"{frozen.totals['trainable_params']:,} / {frozen.totals['frozen_params']:,}"),
            ("training MACs per image (forward all, backward the head)", tables.scaled(train.macs_per_image)),
            ("cached feature per image", f"{tables.shape_text(t.feature_shape)} = {mb(t.feature_bytes_per_image)}"),
            (f"feature cache for {CACHED_IMAGES:,} images", mb(t.cache_bytes)),
            (f"MACs for {t.epochs} epochs without the cache", tables.scaled(t.epoch_macs_without_cache)),
            (f"MACs for {t.epochs} epochs with the cache", tables.scaled(t.epoch_macs_with_cache))]
    lines += [tabulate(rows, ("transfer learning: new head on cached features", "value"),
                       tablefmt="github", disable_numparse=True, colalign=("left", "right")), ""]
    return lines


def markdown(spec: str, net, a: Analysis, figures: list[str]) -> str:
    lines = [f"# {a.network}", "", f"Spec: `{spec}`. " + symbols_text(a), "",
             totals_table(a), ""]
    for name, title in (("cost.png", "Where the cost sits"), ("scaling.png", "Cost against its free symbols"),
                        ("graph.png", "The graph"), ("detail.png", "A block in detail")):
        if name in figures:
            lines += [f"![{title}]({name})", ""]
    blocks = blocks_table(a)
    if blocks:
        lines += ["## Blocks", "", blocks, ""]
    lines += advice_section(net, a)
    lines += ["## Layers", "", layer_table(a), ""]
    if a.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in a.notes] + [""]
    lines += ["## Conventions", ""] + [f"- {c}" for c in tables.LEGEND + COST_LEGEND]
    return "\n".join(lines) + "\n"


COST_LEGEND = (
    "training MACs = forward MACs of every layer + 2 x forward MACs of trainable layers "
    "(gradients for inputs and for weights); frozen layers run forward only",
    "training memory = float32 weights + gradients and Adam's two moments for trainable params "
    "+ every activation kept for the backward pass, times the batch",
    f"test time: {TEST_CROPS} crops run the network {TEST_CROPS} times; an ensemble of k "
    "networks runs k networks and averages their outputs",
    "feature cache: the frozen part runs once per image and its output is stored as float32",
)


def symbols_text(a: Analysis) -> str:
    if not a.symbols:
        return "No free symbols."
    return "Symbols: " + ", ".join(f"{k} = {v}" for k, v in a.symbols.items()) + "."


def scaling_figure(net, a: Analysis, path) -> bool:
    """MACs against the free size symbols: H = W together, otherwise each symbol on its own."""
    names = [s.name for s in net.symbols]
    if not names:
        return False
    if {"H", "W"} <= set(names):
        low = smallest_valid(net, a, ("H", "W"))
        xs = np.array(sorted(set(plots.nice_range(low, max(4 * a.symbols["H"], low + 8), 80))
                             | {a.symbols["H"]}))
        macs = [int(v) for v in np.diagonal(evaluate(net, "macs", {"H": xs, "W": xs}))]
        plots.curve(xs, {"MACs": [m / 1e9 for m in macs]}, f"{a.network}: MACs against input size",
                    "input size H = W (pixels)", "MACs per image (G)", path,
                    note=f"{a.symbols['H']} x {a.symbols['W']}: {a.totals['macs']:,} MACs",
                    mark=a.symbols["H"])
        return True
    name = names[0]
    default = a.symbols[name]
    xs = np.array(sorted(set(plots.nice_range(1, 4 * default, 80)) | {default}))
    macs = [int(v) / 1e6 for v in evaluate(net, "macs", {name: xs})]
    params = [int(v) / 1e3 for v in evaluate(net, "params", {name: xs})]
    plots.curve(xs, {"MACs": macs}, f"{a.network}: cost against {name}", name,
                "MACs per image (millions)", path,
                note=f"{name} = {default}: {a.totals['macs']:,} MACs, {a.totals['params']:,} params",
                mark=default, below=("params", params, "parameters (thousands)"))
    return True


def smallest_valid(net, a: Analysis, names) -> int:
    """The smallest size at which every layer still fits (binary search over analyses)."""
    low, high = 1, a.symbols[names[0]]
    while low < high:
        mid = (low + high) // 2
        try:
            analyze(net, at={n: mid for n in names})
            high = mid
        except SpecError:
            low = mid + 1
    return low


def write_spec(spec: Path, out: Path) -> Written:
    net = load(spec)
    a = analyze(net)
    folder = out / spec.stem
    folder.mkdir(parents=True, exist_ok=True)
    figures = []
    atomic(folder / "cost.png", lambda p: plots.cost_bars(a, p))
    figures.append("cost.png")
    if atomic(folder / "scaling.png", lambda p: scaling_figure(net, a, p)):
        figures.append("scaling.png")
    nodes, edges, title = overview(a)
    atomic(folder / "graph.png", lambda p: plots.graph_drawing(nodes, edges, title, p))
    figures.append("graph.png")
    detail = detail_view(a)
    if detail:
        atomic(folder / "detail.png", lambda p: plots.graph_drawing(*detail, p))
        figures.append("detail.png")
    text = markdown(str(spec), net, a, figures)
    atomic(folder / "report.md", lambda p: Path(p).write_text(text))
    return Written(str(spec), a, tuple(["report.md", *figures]))


def write_index(written: list[Written], out: Path) -> None:
    points = [(w.analysis.network, w.analysis.totals["params"], w.analysis.totals["macs"])
              for w in written if is_int(w.analysis.totals["macs"]) and w.analysis.totals["macs"] > 0
              and w.analysis.totals["params"] > 0]
    atomic(out / "scatter.png", lambda p: plots.scatter(points, p))
    rows = []
    for w in written:
        t = w.analysis.totals
        rows.append((f"[{w.analysis.network}]({Path(w.spec).stem}/report.md)", f"`{w.spec}`",
                     tables.number(t["params"]), tables.number(t["macs"]), str(depth(w.analysis)),
                     mb(t["peak_activations"] * costs.BYTES), mb(costs.weight_bytes(w.analysis))))
    table = tabulate(rows, ("network", "spec", "params", "MACs", "depth", "peak activations",
                            "weights"), tablefmt="github", disable_numparse=True,
                     colalign=("left", "left") + ("right",) * 5)
    text = "\n".join(["# archcalc reports", "",
                      "Every spec given to `archcalc report`, analysed at its default sizes "
                      "(this folder: `archcalc report specs/ --out reports/`).", "", table, "",
                      "![MACs against params](scatter.png)", "",
                      "## Conventions", ""] + [f"- {c}" for c in tables.LEGEND]) + "\n"
    atomic(out / "index.md", lambda p: Path(p).write_text(text))


def write_reports(specs: list[Path], out: Path) -> list[Written]:
    stems = {}
    for spec in specs:  # each spec gets the folder of its file name
        if spec.stem in stems:
            raise SpecError(f"two specs would share the report folder '{spec.stem}': "
                            f"'{stems[spec.stem]}' and '{spec}'")
        stems[spec.stem] = spec
    if out.exists() and not out.is_dir():
        raise SpecError(f"cannot write reports into '{out}': it is a file")
    out.mkdir(parents=True, exist_ok=True)
    written = [write_spec(s, out) for s in sorted(specs)]
    write_index(written, out)
    return written


def atomic(path: Path, write) -> bool:
    """Run `write(temporary_path)`; move the result into place only if it finished."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        made = write(tmp)
        if made is False:
            os.unlink(tmp)
            if path.exists():
                path.unlink()
            return False
        os.replace(tmp, path)
        return True
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
