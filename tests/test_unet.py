"""U-Net (Ronneberger, Fischer, Brox 2015, Fig. 1) worked out by hand, and the crop kind its
copy-and-crop needs: the centre of a map, an odd cut's extra row at the bottom."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import archcalc
from archcalc.errors import SpecError
from test_onnx import TOLERANCE, needs_onnx, relative_error, same_rows, session, verified_round_trip

UNET = Path(__file__).resolve().parents[1] / "specs" / "unet.arch"
WIDTHS = (64, 128, 256, 512, 1024)

# The map sizes printed in Fig. 1, level by level: two valid 3x3 convs (n - 2 each), then a 2x2/2
# max pool down (n / 2), or a 2x2/2 up-conv up (2n).
DOWN = [(572, 570, 568), (284, 282, 280), (140, 138, 136), (68, 66, 64), (32, 30, 28)]
UP = [(56, 54, 52), (104, 102, 100), (200, 198, 196), (392, 390, 388)]


def test_figure_1_sizes_follow_the_rules_of_valid_convs_pools_and_up_convs():
    for n, a, b in DOWN + UP:
        assert (a, b) == (n - 2, a - 2)
    for (_, _, b), (n, _, _) in zip(DOWN, DOWN[1:]):
        assert b % 2 == 0 and n == b // 2  # every pool halves an even size
    for (_, _, b), (n, _, _) in zip(DOWN[-1:] + UP, UP):
        assert n == 2 * b


def test_every_map_size_is_the_figures():
    a = archcalc.analyze(UNET)
    shape = {r.name: tuple(r.out_shape) for r in a.rows}
    assert shape["x"] == (572, 572, 1)
    for level, ((n, a1, a2), c) in enumerate(zip(DOWN, WIDTHS), start=1):
        if level > 1:
            assert shape[f"pool{level - 1}"] == (n, n, c // 2)
        assert (shape[f"enc{level}.conv1"], shape[f"enc{level}.conv2"]) == ((a1, a1, c), (a2, a2, c))
    for level, (n, a1, a2) in zip((4, 3, 2, 1), UP):
        c = WIDTHS[level - 1]
        assert shape[f"up{level}"] == shape[f"crop{level}"] == (n, n, c)   # the up-conv halves 2c
        assert shape[f"cat{level}"] == (n, n, 2 * c)
        assert (shape[f"dec{level}.conv1"], shape[f"dec{level}.conv2"]) == ((a1, a1, c), (a2, a2, c))
    assert shape["out"] == (388, 388, 2)
    assert a.notes == ()  # every pool exact, every crop centred


def test_each_crop_cuts_the_same_border_on_every_side():
    """Copy and crop: the contracting path's map, cut to the up-conv's output, (d/2) each side."""
    a = archcalc.analyze(UNET)
    for level, (big, small) in zip((4, 3, 2, 1), [(64, 56), (136, 104), (280, 200), (568, 392)]):
        row = a.row(f"crop{level}")
        assert [tuple(s) for s in row.in_shapes] == [(big, big, WIDTHS[level - 1]), (small, small, WIDTHS[level - 1])]
        assert (row.params, row.macs, row.other_ops) == (0, 0, 0)
    assert [(64 - 56) // 2, (136 - 104) // 2, (280 - 200) // 2, (568 - 392) // 2] == [4, 16, 40, 88]
    # its field is the contracting path's map it copies, not the up-conv's it only takes a size from
    assert a.row("crop1").receptive_field == a.row("enc1.conv2").receptive_field == (5, 1)


def double_params(c_prev, c):  # two 3x3 convs with biases
    return (3 * 3 * c_prev + 1) * c + (3 * 3 * c + 1) * c


def double_macs(n_out1, n_out2, c_prev, c):
    return n_out1 * n_out1 * c * 3 * 3 * c_prev + n_out2 * n_out2 * c * 3 * 3 * c


def test_params_and_macs_by_hand():
    params = (double_params(1, 64) + double_params(64, 128) + double_params(128, 256)
              + double_params(256, 512) + double_params(512, 1024)
              + (2 * 2 * 1024 * 512 + 512) + double_params(1024, 512)     # up4, dec4 (reads 2 x 512)
              + (2 * 2 * 512 * 256 + 256) + double_params(512, 256)
              + (2 * 2 * 256 * 128 + 128) + double_params(256, 128)
              + (2 * 2 * 128 * 64 + 64) + double_params(128, 64)
              + (64 + 1) * 2)                                               # the 1x1 conv to 2 classes
    # up-conv MACs as the kind counts them: n_H_prev*n_W_prev*n_C_prev * f*f*n_C
    macs = (double_macs(570, 568, 1, 64) + double_macs(282, 280, 64, 128) + double_macs(138, 136, 128, 256)
            + double_macs(66, 64, 256, 512) + double_macs(30, 28, 512, 1024)
            + 28 * 28 * 1024 * 2 * 2 * 512 + double_macs(54, 52, 1024, 512)
            + 52 * 52 * 512 * 2 * 2 * 256 + double_macs(102, 100, 512, 256)
            + 100 * 100 * 256 * 2 * 2 * 128 + double_macs(198, 196, 256, 128)
            + 196 * 196 * 128 * 2 * 2 * 64 + double_macs(390, 388, 128, 64)
            + 388 * 388 * 2 * 64)
    assert (params, macs) == (31_030_658, 150_428_424_448)
    totals = archcalc.analyze(UNET).totals
    assert (totals["params"], totals["macs"]) == (params, macs)
    assert archcalc.analyze(UNET).row("up4").macs == 28 * 28 * 1024 * 2 * 2 * 512 == 1_644_167_168


def test_the_smallest_input_is_188_with_a_4_x_4_output():
    """H = 16b + 124 for a b x b bottom map, 16b - 60 out; the decoder's last conv needs
    16b - 60 >= 1 and every up-conv's conv pair 2b - 4 >= 1, 4b - 12 >= 1, ...: b = 4."""
    from archcalc.analysis.bundle import report_bundle
    net = archcalc.load(UNET)
    assert report_bundle(net).smallest == 16 * 4 + 124 == 188
    a = archcalc.analyze(net, at={"H": 188, "W": 188})
    assert tuple(a.rows[-1].out_shape) == (16 * 4 - 60, 16 * 4 - 60, 2) and a.notes == ()
    assert tuple(a.row("enc5.conv2").out_shape) == (4, 4, 1024)
    with pytest.raises(SpecError, match="conv 'dec3.conv2': window larger than its padded input"):
        archcalc.analyze(net, at={"H": 187, "W": 187})


