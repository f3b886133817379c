"""Figures people read at a glance (matplotlib's object API, imported lazily, no pyplot).

Every figure is written as PNG without a timestamp or software tag, so the same analysis gives
the same bytes on the same matplotlib."""
from __future__ import annotations

from ..analysis.analyzer import Analysis
from ..sizes import is_int
from . import labels
from .layout import LABEL_PT, NODE_PT, layout

FOLD_ABOVE = 40  # more rows than this: one bar per top-level block


def _figure(width, height):
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def save(fig, path) -> None:
    """PNG through the Agg canvas directly: one layout and one draw. (savefig draws the figure
    once more first, to lay it out, and then draws it without layout: the same bytes, slower.)"""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig).print_png(path, metadata={"Software": None})


def folded(a: Analysis) -> list[tuple[str, object, object]]:
    """(label, params, MACs) per layer, or per top-level block for a large network."""
    if len(a.rows) <= FOLD_ABOVE:
        return [(r.name, r.params, r.macs) for r in a.rows if r.params or r.macs]
    return [(k, p, m) for k, (p, m) in a.blocks().items() if p or m]


UNITS = ((10**9, "G", "billions"), (10**6, "M", "millions"), (10**3, "K", "thousands"))


def scale(values) -> tuple[int, str, str]:
    """The unit a panel's numbers read best in: the largest with the peak at least 1 of it."""
    peak = max((abs(int(v)) for v in values), default=0)
    return next((u for u in UNITS if peak >= u[0]), (1, "", "count"))


def cost_bars(a: Analysis, path) -> None:
    """Where the cost sits: params and MACs per layer (or block), side by side."""
    items = folded(a)
    labels = [i[0] for i in items][::-1]
    height = max(3.0, 0.28 * len(items) + 1.5)
    fig = _figure(11, height)
    left, right = fig.subplots(1, 2, sharey=True)
    for ax, values, title, color in (
            (left, [i[1] for i in items][::-1], "parameters", "tab:blue"),
            (right, [i[2] for i in items][::-1], "multiply-accumulates (MACs)", "tab:orange")):
        unit, suffix, word = scale(values)
        scaled = [float(v) / unit for v in values]
        ax.barh(range(len(labels)), scaled, color=color)
        ax.set_title(f"{title} per {'block' if len(a.rows) > FOLD_ABOVE else 'layer'}")
        ax.set_xlabel(f"{title.split(' (')[0]} ({word})")
        ax.grid(axis="x", alpha=0.3)
        peak = max(scaled) if scaled else 1
        for y, v in enumerate(scaled):
            ax.text(v + peak * 0.01, y, f"{v:,.2f}{suffix}", va="center", fontsize=7)
        ax.set_xlim(0, peak * 1.22 or 1)
    left.set_yticks(range(len(labels)), labels, fontsize=8)
    fig.suptitle(f"{a.network}: where the cost sits (params {a.totals['params']:,}, "
                 f"MACs {a.totals['macs']:,})")
    save(fig, path)


