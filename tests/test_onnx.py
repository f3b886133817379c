"""ONNX in and out, against onnxruntime (skipped without the onnx extra).

- round trip: every spec -> ONNX -> import gives the same analysis, layer by layer;
- the executor's output equals onnxruntime's on the exported model of every spec;
- hand-built models with the patterns of the common CNN families (tests/onnx_models.py)
  import with the shapes onnxruntime computes, layer by layer, and run to its output;
- MACs of ResNet-50 are 4,089,184,256 whether BatchNorm is folded into the convs or not.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import archcalc
from archcalc.cli import main as cli
from archcalc.errors import SpecError
from archcalc.executor import check

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(p.name for p in (ROOT / "specs").glob("*.arch"))
HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="needs the onnx extra: pip install 'archcalc[onnx]'")
TOLERANCE = 1e-4  # relative error in float32


def small_sizes(graph) -> dict:
    """The smallest input size (H = W) that every layer of the spec accepts: fast to run."""
    names = [s.name for s in graph.symbols if s.name in ("H", "W")]
    for size in (32, 64, 96, 128, 160, 192, 224, 227):  # 192: U-Net, whose smallest is 188
        at = {n: size for n in names}
        try:
            archcalc.analyze(graph, at=at)
            return at
        except SpecError:
            continue
    raise AssertionError("no small size fits")


def exported(spec):
    from archcalc.onnx.export import export
    from archcalc.onnx.importer import from_model
    graph = archcalc.load(ROOT / "specs" / spec)
    at = small_sizes(graph)
    model = export(graph, at=at)  # checked with onnx.checker
    return graph, at, model, from_model(model, f"{spec}.onnx")


def session(model, extra_outputs=()):
    import onnx
    import onnxruntime as ort
    if extra_outputs:
        model = onnx.ModelProto.FromString(model.SerializeToString())
        have = {o.name for o in model.graph.output}
        for name in extra_outputs:
            if name not in have:
                model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
                have.add(name)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # load faster
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def random_input(sess, at=None, batch=2):
    """Random images for the model's input: its fixed sizes, `at` for its named ones."""
    dims = sess.get_inputs()[0].shape
    shape = [dims[0] if isinstance(dims[0], int) else batch] + \
            [d if isinstance(d, int) else at[d] for d in dims[1:]]
    return np.random.default_rng(7).standard_normal(shape).astype(np.float32)


def relative_error(y, want):
    return float(np.abs(y - want).max() / np.abs(want).max())


def same_rows(a, b, renamed=None, depthwise_as_conv=False):
    """Layer by layer: name, kind, shapes, params, state, MACs, other ops. `depthwise_as_conv`:
    a spec's dwconv compares as conv, which is how the import reads a depthwise Conv."""
    assert len(a.rows) == len(b.rows)
    for r, s in zip(a.rows, b.rows):
        name = renamed[r.name] if renamed else r.name
        kind = "conv" if depthwise_as_conv and r.kind == "dwconv" else r.kind
        assert (name, kind, tuple(r.out_shape), r.params, r.state, r.macs, r.other_ops) == \
               (s.name, s.kind, tuple(s.out_shape), s.params, s.state, s.macs, s.other_ops), r.name
    assert a.totals == b.totals


# ---------------------------------------------------------------- every spec, both ways

@needs_onnx
@pytest.mark.parametrize("spec", SPECS)
def test_spec_to_onnx_and_back_analyses_and_runs_the_same(spec):
    """Round trip: the same analysis, layer by layer; and the executor on the imported model
    (its weights converted twice) equals onnxruntime on the exported one."""
    from archcalc.onnx.layout import model_input, model_output
    graph, at, model, imported = exported(spec)
    same_rows(archcalc.analyze(graph, at=at), archcalc.analyze(imported), depthwise_as_conv=True)
    sess = session(model)
    x = random_input(sess)
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    del sess, model
    result = archcalc.run(imported, model_input(imported, x), imported.weights)
    y = model_output(imported, result.analysis.rows[-1].name, result.output)
    assert y.shape == want.shape
    assert relative_error(y, want) < TOLERANCE
    assert check(result) == []  # shapes, MACs and weight counts equal the analysis


