"""What the report's pictures show, checked on the view data and the computed layout (inches),
never on pixels: node labels, spec order of branches, folding into columns, edge labels placed
where no node, edge or other label is; the cost panels' units; the sweep's full tables."""
from __future__ import annotations

import itertools

import pytest

from archcalc.analysis.bundle import layer_arguments
from archcalc.analysis.analyzer import analyze
from archcalc.cli import main
from archcalc.present import plots, views
from archcalc.present.layout import ASPECT, layout, segment_hits
from archcalc.source import load
from conftest import SPECS

PICTURED = ("lenet5", "alexnet_2gpu", "vgg16", "inception_3a", "googlenet", "resnet50",
            "resnet152")


def drawings(stem):
    net = load(SPECS / f"{stem}.arch")
    a, args = analyze(net), layer_arguments(net)
    return [d for d in (views.overview(a, args), views.detail_view(a, args)) if d]


def test_nodes_show_kernel_stride_channels_and_groups():
    nodes = dict(drawings("alexnet_2gpu")[0][0])
    assert nodes["conv1"] == "conv1\nconv 11x11/4 c=96"
    assert nodes["conv2"] == "conv2\nconv 5x5 c=256 g2"   # the two towers: groups=2
    assert nodes["conv3"] == "conv3\nconv 3x3 c=384"      # crosses the GPUs
    assert nodes["conv4"] == "conv4\nconv 3x3 c=384 g2"
    assert nodes["pool1"] == "pool1\nmaxpool 3x3/2"
    assert nodes["fc6"] == "fc6\nfc 4096"
    assert nodes["relu1"] == "relu1\nrelu"


def test_inception_branches_are_named_by_window_and_drawn_in_spec_order():
    nodes, edges, _ = drawings("inception_3a")[0]
    labels = dict(nodes)
    assert [labels[f"i3a.{b}"] for b in ("b1", "b2", "b3", "b4")] == [
        "i3a.b1\nconv 1x1 c=64", "i3a.b2\nconv 3x3 c=128", "i3a.b3\nconv 5x5 c=32",
        "i3a.b4\nconv 1x1 c=32"]
    g = layout(nodes, edges)
    xs = [g.nodes[f"i3a.{b}"][0] for b in ("b1", "b2", "b3", "b4")]
    assert xs == sorted(xs) and len(set(xs)) == 4  # left to right as written: no crossing


def test_a_long_chain_is_folded_into_columns():
    nodes, edges, _ = drawings("vgg16")[0]
    g = layout(nodes, edges)
    xs = [round(g.nodes[n][0], 6) for n, _ in nodes]
    # the input and 40 layers, in three columns read left to right
    assert len(nodes) == 41 and [xs.count(x) for x in sorted(set(xs))] == [14, 14, 13]
    assert xs == sorted(xs)
    assert g.height / g.width <= ASPECT


@pytest.mark.parametrize("stem", PICTURED)
def test_no_edge_label_touches_a_node_an_edge_or_another_label(stem):
    for nodes, edges, _ in drawings(stem):
        g = layout(nodes, edges)
        assert g.height / g.width <= ASPECT
        boxes = [label[4] for label in g.labels]
        segments = [s for p in g.paths for s in zip(p, p[1:])]
        for box in boxes:
            assert not any(box.overlaps(n) for n in g.boxes.values())
            assert not any(segment_hits(box, a, b) for a, b in segments)
            assert 0 <= box.x0 and box.x1 <= g.width and 0 <= box.y0 and box.y1 <= g.height
        assert not any(p.overlaps(q) for p, q in itertools.combinations(boxes, 2))
        assert not any(p.overlaps(q) for p, q in itertools.combinations(g.boxes.values(), 2))


def test_cost_panels_take_the_unit_of_their_numbers():
    # LeNet-5's largest layer, c5: (5*5*16 + 1)*120 = 48,120 params; f6 84*120 + 84 ...
    a = analyze(load(SPECS / "lenet5.arch"))
    params = [p for _, p, _ in plots.folded(a)]
    assert max(params) == (5 * 5 * 16 + 1) * 120
    assert plots.scale(params) == (1000, "K", "thousands")
    assert plots.scale([999]) == (1, "", "count")
    assert plots.scale([15_470_264_320]) == (10**9, "G", "billions")
    assert plots.scale([2_000_000]) == (10**6, "M", "millions")


def test_stride_two_rounds_once_for_both_sides():
    notes = analyze(load(SPECS / "resnet50.arch")).notes
    assert notes[0] == "conv 'conv1': n_H, n_W: (224 + 2*3 - 7)/2 + 1 = 112.5 -> 112"
    assert not any(n.startswith("conv 'conv1': n_W") for n in notes)


TINY = "network T(H=4, W=5, c=2) {\n    input x : (H, W, 3)\n    conv a : f=1 c=c\n}\n"


def test_a_sweep_prints_every_value_and_what_it_held(tmp_path, capsys):
    spec = tmp_path / "t.arch"
    spec.write_text(TINY)
    assert main(["sweep", str(spec), "--vary", "H=1..30"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "held: W=5, c=2"
    body = [line.split() for line in lines[3:]]
    assert body == [[str(h), f"{h * 5 * 3 * 2:,}"] for h in range(1, 31)]  # H*W*3*c


def test_a_grid_prints_every_column_in_groups(tmp_path, capsys):
    spec = tmp_path / "t.arch"
    spec.write_text(TINY)
    assert main(["sweep", str(spec), "--vary", "H=1..2", "--vary", "c=1..10", "--set", "W=7"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["held: W=7", "macs:"]
    headers = [line.split() for line in out if line.startswith("H \\ c")]
    assert headers == [["H", "\\", "c", *map(str, range(1, 9))], ["H", "\\", "c", "9", "10"]]
    rows = [line.split() for line in out if line[:1] in ("1", "2")]
    cells = {}
    for row in rows:
        cells.setdefault(row[0], []).extend(row[1:])
    assert cells == {str(h): [f"{h * 7 * 3 * c:,}" for c in range(1, 11)] for h in (1, 2)}
    assert out[-1] == "(20 points)"


def test_compare_prints_the_symbols_it_held(capsys):
    assert main(["compare", str(SPECS / "vgg16.arch"), str(SPECS / "lenet5.arch"),
                 "--set", "H=256"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "held: VGG16 H=256, W=224"
