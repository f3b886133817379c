"""The executor against the analysis: every spec runs, and every executed shape, counted
multiply-accumulate and weight array agrees with the static figures; weights files; errors."""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import archcalc
from archcalc import analyze, loads
from archcalc.cli import main as cli
from archcalc.errors import SpecError
from archcalc.executor import weights as wts
from archcalc import run
from archcalc.executor import check
from archcalc.executor.forward import plan

SPECS = Path(__file__).resolve().parents[1] / "specs"
SIZES = (32, 48, 64, 67, 80, 96, 112, 128, 160, 192, 224, 227)  # tried in turn for H and W


def spatial_symbols(graph) -> list:
    """Symbols that stand for an input's n_H or n_W (not widths such as a bottleneck's b)."""
    names = set()
    for name in graph.graph.nodes:
        layer = graph.layer(name)
        if layer.kind == "input":
            names |= {str(v) for v in layer.op.shape[:2] if not isinstance(v, int)}
    return sorted(names)


def small_input(graph) -> dict:
    """The smallest size from SIZES at which the spec analyses without error."""
    names = spatial_symbols(graph)
    if not names:
        return {}
    for size in SIZES:
        at = {n: size for n in names}
        try:
            analyze(graph, at=at)
            return at
        except SpecError:
            continue
    pytest.fail(f"no size in {SIZES} fits {names}")


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.arch")), ids=lambda p: p.stem)
def test_every_spec_runs_and_agrees_with_the_analysis(path):
    graph = archcalc.load(path)
    result = run(graph, batch=2, at=small_input(graph))
    assert check(result) == []
    assert np.isfinite(result.output).all()
    assert result.peak_bytes <= result.predicted_bytes
    # the workspace counted before the run is the workspace the kernels took
    the_plan = plan(graph, small_input(graph))
    assert the_plan.workspace_bytes(2, np.dtype(np.float32)) == result.workspace_bytes


def test_a_padded_slab_past_the_limit_is_refused_before_it_is_made(capsys):
    """A 1x1x1 input padded by 30,000 on each side: im2col's slab is a (60,001, 60,001, 1) map
    of float32, 60,001^2 * 4 = 14,400,480,004 bytes = 13.4 GiB, counted before anything runs;
    its patches are the 2 x 2 outputs' 1 x 1 x 1 windows, 4 more floats."""
    net = archcalc.loads("network Pad {\n input x : (1, 1, 1)\n conv c : f=1 c=1 s=60000 p=30000\n}")
    with pytest.raises(SpecError) as e:
        run(net)
    assert e.value.message == ("running Pad at batch 1 would need about 13.4 GiB (0.0 KiB of live "
                               "activations + 0.0 KiB of weights + 13.4 GiB of workspace), over "
                               "the limit of 8.0 GiB")
    assert plan(net, {}).workspace_bytes(1, np.dtype(np.float32)) == 60_001 ** 2 * 4 + 2 * 2 * 4


MOBILE = """\
block inverted(c, e, s=1) {
    conv      expand : f=1 c=e bias=off
    batchnorm bn1
    clip      act1   : lo=0 hi=6
    conv      dw     : f=3 c=e s=s p=1 groups=e bias=off
    batchnorm bn2
    hardswish act2
    gap       sq     <- act2
    conv      se1    : f=1 c=8
    relu      ser
    conv      se2    : f=1 c=e
    hardsigmoid gate
    mul       scaled <- act2, gate
    conv      project <- scaled : f=1 c=c bias=off
    batchnorm out
}

network Mobile(H=40, W=40) {
    input     x    : (H, W, 3)
    pad       p0   : top=0 bottom=1 left=0 right=1
    conv      stem : f=3 c=16 s=2
    batchnorm bn
    swish     act
    inverted  b1   : c=16 e=48
    shuffle   sh   : 4
    slice     half : 8 start=0
    slice     other <- sh : 16 start=8
    concat    both <- half, other
    conv      dw2  : f=5 c=32 groups=16 p=same dilation=2 round=ceil
    leaky_relu lr  : 0.1
    identity  id
    gap
    flatten
    fc        fc   : 10
    softmax
}
"""


