"""Where the scatter's labels go: each label beside its dot, on a short leader line, no two
labels overlapping, no label on a dot, no two leaders crossing.

Everything is in inches on the axes (origin bottom left), so the rule is about what a reader
sees, whatever the data's scale. Dots that would sit on one another (ResNet-34 and its plain
twin) share one label: two labels cannot both be near one spot."""
from __future__ import annotations

import math
from typing import NamedTuple

DOT = 0.045     # the marker's radius (36 pt^2 marker: 6 pt across), with a hair of room
PAD = 0.02      # white space kept around a label's box
SAME = 0.06     # dots closer than this are drawn as one: one label names them all
RADII = (0.09, 0.22, 0.36, 0.5, 0.65, 0.8, 0.95, 1.1)   # leader lengths tried, shortest first
# directions tried at each length, in degrees, most readable first: right, left, above, below
ANGLES = (0, 180, 30, -30, 150, -150, 90, -90, 60, -60, 120, -120)
TEXT_PT = 8
ROUNDS = 8      # searches from a new order at most, each a greedy pass (a large index stays quick)


class Place(NamedTuple):
    box: tuple[float, float, float, float]   # x0, y0, x1, y1 of the text, inches
    anchor: tuple[float, float]               # where the leader meets the text
    ha: str
    va: str


def groups(dots, names) -> list[tuple[tuple[float, float], str]]:
    """One (dot, label) per spot: dots within SAME of the first of a group join its label."""
    out: list[list] = []
    for (x, y), name in zip(dots, names):
        near = next((g for g in out if math.dist(g[0], (x, y)) < SAME), None)
        if near:
            near[1].append(name)
        else:
            out.append([(x, y), [name]])
    return [(dot, ", ".join(members)) for dot, members in out]


def candidate(dot, size, r, angle) -> Place:
    """The label's box with its nearest side (or corner of it) r inches from the dot."""
    (x, y), (w, h) = dot, size
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    ax, ay = x + r * c, y + r * s
    if c > 0.3:
        return Place((ax, ay - h / 2, ax + w, ay + h / 2), (ax, ay), "left", "center")
    if c < -0.3:
        return Place((ax - w, ay - h / 2, ax, ay + h / 2), (ax, ay), "right", "center")
    if s > 0:
        return Place((ax - w / 2, ay, ax + w / 2, ay + h), (ax, ay), "center", "bottom")
    return Place((ax - w / 2, ay - h, ax + w / 2, ay), (ax, ay), "center", "top")


def label_places(dots, sizes, area) -> list[Place]:
    """A place for each label (sizes in inches) of the dots, inside area (width, height).

    Deterministic search: labels in crowded spots choose first; each takes the shortest leader,
    then the most readable direction, that clashes with nothing placed. A label left with no
    clear place goes first in the next round, until every label has one (or the rounds run
    out, when each keeps its least-clashing place)."""
    order = sorted(range(len(dots)), key=lambda i: (-_crowd(i, dots), i))
    for _ in range(ROUNDS):
        places, stuck = _greedy(order, dots, sizes, area)
        if not stuck:
            break
        order = stuck + [i for i in order if i not in stuck]
    for _ in range(ROUNDS if not stuck else 0):  # the longest leader's label chooses first,
        longest = max(places, key=lambda i: (math.dist(dots[i], places[i].anchor), -i))
        if order[0] == longest:
            break
        trial_order = [longest] + [i for i in order if i != longest]
        trial, stuck_trial = _greedy(trial_order, dots, sizes, area)
        if stuck_trial or _spread(trial, dots) >= _spread(places, dots):
            break  # ... while that shortens the leaders
        places, order = trial, trial_order
    return [places[i] for i in range(len(dots))]


def _spread(places, dots) -> tuple[float, float]:
    lengths = [math.dist(dots[i], p.anchor) for i, p in places.items()]
    return max(lengths), sum(lengths)


def _crowd(i, dots) -> int:
    return sum(math.dist(dots[i], d) < 1.0 for d in dots)


def _greedy(order, dots, sizes, area):
    places, stuck = {}, []
    for i in order:
        count, places[i] = _first(i, dots, sizes, area, places)
        if count:
            stuck.append(i)
    if not stuck:
        places = _shorten(order, dots, sizes, area, places)
    return places, stuck


def _first(i, dots, sizes, area, places) -> tuple[int, Place]:
    """The first clear option for label i in the order tried, else the least-clashing one."""
    count, best = math.inf, None
    for option in (candidate(dots[i], sizes[i], r, a) for r in RADII for a in ANGLES):
        n = clashes(i, option, places, dots, area)
        if n < count:
            count, best = n, option
        if not n:
            break
    return count, best


def _shorten(order, dots, sizes, area, places):
    """Each label in turn moves to a better place freed by those placed after it (every move
    takes an earlier option, so the passes would end; ROUNDS of them are plenty)."""
    for _ in range(ROUNDS):
        moved = False
        for i in order:
            others = {j: p for j, p in places.items() if j != i}
            _, best = _first(i, dots, sizes, area, others)
            moved, places[i] = moved or best != places[i], best
        if not moved:
            break
    return places


def clashes(i, place, places, dots, area) -> int:
    """How many rules the place of label i breaks against the dots and the labels in places."""
    box, leader = _padded(place.box), (dots[i], place.anchor)
    count = not _inside(box, area)
    count += sum(_box_meets_dot(box, d) for d in dots)
    count += sum(_segment_near_dot(leader, d) for j, d in enumerate(dots) if j != i)
    for j, other in places.items():
        if j == i:
            continue
        other_leader = (dots[j], other.anchor)
        count += _boxes_meet(box, _padded(other.box))
        count += _segments_cross(leader, other_leader)
        count += _segment_meets_box(leader, other.box) + _segment_meets_box(other_leader, place.box)
    return count


def _padded(b):
    return (b[0] - PAD, b[1] - PAD, b[2] + PAD, b[3] + PAD)


def _inside(b, area) -> bool:
    return b[0] >= 0 and b[1] >= 0 and b[2] <= area[0] and b[3] <= area[1]


def _boxes_meet(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _box_meets_dot(b, d) -> bool:
    nx, ny = min(max(d[0], b[0]), b[2]), min(max(d[1], b[1]), b[3])
    return math.dist((nx, ny), d) < DOT


def _segment_near_dot(seg, d) -> bool:
    (x0, y0), (x1, y1) = seg
    dx, dy = x1 - x0, y1 - y0
    t = max(0.0, min(1.0, ((d[0] - x0) * dx + (d[1] - y0) * dy) / (dx * dx + dy * dy or 1)))
    return math.dist((x0 + t * dx, y0 + t * dy), d) < DOT


def _orient(p, q, r) -> float:
    return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])


def _segments_cross(a, b) -> bool:
    """Proper crossing: each segment's ends lie strictly on both sides of the other."""
    (p1, p2), (q1, q2) = a, b
    return (_orient(p1, p2, q1) * _orient(p1, p2, q2) < 0
            and _orient(q1, q2, p1) * _orient(q1, q2, p2) < 0)


def _segment_meets_box(seg, b) -> bool:
    (x0, y0), (x1, y1) = seg
    if any(b[0] < x < b[2] and b[1] < y < b[3] for x, y in seg):
        return True
    corners = ((b[0], b[1]), (b[2], b[1]), (b[2], b[3]), (b[0], b[3]))
    return any(_segments_cross(seg, (corners[k], corners[(k + 1) % 4])) for k in range(4))
