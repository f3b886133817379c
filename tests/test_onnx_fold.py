"""ONNX import of what is not a layer: constant and shape arithmetic folded before the layers
are matched (its values are onnxruntime's), one error naming every node the import cannot
read (shape arithmetic named as such), and the note on BatchNorm the exporter folded away."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import archcalc

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="onnx and onnxruntime not installed")
GOLDEN = Path(__file__).parent / "golden"
sys.path.insert(0, str(Path(__file__).parent))
from test_hostile_files import refusal  # noqa: E402  (the message of a refused model)


# ---------------------------------------------------------------- folding

@needs_onnx
def test_same_padding_computed_from_the_shape_becomes_pad_layers():
    """timm's 'same' padding, k=3 s=2 on 8 x 9: rows (ceil(8/2) - 1)*2 + 3 - 8 = 1 -> 0 above,
    1 below; columns (ceil(9/2) - 1)*2 + 3 - 9 = 2 -> 1 and 1; the conv makes
    ((8 + 1 - 3)/2 + 1, (9 + 2 - 3)/2 + 1) = (4, 5). Then k=5 s=1: 4 -> 2 and 2 on both."""
    from onnx_models import efficientnet_lite

    from archcalc.onnx.importer import from_model
    net = from_model(efficientnet_lite()[0], "lite.onnx")
    pads = [(l.op.top, l.op.bottom, l.op.left, l.op.right) for l in net.layers if l.kind == "pad"]
    assert pads == [(0, 1, 1, 1), (2, 2, 2, 2)]
    rows = {r.name: r for r in archcalc.analyze(net).rows}
    convs = [r for r in rows.values() if r.kind == "conv"]
    assert [tuple(r.out_shape) for r in convs] == [(4, 5, 8), (4, 5, 8)]


def shape_model(expressions):
    """x (1, 3, 8, 9) -> Relu, and each expression of Builder b and Shape(x) as an output."""
    import onnx
    from onnx import TensorProto, helper
    from onnx_models import Builder
    b = Builder("shapes")
    shape = b.node("Shape", ["x"])
    outs = [expression(b, shape) for expression in expressions]
    y = b.relu("x")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 9])
    values = [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in [y] + outs]
    m = helper.make_model(helper.make_graph(b.nodes, "shapes", [x], values, b.inits),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m), outs


def i64(*v):
    return np.array(v, np.int64)


def dim(b, shape, axis):
    return b.node("Gather", [shape, b.const(np.array(axis, np.int64))], axis=0)


def fl(b, v):
    from onnx import TensorProto
    return b.node("Cast", [v], to=TensorProto.FLOAT)


EXPRESSIONS = {  # Shape(x) = [1, 3, 8, 9]
    "ceil": lambda b, s: b.node("Ceil", [b.node("Div", [fl(b, dim(b, s, 3)), b.const(np.float32(2))])]),
    "floor": lambda b, s: b.node("Floor", [b.node("Div", [fl(b, dim(b, s, 3)), b.const(np.float32(4))])]),
    "sqrt": lambda b, s: b.node("Sqrt", [fl(b, b.node("Mul", [dim(b, s, 2), dim(b, s, 3)]))]),
    "max_min": lambda b, s: b.node("Min", [b.node("Max", [b.node("Sub", [s, b.const(i64(5))]),
                                                          b.const(i64(0))]), b.const(i64(3, 1, 3, 9))]),
    "neg_abs_sign": lambda b, s: b.node("Sign", [b.node("Abs", [b.node("Neg", [s])])]),
    "pow_mod": lambda b, s: b.node("Mod", [b.node("Pow", [s, b.const(i64(2))]), b.const(i64(5))]),
    "fmod_reciprocal_round": lambda b, s: b.node("Round", [b.node("Reciprocal", [b.node(
        "Mod", [fl(b, s), b.const(np.float32(-2.5))], fmod=1)])]),
    "compare": lambda b, s: b.node("Or", [b.node("Less", [s, b.const(i64(3))]), b.node(
        "And", [b.node("Greater", [s, b.const(i64(8))]),
                b.node("Not", [b.node("LessOrEqual", [s, b.const(i64(2))])])])]),
    "where_equal": lambda b, s: b.node("Where", [b.node("Equal", [s, b.const(i64(8))]), s,
                                                 b.const(i64(-1))]),
    "range": lambda b, s: b.node("Range", [b.const(np.int64(1)), dim(b, s, 3), b.const(np.int64(3))]),
    "constant_of_shape": lambda b, s: b.node("ConstantOfShape", [b.node(
        "Slice", [s, b.const(i64(2)), b.const(i64(4))])], value=__import__("onnx").numpy_helper.from_array(
        np.array([7], np.int64))),
    "size_tile": lambda b, s: b.node("Tile", [b.node("Unsqueeze", [b.node("Size", ["x"]), b.const(i64(0))]),
                                              b.const(i64(3))]),
    "constants_only": lambda b, s: b.node("Xor", [b.node("GreaterOrEqual", [b.node(
        "Range", [b.const(np.int64(0)), b.const(np.int64(6)), b.const(np.int64(1))]), b.const(np.int64(2))]),
        b.node("Equal", [b.const(i64(0, 1, 0, 1, 0, 1)), b.const(np.int64(1))])]),
}


@needs_onnx
@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_shape_arithmetic_folds_to_onnxruntimes_values(name):
    import onnxruntime as ort

    from archcalc.onnx.importer import Importer
    model, outs = shape_model([EXPRESSIONS[name]])
    imp = Importer(model, "shapes.onnx")
    imp.run()
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(outs, {"x": np.zeros((1, 3, 8, 9), np.float32)})[0]
    got = imp.consts[outs[0]]
    assert (got.dtype, got.shape, got.tolist()) == (want.dtype, want.shape, want.tolist())


@needs_onnx
def test_folded_constants_are_bounded_before_they_are_made():
    """Broadcasting (100000, 1) by (1, 100000) would make 10^10 numbers from 2 x 10^5; Tile
    and Gather grow likewise; a Transpose only moves the numbers the model holds."""
    from onnx_models import Builder, unchecked
    b = Builder("grow")
    col, row = b.const(np.zeros((10**5, 1), np.int64)), b.const(np.zeros((1, 10**5), np.int64))
    b.node("Add", [col, row], name="outer")
    b.node("Tile", [b.const(np.zeros(10, np.int64)), b.const(i64(10**7))], name="tile")
    b.node("Gather", [b.const(np.zeros((2, 10**6), np.int8)), b.const(np.zeros((20,), np.int64))],
           name="gather", axis=0)
    b.node("Transpose", [b.const(np.zeros((11, 10**6), np.int8))], name="moves", perm=[1, 0])
    assert refusal(unchecked(b, b.relu("x"))) == (
        "error: m.onnx: 3 node(s) archcalc cannot import\n"
        "  = node 0 'outer': Add would make a constant of shape [100000, 100000]: "
        "10,000,000,000 elements, over the limit of 10,000,000 for constants folded at import\n"
        "  = node 1 'tile': Tile would make a constant of shape [100000000]: "
        "100,000,000 elements, over the limit of 10,000,000 for constants folded at import\n"
        "  = node 2 'gather': Gather would make a constant of shape [20, 1000000]: "
        "20,000,000 elements, over the limit of 10,000,000 for constants folded at import")


# ---------------------------------------------------------------- what the import cannot read

@needs_onnx
def test_shape_arithmetic_on_a_dynamic_size_names_its_chain():
    from onnx_models import efficientnet_lite
    text = refusal(efficientnet_lite(("N", 3, "H", "W"))[0], "lite.onnx")
    chain = "Shape -> Gather -> Cast -> Div -> Ceil feeds the pads of Pad '/Pad_99': shape arithmetic "
    assert text == (
        "error: lite.onnx: 2 node(s) archcalc cannot import\n"
        f"  = node 4 '/Ceil_14': {chain}on a dynamic size (Ceil of [0.5*W]), which archcalc folds "
        "with numbers only: give the model's input fixed sizes\n"
        f"  = node 16 '/Ceil_45': {chain}on a dynamic size (Ceil of [0.5*H]), which archcalc folds "
        "with numbers only: give the model's input fixed sizes\n"
        "  = 71 node(s) reading what these make were not checked")


def weight_standardised(b, x, name="n3"):
    """NFNet's ScaledStdConv2d, as far as the mean: ReduceMean of the conv weight."""
    from onnx import numpy_helper
    w = np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(np.float32)
    b.inits.append(numpy_helper.from_array(w, "conv.weight"))
    mean = b.node("ReduceMean", ["conv.weight"], name=name, axes=[1, 2, 3], keepdims=1)
    return b.node("Conv", [x, b.node("Sub", ["conv.weight", mean])], kernel_shape=[3, 3])