def curve(xs, series: dict, title, xlabel, ylabel, path, note=None, log=False, mark=None,
          below=None) -> None:
    """Line plot of one or more computed series against one swept value; `mark` is an x whose
    points are drawn as dots (the published size); `below` = (label, values, axis label) is a
    second quantity drawn in its own panel underneath, on its own scale."""
    fig = _figure(8, 6.4 if below else 4.8)
    axes = fig.subplots(2, 1, sharex=True) if below else [fig.subplots()]
    ax = axes[0]
    xs_list = list(xs)
    for label, ys in series.items():
        line, = ax.plot(xs, ys, label=label, linewidth=1.8)
        if mark is not None and mark in xs_list:
            ax.plot([mark], [ys[xs_list.index(mark)]], "o", color=line.get_color())
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend()
    if below:
        label, ys, axis = below
        axes[1].plot(xs, ys, color="tab:orange", linewidth=1.8)
        if mark is not None and mark in xs_list:
            axes[1].plot([mark], [ys[xs_list.index(mark)]], "o", color="tab:orange")
        axes[1].set_ylabel(axis)
    for a in axes:
        a.grid(alpha=0.3)
    axes[-1].set_xlabel(xlabel)
    if note:
        ax.text(0.01, 0.98, note, transform=ax.transAxes, va="top", fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.8"})
    save(fig, path)


def heatmap(xs, ys, grid, title, xlabel, ylabel, label, path) -> None:
    fig = _figure(7.5, 5.5)
    ax = fig.subplots()
    image = ax.pcolormesh(xs, ys, grid, shading="nearest", cmap="viridis")
    fig.colorbar(image, ax=ax, label=label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    save(fig, path)


# the scatter's axes, fixed in inches so labels are placed in what the reader sees
SCATTER_SIZE = (9.0, 6.5)
SCATTER_AXES = (0.85, 0.65, 7.95, 5.4)  # left, bottom, width, height


def scatter(points, path) -> None:
    """MACs against params, one labelled point per network, log-log; labels placed by
    labels.label_places (beside their dots, apart, leaders uncrossed)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=SCATTER_SIZE, dpi=100)
    left, bottom, width, height = SCATTER_AXES
    ax = fig.add_axes((left / SCATTER_SIZE[0], bottom / SCATTER_SIZE[1],
                       width / SCATTER_SIZE[0], height / SCATTER_SIZE[1]))
    if not points:  # no network with both parameters and MACs: nothing to place on log axes
        ax.text(0.5, 0.5, "no network has both parameters and MACs", ha="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        save(fig, path)
        return
    x_lim, y_lim, spots, places = scatter_places(points)
    to_data = _from_inches(x_lim, y_lim)
    ax.scatter([10 ** x for x, _ in _log(points)], [10 ** y for _, y in _log(points)],
               color="tab:blue", zorder=3)
    for ((dot, name), place) in zip(spots, places):
        (x0, y0), (x1, y1) = to_data(dot), to_data(place.anchor)
        ax.plot([x0, x1], [y0, y1], color="0.6", lw=0.6, zorder=2)
        ax.text(x1, y1, name, fontsize=labels.TEXT_PT, ha=place.ha, va=place.va)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(10 ** x_lim[0], 10 ** x_lim[1])
    ax.set_ylim(10 ** y_lim[0], 10 ** y_lim[1])
    ax.set_xlabel("parameters (millions, log scale)")
    ax.set_ylabel("multiply-accumulates per image (G, log scale)")
    ax.set_title("Cost of each network: MACs against parameters")
    ax.grid(alpha=0.3, which="both")
    save(fig, path)


def _log(points):
    from math import log10  # of the exact integers: no float overflow past 10^308
    return [(log10(p) - 6, log10(m) - 9) for _, p, m in points]


def scatter_places(points):
    """The axes' limits (log10 of millions of params, of G MACs), one (dot in inches, label) per
    spot, and where each label goes."""
    logs = _log(points)
    xs, ys = [x for x, _ in logs], [y for _, y in logs]
    x_lim = (min(xs) - 0.6, max(xs) + 0.9)
    y_lim = (min(ys) - 0.6, max(ys) + 1.0)
    width, height = SCATTER_AXES[2:]
    dots = [((x - x_lim[0]) / (x_lim[1] - x_lim[0]) * width,
             (y - y_lim[0]) / (y_lim[1] - y_lim[0]) * height) for x, y in logs]
    spots = labels.groups(dots, [p[0] for p in points])
    sizes = [text_size(name) for _, name in spots]
    return x_lim, y_lim, spots, labels.label_places([d for d, _ in spots], sizes, (width, height))


def text_size(text) -> tuple[float, float]:
    """Width and height in inches of a label, as matplotlib's default font draws it."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath
    font = FontProperties(size=labels.TEXT_PT)
    w, _, _ = TextToPath().get_text_width_height_descent(text, font, ismath=False)
    _, h, d = TextToPath().get_text_width_height_descent("Ag", font, ismath=False)
    return w / 72, (h + d) / 72


def _from_inches(x_lim, y_lim):
    width, height = SCATTER_AXES[2:]
    return lambda p: (10 ** (x_lim[0] + p[0] / width * (x_lim[1] - x_lim[0])),
                      10 ** (y_lim[0] + p[1] / height * (y_lim[1] - y_lim[0])))


def graph_drawing(nodes, edges, title, path) -> None:
    """Layered drawing of nodes (name, label), edges labelled with the shape they carry,
    placed by layout.layout (in inches: the axes span the figure, one unit an inch)."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path
    from matplotlib.figure import Figure
    g = layout(nodes, edges)
    fig = Figure(figsize=(g.width, g.height), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, g.width)
    ax.set_ylim(0, g.height)
    ax.text(g.width / 2, g.height - 0.25, title, ha="center", va="center", fontsize=11)
    for points in g.paths:
        ax.add_patch(FancyArrowPatch(path=Path(points), arrowstyle="->", mutation_scale=9,
                                     color="0.45", lw=1.0, shrinkA=0, shrinkB=0))
    for text, x, y, align, _ in g.labels:
        ax.text(x, y, text, fontsize=LABEL_PT, ha=align, va="center", color="0.25")
    for (name, label) in nodes:
        b = g.boxes[name]
        ax.add_patch(FancyBboxPatch((b.x0, b.y0), b.x1 - b.x0, b.y1 - b.y0,
                                    boxstyle="round,pad=0,rounding_size=0.05",
                                    facecolor="#e8f0fb", edgecolor="#4a78b5"))
        ax.text(*g.nodes[name], label, ha="center", va="center", fontsize=NODE_PT,
                linespacing=1.1)
    save(fig, path)


def finite(values) -> bool:
    return all(is_int(v) for v in values)
