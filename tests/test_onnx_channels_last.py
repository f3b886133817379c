"""Channels-last regions, imported: torchvision's ConvNeXt block permutes each map to (N, H, W, C)
for LayerNorm, Linear, GELU, Linear and permutes back. A Linear there is a 1x1 conv (the same
params and MACs); the figures are worked out here layer by layer and the executor's output is
onnxruntime's. The model of a real torch.onnx export is tests/data/convnext_torch_tiny.onnx
(how it was made: tests/data/README.md)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import archcalc
from archcalc.errors import SpecError
from archcalc.executor import check
from test_onnx import TOLERANCE, needs_onnx, relative_error, session

onnx_models = pytest.importorskip("onnx_models")
FIXTURE = Path(__file__).parent / "data" / "convnext_torch_tiny.onnx"


def convnext_figures(side):
    """(params, MACs) of the two-stage ConvNeXt of 8 and 16 channels, 10 classes, on side x side."""
    a, b = side // 4, side // 8  # after the 4x4/4 stem; after the 2x2/2 downsampling
    params = {
        "stem conv 4x4 3->8": 4 * 4 * 3 * 8 + 8, "stem LayerNorm2d": 2 * 8,
        "dwconv 7x7 (8)": 7 * 7 * 8 + 8, "LayerNorm (8)": 2 * 8, "Linear 8->32": 8 * 32 + 32,
        "Linear 32->8": 32 * 8 + 8, "layer scale (8)": 8,
        "LayerNorm2d (8)": 2 * 8, "conv 2x2 8->16": 2 * 2 * 8 * 16 + 16,
        "dwconv 7x7 (16)": 7 * 7 * 16 + 16, "LayerNorm (16)": 2 * 16, "Linear 16->64": 16 * 64 + 64,
        "Linear 64->16": 64 * 16 + 16, "layer scale (16)": 16,
        "head LayerNorm2d (16)": 2 * 16, "Linear 16->10": 16 * 10 + 10,
    }
    macs = {
        "stem conv": a * a * 8 * (4 * 4 * 3), "dwconv (8)": a * a * 8 * 7 * 7,
        "Linear 8->32 at each position": a * a * 8 * 32, "Linear 32->8": a * a * 32 * 8,
        "conv 2x2": b * b * 16 * (2 * 2 * 8), "dwconv (16)": b * b * 16 * 7 * 7,
        "Linear 16->64": b * b * 16 * 64, "Linear 64->16": b * b * 64 * 16, "head": 16 * 10,
    }
    return sum(params.values()), sum(macs.values())


def agrees_with_onnxruntime(model, graph, shape):
    from archcalc.onnx.layout import model_input, model_output
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    want = session(model).run(None, {model.graph.input[0].name: x})[0]
    result = archcalc.run(graph, model_input(graph, x), graph.weights)
    got = model_output(graph, result.analysis.rows[-1].name, result.output)
    assert got.shape == want.shape and relative_error(got, want) < TOLERANCE
    assert check(result) == []
    return result.analysis


@needs_onnx
def test_torch_export_of_convnext_imports_with_torchs_params_and_exact_macs():
    import onnx

    from archcalc.onnx.importer import load_onnx
    graph = load_onnx(FIXTURE)
    analysis = agrees_with_onnxruntime(onnx.load(str(FIXTURE)), graph, (1, 3, 32, 32))
    assert convnext_figures(32) == (5_106, 136_096)  # 5,106: the export script's sum(p.numel())
    assert (analysis.totals["params"], analysis.totals["macs"]) == (5_106, 136_096)
    kinds = [graph.layer(r.name).kind for r in analysis.rows if r.name.startswith("features.1.0")]
    assert kinds == ["conv", "layernorm", "conv", "gelu", "conv", "scale", "add"]
    from archcalc.lang.write import write
    written = archcalc.analyze(archcalc.loads(write(graph)[0]))  # the import as a spec
    assert (written.totals["params"], written.totals["macs"]) == (5_106, 136_096)
    block = {r.name: r for r in analysis.rows}
    linear = graph.layer("features.1.0.block.3").op  # nn.Linear(8, 32) at each of the 8 x 8 positions
    assert (linear.f, linear.c, block["features.1.0.block.3"].params, block["features.1.0.block.3"].macs) == \
        (1, 32, 8 * 32 + 32, 8 * 8 * 8 * 32)


@needs_onnx
def test_convnext_torch_family_has_exact_params_and_macs():
    from archcalc.onnx.importer import from_model
    model, _ = onnx_models.convnext_torch()
    graph = from_model(model, "convnext_torch.onnx")
    analysis = agrees_with_onnxruntime(model, graph, (2, 3, 16, 16))
    assert convnext_figures(16) == (5_106, 34_144)
    assert (analysis.totals["params"], analysis.totals["macs"]) == (5_106, 34_144)
    # the 1x1 conv's weight is the MatMul's (C, 4C) initializer, as (1, 1, C, 4C)
    matmul = next(n for n in model.graph.node if n.op_type == "MatMul")
    first = next(r.name for r in analysis.rows if graph.layer(r.name).kind == "conv" and
                 graph.layer(r.name).op.f == 1)
    init = next(t for t in model.graph.initializer if t.name == matmul.input[1])
    from onnx import numpy_helper
    assert np.array_equal(graph.weights[first]["W"], numpy_helper.to_array(init).reshape(1, 1, 8, 32))


def timm_figures(side):
    """(params, MACs) of the timm-style ConvNeXt: one block of 8 channels, 10 classes."""
    a = side // 4
    params = (4 * 4 * 3 * 8 + 8) + 2 * 8 + (7 * 7 * 8 + 8) + 2 * 8 + (8 * 32 + 32) + (32 * 8 + 8) + 8 + \
        2 * 8 + (8 * 10 + 10)  # stem, LayerNorm2d, dwconv, LayerNorm, fc1, fc2, gamma, head norm, fc
    macs = a * a * 8 * 4 * 4 * 3 + a * a * 8 * 7 * 7 + 2 * a * a * 8 * 32 + 8 * 10
    return params, macs


@needs_onnx
@pytest.mark.parametrize("source", ["torch.onnx export", "onnx_models.convnext_timm"])
def test_timm_style_convnext_with_layer_norm_written_out_imports_exactly(source):
    """Opset 14: F.layer_norm over the last axis written out (ReduceMean, Sub, Pow, ReduceMean,
    Add, Sqrt, Div, Mul, Add), gamma (C,) multiplied channels-last, the head's mean over (2, 3)."""
    import onnx

    from archcalc.onnx.importer import from_model
    if source == "torch.onnx export":
        model = onnx.load(str(FIXTURE.with_name("convnext_timm_tiny.onnx")))
    else:
        model, _ = onnx_models.convnext_timm()
    graph = from_model(model, "convnext_timm.onnx")
    analysis = agrees_with_onnxruntime(model, graph, (1, 3, 16, 16))
    assert timm_figures(16) == (1_490, 20_688)  # 1,490: the export script's sum(p.numel())
    assert (analysis.totals["params"], analysis.totals["macs"]) == (1_490, 20_688)
    kinds = [graph.layer(r.name).kind for r in analysis.rows]
    assert kinds == ["input", "conv", "layernorm", "conv", "layernorm", "conv", "gelu", "conv", "scale",
                     "add", "gap", "layernorm", "fc"]