def test_an_odd_cut_is_noted_and_refused_when_strict():
    """At 192 the third pool floors 41/2 to 20, and crop3 must cut 41 - 8 = 33: 16 at the top
    and left, 17 at the bottom and right, as the PyTorch U-Nets' x[..., d//2 : d//2 + n]."""
    net = archcalc.load(UNET)
    notes = archcalc.analyze(net, at={"H": 192, "W": 192}).notes
    assert "crop 'crop3': n_H, n_W: 41 - 8 = 33 to cut is odd: 16 at the top (left), 17 at the bottom (right)" \
        in notes
    text = "network T {\n input x : (9, 8, 3)\n crop k : size=(4, 6)\n}\n"
    with pytest.raises(SpecError) as e:
        archcalc.analyze(archcalc.loads(text, "t.arch"), strict=True)
    assert str(e.value) == """t.arch:3:2: error: crop 'k': the crop of n_H is not centred: 5 to cut is odd
  |
3 |  crop k : size=(4, 6)
  |  ^^^^^^^^^^^^^^^^^^^^
  = n_H_prev - n_H = 9 - 4 = 5
  = floor(5/2) = 2 would be cut before, 3 after
  = input of 'k' is (9, 8, 3)"""


def test_a_crop_larger_than_its_input_says_both_sizes():
    text = "network T {\n input x : (8, 8, 3)\n conv c : f=3 c=3\n crop k <- c, x\n}\n"
    with pytest.raises(SpecError) as e:
        archcalc.analyze(archcalc.loads(text, "t.arch"))
    assert "crop 'k': n_H = 8 is larger than the input's 6" in str(e.value)
    assert "n_H_prev - n_H = 6 - 8 = -2" in str(e.value)
    assert "input 1 is (6, 6, 3), input 2 is (8, 8, 3)" in str(e.value)


