"""MobileViT (Mehta & Rastegari 2022, ICLR; timm's MobileVitBlock): attention among the pixels
with the same offset inside 2 x 2 patches (`attention : heads patch=2`), and a MobileViT-S block
written as a spec, its figures worked out by hand."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import archcalc
from test_onnx import needs_onnx, verified_round_trip, session, relative_error, TOLERANCE, same_rows

# MobileViT-S's first MobileViT block (timm's mobilevit_s, stage 3 at 256 x 256: a 32 x 32 x 96
# map; transformer_dim 144, depth 2, 4 heads, mlp_ratio 2, patch 2). Local 3x3 conv + BN + SiLU,
# 1x1 conv to d without bias; each transformer layer x + MSA(LN(x)), x + MLP(LN(x)) per token;
# a final LayerNorm; 1x1 conv back to 96 + BN + SiLU; concatenated with the block's input;
# 3x3 fusion conv + BN + SiLU. Every conv of the block is bias-free (timm's conv_norm_act).
BLOCK = """
block transformer(d, heads, mlp) {
    layernorm ln1
    attention attn : heads=heads patch=2
    add       res1 <- attn, in
    layernorm ln2
    conv      fc1  : f=1 c=mlp
    swish     act
    conv      fc2  : f=1 c=d
    add       out  <- fc2, res1
}

network MobileViT_S_block(H=32, W=32) {
    input     x      : (H, W, 96)
    conv      local  : f=3 p=1 c=96 bias=off
    batchnorm bn1
    swish     a1
    conv      to_d   : f=1 c=144 bias=off
    repeat 2 {
        transformer layer : d=144 heads=4 mlp=288
    }
    layernorm norm
    conv      proj   : f=1 c=96 bias=off
    batchnorm bn2
    swish     a2
    concat    cat    <- x, a2
    conv      fusion : f=3 p=1 c=96 bias=off
    batchnorm bn3
    swish     a3
}
"""


def test_mobilevit_s_block_figures_by_hand():
    HW, d, mlp, P = 32 * 32, 144, 288, 2 * 2
    N = HW // P                                             # 256 patches of 2 x 2
    attention = 4 * d * d + 4 * d                           # W_qkv, W_o and their biases: 83,520
    layer = 2 * 2 * d + attention + (d * mlp + mlp) + (mlp * d + d)
    params = (3 * 3 * 96 * 96 + 2 * 96) + 96 * d + 2 * layer + 2 * d \
        + (d * 96 + 2 * 96) + (3 * 3 * 192 * 96 + 2 * 96)
    products = 2 * P * N * N * d                            # QK^T and AV per offset: 75,497,472
    layer_macs = 4 * HW * d * d + products + 2 * HW * d * mlp
    macs = HW * 3 * 3 * 96 * 96 + HW * 96 * d + 2 * layer_macs + HW * d * 96 + HW * 3 * 3 * 192 * 96
    assert (attention, layer, params) == (83_520, 167_472, 612_288)
    assert (products, layer_macs, macs) == (75_497_472, 245_366_784, 773_849_088)
    a = archcalc.analyze(archcalc.loads(BLOCK, "mobilevit_block.arch"))
    assert (a.totals["params"], a.totals["macs"], a.attention_macs) == (612_288, 773_849_088, 2 * products)
    rows = [r for r in a.rows if r.kind == "attention"]
    assert [(r.out_shape, r.macs, r.attention_macs) for r in rows] == 2 * [((32, 32, 144), 160_432_128, products)]
    assert "2*P*N*N*d = 2*4*256*256*144 = 75497472" in a.notes[0]


def test_the_block_runs_verified_and_exports_to_what_onnxruntime_computes(tmp_path, capsys):
    """At 8 x 8 the block runs with --verify, its export (an archcalc PatchAttention function of
    Reshape and Transpose around the attention) gives onnxruntime's output from the executor's
    weights, and the import reads back the same rows."""
    text = BLOCK.replace("H=32, W=32", "H=8, W=6")
    spec, model, back = verified_round_trip(tmp_path, capsys, text)
    same_rows(archcalc.analyze(archcalc.load(spec)), archcalc.analyze(archcalc.load(back)))
    assert "attention attn : heads=4 patch=2" in back.read_text()
    import onnx
    x = np.random.default_rng(3).standard_normal((2, 96, 8, 6)).astype(np.float32)
    sess = session(onnx.load(str(model)))
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    y = archcalc.run(archcalc.load(spec), x.transpose(0, 2, 3, 1)).output.transpose(0, 3, 1, 2)
    assert y.shape == want.shape == (2, 96, 8, 6) and relative_error(y, want) < TOLERANCE


# ---------------------------------------------------------------- as torch.onnx writes timm's block

DATA = Path(__file__).parent / "data"


def tiny_block_figures(C=8, d=16, mlp=32, H=8, W=6, p=2, depth=2):
    """(params, MACs, attention products) of tests/data's tiny MobileVitBlock, the exporter's
    BatchNorm folded into a bias for each of the 3 conv_norm_act convs."""
    HW, P = H * W, p * p
    N = HW // P
    layer = (2 * 2 * d + 4 * d * d + 4 * d + d * mlp + mlp + mlp * d + d,
             4 * HW * d * d + 2 * P * N * N * d + 2 * HW * d * mlp)
    params = (9 * C * C + C) + C * d + depth * layer[0] + 2 * d + (d * C + C) + (9 * 2 * C * C + C)
    macs = HW * (9 * C * C + C * d + d * C + 9 * 2 * C * C) + depth * layer[1]
    return params, macs, depth * 2 * P * N * N * d


KINDS = ["input", "conv", "swish", "conv"] + 2 * ["layernorm", "attention", "add", "layernorm", "conv",
                                                  "swish", "conv", "add"] + ["layernorm", "conv", "swish",
                                                                             "concat", "conv", "swish"]


def agrees_layer_by_layer(model, graph):
    """Every layer's output equals onnxruntime's tensor of the same name: a map (N, C, H, W),
    or MobileViT's sequences (N*P, N_patches, d), sequence a*p + b the pixels at offset (a, b)."""
    tensors, patches = graph.layout["tensors"], graph.layout.get("patches", {})
    sess = session(model, list(tensors.values()))
    x = np.random.default_rng(4).standard_normal((1, 8, 8, 6)).astype(np.float32)
    outputs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": x})))
    result = archcalc.run(graph, x.transpose(0, 2, 3, 1), graph.weights, keep=True)
    compared = 0
    for name, tensor in tensors.items():
        want, got = outputs.get(tensor), result.activations.get(name)
        if want is None or got is None:
            continue
        if name in patches:
            p, (B, H, W, d) = patches[name], got.shape
            got = np.stack([got[:, a::p, b::p].reshape(B, -1, d) for a in range(p) for b in range(p)], axis=1)
            got = got.reshape(B * p * p, -1, d)
        else:
            got = got.transpose(0, 3, 1, 2)
        assert got.shape == want.shape and relative_error(got, want) < TOLERANCE, name
        compared += 1
    return compared