def region_model(tail):
    """conv 3x3 p=1 to 8 maps on (N, 4, 6, 6), Transpose(0, 2, 3, 1), then `tail(b, y)`."""
    b = onnx_models.Builder("region")
    y = tail(b, b.node("Transpose", [b.conv("x", 4, 8, 3, p=1)], perm=[0, 2, 3, 1]))
    return onnx_models.unchecked(b, y, ("N", 4, 6, 6))


def refusal(model) -> str:
    from archcalc.onnx.importer import from_model
    with pytest.raises(SpecError) as e:
        from_model(model, "region.onnx")
    return str(e.value)


@needs_onnx
def test_a_model_that_ends_channels_last_gives_its_n_h_w_c_output():
    """Relu, softmax over the last axis and a Linear, all per position; the output stays
    (N, 6, 6, 5): conv (3*3*4 + 1)*8 = 296 params and 6*6*8*36 = 10,368 MACs, the Linear
    8*5 + 5 = 45 and 6*6*8*5 = 1,440."""
    from archcalc.onnx.importer import from_model

    def tail(b, y):
        y = b.node("Softmax", [b.relu(y)], axis=-1)
        return onnx_models.linear_last(b, y, 8, 5)
    model = region_model(tail)
    graph = from_model(model, "region.onnx")
    analysis = agrees_with_onnxruntime(model, graph, (2, 4, 6, 6))
    assert (analysis.totals["params"], analysis.totals["macs"]) == (296 + 45, 10_368 + 1_440)
    assert tuple(analysis.rows[-1].out_shape) == (6, 6, 5)