def test_depthwise_squeeze_excitation_shuffle_and_friends_agree_with_the_analysis():
    """The kinds no spec in specs/ uses yet: depthwise (a multiplier, dilation, ceil),
    clip, hardswish, hardsigmoid, swish, leaky_relu, mul, shuffle, slice, pad, identity."""
    graph = loads(MOBILE)
    fused = run(graph, batch=2)
    kept = run(graph, None, fused.weights, batch=2, keep=True)
    assert check(fused) == [] and check(kept) == []
    np.testing.assert_allclose(fused.output, kept.output, rtol=1e-5, atol=1e-6)


def test_check_names_the_layer_and_both_numbers():
    result = run(SPECS / "lenet5.arch")
    result.macs["c1"] += 7
    result.shapes["s2"] = (1, 13, 14, 6)
    problems = check(result)
    assert "conv 'c1': counted 117,607 multiply-accumulates per image, the analysis says 117,600" in problems
    assert "avgpool 's2': executed shape (13, 14, 6), the analysis says (14, 14, 6)" in problems


# ---------------------------------------------------------------- what run returns

def test_output_and_activations_are_nhwc_and_fusion_does_not_change_them():
    graph = archcalc.load(SPECS / "resnet18.arch")
    x = np.random.default_rng(3).standard_normal((2, 64, 64, 3)).astype(np.float32)
    fused = run(graph, x)                      # BatchNorm folded, ReLUs inside the convs
    kept = run(graph, x, fused.weights, keep=True)  # every layer on its own
    assert fused.analysis.symbols == {"H": 64, "W": 64}  # bound from the input's size
    assert fused.output.shape == (2, 1, 1, 1000)
    assert kept.activations["conv1"].shape == (2, 32, 32, 64)
    np.testing.assert_allclose(fused.output, kept.output, rtol=1e-4, atol=1e-4)
    assert check(fused) == [] and check(kept) == []


def test_each_relu_runs_inside_the_conv_or_residual_add_before_it():
    """ResNet-18: 17 ReLUs, 9 after a conv + BatchNorm and 8 after a residual add; every one
    runs in the kernel before it, and the sum through its ReLU equals the two steps apart."""
    from archcalc.executor.fusion import fuse

    graph = archcalc.load(SPECS / "resnet18.arch")
    the_plan = plan(graph, {"H": 32, "W": 32})
    fused = run(graph, batch=2, at={"H": 32, "W": 32})
    steps, _ = fuse(the_plan, fused.weights)
    by_name = {s.name: s for s in steps}
    relus = [s for s in steps if s.kind == "relu"]
    assert len(relus) == 17 and all(s.skip for s in relus)
    carriers = []
    for relu in relus:
        carrier = by_name[relu.inputs[0]]
        while carrier.skip:                    # a folded BatchNorm passes its input through
            carrier = by_name[carrier.inputs[0]]
        carriers.append(carrier)
    assert sorted(c.kind for c in carriers) == ["add"] * 8 + ["conv"] * 9 and all(c.relu for c in carriers)
    kept = run(graph, None, fused.weights, batch=2, at={"H": 32, "W": 32}, keep=True)
    np.testing.assert_allclose(fused.output, kept.output, rtol=1e-4, atol=1e-4)


def test_keep_frees_nothing_early_and_the_schedule_matches_the_analysis():
    """Without views or in-place work, the live activations' peak is the analysis's peak."""
    graph = archcalc.load(SPECS / "inception_naive.arch")
    result = run(graph, keep=True)
    assert result.peak_bytes == result.predicted_bytes
    assert set(result.activations) == set(graph.graph.nodes)


def test_traced_peak_stays_within_one_and_a_half_of_the_prediction():
    """The real peak (workspace and temporaries included, by tracemalloc) plus weights, against
    the analysis's live activations plus weights."""
    result = run(SPECS / "resnet18.arch", batch=4, at={"H": 96, "W": 96}, trace_memory=True)
    measured = result.traced_bytes + result.weight_bytes
    assert measured <= 1.5 * (result.predicted_bytes + result.weight_bytes)


def test_float64_on_request():
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 1))
    r32 = run(SPECS / "lenet5.arch", x)
    r64 = run(SPECS / "lenet5.arch", x, r32.weights, dtype=np.float64)
    assert r32.output.dtype == np.float32 and r64.output.dtype == np.float64
    np.testing.assert_allclose(r32.output, r64.output, rtol=1e-5, atol=1e-6)