TINY_UNET = """
network TinyUNet {
    input          x     : (13, 13, 3)
    conv           enc   : f=3 c=4                  # (11, 11, 4)
    relu           r
    maxpool        pool  : f=2 s=2                  # (5, 5, 4), floored
    conv           mid   : f=3 c=8                  # (3, 3, 8)
    conv_transpose up    : 2 4 s=2                  # (6, 6, 4)
    crop           crop  <- r, up                   # 11 - 6 = 5 cut: 2 before, 3 after
    concat         cat   <- crop, up                # (6, 6, 8)
    conv           out   : f=1 c=2
}
"""


@needs_onnx
def test_crop_exports_as_a_slice_of_rows_and_columns_and_imports_back(tmp_path, capsys):
    import onnx
    spec, model, back = verified_round_trip(tmp_path, capsys, TINY_UNET)
    assert "crop      crop <- r : size=(6, 6)" in back.read_text()  # the Slice holds the size, not its source
    same_rows(archcalc.analyze(archcalc.load(spec)), archcalc.analyze(archcalc.load(back)))
    (sliced,) = [n for n in onnx.load(str(model)).graph.node if n.op_type == "Slice"]
    inits = {t.name: onnx.numpy_helper.to_array(t).tolist() for t in onnx.load(str(model)).graph.initializer}
    assert [inits[i] for i in sliced.input[1:]] == [[2, 2], [2 + 6, 2 + 6], [2, 3]]
    x = np.random.default_rng(3).standard_normal((2, 3, 13, 13)).astype(np.float32)
    want = session(onnx.load(str(model))).run(None, {"x": x})[0]
    y = archcalc.run(archcalc.load(spec), x.transpose(0, 2, 3, 1)).output.transpose(0, 3, 1, 2)
    assert y.shape == want.shape == (2, 2, 6, 6) and relative_error(y, want) < TOLERANCE


@needs_onnx
@pytest.mark.parametrize("starts, ends, axes, found", [
    ([1, 1], [5, 5], [2, 3], (4, 4, 4)),        # 6 - 4 = 2 rows (columns) cut: 1 at the top (left)
    ([1], [-1], [-1], (6, 4, 4)),               # columns only, a negative end counted from the end
    ([0], [5], [2], (5, 6, 4)),                 # 1 row cut: floor(1/2) = 0 at the top, 1 at the bottom
    ([0], [4], [2], None),                      # 2 rows cut, both at the bottom: not the centre
])
def test_a_slice_of_rows_and_columns_imports_as_a_centred_crop(starts, ends, axes, found):
    from onnx_models import Builder

    from archcalc.onnx.importer import from_model
    b = Builder("crop")
    y = b.conv("x", 3, 4, 3)                     # (N, 4, 6, 6)
    y = b.node("Slice", [y, b.const(np.array(starts, np.int64)), b.const(np.array(ends, np.int64)),
                         b.const(np.array(axes, np.int64))])
    model = b.model(["N", 3, 8, 8], b.node("Flatten", [y], axis=1))
    if found is None:
        with pytest.raises(SpecError) as e:
            from_model(model, "crop.onnx")
        assert "Slice of rows 0 to 4 of 6 is not a centred crop (a crop of 4 starts at floor((6 - 4)/2) = 1)" \
            in str(e.value)
        return
    graph = from_model(model, "crop.onnx")
    a = archcalc.analyze(graph)
    assert [tuple(r.out_shape) for r in a.rows if r.kind == "crop"] == [found]
    sess = session(model)
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    from archcalc.onnx.layout import model_input, model_output
    result = archcalc.run(graph, model_input(graph, x), graph.weights)
    y = model_output(graph, result.analysis.rows[-1].name, result.output)
    assert relative_error(y, sess.run(None, {"x": x})[0]) < TOLERANCE
