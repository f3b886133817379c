"""ResNeSt's split attention (Zhang et al. 2020): `split_sum` and `radix_softmax` in a spec,
worked out by hand; the executor against onnxruntime on its export; timm's exported pattern
(tests/onnx_models.py, `resnest_like`) imported with exact params and MACs."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import archcalc
from archcalc.executor import check

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="needs the onnx extra: pip install 'archcalc[onnx]'")

# timm's SplitAttn of resnest50d's first block (layer1.0.conv2): 64 maps in and out, radix 2,
# cardinality 1, attn_chs = make_divisible(64*2/4, min_value=32, divisor=8) = 32
SPLAT = """
network SplitAttn(H=56, W=56) {
    input         x      : (H, W, 64)
    conv          conv   : f=3 p=1 c=R*64 groups=G*R bias=off
    batchnorm     bn0
    relu          act0
    split_sum     gap_in : R
    gap           pool
    conv          fc1    : f=1 c=32 groups=G
    batchnorm     bn1
    relu          act1
    conv          fc2    : f=1 c=R*64 groups=G
    radix_softmax attn   : R groups=G
    mul           prod   <- act0, attn
    split_sum     out    : R
}
"""


def splat(r=2, card=1):
    return archcalc.loads(SPLAT.replace("R", str(r)).replace("G", str(card)))


def test_split_attention_block_of_resnest50d_by_hand():
    a = archcalc.analyze(splat())
    conv = 128 * (64 // 2) * 3 * 3              # W (128, 32, 3, 3): 36,864
    fc1, fc2 = 32 * 64 + 32, 128 * 32 + 128     # 2,080 and 4,224, with biases
    assert (a.row("conv").params, a.row("fc1").params, a.row("fc2").params) == (conv, fc1, fc2)
    assert a.totals["params"] == conv + 2 * 128 + fc1 + 2 * 32 + fc2 == 43_488
    assert a.totals["state"] == 2 * 128 + 2 * 32
    assert a.totals["macs"] == 56 * 56 * conv + 64 * 32 + 32 * 128 == 115_611_648
    rows = {r.name: r for r in a.rows}
    assert tuple(rows["gap_in"].out_shape) == (56, 56, 64) and tuple(rows["out"].out_shape) == (56, 56, 64)
    assert (rows["gap_in"].other_ops, rows["out"].other_ops) == (56 * 56 * 64, 56 * 56 * 64)  # r - 1 = 1 add
    assert (rows["attn"].other_ops, rows["attn"].macs, rows["attn"].params) == (3 * 128, 0, 0)
    assert rows["prod"].other_ops == 56 * 56 * 128 and rows["prod"].macs == 0


def test_radix_four_in_two_groups_by_hand():
    """resnest50d_4s2x40d's shape of block: radix 4, cardinality 2, 64 maps at 8 x 8."""
    a = archcalc.analyze(splat(4, 2), at={"H": 8, "W": 8})
    conv = 256 * (64 // 8) * 9                  # 8 groups: W (256, 8, 3, 3)
    fc1, fc2 = 32 * (64 // 2) + 32, 256 * (32 // 2) + 256
    assert a.totals["params"] == conv + 2 * 256 + fc1 + 2 * 32 + fc2 == 24_416
    assert a.totals["macs"] == 8 * 8 * conv + 32 * 32 + 256 * 16 == 1_184_768
    assert a.row("out").other_ops == 3 * 8 * 8 * 64 and a.row("attn").other_ops == 3 * 256


def test_split_attention_runs_verified():
    result = archcalc.run(splat(4, 2), np.random.default_rng(0).standard_normal((2, 8, 8, 64)),
                          at={"H": 8, "W": 8})
    assert result.output.shape == (2, 8, 8, 64)
    assert check(result) == []  # shapes, MACs and weight counts equal the analysis


@pytest.mark.parametrize("statement, message", [
    ("split_sum s : 3", "r = 3 does not divide n_C = 64"),
    ("radix_softmax s : 3", "r*groups = 3 does not divide n_C = 64"),
    ("radix_softmax s : 1", "r=1 has one split"),
])
def test_split_attention_sizes_that_do_not_divide_are_refused(statement, message):
    text = f"network N {{\n    input x : (4, 4, 64)\n    {statement}\n}}\n"
    with pytest.raises(archcalc.SpecError, match=message):
        archcalc.analyze(archcalc.loads(text))


@needs_onnx
@pytest.mark.parametrize("r, card", [(2, 1), (4, 2)])
def test_export_agrees_with_onnxruntime_and_imports_back(r, card):
    import onnxruntime as ort

    from archcalc.onnx.export import export
    from archcalc.onnx.importer import from_model
    from archcalc.onnx.layout import model_input, model_output
    graph = splat(r, card)
    at = {"H": 8, "W": 8}
    model = export(graph, at=at)
    imported = from_model(model, "splat.onnx")
    a, b = archcalc.analyze(graph, at=at), archcalc.analyze(imported)
    assert [(r.name, r.kind, r.params, r.macs, r.other_ops) for r in a.rows] == \
           [(r.name, r.kind, r.params, r.macs, r.other_ops) for r in b.rows]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).standard_normal((2, 64, 8, 8)).astype(np.float32)
    want = sess.run(None, {"x": x})[0]
    result = archcalc.run(imported, model_input(imported, x), imported.weights)
    y = model_output(imported, result.analysis.rows[-1].name, result.output)
    assert y.shape == want.shape == (2, 64, 8, 8)
    assert float(np.abs(y - want).max() / np.abs(want).max()) < 1e-4


@needs_onnx
def test_timms_exported_split_attention_imports_with_exact_counts():
    """tests/onnx_models.py's resnest_like: a 3 -> 16 stem conv (bias), then timm's SplitAttn
    with radix 2, cardinality 1, then radix 4, cardinality 2 (16 maps, attn_chs 32), global
    average pool, Gemm 16 -> 10; 8 x 8 maps throughout. onnxruntime's output is checked in
    tests/test_onnx.py (the families)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from onnx_models import resnest_like

    from archcalc.onnx.importer import from_model
    model, _ = resnest_like()
    graph = from_model(model, "resnest_like.onnx")
    kinds = [l.kind for l in graph.layers]
    assert kinds.count("split_sum") == 4 and kinds.count("radix_softmax") == 2
    assert [l.op.r for l in graph.layers if l.kind == "split_sum"] == [2, 2, 4, 4]
    assert [(l.op.r, l.op.groups) for l in graph.layers if l.kind == "radix_softmax"] == [(2, 1), (4, 2)]
    stem = 16 * 3 * 9 + 16
    block1 = 32 * (16 // 2) * 9 + 2 * 32 + (32 * 16 + 32) + 2 * 32 + (32 * 32 + 32)
    block2 = 64 * (16 // 8) * 9 + 2 * 64 + (32 * 8 + 32) + 2 * 32 + (64 * 16 + 64)
    head = 16 * 10 + 10
    a = archcalc.analyze(graph)
    assert (block1, block2) == (4_032, 2_720)
    assert a.totals["params"] == stem + block1 + block2 + head == 7_370
    macs = 64 * (16 * 27 + 32 * 72 + 64 * 18) + (16 * 32 + 32 * 32) + (32 * 8 + 64 * 16) + 16 * 10
    assert a.totals["macs"] == macs == 251_808


def resnest50d_by_hand():
    """(params, MACs) of timm's resnest50d at 224 x 224, written out: a bottleneck of width w
    reading c_in maps has conv1 c_in w + BN 2w, the split attention (conv 2w maps of w/2 taps
    each: 9w^2; BN 4w; fc1 w a + a; BN 2a; fc2 2w a + 2w), conv3 4w^2 + BN 8w, and where it
    projects, a shortcut conv 4w c_in + BN 8w; a = max(32, w/2)."""
    params = 3 * 32 * 9 + 64 + 32 * 32 * 9 + 64 + 32 * 64 * 9 + 128   # deep stem and bn1
    macs = 112 * 112 * (32 * 27 + 32 * 288 + 64 * 288)
    c_in, n = 64, 56                                                  # after the max pool
    for w, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        a = max(32, w // 2)
        for k in range(blocks):
            s = stride if k == 0 else 1
            n_out = n // s
            splat = 9 * w * w + 4 * w + (w * a + a) + 2 * a + (2 * w * a + 2 * w)
            params += c_in * w + 2 * w + splat + 4 * w * w + 8 * w
            macs += n * n * (c_in * w + 9 * w * w) + w * a + a * 2 * w + n_out * n_out * 4 * w * w
            if k == 0:  # the shortcut projects: 1x1 conv + BN (after a 2x2/2 average pool if s = 2)
                params += c_in * 4 * w + 8 * w
                macs += n_out * n_out * c_in * 4 * w
            c_in, n = 4 * w, n_out
    return params + 2048 * 1000 + 1000, macs + 2048 * 1000


def test_resnest50d_spec_is_timms_by_hand():
    """27,483,240 params: timm's count for resnest50d; both figures from the sum above."""
    a = archcalc.analyze(Path(__file__).resolve().parent.parent / "specs" / "resnest50d.arch")
    assert resnest50d_by_hand() == (a.totals["params"], a.totals["macs"]) == (27_483_240, 5_371_160_576)
    assert tuple(a.row("layer4.b_2.out").out_shape) == (7, 7, 2048)
    assert tuple(a.row("layer2.b0.avd").out_shape) == (28, 28, 128)
    kinds = [r.kind for r in a.rows]
    assert kinds.count("split_sum") == 2 * 16 and kinds.count("radix_softmax") == 16


def test_resnest50d_runs_verified_at_a_small_size():
    result = archcalc.run(Path(__file__).resolve().parent.parent / "specs" / "resnest50d.arch",
                          np.random.default_rng(1).standard_normal((1, 32, 32, 3)), at={"H": 32, "W": 32})
    assert result.output.shape == (1, 1, 1, 1000)
    assert check(result) == []


@needs_onnx
def test_a_reduce_sum_that_is_not_over_radix_splits_says_why():
    sys.path.insert(0, str(Path(__file__).parent))
    from onnx_models import Builder, unchecked

    from archcalc.onnx.importer import from_model
    b = Builder("sum_pool")
    y = b.node("ReduceSum", [b.conv("x", 3, 8, 3, p=1), b.const(np.array([2, 3], np.int64))], name="total")
    with pytest.raises(archcalc.SpecError) as e:
        from_model(unchecked(b, y), "sum_pool.onnx")
    assert str(e.value).splitlines()[1] == (
        "  = node 1 'total': ReduceSum over axes [2, 3] of a rank-4 tensor (archcalc reads the sum "
        "over the splits (N, r, C, H, W) -> (N, C, H, W) of ResNeSt's split attention: axis 1, "
        "keepdims=0)")