TINY_VIT = """
network TinyViT {
    input     x     : (32, 32, 3)
    conv      patch : f=16 s=16 c=8
    tokens    t     : class_token=on position=on
    attention a     : heads=2
    add       r     <- t, a
    conv      mlp   : f=1 c=16
    relu
    conv      mlp2  : f=1 c=8
    add       r2    <- r, mlp2
    token     cls   : 0
    fc        head  : 10
}
"""


@needs_onnx
@pytest.mark.parametrize("text", [TINY_VIT, TINY_VIT.replace("class_token=on position=on", "position=off")
                                  .replace("token     cls   : 0", "token     cls   : 3")],
                         ids=["class token", "no class token"])
def test_attention_and_tokens_agree_with_onnxruntime(text):
    """Attention exported as MatMul, Softmax, Transpose and Reshape in an archcalc function:
    onnxruntime on the export equals the executor on the spec, and the import reads back the
    same kinds and counts (QK^T and AV included: 2 * 5*5*8 = 400 MACs with the class token)."""
    from archcalc.onnx.export import export
    from archcalc.onnx.importer import from_model
    from archcalc.onnx.layout import model_input, model_output
    graph = archcalc.loads(text)
    model = export(graph)
    imported = from_model(model, "tiny.onnx")
    same_rows(archcalc.analyze(graph), archcalc.analyze(imported))
    assert [l.kind for l in imported.layers][2:5] == ["tokens", "attention", "add"]
    sess = session(model)
    x = random_input(sess)
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    result = archcalc.run(imported, model_input(imported, x), imported.weights)
    assert relative_error(model_output(imported, result.analysis.rows[-1].name, result.output), want) < TOLERANCE
    assert check(result) == []


@needs_onnx
def test_exported_weights_are_the_executors_seeded_ones():
    """A spec run directly and its exported model, imported and run, agree: the export keeps
    each weight's meaning through the transposes."""
    graph, at, model, imported = exported("alexnet_2gpu.arch")
    x = np.random.default_rng(3).standard_normal((1, *[at["H"], at["W"]], 3)).astype(np.float32)
    direct = archcalc.run(graph, x, at=at).output
    via_onnx = archcalc.run(imported, x, imported.weights).output
    assert relative_error(via_onnx, direct) < TOLERANCE


@needs_onnx
def test_free_sizes_stay_symbols_through_a_round_trip():
    from archcalc.onnx.export import export
    from archcalc.onnx.importer import from_model
    graph = archcalc.load(ROOT / "specs" / "resnet18.arch")
    model = export(graph, free=("H", "W"))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 3, "H", "W"]
    imported = from_model(model, "r18.onnx")
    assert [(s.name, s.default) for s in imported.symbols] == [("H", 224), ("W", 224)]
    a, b = archcalc.analyze(graph, free=("H", "W")), archcalc.analyze(imported, free=("H", "W"))
    assert str(a.totals["macs"]) == str(b.totals["macs"])
    assert archcalc.analyze(imported).totals["macs"] == 1_814_073_344


# ---------------------------------------------------------------- ResNet-50: BN folded or not

@needs_onnx
@pytest.mark.parametrize("fold_bn, params, state", [(False, 25_557_032, 53_120),
                                                    (True, 25_530_472, 0)])
def test_resnet50_macs_do_not_depend_on_folding_batchnorm(fold_bn, params, state):
    from archcalc.onnx.export import export
    from archcalc.onnx.importer import from_model
    model = export(archcalc.load(ROOT / "specs" / "resnet50.arch"), fold_bn=fold_bn, check=False)
    kinds = {n.op_type for n in model.graph.node}
    assert ("BatchNormalization" in kinds) is not fold_bn
    a = archcalc.analyze(from_model(model, "resnet50.onnx"))
    assert a.totals["macs"] == 4_089_184_256
    # folded: each BatchNorm's gamma and beta leave (53,120) and its conv gains a bias (26,560)
    assert (a.totals["params"], a.totals["state"]) == (params, state)


CONV_BN = """
network ConvBN {
    input     x  : (6, 6, 2)
    conv      c1 : f=3 c=3
    batchnorm b1
    relu
}
"""