@needs_onnx
def test_flatten_of_a_channels_last_map_keeps_archcalcs_order():
    """Transpose(0, 2, 3, 1), LayerNormalization, Flatten: the (H, W, C) order, archcalc's own,
    so the Gemm's rows need no reordering; Gemm 288 -> 10: 2,890 params, 2,880 MACs."""
    from archcalc.onnx.importer import from_model

    def tail(b, y):
        y = b.node("LayerNormalization", [y, b.const(np.full(8, 1.5, np.float32)),
                                          b.const(np.full(8, 0.1, np.float32))], axis=-1)
        return b.gemm(b.node("Flatten", [y], axis=1), 6 * 6 * 8, 10)
    model = region_model(tail)
    graph = from_model(model, "region.onnx")
    analysis = agrees_with_onnxruntime(model, graph, (2, 4, 6, 6))
    assert (analysis.totals["params"], analysis.totals["macs"]) == (296 + 16 + 2_890, 10_368 + 2_880)


@needs_onnx
@pytest.mark.parametrize("keepdims", [0, 1])
def test_mean_over_h_and_w_of_a_channels_last_map_is_a_global_average_pool(keepdims):
    """ReduceMean over axes (1, 2) of (N, 6, 6, 8): gap; then the Gemm 8 -> 10 (90 params, 80
    MACs) on the vector, or a Linear 8 -> 10 at the one position left (the same figures)."""
    from archcalc.onnx.importer import from_model

    def tail(b, y):
        y = b.node("ReduceMean", [y], axes=[1, 2], keepdims=keepdims)
        return onnx_models.linear_last(b, y, 8, 10) if keepdims else b.gemm(y, 8, 10)
    model = region_model(tail)
    graph = from_model(model, "region.onnx")
    analysis = agrees_with_onnxruntime(model, graph, (2, 4, 6, 6))
    assert [graph.layer(r.name).kind for r in analysis.rows][-2:] == ["gap", "conv" if keepdims else "fc"]
    assert (analysis.totals["params"], analysis.totals["macs"]) == (296 + 90, 10_368 + 80)


REGION_REFUSAL = ("archcalc reads there element-wise operators, LayerNormalization over the last "
                  "axis and MatMul by a constant (a 1x1 conv), up to the Transpose(0, 3, 1, 2) back")


@needs_onnx
@pytest.mark.parametrize("tail, reason", [
    (lambda b, y: b.node("GlobalAveragePool", [y]),
     "GlobalAveragePool on a channels-last map (N, H, W, C), after a Transpose(0, 2, 3, 1): " +
     REGION_REFUSAL),
    (lambda b, y: b.node("Add", [y, b.conv("x", 4, 8, 3, p=1)]),
     "Add of a channels-last map (N, H, W, C) and a map (N, C, H, W)"),
    (lambda b, y: b.node("LayerNormalization", [y, b.const(np.ones(6, np.float32)),
                                                b.const(np.zeros(6, np.float32))], axis=2),
     "LayerNormalization over axis 2 of a rank-4 tensor"),
    (lambda b, y: b.node("MatMul", [y, b.weight(6, 4)]),
     "MatMul whose weight reads 6 channels of a channels-last map of 8"),
    (lambda b, y: b.node("Transpose", [y], perm=[0, 2, 3, 1]),
     "Transpose with perm [0, 2, 3, 1] (archcalc keeps one layout"),
])
def test_what_a_channels_last_region_cannot_hold_is_refused_with_the_reason(tail, reason):
    text = refusal(region_model(tail))
    assert "1 node(s) archcalc cannot import" in text and reason in text
