"""Where a graph drawing puts things, in inches, with no matplotlib: node boxes, edge paths and
edge labels. A pure function of (nodes, edges), so tests check the geometry exactly.

Nodes go top to bottom by depth; a branch steps aside in spec order (those before the main
branch to the left, those after it to the right), so branches never cross. A long drawing is
cut into columns read left to right (an edge that crosses a cut runs up the gutter), so the
picture stays at most ASPECT times taller than wide. Each edge's shape label sits beside its
edge, in a place no edge, node or other label occupies."""
from __future__ import annotations

from dataclasses import dataclass

NODE_PT, LABEL_PT = 7.5, 6.5
CHAR = 0.62 / 72           # inches per point of font size, per character (DejaVu Sans, generous)
LINE = 1.3 / 72            # line height per point
PAD = 0.08                 # inside a node box, each side
ROW = 0.8                  # vertical distance between depths
GAP = 0.05                 # between an edge and its label
MARGIN = 0.3
TITLE = 0.45               # room above the drawing for its title
ASPECT = 2.5               # height / width at most, cutting into columns
GUTTER = 0.6               # between columns
FOLD_ROWS = 14             # a drawing this short stays one column (its canvas widens instead)


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, o: "Box") -> bool:
        return self.x0 < o.x1 and o.x0 < self.x1 and self.y0 < o.y1 and o.y0 < self.y1


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    nodes: dict      # name -> (x, y) centre
    boxes: dict      # name -> Box
    paths: tuple     # per edge: ((x, y), ...) from the source box to the target box
    labels: tuple    # per edge: (text, x, y, "left"|"right", Box)


def text_size(text: str, points: float) -> tuple[float, float]:
    lines = text.split("\n")
    return max(len(s) for s in lines) * points * CHAR, len(lines) * points * LINE


def depths(nodes, edges) -> tuple[dict, dict, dict]:
    parents = {n: [] for n, _ in nodes}
    children = {n: [] for n, _ in nodes}
    for a, b, _ in edges:
        parents[b].append(a)
        children[a].append(b)
    depth = {}
    for n, _ in nodes:  # topological order
        depth[n] = 1 + max((depth[p] for p in parents[n]), default=-1)
    return depth, parents, children


def columns(nodes, edges) -> dict:
    """x in column units. The main branch (the child with the most layers below it) stays
    under its parent; the others step aside in spec order; a join sits under its deepest input."""
    depth, parents, children = depths(nodes, edges)
    order = [n for n, _ in nodes]
    below = {}
    for n in reversed(order):
        below[n] = 1 + sum(below[c] for c in children[n] if len(parents[c]) == 1)
    x = {}
    for i, n in enumerate(n for n in order if not parents[n]):
        x[n] = i
    for n in order:
        branches = [c for c in children[n] if len(parents[c]) == 1]
        if branches:
            m = branches.index(max(branches, key=lambda c: below[c]))
            for i, c in enumerate(branches):
                x[c] = x[n] + i - m
        for c in children[n]:
            if len(parents[c]) > 1 and all(p in x for p in parents[c]):
                x[c] = x[max(parents[c], key=lambda p: depth[p])]
    return x


def cuts(edges, depth, per: int) -> list[int]:
    """Depths that start a new column, about `per` rows apart, only where a single edge
    crosses (a skip connection is never cut), so each column reads as one chain."""
    last = max(depth.values())
    single = [d for d in range(1, last + 1)
              if sum(depth[a] < d <= depth[b] for a, b, _ in edges) == 1]
    starts = [0]
    while last - starts[-1] >= per:
        within = [d for d in single if starts[-1] < d <= starts[-1] + per]
        beyond = [d for d in single if d > starts[-1] + per]
        if not within and not beyond:
            break
        starts.append(max(within) if within else min(beyond))
    if len(starts) > 1 and last - starts[-1] + 1 < 3:  # no column of one or two nodes
        starts.pop()
    return starts