@needs_onnx
def test_weight_arithmetic_folds_into_the_weight_and_a_constant_as_data_is_named():
    """A weight only centred (W - mean(W) per filter; no division by a spread, so no weight
    standardisation) is constant arithmetic: it folds, and the conv reads the computed weight.
    A constant that an activation's operator reads as data is named for what it is."""
    from archcalc.onnx.importer import from_model
    from onnx_models import Builder, unchecked
    b = Builder("nfnet")
    net = from_model(unchecked(b, weight_standardised(b, "x")), "m.onnx")
    (conv,) = [layer for layer in net.layers if layer.kind == "conv"]
    assert (conv.op.f, conv.op.c, conv.op.bias, conv.op.ws) == (3, 8, False, False)
    w = np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(np.float32)
    centred = w - w.mean(axis=(1, 2, 3), keepdims=True)
    # archcalc's conv weight is W (f, f, n_C_prev, n_C); ONNX's is (n_C, n_C_prev, f, f)
    assert np.allclose(net.weights[conv.name]["W"], centred.transpose(2, 3, 1, 0), atol=1e-6)
    a = archcalc.analyze(net)
    # (3*3*3)*8 = 216 params; 6*6 outputs per map: 6*6*8*27 = 7,776 MACs
    assert (a.row(conv.name).params, a.row(conv.name).macs) == (216, 7_776)
    b = Builder("data")
    b.inits.append(__import__("onnx").numpy_helper.from_array(w, "conv.weight"))
    b.node("Relu", ["conv.weight"], name="n4")
    assert refusal(unchecked(b, b.relu("x"))).splitlines()[1] == (
        "  = node 0 'n4': Relu reads the initializer 'conv.weight' as data: archcalc's layers "
        "read constants as their weights only")