def test_the_callers_input_is_left_alone():
    x = np.random.default_rng(0).standard_normal((1, 32, 32, 1)).astype(np.float32)
    before = x.copy()
    run(SPECS / "lenet5.arch", x)
    np.testing.assert_array_equal(x, before)


def test_seed_decides_weights_and_input():
    a, b, c = (run(SPECS / "lenet5.arch", seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.output, b.output)
    assert not np.array_equal(a.output, c.output)


def test_weights_follow_the_activation():
    """He before a ReLU (variance 2/fan_in), Glorot before tanh (2/(fan_in + fan_out))."""
    relu = run(SPECS / "resnet18.arch", at={"H": 32, "W": 32}).weights["layer3.b0.conv2"]["W"]
    tanh = run(SPECS / "lenet5.arch").weights["c3"]["W"]
    assert relu.shape == (3, 3, 256, 256)  # through BatchNorm to a ReLU
    assert relu.var() == pytest.approx(2 / (9 * 256), rel=0.05)
    assert tanh.var() == pytest.approx(2 / (25 * 6 + 25 * 16), rel=0.1)



@pytest.mark.parametrize("layer, fan_in, fan_out", [
    ("hw", 1 * 7 * 4, 1 * 7 * 8),      # conv_hw (1, 7, 4, 8): its window counts both ways
    ("sq", 3 * 3 * 8, 3 * 3 * 6),      # conv (3, 3, 8, 6)
    ("out", 5 * 11 * 6, 10),           # fc (330, 10)
])
def test_glorot_limit_counts_the_window_in_fan_out(layer, fan_in, fan_out):
    """Glorot uniform on [-limit, limit], limit = sqrt(6/(fan_in + fan_out)), drawn from the
    layer's own generator: the same numbers, exactly."""
    graph = loads("""
network N {
    input   x   : (5, 11, 4)
    conv_hw hw  : 1 7 8 pw=3
    tanh
    conv    sq  : f=3 c=6 p=1
    tanh
    flatten
    fc      out : 10
}
""")
    w = run(graph).weights[layer]["W"]
    limit = np.sqrt(6 / (fan_in + fan_out))
    rng = np.random.default_rng([0, zlib.crc32(layer.encode())])
    want = rng.random(w.shape, dtype=np.float32) * np.float32(2 * limit) - np.float32(limit)
    assert np.array_equal(w, want)


# ---------------------------------------------------------------- weights files

def test_weights_round_trip_through_npz(tmp_path):
    first = run(SPECS / "lenet5_1998.arch")
    path = tmp_path / "w.npz"
    wts.save(path, first.weights)
    with np.load(path) as z:
        assert z["c3/W"].shape == (5, 5, 60)  # the connection table's taps, packed
        assert sorted(z.files)[:3] == ["c1/W", "c1/b", "c3/W"]
    again = run(SPECS / "lenet5_1998.arch", weights=path)
    np.testing.assert_array_equal(first.output, again.output)


def write(path, arrays):
    np.savez(path, **arrays)
    return path


def lenet_weights():
    return {f"{layer}/{k}": a for layer, arrays in run(SPECS / "lenet5.arch").weights.items()
            for k, a in arrays.items()}


def test_a_misshapen_array_names_the_layer_and_the_expected_shape(tmp_path):
    arrays = lenet_weights()
    arrays["c3/W"] = np.zeros((3, 3, 6, 16))
    with pytest.raises(SpecError) as e:
        run(SPECS / "lenet5.arch", weights=write(tmp_path / "w.npz", arrays))
    assert "conv 'c3': weights 'c3/W'" in e.value.message
    assert "have shape (3, 3, 6, 16), the spec expects (5, 5, 6, 16)" in e.value.message
    assert "lenet5.arch:9" in str(e.value)  # the caret points at the layer's line


def test_missing_and_unknown_arrays_are_named(tmp_path):
    arrays = lenet_weights()
    del arrays["f5/b"]
    with pytest.raises(SpecError, match=r"fc 'f5': .* has no array 'f5/b' \(expected shape \(120,\)\)"):
        run(SPECS / "lenet5.arch", weights=write(tmp_path / "a.npz", arrays))
    arrays = lenet_weights()
    arrays["f5/bias"] = arrays.pop("f5/b")
    with pytest.raises(SpecError, match="'f5/bias' that no layer") as e:
        run(SPECS / "lenet5.arch", weights=write(tmp_path / "b.npz", arrays))
    assert "did you mean 'f5/b'?" in str(e.value)


@pytest.mark.parametrize("content, message", [
    (b"not an archive", "not a readable .npz"),
    (None, "cannot read weights"),
])
def test_unreadable_weights_files(tmp_path, content, message):
    path = tmp_path / "w.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SpecError, match=message):
        run(SPECS / "lenet5.arch", weights=path)


def test_pickled_arrays_are_refused(tmp_path):
    arrays = lenet_weights()
    arrays["c1/W"] = np.array([object()] * 150, dtype=object).reshape(5, 5, 1, 6)
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    with pytest.raises(SpecError, match="not a readable .npz"):
        run(SPECS / "lenet5.arch", weights=path)
    assert zipfile.is_zipfile(path)


def test_a_single_array_is_not_a_weights_file(tmp_path):
    np.save(tmp_path / "w.npy", np.zeros(3))
    with pytest.raises(SpecError, match="single array"):
        run(SPECS / "lenet5.arch", weights=tmp_path / "w.npy")


# ---------------------------------------------------------------- errors users can cause

def test_wrong_input_shape_with_an_nchw_hint():
    with pytest.raises(SpecError) as e:
        run(SPECS / "lenet5.arch", np.zeros((2, 1, 32, 32)))
    assert "images of shape (1, 32, 32), the spec expects (32, 32, 1)" in e.value.message
    assert "transpose(0, 2, 3, 1)" in str(e.value)


def test_input_must_be_four_dimensional():
    with pytest.raises(SpecError, match=r"\(N, n_H, n_W, n_C\); got float64 of shape \(32, 32, 1\)"):
        run(SPECS / "lenet5.arch", np.zeros((32, 32, 1)))


def test_a_symbol_without_value_is_named():
    graph = loads("network N(H, W=8) {\n input x : (H, W, 1)\n conv : f=3 c=2\n}\n")
    with pytest.raises(SpecError, match="symbol 'H' has no value") as e:
        run(graph)
    assert "--set H=VALUE" in str(e.value)
    assert run(graph, at={"H": 5}).output.shape == (1, 3, 6, 2)
    assert run(graph, np.zeros((1, 7, 8, 1))).output.shape == (1, 5, 6, 2)


def test_a_run_over_the_memory_limit_is_refused_up_front():
    with pytest.raises(SpecError, match=r"batch 64 would need about [\d,.]+ GiB") as e:
        run(SPECS / "vgg16.arch", batch=64, memory_limit=2**30)
    assert "live activations" in e.value.message


# ---------------------------------------------------------------- the command

def test_cli_run_verify(capsys):
    assert cli(["run", str(SPECS / "resnet18.arch"), "--verify", "--set", "H=32", "--set", "W=32",
                "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "ResNet18 (H=32, W=32): batch 2, float32" in out
    assert "verify: " in out and "every shape, MAC count and weight count equals the analysis" in out


def test_cli_run_says_how_many_products_winograd_multiplied(tmp_path, capsys):
    (tmp_path / "w.arch").write_text("network W {\n    input x : (8, 8, 16)\n    conv c : f=3 p=1 c=16\n}\n")
    assert cli(["run", str(tmp_path / "w.arch"), "--verify"]) == 0
    line = capsys.readouterr().out.splitlines()[2]
    # MACs by the definition: 8*8*16 outputs x 3*3*16 taps = 147,456; Winograd F(2x2, 3x3) runs
    # 16 products per 2x2 output tile, (8/2)*(8/2) = 16 tiles, per input and output map: 16*16*16*16
    assert f"{8*8*16*3*3*16:,} MACs per image (multiplied: {16*16*16*16:,}; Winograd" in line


def test_cli_input_output_and_weights_files(tmp_path, capsys):
    x = np.random.default_rng(0).standard_normal((3, 32, 32, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    spec = str(SPECS / "lenet5.arch")
    args = ["run", spec, "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]
    assert cli(args + ["--save-weights", str(tmp_path / "w.npz")]) == 0
    assert cli(args[:4] + ["--output", str(tmp_path / "y2.npy"), "--weights", str(tmp_path / "w.npz"),
                           "--dtype", "float64"]) == 0
    y, y2 = np.load(tmp_path / "y.npy"), np.load(tmp_path / "y2.npy")
    assert y.shape == (3, 1, 1, 10) and y2.dtype == np.float64
    np.testing.assert_allclose(y, y2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y, run(spec, x, tmp_path / "w.npz").output)


@pytest.mark.parametrize("args, message", [
    (["--weights", "missing.npz"], "cannot read weights 'missing.npz'"),
    (["--input", "missing.npy"], "cannot read input 'missing.npy'"),
    (["--set", "Q=3"], "unknown symbol 'Q'"),
])
def test_cli_errors_are_messages_not_tracebacks(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli(["run", str(SPECS / "lenet5.arch")] + args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("line, maps", [
    ("maxpool : f=1 s=10**39", 4),
    ("conv : f=1 c=3 s=10**39 p=1", 3),                # im2col
    ("conv : f=3 c=4 groups=4 s=10**39 p=1", 4),       # depthwise
    ("conv : f=3 c=4 groups=2 s=10**39 p=1", 4),       # grouped
])
def test_a_stride_past_int64_over_a_one_window_map_runs(line, maps):
    """(1 + 2p - f) // 10**39 + 1 = 1 window each way: the stride is never taken, so neither
    a strided view nor a compiled loop (int64) may fail on it."""
    stride = 10**39
    net = loads(f"network S {{\n    input x : (1, 1, 4)\n    {line.replace('10**39', str(stride))}\n}}")
    r = run(net, batch=2)
    assert r.output.shape == (2, 1, 1, maps) and check(r) == []


@pytest.mark.parametrize("n, threads, sizes", [(8, 2, [4, 4]), (5, 2, [3, 2]), (1, 4, [1]),
                                                (3, 8, [1, 1, 1]), (7, 3, [3, 2, 2])])
def test_a_batch_splits_into_as_even_shards_as_it_can(n, threads, sizes):
    from archcalc.executor.shards import shard_sizes

    assert shard_sizes(n, threads) == sizes


def test_shards_run_the_same_pass_and_count_their_own_workspaces():
    """ResNet-18 at 32 x 32, batch 5 in shards of 3 and 2: the same output (within float32
    rounding: BLAS blocks a product by its size), shapes and MACs as one pass, and the
    workspace the plan counts for two passes at once."""
    graph = archcalc.load(SPECS / "resnet18.arch")
    at = {"H": 32, "W": 32}
    one = run(graph, batch=5, at=at)
    two = run(graph, None, one.weights, batch=5, at=at, threads=2)
    np.testing.assert_allclose(two.output, one.output, rtol=1e-5, atol=1e-4)
    assert two.shapes == one.shapes and two.macs == one.macs and check(two) == []
    # every activation scales with its images, so the shards' peaks add up to the one pass's
    assert two.peak_bytes == one.peak_bytes <= one.predicted_bytes
    the_plan = plan(graph, at)
    f32 = np.dtype(np.float32)
    assert two.workspace_bytes == the_plan.workspace_bytes(3, f32) + the_plan.workspace_bytes(2, f32)
    assert the_plan.memory(5, f32, [3, 2])[2] == two.workspace_bytes
    assert one.workspace_bytes == the_plan.workspace_bytes(5, f32)
    kept = run(graph, None, one.weights, batch=5, at=at, threads=2, keep=True)  # keep: one pass
    assert kept.workspace_bytes == the_plan.workspace_bytes(5, f32) and len(kept.activations) == len(one.shapes)


@pytest.mark.parametrize("spec", ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf"])
def test_the_numpy_forms_and_the_compiled_loops_run_the_same_network(spec, monkeypatch):
    """Every compiled loop a network meets (depthwise, grouped, the activations, pooling, the
    convs' bias and ReLU, the adds) against the NumPy forms, on the same weights and input:
    the same outputs within float32 rounding, the same MACs."""
    from archcalc.executor import compiled

    graph = archcalc.load(SPECS / f"{spec}.arch")
    at = {"H": 64, "W": 64}
    fast = run(graph, batch=2, at=at)
    monkeypatch.setattr(compiled, "enabled", lambda: False)
    plain = run(graph, None, fast.weights, batch=2, at=at)
    scale = np.abs(plain.output).max()
    np.testing.assert_allclose(fast.output, plain.output, rtol=1e-4, atol=1e-5 * scale)
    assert fast.macs == plain.macs and check(fast) == [] and check(plain) == []
