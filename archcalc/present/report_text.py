"""The text of a report folder: report.md per network (totals, blocks, test time and transfer
learning, layers, notes, conventions) and index.md comparing them."""
from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from ..analysis import costs
from ..analysis.analyzer import Analysis
from ..analysis.bundle import Bundle
from ..sizes import is_int
from . import plots, tables
from .compare import depth

CACHED_IMAGES = 10_000
TEST_CROPS = 10
ENSEMBLE = 3
TRAIN_BATCH = 32


def mb(x) -> str:
    return f"{x / 1e6:,.2f} MB" if is_int(x) else str(x)


def folder(file) -> str:
    """A spec's report folder, as the index links it: the file's name without its suffix
    (report.folder_name refuses a file whose folder that cannot be)."""
    return Path(file).stem


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


def totals_rows(a: Analysis) -> list[tuple[str, str]]:
    """The totals of a report, (what, value), in the order shown."""
    t = a.totals
    train = costs.training(a, TRAIN_BATCH)
    rows = [
        ("params (total / trainable / frozen)",
         f"{t['params']:,} / {t['trainable_params']:,} / {t['frozen_params']:,}"),
        ("BatchNorm running statistics (state)", tables.number(t["state"])),
        ("MACs per image", tables.scaled(t["macs"])),
        *tables.attention_lines(a),
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
    return rows


def totals_table(a: Analysis) -> str:
    return tabulate(totals_rows(a), ("total", "value"), tablefmt="github", disable_numparse=True,
                    colalign=("left", "right"))


def blocks_table(a: Analysis) -> str:
    items = plots.folded(a) if len(a.rows) > plots.FOLD_ABOVE else []
    if not items:
        return ""
    rows = [(name, tables.number(p), percent(p, a.totals["params"]), tables.number(m),
             percent(m, a.totals["macs"])) for name, p, m in items]
    return tabulate(rows, ("block", "params", "% params", "MACs", "% MACs"), tablefmt="github",
                    disable_numparse=True, colalign=("left",) + ("right",) * 4)


def advice_section(b: Bundle) -> list[str]:
    a = b.analysis
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
    head, frozen = b.head, b.frozen
    if head is None:
        return lines
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


def markdown(b: Bundle, figures: list[str]) -> str:
    """report.md of one network; `figures` names the figure files written beside it."""
    a = b.analysis
    lines = [f"# {a.network}", "", f"Spec: `{a.file}`. " + symbols_text(a), "",
             totals_table(a), ""]
    for name, title in (("cost.png", "Where the cost sits"), ("scaling.png", "Cost against its free symbols"),
                        ("graph.png", "The graph"), ("detail.png", "A block in detail")):
        if name in figures:
            lines += [f"![{title}]({name})", ""]
    blocks = blocks_table(a)
    if blocks:
        lines += ["## Blocks", "", blocks, ""]
    lines += advice_section(b)
    lines += ["## Layers", "", layer_table(a), ""]
    if a.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in a.notes] + [""]
    lines += ["## Conventions", ""] + [f"- {c}" for c in tables.legend(a) + COST_LEGEND]
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


INDEX_COLUMNS = ("network", "spec", "params", "MACs", "depth", "peak activations", "weights")


def index_cells(a: Analysis) -> tuple[str, ...]:
    """A network's row in the index, one text per INDEX_COLUMNS."""
    t = a.totals
    return (a.network, a.file, tables.number(t["params"]), tables.number(t["macs"]), str(depth(a)),
            mb(t["peak_activations"] * costs.BYTES), mb(costs.weight_bytes(a)))


def index_markdown(analyses: list[Analysis]) -> str:
    """index.md: one row per network, linking its report; the scatter figure below."""
    rows = [(f"[{a.network}]({folder(a.file)}/report.md)", f"`{a.file}`", *index_cells(a)[2:])
            for a in analyses]
    table = tabulate(rows, INDEX_COLUMNS, tablefmt="github", disable_numparse=True,
                     colalign=("left", "left") + ("right",) * 5)
    return "\n".join(["# archcalc reports", "",
                      "Every spec given to `archcalc report`, analysed at its default sizes "
                      "(this folder: `archcalc report specs/ --out reports/`).", "", table, "",
                      "![MACs against params](scatter.png)", "",
                      "## Conventions", ""] + [f"- {c}" for c in tables.LEGEND]) + "\n"