@needs_onnx
def test_batchnorm_folded_on_export_is_the_executors_folding():
    from onnx import numpy_helper
    from archcalc.executor import fusion
    from archcalc.onnx import export as onnx_export, exporter
    assert exporter.fold is fusion.fold  # one rule, used by the fusion and the export
    graph = archcalc.loads(CONV_BN)
    rng = np.random.default_rng(3)
    w = {"c1": {"W": rng.standard_normal((3, 3, 2, 3)), "b": rng.standard_normal(3)},
         "b1": {"gamma": rng.standard_normal(3), "beta": rng.standard_normal(3),
                "mean": rng.standard_normal(3), "var": rng.random(3) + 0.5}}
    model = onnx_export.export(graph, weights=w, fold_bn=True)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    f32 = {n: {k: a.astype(np.float32) for k, a in p.items()} for n, p in w.items()}
    scale = f32["b1"]["gamma"] / np.sqrt(f32["b1"]["var"] + np.float32(1e-5))
    assert np.array_equal(inits["c1.W"], (f32["c1"]["W"] * scale).transpose(3, 2, 0, 1))
    assert np.array_equal(inits["c1.b"], f32["c1"]["b"] * scale
                          + (f32["b1"]["beta"] - f32["b1"]["mean"] * scale))
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    sess = session(model)
    want = archcalc.run(graph, x.transpose(0, 2, 3, 1), w, keep=True).output  # BN not folded
    y = sess.run(None, {"x": x})[0].transpose(0, 2, 3, 1)
    assert relative_error(y, want) < TOLERANCE


UPSAMPLE = """
network Up {
    input    x  : (5, 7, 3)
    conv     c1 : f=3 p=1 c=4
    upsample u1 : 2                             # nearest: (10, 14, 4)
    conv     c2 : f=3 p=1 c=4
    upsample u2 : scale=3 mode=bilinear         # (30, 42, 4)
    upsample u3 : size=(17, 23) mode=bilinear   # to a size, here fewer pixels
    upsample u4 : size=(34, 69)                 # nearest: rows x2, columns x3
    conv     c3 : f=1 c=2
}
"""


def verified_round_trip(tmp_path, capsys, text):
    """A spec run with --verify, exported and imported back by the commands: the three files."""
    spec, model, back = tmp_path / "spec.arch", tmp_path / "spec.onnx", tmp_path / "back.arch"
    spec.write_text(text)
    assert cli(["run", str(spec), "--verify", "--batch", "2"]) == 0
    assert "every shape, MAC count and weight count equals the analysis" in capsys.readouterr().out
    assert cli(["export", str(spec), "-o", str(model)]) == 0
    assert cli(["import", str(model), "-o", str(back)]) == 0
    capsys.readouterr()
    return spec, model, back


@needs_onnx
def test_upsample_spec_runs_verified_exports_and_imports(tmp_path, capsys):
    """The spec runs with --verify; its export (Resize, opset 17) gives onnxruntime's output
    from the executor's weights; the import reads it back as the same layers."""
    import onnx
    spec, model, back = verified_round_trip(tmp_path, capsys, UPSAMPLE)
    assert "upsample  u3 : size=(17, 23) mode=bilinear" in back.read_text()
    same_rows(archcalc.analyze(archcalc.load(spec)), archcalc.analyze(archcalc.load(back)))
    assert {n.op_type for n in onnx.load(str(model)).graph.node} == {"Conv", "Resize", "Shape", "Concat"}
    x = np.random.default_rng(5).standard_normal((2, 3, 5, 7)).astype(np.float32)
    sess = session(onnx.load(str(model)))
    want = sess.run(None, {"x": x})[0]
    y = archcalc.run(archcalc.load(spec), x.transpose(0, 2, 3, 1)).output.transpose(0, 3, 1, 2)
    assert y.shape == want.shape == (2, 2, 34, 69) and relative_error(y, want) < TOLERANCE


@needs_onnx
@pytest.mark.parametrize("opset", [9, 10])
def test_upsample_of_old_opsets_is_nearest_by_a_whole_factor(opset):
    """Upsample (opsets 7-9) and Resize of opset 10 had no coordinate modes: asymmetric, floor."""
    from onnx_models import Builder

    from archcalc.onnx.importer import from_model
    from archcalc.onnx.layout import model_input, model_output
    b = Builder("old")
    y = b.node("Upsample" if opset == 9 else "Resize", [b.conv("x", 3, 4, 3, p=1), b.const(np.array([1, 1, 3, 3], np.float32))],
               mode="nearest")
    y = b.node("Flatten", [b.node("GlobalAveragePool", [b.conv(y, 4, 2, 2, s=2)])], axis=1)
    model = b.model(["N", 3, 5, 6], y, opset=opset)
    graph = from_model(model, "old.onnx")
    assert [l.op for l in graph.layers if l.kind == "upsample"] == [archcalc.kinds.Upsample(scale=3)]
    sess = session(model)
    x = random_input(sess)
    result = archcalc.run(graph, model_input(graph, x), graph.weights)
    y = model_output(graph, result.analysis.rows[-1].name, result.output)
    assert relative_error(y, sess.run(None, {"x": x})[0]) < TOLERANCE


