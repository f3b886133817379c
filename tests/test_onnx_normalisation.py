"""ConvNeXt's and ViT's operators and the patterns exporters write for them, imported: one
small model per operator or pattern (built with onnx.helper as PyTorch exports it), its params
and MACs exact, and the executor's output equal to onnxruntime's."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import archcalc
from archcalc.errors import SpecError
from archcalc.executor import check
from test_onnx import TOLERANCE, needs_onnx, relative_error, session

onnx_models = pytest.importorskip("onnx_models")

# input (N, 4, 6, 6), then conv 3x3 p=1 to 8 maps: (3*3*4 + 1)*8 = 296 params, 6*6*8 * 3*3*4 =
# 10,368 MACs; every pattern below adds params and no MACs
CONV_PARAMS, CONV_MACS = 296, 10_368


def imported(pattern, opset=17, rank=4):
    """The model conv -> pattern(builder, y) (its output of `rank`), checked, imported and run
    against onnxruntime."""
    from onnx import TensorProto, checker, helper

    from archcalc.onnx.importer import from_model
    from archcalc.onnx.layout import model_input, model_output
    b = onnx_models.Builder("pattern")
    y = pattern(b, b.conv("x", 4, 8, 3, p=1))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 6, 6])
    out = helper.make_tensor_value_info(y, TensorProto.FLOAT, ["N"] + [None] * (rank - 1))
    model = helper.make_model(helper.make_graph(b.nodes, "pattern", [x], [out], b.inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 20 else 9
    checker.check_model(model, full_check=True)
    graph = from_model(model, "pattern.onnx")
    sess = session(model)
    x = np.random.default_rng(4).standard_normal((2, 4, 6, 6)).astype(np.float32)
    want = sess.run(None, {"x": x})[0]
    result = archcalc.run(graph, model_input(graph, x), graph.weights)
    got = model_output(graph, result.analysis.rows[-1].name, result.output)
    assert got.shape == want.shape and relative_error(got, want) < TOLERANCE
    assert check(result) == []
    return graph, result.analysis


def vector(b, y):
    return b.node("Flatten", [b.node("GlobalAveragePool", [y])], axis=1)


def ln_vector(b, y):
    return b.node("LayerNormalization", [vector(b, y), b.const(b.rng.uniform(0.5, 1.5, 8).astype(np.float32)),
                                         b.const(b.rng.uniform(-0.1, 0.1, 8).astype(np.float32))], axis=-1)


def gelu_mul_by_inverse_sqrt2(b, x):
    gate = b.node("Add", [b.node("Erf", [b.node("Mul", [x, onnx_models.scalar(b, np.sqrt(0.5))])]),
                          onnx_models.scalar(b, 1.0)])
    return b.node("Mul", [b.node("Mul", [x, gate]), onnx_models.scalar(b, 0.5)])


LAYERNORMS = [  # (pattern, eps, output rank); gamma and beta: 2*8 = 16 params, no state
    (lambda b, y: onnx_models.layernorm2d(b, y, 8), Fraction(1, 10**6), 4),
    (lambda b, y: onnx_models.layernorm_written_out(b, y, 8), Fraction(1, 10**6), 4),
    (lambda b, y: onnx_models.layernorm_written_out(b, y, 8, square="Mul", subs=2), Fraction(1, 10**6), 4),
    (ln_vector, Fraction(1, 10**5), 2),
]


@needs_onnx
@pytest.mark.parametrize("pattern, eps, rank", LAYERNORMS, ids=["LayerNorm2d", "written out",
                                                                "x*x, x - mu twice", "on a vector"])
def test_layer_norm_imports_with_its_params_and_runs(pattern, eps, rank):
    graph, a = imported(pattern, rank=rank)
    (norm,) = [r for r in a.rows if r.kind == "layernorm"]
    assert graph.layer(norm.name).op == archcalc.kinds.LayerNorm(eps=eps)
    assert (norm.params, norm.state, norm.macs) == (16, 0, 0)
    assert (a.totals["params"], a.totals["macs"]) == (CONV_PARAMS + 16, CONV_MACS)


GELUS = [  # (pattern, opset, approximate)
    (onnx_models.gelu_erf, 17, "none"),
    (lambda b, y: onnx_models.gelu_erf(b, y, "half first"), 17, "none"),
    (lambda b, y: onnx_models.gelu_erf(b, y, "half last"), 17, "none"),
    (gelu_mul_by_inverse_sqrt2, 17, "none"),
    (onnx_models.gelu_tanh, 17, "tanh"),
    (lambda b, y: onnx_models.gelu_tanh(b, y, cube="Pow"), 17, "tanh"),
    (lambda b, y: b.node("Gelu", [y]), 20, "none"),
    (lambda b, y: b.node("Gelu", [y], approximate="tanh"), 20, "tanh"),
]


@needs_onnx
@pytest.mark.parametrize("pattern, opset, form", GELUS, ids=["erf", "erf, half first", "erf, half last",
                                                             "erf, Mul by 1/sqrt2", "tanh", "tanh, Pow",
                                                             "Gelu", "Gelu tanh"])
def test_gelu_in_every_form_is_one_layer(pattern, opset, form):
    graph, a = imported(pattern, opset)
    assert [r.kind for r in a.rows] == ["input", "conv", "gelu"]
    assert graph.layer(a.rows[-1].name).op == archcalc.kinds.GELU(approximate=form)
    assert (a.totals["params"], a.totals["macs"], a.rows[-1].other_ops) == (CONV_PARAMS, CONV_MACS, 6 * 6 * 8)


@needs_onnx
@pytest.mark.parametrize("shape", [(8, 1, 1), (1, 8, 1, 1)])
def test_a_mul_by_one_factor_per_channel_is_layer_scale(shape):
    graph, a = imported(lambda b, y: b.node("Mul", [y, b.const(b.rng.uniform(0.5, 1.5, shape).astype(np.float32))]))
    assert [r.kind for r in a.rows] == ["input", "conv", "scale"]
    assert (a.rows[-1].params, a.totals["params"], a.totals["macs"]) == (8, CONV_PARAMS + 8, CONV_MACS)


@needs_onnx
def test_elu_keeps_its_alpha():
    graph, a = imported(lambda b, y: b.node("Elu", [y], alpha=0.25))
    assert graph.layer(a.rows[-1].name).op == archcalc.kinds.ELU(alpha=Fraction(1, 4))
    assert (a.totals["params"], a.totals["macs"]) == (CONV_PARAMS, CONV_MACS)


@needs_onnx
@pytest.mark.parametrize("pattern, reason", [
    (lambda b, y: b.node("LayerNormalization", [y, b.const(np.ones((8, 6, 6), np.float32)),
                                                b.const(np.zeros((8, 6, 6), np.float32))], axis=1),
     "LayerNormalization over axis 1 of a rank-4 tensor (archcalc's layernorm is over the channels"),
    (lambda b, y: b.node("Erf", [y]), "Erf on activations outside the patterns archcalc reads"),
    (lambda b, y: b.node("Mul", [y, b.const(np.float32(2))]), "Mul with a constant operand"),
    (lambda b, y: b.node("Div", [y, onnx_models.scalar(b, 2.0)]), "Div on activations outside the patterns"),
])
def test_what_is_not_these_patterns_is_refused_with_the_reason(pattern, reason):
    from archcalc.onnx.importer import from_model
    b = onnx_models.Builder("odd")
    y = pattern(b, b.conv("x", 4, 8, 3, p=1))
    with pytest.raises(SpecError, match="1 node\\(s\\) archcalc cannot import") as e:
        from_model(onnx_models.unchecked(b, y, (1, 4, 6, 6)), "odd.onnx")
    assert reason in str(e.value)


CONVNEXT_LIKE = """
network Block {
    input     x : (8, 8, 3)
    conv      stem : f=4 s=4 c=8
    layernorm n0 : eps=0.000001
    dwconv    dw : f=7 p=3
    layernorm n1 : eps=0.000001
    conv      up : f=1 c=32
    gelu      g
    conv      down : f=1 c=8
    scale     s
    add       r <- n0, s
    elu       e : 0.5
    gap
    flatten
    layernorm n2
    gelu      h : approximate=tanh
    fc        out : 10
}
"""


@needs_onnx
def test_spec_with_the_new_kinds_runs_verified_and_round_trips_through_onnx(tmp_path, capsys):
    """run --verify; export (LayerNormalization of opset 17, GELU in Erf and Tanh); import gives
    the same analysis layer by layer; onnxruntime's output equals the executor's."""
    import onnx

    from test_onnx import same_rows, verified_round_trip
    spec, model, back = verified_round_trip(tmp_path, capsys, CONVNEXT_LIKE)
    a = archcalc.analyze(archcalc.load(spec))
    same_rows(a, archcalc.analyze(archcalc.load(back)))
    # stem (4*4*3 + 1)*8 = 392, dw (7*7 + 1)*8 = 400, up (8 + 1)*32 = 288, down (32 + 1)*8 = 264,
    # fc (8 + 1)*10 = 90; layer norms 3 * 2*8 = 48; layer scale 8
    assert a.totals["params"] == 392 + 400 + 288 + 264 + 90 + 48 + 8
    # stem 2*2*8 * 48, dw 2*2*8 * 49, up 2*2*32 * 8, down 2*2*8 * 32, fc 8*10
    assert a.totals["macs"] == 1_536 + 1_568 + 1_024 + 1_024 + 80
    x = np.random.default_rng(5).standard_normal((2, 3, 8, 8)).astype(np.float32)
    want = session(onnx.load(str(model))).run(None, {"x": x})[0]
    y = archcalc.run(archcalc.load(spec), x.transpose(0, 2, 3, 1)).output.reshape(2, -1)
    assert relative_error(y, want) < TOLERANCE
