"""The scatter's labels, checked on the computed placement (inches on the axes), never on
pixels: no two labels overlap, no label covers a dot, no two leader lines cross, no leader runs
through a label, every label sits inside the axes and close to its dot. The geometry is written
out here again, apart from the module's own."""
from __future__ import annotations

import re
from pathlib import Path

from archcalc.present import labels, plots

INDEX = Path(__file__).resolve().parent.parent / "reports" / "index.md"
ROW = re.compile(r"\| \[(\w+)\]\S* +\| `[^`]*` +\| +([\d,]+) \| +([\d,]+) \|")


def committed_points():
    """(network, params, MACs) of every network in the committed index."""
    rows = (ROW.match(line) for line in INDEX.read_text().splitlines())
    return [(m[1], int(m[2].replace(",", "")), int(m[3].replace(",", ""))) for m in rows if m]


def overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def side(p, q, r):
    return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])


def cross(a, b):
    return (side(*a, b[0]) * side(*a, b[1]) < 0) and (side(*b, a[0]) * side(*b, a[1]) < 0)


def through(segment, box):
    """A segment meets a box when an end is inside it or it crosses one of its four sides."""
    x0, y0, x1, y1 = box
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    inside = any(x0 < x < x1 and y0 < y < y1 for x, y in segment)
    return inside or any(cross(segment, (corners[k], corners[k - 1])) for k in range(4))


def dot_in(box, dot, r=labels.DOT):
    return overlap(box, (dot[0] - r, dot[1] - r, dot[0] + r, dot[1] + r))


def check(dots, places, area, reach):
    boxes = [p.box for p in places]
    leaders = [(d, p.anchor) for d, p in zip(dots, places)]
    for i, box in enumerate(boxes):
        assert 0 <= box[0] and 0 <= box[1] and box[2] <= area[0] and box[3] <= area[1], i
        assert abs(places[i].anchor[0] - dots[i][0]) <= reach, i
        assert abs(places[i].anchor[1] - dots[i][1]) <= reach, i
        assert not any(dot_in(box, d) for d in dots), i
        for j in range(len(boxes)):
            if j != i:
                assert not overlap(box, boxes[j]), (i, j)
                assert not cross(leaders[i], leaders[j]), (i, j)
                assert not through(leaders[i], boxes[j]), (i, j)


def test_every_committed_network_is_labelled_apart_and_near_its_dot():
    points = committed_points()
    assert len(points) == len(list((INDEX.parent.parent / "specs").glob("*.arch")))  # every spec, one dot each
    _, _, spots, places = plots.scatter_places(points)
    names = [name for _, name in spots]
    # ResNet-34 and its plain twin differ by 173,824 params (0.8%) and 19,267,584 MACs (0.5%):
    # one spot on the page, so one label
    assert "Plain34, ResNet34" in names
    assert sorted(n for label in names for n in label.split(", ")) == sorted(p[0] for p in points)
    # each label takes the shortest free leader of the placer's radii; where the page is crowded
    # (the ImageNet networks between 10 and 100 M params) a few need its longest, 1.1 in
    check([d for d, _ in spots], places, plots.SCATTER_AXES[2:], reach=max(labels.RADII))
    assert max(labels.RADII) == 1.1


def test_a_crowd_of_dots_gets_labels_that_keep_apart():
    # a 4 x 3 grid of dots a quarter inch apart, each label as wide as "ResNet152"
    dots = [(3 + 0.25 * i, 2 + 0.25 * j) for i in range(4) for j in range(3)]
    sizes = [(0.6, 0.12)] * len(dots)
    places = labels.label_places(dots, sizes, (8.0, 5.0))
    check(dots, places, (8.0, 5.0), reach=labels.RADII[-1])


def test_a_lone_dot_is_labelled_just_to_its_right():
    (place,) = labels.label_places([(1.0, 1.0)], [(0.5, 0.125)], (4.0, 3.0))
    assert place == labels.Place((1.09, 0.9375, 1.59, 1.0625), (1.09, 1.0), "left", "center")


def test_dots_on_one_spot_share_one_label():
    spots = labels.groups([(1.0, 1.0), (1.03, 1.04), (2.0, 1.0)], ["Plain34", "ResNet34", "VGG16"])
    assert spots == [((1.0, 1.0), "Plain34, ResNet34"), ((2.0, 1.0), "VGG16")]


def test_counts_past_floats_are_placed_from_their_exact_logarithms():
    # 10^400 params would overflow a float; log10 of the integer does not
    points = [("Huge", 10**400, 10**401), ("LeNet5", 61_706, 416_520)]
    x_lim, y_lim, spots, places = plots.scatter_places(points)
    assert (round(x_lim[1] - 0.9), round(y_lim[1] - 1.0)) == (400 - 6, 401 - 9)
    check([d for d, _ in spots], places, plots.SCATTER_AXES[2:], reach=0.4)