@needs_onnx
@pytest.mark.parametrize("attrs, scales, reason", [
    (dict(mode="linear", coordinate_transformation_mode="align_corners"), [1, 1, 2, 2],
     "Resize in mode linear with coordinate_transformation_mode align_corners"),
    (dict(mode="cubic"), [1, 1, 2, 2], "Resize in mode cubic"),
    (dict(mode="nearest", coordinate_transformation_mode="asymmetric"), [1, 1, 3, 3],
     "nearest_mode round_prefer_floor with coordinate_transformation_mode asymmetric"),
    (dict(mode="nearest", nearest_mode="floor"), [1, 1, 2, 2],
     "nearest_mode floor with coordinate_transformation_mode half_pixel"),
    (dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
     [1, 1, 1.5, 1.5], "Resize by scales [1.0, 1.0, 1.5, 1.5]"),
])
def test_a_resize_upsample_cannot_express_says_why(attrs, scales, reason):
    from onnx_models import Builder

    from archcalc.onnx.importer import from_model
    b = Builder("odd")
    y = b.node("Resize", [b.conv("x", 3, 4, 3), "", b.const(np.array(scales, np.float32))], **attrs)
    with pytest.raises(SpecError, match="1 node\\(s\\) archcalc cannot import") as e:
        from_model(_model_4d_any(b, y), "odd.onnx")
    assert reason in str(e.value)


# ---------------------------------------------------------------- models of the CNN families

def families():
    if not HAVE_ONNX:
        return []
    sys.path.insert(0, str(Path(__file__).parent))
    from onnx_models import FAMILIES
    return sorted(FAMILIES)