@needs_onnx
def test_every_node_the_import_cannot_read_is_in_one_error(golden):
    """Unknown operator types (Softplus, seven Selu: five named), shape arithmetic through an
    operator archcalc does not fold (CumSum), a LayerNormalization over NCHW's channel axis, an
    initializer read as data, a Transpose and a Max on activations: all in one message."""
    from onnx import TensorProto
    from onnx_models import Builder, unchecked
    b = Builder("refused")
    c1 = b.conv("x", 3, 8, 3, p=1, name="stem")
    b.node("LayerNormalization", [c1, b.const(np.ones(8, np.float32))], name="ln", axis=1)
    b.node("Softplus", [c1], name="soft")
    y = c1
    for k in range(7):
        y = b.node("Selu", [c1], name=f"selu{k}")
    counts = b.node("CumSum", [b.node("Shape", [c1]), b.const(np.int64(0))], name="cumsum")
    b.node("Reshape", [c1, b.node("Cast", [counts], to=TensorProto.INT64)], name="view")
    b.inits.append(__import__("onnx").numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "conv.weight"))
    b.node("Relu", ["conv.weight"], name="n3")
    b.node("Transpose", [c1], name="swap", perm=[0, 1, 3, 2])
    b.node("Max", [c1, b.node("Sigmoid", [c1], name="gate")], name="max")
    golden(GOLDEN / "onnx_refusal.txt", refusal(unchecked(b, y), "refused.onnx") + "\n")


