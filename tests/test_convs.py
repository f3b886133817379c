"""conv_transpose (U-Net's up-convolution), dwconv (the depthwise conv that reads its width from
its input) and conv's weight standardisation (NFNet): figures worked by hand, the executor
against onnxruntime, and ONNX models as PyTorch and timm export them read back exactly."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import archcalc
from archcalc.cli import main as cli
from archcalc.errors import SpecError
from test_onnx import needs_onnx, relative_error, same_rows, session, TOLERANCE

sys.path.insert(0, str(Path(__file__).parent))

SPEC = """
network Convs {
    input  x  : (6, 5, 4)
    conv   c1 : f=3 p=1 c=8 ws=on gain=on
    relu
    dwconv d1 : 3 s=2 p=1
    conv_transpose u1 : 3 6 s=2 p=1 out_pad=1
    conv   c2 : f=3 c=6 groups=2 ws=on
    conv_transpose u2 : 2 4 s=2 groups=2 bias=off
    dwconv d2 : 3 m=2
}
"""


def test_spec_figures_worked_by_hand():
    a = archcalc.analyze(archcalc.loads(SPEC, "convs.arch"))
    rows = {r.name: r for r in a.rows}
    # c1: K = 3*3*4 = 36 taps per filter; 36*8 + 8 bias + 8 gain = 304; 6*5*8 * 36 = 8,640 MACs;
    # other: bias 6*5*8 = 240, standardising 8*(5*36 + 2) = 1,456, gain 8*36 = 288: 1,984
    assert (rows["c1"].params, rows["c1"].macs, rows["c1"].other_ops) == (304, 8_640, 1_984)
    # d1: (6 + 2 - 3)//2 + 1 = 3, (5 + 2 - 3)//2 + 1 = 3; 3*3*8 + 8 = 80; 3*3*8 * 3*3 = 648
    assert (tuple(rows["d1"].out_shape), rows["d1"].params, rows["d1"].macs) == ((3, 3, 8), 80, 648)
    # u1: (3 - 1)*2 - 2 + 3 + 1 = 6; 3*3*8*6 + 6 = 438; 3*3*8 * 3*3*6 = 3,888
    assert (tuple(rows["u1"].out_shape), rows["u1"].params, rows["u1"].macs) == ((6, 6, 6), 438, 3_888)
    # c2: K = 3*3*3 = 27; 27*6 + 6 = 168; other: bias 4*4*6 = 96 + 6*(5*27 + 2) = 822: 918
    assert (rows["c2"].params, rows["c2"].macs, rows["c2"].other_ops) == (168, 2_592, 918)
    # u2: (4 - 1)*2 + 2 = 8; 2*2*(6/2)*4 = 48; 4*4*6 * 2*2*4/2 = 768
    assert (tuple(rows["u2"].out_shape), rows["u2"].params, rows["u2"].macs) == ((8, 8, 4), 48, 768)
    # d2: c = 2*4 = 8, groups 4: 3*3*1*8 + 8 = 80; 6*6*8 * 3*3 = 2,592
    assert (tuple(rows["d2"].out_shape), rows["d2"].params, rows["d2"].macs) == ((6, 6, 8), 80, 2_592)
    assert a.totals["params"] == 304 + 80 + 438 + 168 + 48 + 80
    assert a.totals["macs"] == 8_640 + 648 + 3_888 + 2_592 + 768 + 2_592


def analysed(statement, shape):
    text = f"network N {{\n    input x : {shape}\n    {statement}\n}}\n"
    return archcalc.analyze(archcalc.loads(text, "n.arch")).rows[-1]


@pytest.mark.parametrize("shape, statement, macs", [
    # MobileNet v1's depthwise, groups = c = n_C_prev = 128: 56*56*128 * 3*3
    ("(56, 56, 128)", "conv d : f=3 p=1 c=128 groups=128", 56 * 56 * 128 * 9),
    # ResNeXt-50's 32 groups of 4 maps: 56*56*128 * 3*3*128/32
    ("(56, 56, 128)", "conv g : f=3 p=1 c=128 groups=32", 56 * 56 * 128 * 9 * 4),
    # AlexNet's two towers: conv2 reads 96/2 = 48 maps, 27*27*256 * 5*5*48
    ("(27, 27, 96)", "conv t : f=5 p=2 c=256 groups=2", 27 * 27 * 256 * 25 * 48),
    # ShuffleNet v1's grouped 1x1, g = 3: 28*28*240 * 240/3
    ("(28, 28, 240)", "conv s : f=1 c=240 groups=3", 28 * 28 * 240 * 80),
    # a depth multiplier: groups = n_C_prev = 32, c = 64: each filter reads 1 map
    ("(10, 10, 32)", "conv m : f=3 p=1 c=64 groups=32", 10 * 10 * 64 * 9),
])
def test_grouped_convs_that_are_not_a_mistyped_depthwise_are_accepted(shape, statement, macs):
    assert analysed(statement, shape).macs == macs


def test_a_depthwise_conv_with_a_mistyped_width_is_refused():
    """MobileNet v1 with one 64 where 128 was meant would read 2 maps per filter, then halve
    the next pointwise conv: 543,050,240 MACs instead of 568,740,352 (by 56*56*128*64)."""
    assert 568_740_352 - 56 * 56 * 128 * 64 == 543_050_240
    with pytest.raises(SpecError) as e:
        analysed("conv d : f=3 p=1 c=64 groups=64", "(56, 56, 128)")
    assert "depthwise conv (groups = c = 64) on an input of n_C_prev = 128 maps" in str(e.value)
    assert "n_C_prev/groups = 128/64 = 2 maps" in str(e.value)


def test_u_net_up_convolution_arithmetic():
    """Ronneberger et al. 2015, figure 1: the first up-conv 2x2 halves 1024 maps of 28 x 28 to
    512 maps of 56 x 56."""
    r = analysed("conv_transpose up : 2 512 s=2", "(28, 28, 1024)")
    assert tuple(r.out_shape) == (56, 56, 512)
    assert r.params == 2 * 2 * 1024 * 512 + 512 == 2_097_664
    assert r.macs == 28 * 28 * 1024 * 2 * 2 * 512 == 1_644_167_168


@needs_onnx
def test_spec_runs_verified_exports_and_imports_back(tmp_path, capsys):
    import onnx
    spec, model, back = tmp_path / "convs.arch", tmp_path / "convs.onnx", tmp_path / "back.arch"
    spec.write_text(SPEC)
    assert cli(["run", str(spec), "--verify", "--batch", "2"]) == 0
    assert "every shape, MAC count and weight count equals the analysis" in capsys.readouterr().out
    assert cli(["export", str(spec), "-o", str(model)]) == 0
    assert cli(["import", str(model), "-o", str(back)]) == 0
    capsys.readouterr()
    text = back.read_text()
    assert "dwconv    d1 : f=3 s=2 p=1" in text and "dwconv    d2 : f=3 m=2" in text
    assert "conv_transpose u1 : f=3 c=6 s=2 p=1 out_pad=1" in text
    assert "conv      c1 : f=3 c=8 p=1 ws=on gain=on" in text
    same_rows(archcalc.analyze(archcalc.load(spec)), archcalc.analyze(archcalc.load(back)))
    x = np.random.default_rng(5).standard_normal((2, 4, 6, 5)).astype(np.float32)
    want = session(onnx.load(str(model))).run(None, {"x": x})[0]
    y = archcalc.run(archcalc.load(spec), x.transpose(0, 2, 3, 1)).output.transpose(0, 3, 1, 2)
    assert y.shape == want.shape == (2, 8, 6, 6) and relative_error(y, want) < TOLERANCE


def imported_against_onnxruntime(model, name):
    from archcalc.onnx.importer import from_model
    from archcalc.onnx.layout import model_input, model_output
    net = from_model(model, name)
    sess = session(model)
    x = np.random.default_rng(3).standard_normal([2] + sess.get_inputs()[0].shape[1:]).astype(np.float32)
    want = sess.run(None, {"x": x})[0]
    result = archcalc.run(net, model_input(net, x), net.weights)
    y = model_output(net, result.analysis.rows[-1].name, result.output)
    assert relative_error(y, want) < TOLERANCE
    return net, archcalc.analyze(net)


@needs_onnx
def test_conv_transpose_of_pytorch_imports_exactly():
    from onnx_models import upconv
    net, a = imported_against_onnxruntime(upconv()[0], "upconv.onnx")
    ups = [r for r in a.rows if r.kind == "conv_transpose"]
    # (5 - 1)*2 - 2 + 3 + 1 = 10, (6 - 1)*2 - 2 + 3 + 1 = 12; 3*3*(8/2)*6 + 6 = 222;
    # 5*6*8 * 3*3*6/2 = 6,480. Then (10 - 1)*2 + 2 = 20, 24; 2*2*6*4 = 96; 10*12*6 * 2*2*4 = 11,520
    assert [(tuple(r.out_shape), r.params, r.macs) for r in ups] == [((10, 12, 6), 222, 6_480),
                                                                     ((20, 24, 4), 96, 11_520)]
    assert net.layer(ups[0].name).op.out_pad == 1 and net.layer(ups[0].name).op.groups == 2


@needs_onnx
def test_a_dilated_conv_transpose_is_refused_with_the_reason():
    from onnx_models import upconv

    from archcalc.onnx.importer import from_model
    with pytest.raises(SpecError) as e:
        from_model(upconv(dilations=2)[0], "upconv.onnx")
    assert "ConvTranspose with dilations [2, 2]: archcalc's conv_transpose has dilation 1" in str(e.value)


@needs_onnx
def test_scaled_std_conv_of_timm_imports_as_ws_with_its_gain():
    from onnx_models import nfnet_like
    net, a = imported_against_onnxruntime(nfnet_like()[0], "nfnet.onnx")
    convs = [r for r in a.rows if r.kind == "conv"]
    assert [(net.layer(r.name).op.ws, net.layer(r.name).op.gain) for r in convs] == [(True, True)] * 2
    # conv 1: K = 3*3*3 = 27; 27*8 + 8 bias + 8 gain = 232; 6*7*8 * 27 = 9,072 MACs;
    # other: bias 6*7*8 = 336 + 8*(5*27 + 2) = 1,096 + gain 8*27 = 216: 1,648
    # conv 2: K = 3*3*8 = 72; 72*4 + 4 + 4 = 296; 4*5*4 * 72 = 5,760; 80 + 4*(5*72 + 2) + 4*72 = 1,816
    assert [(r.params, r.macs, r.other_ops) for r in convs] == [(232, 9_072, 1_648), (296, 5_760, 1_816)]


@needs_onnx
def test_std_conv_by_batch_norm_imports_as_ws_without_gain():
    from onnx_models import nfnet_like

    from archcalc.onnx.importer import from_model
    from fractions import Fraction
    net = from_model(nfnet_like(by_batchnorm=True)[0], "nfnet.onnx")
    op = [net.layer(n).op for n in net.graph.nodes if net.layer(n).kind == "conv"][1]
    assert (op.ws, op.gain, op.eps, op.bias) == (True, False, Fraction(1, 100000), False)
    row = [r for r in archcalc.analyze(net).rows if r.kind == "conv"][1]
    # K = 3*3*8 = 72; 72*4 = 288 params; other 4*(5*72 + 2) = 1,448, no bias, no gain
    assert (row.params, row.macs, row.other_ops) == (288, 4 * 5 * 4 * 72, 1_448)


@needs_onnx
def test_a_folded_power_that_would_broadcast_to_a_huge_constant_is_refused():
    from onnx_models import Builder, unchecked

    from archcalc.onnx.importer import from_model
    b = Builder("huge")
    big = b.node("Pow", [b.const(np.ones((4000, 1), np.float32)), b.const(np.ones((1, 3000), np.float32))])
    y = b.node("Add", ["x", b.node("ReduceMean", [big], keepdims=0)])
    with pytest.raises(SpecError) as e:
        from_model(unchecked(b, y), "huge.onnx")
    # 4000*3000 = 12,000,000 elements, over the 10^7 a folded constant may hold
    assert "Pow would make a constant of shape [4000, 3000]: 12,000,000 elements" in str(e.value)
