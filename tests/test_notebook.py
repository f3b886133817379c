"""The notebook: short reprs, HTML tables (Jupyter's _repr_html_), and symbols bound by name.
Every figure at 448 is worked out here by hand or from the figure at 224, independently of the
formula it checks."""
from __future__ import annotations

import pytest

import archcalc
from archcalc import SpecError

from conftest import ROOT, SPECS

GOLDEN = ROOT / "tests" / "golden"


def test_repr_is_one_short_line():
    assert repr(archcalc.analyze(SPECS / "vgg16.arch")) == \
        "<Analysis VGG16: 41 layers, params 138,357,544, MACs 15,470,264,320>"
    assert repr(archcalc.analyze(str(SPECS / "inception_bottleneck.arch"), free=("b",))) == \
        "<Analysis InceptionBottleneck in b: 3 layers, params 993*b + 32, MACs 777728*b>"


def test_repr_of_a_long_formula_ends_after_whole_terms():
    a = archcalc.analyze(SPECS / "resnet50.arch", free=("H", "W"))
    assert repr(a) == ("<Analysis ResNet50 in H, W: 176 layers, params 25,557,032, "
                       "MACs 14417920*ceiling(H/32)*ceiling(W/32) + ...>")


def test_html_of_a_small_network_lists_every_layer(golden):
    golden(GOLDEN / "notebook_lenet5.html", archcalc.analyze(SPECS / "lenet5.arch")._repr_html_())


def test_html_of_a_large_network_folds_to_blocks(golden):
    html = archcalc.analyze(SPECS / "resnet50.arch")._repr_html_()
    golden(GOLDEN / "notebook_resnet50.html", html)
    # torchvision's per-module sums: layer3 holds 7,098,368 params
    assert ("<tr><td>layer3</td><td>block (62 layers)</td><td>14 x 14 x 1024</td>"
            '<td style="text-align:right">7,098,368</td>') in html


def test_html_without_blocks_shows_head_and_tail():
    layers = "\n".join(f"    relu r{i}" for i in range(60))
    a = archcalc.analyze(archcalc.loads(f"network Deep {{\n    input x : (4, 4, 1)\n{layers}\n}}\n"))
    html = a._repr_html_()
    assert html.count("<tr>") == 1 + 20 + 1 + 10 + 1  # header, head, the fold, tail, total
    assert '<tr><td colspan="5"><i>… 31 more layers</i></td></tr>' in html
    assert "<td>r59</td>" in html and "<td>r19</td>" not in html and "<td>r18</td>" in html


def test_html_escapes_names():
    net = archcalc.load(SPECS / "lenet5.arch")
    a = archcalc.analyze(net)
    odd = a.rows[1].__class__(**{**a.rows[1].__dict__, "name": "<b>&x"})
    html = a.__class__(**{**a.__dict__, "network": "<script>", "rows": (odd,)})._repr_html_()
    assert "<caption>&lt;script&gt;: 1 layers</caption>" in html
    assert "<td>&lt;b&gt;&amp;x</td>" in html and "<script>" not in html


def test_at_reanalyses_with_every_check():
    f = archcalc.analyze(SPECS / "resnet50.arch", free=("H", "W"))
    a = f.at(H=448, W=448)
    assert a.symbols == {"H": 448, "W": 448} and a.free == ()
    # every map doubles its side, so conv MACs grow 4x; the fc's 2,048 x 1,000 do not
    assert a.totals["macs"] == 4 * (4_089_184_256 - 2_048_000) + 2_048_000 == 16_350_593_024
    half = f.at(H=448)
    assert half.free == ("W",) and half.at(W=448).totals == a.totals
    with pytest.raises(SpecError, match="unknown symbol 'h'"):
        f.at(h=448)


def alexnet_448_macs() -> int:
    """AlexNet (the course's) at 448 x 448, by hand: conv1 (448 - 11)//4 + 1 = 110, pool1 54,
    conv2 54 (same), pool2 26, conv3-5 26, pool5 12, flatten 12*12*256 = 36,864."""
    return (110 * 110 * 96 * 11 * 11 * 3 + 54 * 54 * 256 * 5 * 5 * 96
            + 26 * 26 * (384 * 3 * 3 * 256 + 384 * 3 * 3 * 384 + 256 * 3 * 3 * 384)
            + 36_864 * 4096 + 4096 * 4096 + 4096 * 1000)