def layout(nodes, edges) -> Layout:
    depth, parents, _ = depths(nodes, edges)
    sizes = {n: text_size(t, NODE_PT) for n, t in nodes}
    node_w = max(w for w, _ in sizes.values()) + 2 * PAD
    node_h = max(h for _, h in sizes.values()) + 2 * PAD
    label_w = max((text_size(s, LABEL_PT)[0] for _, _, s in edges), default=0)
    pitch = node_w + label_w + 2 * GAP + 0.25
    x = columns(nodes, edges)
    lo, hi = min(x.values()), max(x.values())
    span = (hi - lo) * pitch + node_w + label_w + 2 * GAP  # one column of the drawing
    rows = max(depth.values()) + 1
    per = rows
    while per > FOLD_ROWS and aspect(per, rows, span) > ASPECT:
        per -= 1
    per = -(-rows // -(-rows // per))  # the same number of columns, evenly filled
    starts = cuts(edges, depth, per)
    part = {n: sum(d >= s for s in starts) - 1 for n, d in depth.items()}
    height_rows = max(depth[n] - starts[part[n]] for n in depth) + 1
    height = height_rows * ROW + TITLE + MARGIN
    drawn = len(starts) * span + (len(starts) - 1) * GUTTER + 2 * MARGIN
    width = max(drawn, height / ASPECT)
    top = height - TITLE - ROW / 2
    centre = {n: ((width - drawn) / 2 + MARGIN + node_w / 2 + (x[n] - lo) * pitch + part[n] * (span + GUTTER),
                  top - (depth[n] - starts[part[n]]) * ROW) for n in depth}
    boxes = {n: Box(cx - (sizes[n][0] / 2 + PAD), cy - node_h / 2, cx + sizes[n][0] / 2 + PAD,
                    cy + node_h / 2) for n, (cx, cy) in centre.items()}
    paths = tuple(route(centre[a], centre[b], depth[b] - depth[a], part[a], part[b], node_h,
                        span, top, node_w, (width - drawn) / 2) for a, b, _ in edges)
    labels = place_labels([s for _, _, s in edges], paths, list(boxes.values()), width, height)
    return Layout(width, height, centre, boxes, paths, labels)


def aspect(per: int, rows: int, span: float) -> float:
    k = -(-rows // per)
    return (per * ROW + TITLE + MARGIN) / (k * span + (k - 1) * GUTTER + 2 * MARGIN)


def route(p, q, steps, part_p, part_q, node_h, span, top, node_w, left) -> tuple:
    (x0, y0), (x1, y1) = p, q
    start, end = (x0, y0 - node_h / 2), (x1, y1 + node_h / 2)
    if part_p != part_q:  # down, right into the gutter, up above the next column, to the target
        gx = left + MARGIN + (part_p + 1) * span + part_p * GUTTER + GUTTER / 2
        return (start, (x0, y0 - ROW / 2), (gx, y0 - ROW / 2), (gx, top + ROW / 2),
                (x1, top + ROW / 2), end)
    if abs(x1 - x0) < 1e-9 and steps > 1:  # a skip: around the layers between, on the left
        bx = x0 - node_w / 2 - GAP * 3
        return (start, (bx, y0 - ROW / 2), (bx, y1 + ROW / 2), end)
    if abs(x1 - x0) > 1e-9:  # down its own column, across above the target, down into it
        return (start, (x0, y1 + ROW / 2), (x1, y1 + ROW / 2), end)
    return (start, end)


def segment_hits(box: Box, a, b) -> bool:
    """Whether the segment a-b passes through the box (Liang-Barsky clipping)."""
    (x0, y0), (x1, y1) = a, b
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x0 - box.x0), (dx, box.x1 - x0), (-dy, y0 - box.y0), (dy, box.y1 - y0)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return True


def candidates(path, w, h):
    """Label boxes beside the path, longest segment first (the last one, at the target's top,
    for an edge into the next column), middle first, right side first."""
    segments = sorted(zip(path, path[1:]), key=lambda s: -abs(s[1][1] - s[0][1]))
    if len(path) == 6:
        segments.insert(0, (path[-2], path[-1]))
    for a, b in segments:
        for t in (0.5, 0.35, 0.65, 0.2, 0.8, 0.1, 0.9):
            px, py = a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t
            for away in (GAP, 4 * GAP):  # a diagonal edge needs its label further out
                yield "left", Box(px + away, py - h / 2, px + away + w, py + h / 2)
                yield "right", Box(px - away - w, py - h / 2, px - away, py + h / 2)


def place_labels(texts, paths, obstacles, width, height) -> tuple:
    segments = [s for p in paths for s in zip(p, p[1:])]
    taken = list(obstacles)
    labels = []
    for text, path in zip(texts, paths):
        w, h = text_size(text, LABEL_PT)
        first = None
        for align, box in candidates(path, w, h):
            first = first or (align, box)
            inside = box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height
            if inside and not any(box.overlaps(o) for o in taken) and \
                    not any(segment_hits(box, a, b) for a, b in segments):
                break
        else:
            align, box = first
        taken.append(box)
        x = box.x0 if align == "left" else box.x1
        labels.append((text, x, (box.y0 + box.y1) / 2, align, box))
    return tuple(labels)
