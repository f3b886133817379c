"""A Vision Transformer as torch.onnx writes it (standard operators, not archcalc's functions):
the hand-built `vit_torch` models (tests/onnx_models.py, the Gather and the Split forms of the
Q/K/V split) and a real export of a tiny torchvision-style ViT (tests/data/vit_torch_tiny.onnx,
made as tests/data/README.md says) import as tokens, layernorm, attention, conv f=1, gelu,
token and fc, with params and MACs worked out below and every layer's values equal to
onnxruntime's."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import archcalc
from test_onnx import TOLERANCE, needs_onnx, relative_error, session

DATA = Path(__file__).parent / "data"


def vit_figures(d, T, mlp, blocks, patch, patches, classes):
    """(params, MACs, attention products) of torchvision's ViT layout, written out."""
    conv = (3 * patch * patch * d + d, patches * 3 * patch * patch * d)
    tokens = d + T * d                                   # class token, position embedding
    attention = (4 * d * d + 4 * d, 4 * T * d * d + 2 * T * T * d)  # Q, K, V, out; QK^T and AV
    mlp_ = (d * mlp + mlp + mlp * d + d, 2 * T * d * mlp)
    norms = 2 * 2 * d
    head = (d * classes + classes, d * classes)
    params = conv[0] + tokens + blocks * (norms + attention[0] + mlp_[0]) + 2 * d + head[0]
    macs = conv[1] + blocks * (attention[1] + mlp_[1]) + head[1]
    return params, macs, blocks * 2 * T * T * d


def agrees_layer_by_layer(model, graph):
    """Every layer's output equals onnxruntime's tensor of the same name; the final output too."""
    from archcalc.onnx.layout import model_input, model_output
    tensors = graph.layout["tensors"]
    sess = session(model, list(tensors.values()))
    x = np.random.default_rng(3).standard_normal((1, 3, *sess.get_inputs()[0].shape[2:])).astype(np.float32)
    outputs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: x})))
    result = archcalc.run(graph, model_input(graph, x), graph.weights, keep=True)
    compared = 0
    for name, tensor in tensors.items():
        want, got = outputs.get(tensor), result.activations.get(name)
        if want is None or got is None:
            continue
        if want.ndim == 3:    # (N, T, d) is archcalc's (N, 1, T, d)
            got = got[:, 0]
        elif want.ndim == 4:  # NCHW
            got = got.transpose(0, 3, 1, 2)
        else:                 # a vector (N, n)
            got = got.reshape(got.shape[0], -1)
        assert got.shape == want.shape, name
        assert relative_error(got.reshape(want.shape), want) < TOLERANCE, name
        compared += 1
    y = model_output(graph, result.analysis.rows[-1].name, result.output)
    assert relative_error(y, outputs[model.graph.output[0].name]) < TOLERANCE
    return compared


KINDS = ["input", "conv", "tokens"] + 2 * ["layernorm", "attention", "add", "layernorm", "conv", "gelu",
                                           "conv", "add"] + ["layernorm", "token", "fc"]


def imports_exactly(model, graph, figures):
    """Kinds, heads, params, MACs and attention products as worked out; every layer's values."""
    a = archcalc.analyze(graph)
    assert [r.kind for r in a.rows] == KINDS
    assert [graph.layer(r.name).op.heads for r in a.rows if r.kind == "attention"] == [4, 4]
    assert (a.totals["params"], a.totals["macs"], sum(r.attention_macs for r in a.rows)) == figures
    assert agrees_layer_by_layer(model, graph) == len(a.rows) - 1  # all but the input


@needs_onnx
@pytest.mark.parametrize("split", [False, True])
def test_vit_as_torch_onnx_writes_it_imports_exactly(split):
    from onnx_models import vit_torch

    from archcalc.onnx.importer import from_model
    model, _ = vit_torch(split)
    # d = 16, T = 4*4 + 1 = 17, MLP 32, 2 blocks, 4x4 patches of 16x16, 10 classes
    assert vit_figures(16, 17, 32, 2, 4, 16, 10) == (5722, 100576, 18496)
    imports_exactly(model, from_model(model, "vit_torch.onnx"), (5722, 100576, 18496))


@needs_onnx
def test_a_real_torch_onnx_export_of_a_vit_imports_exactly():
    """torch.onnx.export (opset 17, dynamo=False, eval mode) of a ViT built as torchvision's:
    d = 32, 4 heads, MLP 64, 2 blocks, 8x8 patches of 32x32 (T = 17), 10 classes; torch's
    sum(p.numel()) = 24,234."""
    import onnx

    from archcalc.onnx.importer import load_onnx
    assert vit_figures(32, 17, 64, 2, 8, 16, 10) == (24234, 414144, 36992)
    imports_exactly(onnx.load(str(DATA / "vit_torch_tiny.onnx")), load_onnx(DATA / "vit_torch_tiny.onnx"),
                    (24234, 414144, 36992))


@needs_onnx
def test_an_attention_whose_scale_is_not_one_over_root_d_h_is_refused():
    """Q scaled by 1/d_h instead of 1/sqrt(d_h): not nn.MultiheadAttention, so not `attention`."""
    import onnx

    from onnx_models import vit_torch

    from archcalc.errors import SpecError
    from archcalc.onnx.importer import from_model
    model, _ = vit_torch(split=True)
    for t in model.graph.initializer:
        if t.dims == [] and onnx.numpy_helper.to_array(t) == np.float32(2.0):  # sqrt(d_h), d_h = 4
            t.CopyFrom(onnx.numpy_helper.from_array(np.float32(4.0), t.name))  # Q / d_h
    with pytest.raises(SpecError) as e:
        from_model(model, "odd.onnx")
    assert "1 node(s) archcalc cannot import\n  = node 7 '/Transpose_24': Transpose (1, 0, 2) of a token " \
        "sequence that" in str(e.value)
    assert "does not start a multi-head attention as torch.onnx writes nn.MultiheadAttention" in str(e.value)