# ---------------------------------------------------------------- BatchNorm folded on export

def exported(b, x, producer):
    import onnx
    from onnx import TensorProto, helper
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    out = helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 8, 8, 8])
    m = helper.make_model(helper.make_graph(b.nodes, b.name, [x_info], [out], b.inits),
                          opset_imports=[helper.make_opsetid("", 17)], producer_name=producer)
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def folded_resnet_stem(b, bn=False):
    """conv 3->16 + ReLU, conv 16->16 + ReLU6, conv 16->8 added to a 1x1 projection: the
    exporter's folding leaves biases; only the first two feed an activation directly. With
    `bn`, the source: those two convs without bias and with a BatchNorm."""
    def conv_bn(x, cin, cout):
        return b.bn(b.conv(x, cin, cout, 3, p=1, bias=False), cout) if bn else b.conv(x, cin, cout, 3, p=1)
    x = b.relu(conv_bn("x", 3, 16))
    y = b.node("Clip", [conv_bn(x, 16, 16), b.const(np.float32(0)), b.const(np.float32(6))])
    return b.node("Add", [b.conv(y, 16, 8, 3, p=1), b.conv(x, 16, 8, 1)])


@needs_onnx
def test_a_pytorch_export_without_batchnorm_notes_what_folding_hides():
    """16 + 16 channels feed an activation: a source with BatchNorm there and bias-free convs
    (torchvision's) holds 2 x 32 gamma and beta where the export holds 32 biases: 32 more."""
    from onnx_models import Builder

    from archcalc.onnx.importer import from_model
    b = Builder("stem")
    analysis = archcalc.analyze(from_model(exported(b, folded_resnet_stem(b), "pytorch"), "stem.onnx"))
    b = Builder("stem")
    source = archcalc.analyze(from_model(exported(b, folded_resnet_stem(b, bn=True), "pytorch"), "s.onnx"))
    assert source.totals["params"] - analysis.totals["params"] == 32
    notes = [n for n in analysis.notes if "BatchNorm" in n]
    assert notes == [
        "BatchNorm folded by the exporter?: this PyTorch export has no BatchNormalization node, "
        "and 2 conv(s) with a bias feed an activation directly (32 channels), as torch.onnx writes "
        "conv + BatchNorm + activation in eval mode; if the source model had BatchNorm there, the "
        "params here are 32 fewer than its count (its gamma; beta became the conv's bias), 64 fewer "
        "if its convs had a bias too, more if other convs had BatchNorm as well"]


@needs_onnx
@pytest.mark.parametrize("producer, bn", [("pytorch", True), ("test", False), ("tf2onnx", False)])
def test_no_batchnorm_note_with_batchnorm_kept_or_another_exporter(producer, bn):
    from onnx_models import Builder

    from archcalc.onnx.importer import from_model
    b = Builder("stem")
    net = from_model(exported(b, folded_resnet_stem(b, bn), producer), "stem.onnx")
    assert [n for n in archcalc.analyze(net).notes if "BatchNorm" in n] == []


@needs_onnx
def test_the_list_of_nodes_is_bounded():
    """25 Transposes it cannot express: 20 named, then how many more."""
    from onnx_models import Builder, unchecked
    b = Builder("many")
    for k in range(25):
        b.node("Transpose", ["x"], name=f"t{k}", perm=[0, 1, 3, 2])
    lines = refusal(unchecked(b, b.relu("x"))).splitlines()
    assert (lines[0], len(lines), lines[20], lines[21]) == (
        "error: m.onnx: 25 node(s) archcalc cannot import", 22,
        "  = node 19 't19': Transpose with perm [0, 1, 3, 2] (archcalc keeps one layout; it reads a "
        "Transpose before a flatten, into a channels-last region and back, or inside a channel "
        "shuffle)",
        "  = and 5 more node(s) archcalc cannot import")