@pytest.mark.parametrize("spec, macs, params", [
    ("resnet50", 16_350_593_024, 25_557_032),
    ("alexnet", alexnet_448_macs(), 62_378_344 + (36_864 - 9_216) * 4096),
])
def test_a_formula_at_a_point_equals_the_analysis_at_that_point(spec, macs, params):
    f = archcalc.analyze(SPECS / f"{spec}.arch", free=("H", "W"))
    assert archcalc.subs(f.totals["macs"], H=448, W=448) == macs
    assert type(archcalc.subs(f.totals["macs"], H=448, W=448)) is int
    assert f.totals_at(H=448, W=448) == f.at(H=448, W=448).totals
    assert f.totals_at(H=448, W=448)["params"] == params
    assert archcalc.analyze(SPECS / f"{spec}.arch", at={"H": 448, "W": 448}).totals["macs"] == macs


def test_alexnet_at_448_by_hand():
    assert alexnet_448_macs() == 4_478_404_736


def test_subs_by_name_refuses_a_name_not_in_the_formula():
    f = archcalc.analyze(SPECS / "inception_bottleneck.arch", free=("b",))
    assert archcalc.subs(f.totals["params"], b=16) == 15_920 == 993 * 16 + 32
    with pytest.raises(SpecError) as e:
        archcalc.subs(f.totals["params"], B=16)
    assert str(e.value) == "error: no symbol 'B' in 993*b + 32\n  = its symbols: b"
    with pytest.raises(SpecError) as e:
        f.totals_at(H=16)
    assert str(e.value) == ("error: 'H' is not a free symbol of InceptionBottleneck\n"
                            "  = free symbols: b")


def test_compare_and_sweep_show_in_a_notebook():
    c = archcalc.compare(SPECS / "inception_naive.arch", SPECS / "inception_bottleneck.arch")
    assert repr(c) == ("<Comparison InceptionNaive (params 153,632, MACs 120,422,400), "
                       "InceptionBottleneck (params 15,920, MACs 12,443,648)>")
    html = c._repr_html_()
    assert "<caption>ratios against the first network; InceptionBottleneck: b = 16</caption>" in html
    assert '<td style="text-align:right">9.68x fewer</td>' in html
    assert c.text().splitlines()[0].split() == ["InceptionNaive", "InceptionBottleneck"]
    s = archcalc.sweep(SPECS / "resnet50.arch", H=range(224, 449, 224))
    assert repr(s) == "<Sweep ResNet50 macs over H=224..448: 2 points>"
    assert [int(v) for v in s.values] == [4_089_184_256, 2 * (4_089_184_256 - 2_048_000) + 2_048_000]
    assert s._repr_html_() == (
        "<table>\n<caption>ResNet50: macs; W = 224</caption>\n"
        '<tr><th>H</th><th style="text-align:right">macs</th></tr>\n'
        '<tr><td>224</td><td style="text-align:right">4,089,184,256</td></tr>\n'
        '<tr><td>448</td><td style="text-align:right">8,176,320,512</td></tr>\n</table>')


def test_a_wide_sweep_says_which_columns_it_shows():
    s = archcalc.sweep(SPECS / "inception_bottleneck.arch", b=range(1, 51))
    assert s.values.shape == (50,) and int(s.values[49]) == 777_728 * 50
    assert "<i>… 20 more values</i>" in s._repr_html_()
    grid = archcalc.sweep(SPECS / "resnet50.arch", H=range(32, 65, 32), W=range(32, 32 * 21, 32))
    html = grid._repr_html_()
    assert "<caption>ResNet50: macs; 12 of 20 columns shown</caption>" in html
    with pytest.raises(SpecError, match="no network declares the symbol 'Q'"):
        archcalc.compare(SPECS / "lenet5.arch", SPECS / "vgg16.arch", at={"Q": 1})


def test_an_analysis_sent_to_another_process_leaves_its_network_behind():
    import pickle
    a = archcalc.analyze(SPECS / "lenet5.arch")
    b = pickle.loads(pickle.dumps(a))
    assert b == a and b.net is None and a.net is not None
    with pytest.raises(SpecError, match="made without its network"):
        b.at()