@needs_onnx
@pytest.mark.parametrize("family", families())
def test_family_imports_with_onnxruntimes_shapes_and_output(family):
    from onnx_models import FAMILIES

    from archcalc.onnx.importer import from_model
    from archcalc.onnx.layout import model_input, model_output
    model, at = FAMILIES[family]()
    graph = from_model(model, f"{family}.onnx")
    analysis = archcalc.analyze(graph, at=at)
    tensors = graph.layout["tensors"]
    sess = session(model, [t for t in tensors.values() if "#" not in t])
    x = random_input(sess, at)
    outputs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": x})))
    compared = 0
    last = set(graph.layout.get("channels_last", ()))  # tensors the model holds (N, H, W, C)
    for row in analysis.rows:
        got = outputs.get(tensors.get(row.name))
        if got is None:
            continue
        want = (got.shape[2], got.shape[3], got.shape[1]) if got.ndim == 4 else (1, 1, got.shape[1])
        if got.ndim == 3:  # tokens (N, T, d)
            want = (1, got.shape[1], got.shape[2])
        want = tuple(got.shape[1:]) if row.name in last else want
        if got.ndim == 5:  # radix splits (N, r, C, H, W): archcalc keeps the map of r*C
            want = (got.shape[3], got.shape[4], got.shape[1] * got.shape[2])
        P = graph.layout.get("patches", {}).get(row.name, 0) ** 2  # MobileViT's (P, n_H n_W / P, n_C)
        if P and got.shape == (P, row.out_shape.n_H * row.out_shape.n_W // P, row.out_shape.n_C):
            want = tuple(row.out_shape)
        if got.ndim == 2:
            assert row.out_shape.n_H * row.out_shape.n_W * row.out_shape.n_C == got.shape[1], row.name
        else:
            assert tuple(row.out_shape) == want, row.name
        compared += 1
    assert compared >= len(analysis.rows) - 2
    result = archcalc.run(graph, model_input(graph, x), graph.weights, at=at)
    y = model_output(graph, analysis.rows[-1].name, result.output)
    assert relative_error(y, outputs[model.graph.output[0].name]) < TOLERANCE
    assert check(result) == []


FAMILY_KINDS = {  # the kinds each family's characteristic pattern must become
    "mobilenet": {"clip", "hardswish", "hardsigmoid", "mul", "add"},
    "squeezenet": {"concat", "maxpool", "dropout"},
    "densenet": {"concat", "avgpool", "batchnorm"},
    "shufflenet": {"shuffle", "slice", "concat"},
    "efficientnet": {"swish", "mul", "sigmoid", "gap"},
    "resnext": {"conv", "mul", "add"},
    "inception": {"conv_hw", "pad", "avgpool", "lrn", "leaky_relu", "softmax"},
    "vgg_like": {"flatten", "fc", "softmax"},
    "keras_like": {"pad", "flatten", "fc"},
    "unet_like": {"upsample", "concat"},
    "convnext_like": {"layernorm", "gelu", "scale", "elu"},
    "efficientnet_lite": {"pad", "conv", "clip"},  # 'same' padding folded from Shape(x)
    "mobilevit_like": {"upsample"},  # Resize sizes from Sqrt(Cast(Shape ...))
    "vit_torch": {"tokens", "attention", "layernorm", "gelu", "token"},
    "mobilevit_torch": {"attention", "layernorm", "swish", "concat"},  # attention patch=2
    "convnext_torch": {"layernorm", "gelu", "scale", "conv", "add"},  # Linear in (N, H, W, C): 1x1 conv
    "convnext_timm": {"layernorm", "gelu", "scale", "conv", "gap"},  # LayerNorm written out
    "resnest_like": {"split_sum", "radix_softmax", "mul", "gap"},
}


@needs_onnx
@pytest.mark.parametrize("family", families())
def test_family_patterns_become_archcalc_kinds(family):
    from onnx_models import FAMILIES

    from archcalc.onnx.importer import from_model
    model, at = FAMILIES[family]()
    graph = from_model(model, f"{family}.onnx")
    kinds = {graph.layer(n).kind for n in graph.graph.nodes}
    assert FAMILY_KINDS[family] <= kinds
    if family == "resnext":
        assert any(graph.layer(n).op.groups == 32 for n in graph.graph.nodes
                   if graph.layer(n).kind == "conv")
    if family in ("mobilenet", "shufflenet"):  # named dimensions stay free symbols
        assert [s.name for s in graph.symbols] == ["H", "W"]
        assert archcalc.analyze(graph).free == ("H", "W")


@needs_onnx
@pytest.mark.parametrize("family", ["shufflenet", "inception", "mobilenet"])
def test_imported_model_written_as_a_spec_analyses_the_same(family):
    from onnx_models import FAMILIES

    from archcalc.onnx.importer import from_model
    from archcalc.lang.write import write
    model, at = FAMILIES[family]()
    graph = from_model(model, f"{family}.onnx")
    text, renamed = write(graph)
    same_rows(archcalc.analyze(graph, at=at), archcalc.analyze(archcalc.loads(text), at=at), renamed)


# ---------------------------------------------------------------- the import's operator table

def test_imports_table_is_the_vocabulary_and_every_operator_it_names_has_a_handler():
    from archcalc.kinds import KINDS
    from archcalc.onnx.functions import ARCHCALC
    from archcalc.onnx.handlers import HANDLERS, IMPORTS
    missing, extra = sorted(set(KINDS) - set(IMPORTS)), sorted(set(IMPORTS) - set(KINDS))
    assert (missing, extra) == ([], []), f"IMPORTS misses kinds {missing}, names unknown kinds {extra}"
    unhandled = [(kind, op) for kind, ops in IMPORTS.items() for op in ops
                 if not (op.removeprefix("archcalc.") in ARCHCALC if op.startswith("archcalc.")
                         else op in HANDLERS)]
    assert unhandled == [], f"IMPORTS names operators without a handler: {unhandled}"


FUNCTIONS_AND_ALIASES = """
network Rest {
    input            x : (8, 8, 3)
    conv             c : f=3 p=1 c=4
    identity         i
    crop             cr : size=(6, 6)
    adaptive_avgpool a : 2
    tokens           t : class_token=on position=on
    attention        at : 2
    token            k : 0
}
"""


@needs_onnx
def test_imports_table_names_the_operator_each_imported_layer_comes_from():
    """Every layer of the family models, of LeNet-5 (1998) and of a spec with the rest of the
    vocabulary, imported: its kind and the operator of its node are a pair of IMPORTS; and
    together they make every kind."""
    from onnx_models import FAMILIES, upconv

    from archcalc.kinds import KINDS
    from archcalc.onnx.export import export
    from archcalc.onnx.handlers import IMPORTS
    from archcalc.onnx.importer import from_model
    models = [FAMILIES[f]()[0] for f in sorted(FAMILIES)] + [upconv()[0]]
    models += [export(archcalc.load(ROOT / "specs" / "lenet5_1998.arch")),
               export(archcalc.loads(FUNCTIONS_AND_ALIASES))]
    seen = {kind for kind, operators in IMPORTS.items() if not operators}  # input; dwconv: written only
    for model in models:
        graph = from_model(model, f"{model.graph.name}.onnx")
        for layer in graph.layers:
            if layer.kind == "input":
                continue
            node = model.graph.node[layer.span.line - 1]  # the node's index + 1 (Importer.node_span)
            op = f"archcalc.{node.op_type}" if node.domain == "archcalc" else node.op_type
            op = "archcalc.AdaptiveAvgPool_*" if op.startswith("archcalc.AdaptiveAvgPool_") else op
            assert op in IMPORTS[layer.kind], (model.graph.name, layer.name, layer.kind, op)
            seen.add(layer.kind)
    assert sorted(set(KINDS) - seen) == []


# ---------------------------------------------------------------- counting and errors

@needs_onnx
def test_a_tensor_two_layers_share_counts_once_in_the_totals():
    from onnx_models import Builder

    from archcalc.onnx.importer import from_model
    b = Builder("siamese")
    w = b.weight(4, 4, 3, 3)
    y = b.node("Conv", [b.node("Conv", ["x", w], kernel_shape=[3, 3], pads=[1, 1, 1, 1]), w],
               kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    graph = from_model(_model_4d(b, y), "siamese.onnx")
    a = archcalc.analyze(graph)
    assert [r.params for r in a.rows[1:]] == [144, 144]  # each layer shows what it reads
    assert a.totals["params"] == a.totals["trainable_params"] == 144  # counted once
    assert any("counted once" in n for n in a.notes)


def _model_4d(b, y):
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    out = helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 4, 8, 8])
    m = helper.make_model(helper.make_graph(b.nodes, b.name, [x], [out], b.inits),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


@needs_onnx
def test_unsupported_operators_are_listed_every_one():
    from onnx_models import Builder

    from archcalc.onnx.importer import from_model
    b = Builder("odd")
    y = b.node("Selu", [b.node("Conv", ["x", b.weight(4, 3, 3, 3)], kernel_shape=[3, 3])])
    y = b.node("Selu", [b.node("Softplus", [y])])
    with pytest.raises(SpecError) as e:
        from_model(_model_4d_any(b, y), "odd.onnx")
    text = str(e.value)
    assert "3 node(s) use operators archcalc does not support: Selu, Softplus" in text
    assert text.count("': Selu") == 2 and "': Softplus" in text
    assert "supported operators: Add, AveragePool" in text


@needs_onnx
def test_an_unsupported_use_of_a_known_operator_says_why():
    from onnx_models import Builder

    from archcalc.onnx.importer import from_model
    b = Builder("odd")
    y = b.node("Transpose", [b.node("Conv", ["x", b.weight(4, 3, 3, 3)], kernel_shape=[3, 3])],
               perm=[0, 1, 3, 2])
    y = b.node("Div", [y, b.const(np.float32(2))])
    with pytest.raises(SpecError) as e:
        from_model(_model_4d_any(b, y), "odd.onnx")
    text = str(e.value)
    assert "1 node(s) archcalc cannot import" in text and "Transpose with perm [0, 1, 3, 2]" in text


def _model_4d_any(b, y):  # unchecked: the checker refuses what these tests feed the import
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    out = helper.make_tensor_value_info(y, TensorProto.FLOAT, None)
    m = helper.make_model(helper.make_graph(b.nodes, b.name, [x], [out], b.inits),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def test_without_onnx_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    path = tmp_path / "m.onnx"
    path.write_bytes(b"")
    with pytest.raises(SpecError, match=r"(?s)needs the 'onnx' package.*pip install 'archcalc\[onnx\]'"):
        archcalc.load(path)
    assert cli(["export", str(ROOT / "specs" / "lenet5.arch"), "-o", str(tmp_path / "l.onnx")]) == 1


def test_archcalc_imports_without_onnx():
    """onnx is optional: importing archcalc never imports it."""
    import subprocess
    code = "import sys, archcalc, archcalc.cli; sys.exit('onnx' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


# ---------------------------------------------------------------- the commands

@needs_onnx
def test_commands_export_analyze_import_and_run(tmp_path, capsys):
    spec, model = ROOT / "specs" / "lenet5.arch", tmp_path / "lenet5.onnx"
    assert cli(["export", str(spec), "-o", str(model)]) == 0
    assert "checked with onnx.checker" in capsys.readouterr().out
    assert cli(["analyze", str(model)]) == 0
    assert "416,520" in capsys.readouterr().out  # LeNet-5's MACs, as for the spec
    out_spec, weights = tmp_path / "lenet5_imported.arch", tmp_path / "w.npz"
    assert cli(["import", str(model), "-o", str(out_spec), "--save-weights", str(weights)]) == 0
    capsys.readouterr()
    text = out_spec.read_text()
    assert text.startswith("# Imported from lenet5.onnx") and "network LeNet5 {" in text
    same_rows(archcalc.analyze(archcalc.load(spec)), archcalc.analyze(archcalc.load(out_spec)))
    # run on the model's weights, arrays in its own layout (NCHW), against onnxruntime
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert cli(["run", str(model), "--input", str(tmp_path / "x.npy"),
                "--output", str(tmp_path / "y.npy")]) == 0
    assert "weights the model's" in capsys.readouterr().out
    import onnx
    sess = session(onnx.load(str(model)))
    want = sess.run(None, {"x": x})[0]
    y = np.load(tmp_path / "y.npy")
    assert y.shape == want.shape == (3, 10) and relative_error(y, want) < TOLERANCE
    # the imported spec runs on the saved weights to the same output
    y_spec = archcalc.run(archcalc.load(out_spec), x.transpose(0, 2, 3, 1), str(weights)).output
    assert relative_error(y_spec.reshape(3, 10), want) < TOLERANCE


@needs_onnx
def test_run_test_time_options_on_a_model_keep_its_layout_and_weights(tmp_path, capsys):
    import onnx
    model = tmp_path / "lenet5.onnx"
    assert cli(["export", str(ROOT / "specs" / "lenet5.arch"), "-o", str(model)]) == 0
    x = np.random.default_rng(1).standard_normal((2, 1, 36, 36)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    run = ["run", str(model), "--input", str(tmp_path / "x.npy"),
           "--output", str(tmp_path / "y.npy")]
    # 2 crops: the centre 32x32 (from row and column round(4/2) = 2) and its mirror, averaged
    assert cli(run + ["--crops", "2"]) == 0
    assert "x 1 model ('the model's weights" in capsys.readouterr().out
    sess = session(onnx.load(str(model)))
    centre = np.ascontiguousarray(x[:, :, 2:34, 2:34])
    mirror = np.ascontiguousarray(centre[..., ::-1])
    want = (sess.run(None, {"x": centre})[0] + sess.run(None, {"x": mirror})[0]) / 2
    y = np.load(tmp_path / "y.npy")
    assert y.shape == want.shape == (2, 10) and relative_error(y, want) < TOLERANCE
    # --ensemble K draws K seeded networks: the model's own weights are not a --weights given
    assert cli(run + ["--ensemble", "1"]) == 0
    assert "x 1 model (seed 0)" in capsys.readouterr().out
    graph = archcalc.load(model)
    seeded = archcalc.run(graph, centre.transpose(0, 2, 3, 1), None, seed=0).output
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (2, 10) and np.array_equal(y, seeded.reshape(2, 10))


@needs_onnx
def test_import_writes_blocks_for_repeated_modules(tmp_path, capsys):
    spec, model = ROOT / "specs" / "resnet34.arch", tmp_path / "r34.onnx"
    assert cli(["export", str(spec), "-o", str(model), "--set", "H=64", "--set", "W=64"]) == 0
    assert cli(["import", str(model)]) == 0
    text = capsys.readouterr().out.split("\n", 1)[1]
    assert "block layer1_block(" in text
    assert text.count("layer1_block ") >= 3