@needs_onnx
@pytest.mark.parametrize("file", ["mobilevit_torch_tiny.onnx", "mobilevit_dynamo_tiny.onnx"])
def test_a_real_torch_onnx_export_of_timms_block_imports_exactly(file):
    """torch.onnx.export (opset 17, eval; TorchScript and dynamo exporters) of timm's
    MobileVitBlock, in 8, d 16, depth 2, 4 heads, an 8 x 6 map: the unfold and fold are moves,
    the attention is `attention : heads=4 patch=2`; torch's sum(p.numel()) = 6,512, the
    exporter's BatchNorm folding leaves 6,512 - 3*2*8 + 3*8 = 6,488."""
    import onnx

    from archcalc.onnx.importer import load_onnx
    assert tiny_block_figures() == (6_488, 328_704, 36_864) and 6_512 - 3 * 2 * 8 + 3 * 8 == 6_488
    graph = load_onnx(DATA / file)
    assert "the params here are 24 fewer than its count" in graph.notes[0]
    a = archcalc.analyze(graph)
    assert [r.kind for r in a.rows] == KINDS
    assert {(l.op.heads, l.op.patch) for l in graph.layers if l.op.kind == "attention"} == {(4, 2)}
    assert (a.totals["params"], a.totals["macs"], a.attention_macs) == (6_488, 328_704, 36_864)
    assert agrees_layer_by_layer(onnx.load(str(DATA / file)), graph) == len(a.rows) - 1


@needs_onnx
def test_the_hand_built_torch_form_imports_exactly():
    """tests/onnx_models.py's mobilevit_torch: the block above plus a head, Gemm 8 -> 10."""
    from onnx_models import mobilevit_torch

    from archcalc.onnx.importer import from_model
    model, _ = mobilevit_torch()
    a = archcalc.analyze(from_model(model, "mobilevit_torch.onnx"))
    params, macs, products = tiny_block_figures()
    assert (a.totals["params"], a.totals["macs"], a.attention_macs) == \
        (params + 8 * 10 + 10, macs + 8 * 10, products) == (6_578, 328_784, 36_864)
