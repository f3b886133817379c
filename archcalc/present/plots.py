"""Figures people read at a glance (matplotlib's object API, imported lazily, no pyplot).

Every figure is written as PNG without a timestamp or software tag, so the same analysis gives
the same bytes on the same matplotlib."""
from __future__ import annotations

from ..analysis.analyzer import Analysis
from ..sizes import is_int

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


def cost_bars(a: Analysis, path) -> None:
    """Where the cost sits: params and MACs per layer (or block), side by side."""
    items = folded(a)
    labels = [i[0] for i in items][::-1]
    height = max(3.0, 0.28 * len(items) + 1.5)
    fig = _figure(11, height)
    left, right = fig.subplots(1, 2, sharey=True)
    for ax, values, title, unit, color in (
            (left, [i[1] for i in items][::-1], "parameters", 1e6, "tab:blue"),
            (right, [i[2] for i in items][::-1], "multiply-accumulates (MACs)", 1e6, "tab:orange")):
        scaled = [float(v) / unit for v in values]
        ax.barh(range(len(labels)), scaled, color=color)
        ax.set_title(f"{title} per {'block' if len(a.rows) > FOLD_ABOVE else 'layer'}")
        ax.set_xlabel(f"{title.split(' (')[0]} (millions)")
        ax.grid(axis="x", alpha=0.3)
        peak = max(scaled) if scaled else 1
        for y, v in enumerate(scaled):
            ax.text(v + peak * 0.01, y, f"{v:,.2f}M", va="center", fontsize=7)
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


def scatter(points, path) -> None:
    """MACs against params, one labelled point per network, log-log, labels kept apart."""
    import numpy as np
    fig = _figure(9, 6.5)
    ax = fig.subplots()
    if not points:  # no network with both parameters and MACs: nothing to place on log axes
        ax.text(0.5, 0.5, "no network has both parameters and MACs", ha="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        save(fig, path)
        return
    xs = np.log10([p[1] / 1e6 for p in points])
    ys = np.log10([p[2] / 1e9 for p in points])
    x_lim = (xs.min() - 0.6, xs.max() + 0.9)
    y_lim = (ys.min() - 0.6, ys.max() + 1.0)
    ax.scatter(10 ** xs, 10 ** ys, color="tab:blue", zorder=3)
    for (name, _, _), (lx, ly), x, y in zip(points, label_places(points, xs, ys, x_lim, y_lim), xs, ys):
        ax.annotate(name, (10 ** x, 10 ** y), xytext=(10 ** lx, 10 ** ly), fontsize=8,
                    va="center", arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(10 ** x_lim[0], 10 ** x_lim[1])
    ax.set_ylim(10 ** y_lim[0], 10 ** y_lim[1])
    ax.set_xlabel("parameters (millions, log scale)")
    ax.set_ylabel("multiply-accumulates per image (G, log scale)")
    ax.set_title("Cost of each network: MACs against parameters")
    ax.grid(alpha=0.3, which="both")
    save(fig, path)


def label_places(points, xs, ys, x_lim, y_lim):
    """Greedy placement in log coordinates: each label takes the first nearby slot whose box
    overlaps no label placed before it (boxes estimated from the font size)."""
    per_char = 0.0085 * (x_lim[1] - x_lim[0])  # 8-point text on a 9-inch wide axis
    height = 0.03 * (y_lim[1] - y_lim[0])
    steps = [k * height for k in range(1, 16)]
    dot = height / 2  # the markers are obstacles too
    placed = [(x - dot, y - dot, x + dot, y + dot) for x, y in zip(xs, ys)]
    order = sorted(range(len(points)), key=lambda i: (ys[i], xs[i]))
    spots = {}
    for i in order:
        width = per_char * len(points[i][0])
        away = _away_from_neighbour(i, xs, ys)  # move the label away from the closest point
        offsets = [(0.05, 0.0)] + [(0.05, k * s) for k in steps for s in (away, -away)]
        for dx, dy in offsets:
            box = (xs[i] + dx, ys[i] + dy - height / 2, xs[i] + dx + width, ys[i] + dy + height / 2)
            if not any(_overlap(box, other) for other in placed):
                break
        placed.append(box)
        spots[i] = (box[0], box[1] + height / 2)
    return [spots[i] for i in range(len(points))]


def _away_from_neighbour(i, xs, ys) -> int:
    others = [j for j in range(len(xs)) if j != i]
    if not others:
        return 1
    j = min(others, key=lambda j: (xs[j] - xs[i]) ** 2 + (ys[j] - ys[i]) ** 2)
    return -1 if ys[j] > ys[i] else 1


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


SPACING = 2.6  # horizontal distance between branches, in node widths of the drawing


def graph_drawing(nodes, edges, title, path) -> None:
    """Layered drawing: nodes (name, label) top to bottom by depth, edges labelled with the
    shape they carry; branches spread sideways, joins gather them again."""
    place = _positions(nodes, edges)
    xs = [p[0] for p in place.values()]
    depth = -min(p[1] for p in place.values())
    fig = _figure(max(6.0, (max(xs) - min(xs)) + 3.5), max(4.0, 0.95 * (depth + 1) + 0.8))
    ax = fig.subplots()
    ax.set_axis_off()
    labels = dict(nodes)
    bow = 0.0
    for a, b, shape in edges:
        (x0, y0), (x1, y1) = place[a], place[b]
        straight_through = abs(x1 - x0) < 1e-9 and y0 - y1 > 1  # would cross the nodes between
        bend = 0.45 if straight_through else 0.0
        bow = max(bow, bend * (y0 - y1) / 2)
        ax.annotate("", (x1, y1 + 0.22), (x0, y0 - 0.22),
                    arrowprops={"arrowstyle": "->", "color": "0.45", "lw": 1.0,
                                "connectionstyle": f"arc3,rad={bend}"})
        # label an arc at its apex, a long straight edge near its source, a short one midway
        along = 0.5 if straight_through or y0 - y1 <= 1 else 0.3
        apex = bend * (y0 - y1) / 2  # arc3's curve passes half the control distance out
        lx, ly = x0 + (x1 - x0) * along - apex, y0 + (y1 - y0) * along
        ax.text(lx, ly, shape, fontsize=6.5, ha="center", va="center", color="0.25",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.9})
    for name, (x, y) in place.items():
        ax.text(x, y, labels[name], ha="center", va="center", fontsize=7.5,
                bbox={"boxstyle": "round,pad=0.3", "facecolor": "#e8f0fb", "edgecolor": "#4a78b5"})
    ax.set_xlim(min(xs) - 1.6 - bow, max(xs) + 1.6)
    ax.set_ylim(-depth - 0.6, 0.6)
    ax.set_title(title)
    save(fig, path)


def _positions(nodes, edges) -> dict:
    """(x, y) per node. y: minus the longest path from a source. x: the main branch (the
    child with the most layers below it) stays under its parent, other branches step aside
    left and right; a join sits under its deepest input, so a block's output lines up again."""
    parents = {n: [] for n, _ in nodes}
    children = {n: [] for n, _ in nodes}
    for a, b, _ in edges:
        parents[b].append(a)
        children[a].append(b)
    order = [n for n, _ in nodes]  # topological
    depth = {}
    for n in order:
        depth[n] = 1 + max((depth[p] for p in parents[n]), default=-1)
    below = {}
    for n in reversed(order):
        below[n] = 1 + sum(below[c] for c in children[n] if len(parents[c]) == 1)
    x = {}
    roots = [n for n in order if not parents[n]]
    for i, n in enumerate(roots):
        x[n] = i * SPACING
    for n in order:
        branches = [c for c in children[n] if len(parents[c]) == 1]
        main = max(branches, key=lambda c: below[c], default=None)
        side = 0
        for c in branches:
            if c is main:
                x[c] = x[n]
            else:
                side = -side if side > 0 else -side + 1
                x[c] = x[n] + side * SPACING
        for c in children[n]:
            if len(parents[c]) > 1 and all(p in x for p in parents[c]):
                x[c] = x[max(parents[c], key=lambda p: depth[p])]
    return {n: (x[n], -depth[n]) for n in order}


def finite(values) -> bool:
    return all(is_int(v) for v in values)
