"""Every kernel against a naive reference written plainly with loops, on small random inputs.

The references follow the definitions (PyTorch's, for pooling windows and divisors), not the
kernels' code: output sizes from the floor/ceil formulas, padding as explicit zeros or -inf.
"""
from __future__ import annotations

import math
import os
from fractions import Fraction

import numpy as np
import pytest

from archcalc import kinds as ops
from archcalc.executor import compiled
from archcalc.executor.kernels import KERNELS, TILE_BYTES, Context

RNG = np.random.default_rng(1)


def run_kernel(op, xs, w=None, dtype=np.float64, own=False, tile_bytes=TILE_BYTES, relu=False):
    ctx = Context(dtype, tile_bytes)
    ctx.own, ctx.relu = own, relu
    xs = tuple(np.asarray(x, dtype) for x in xs)
    w = {k: np.asarray(v, dtype) for k, v in (w or {}).items()}
    return KERNELS[op.kind](op, xs, w, ctx), ctx


def random(*shape):
    return RNG.standard_normal(shape)


def out_size(n, f, s, p, ceil):
    """PyTorch's rule: floor or ceil of (n + 2p - f)/s, plus one; a ceil-mode window that
    would start in the right padding is dropped."""
    o = (-(-(n + 2 * p - f) // s) if ceil else (n + 2 * p - f) // s) + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def padded(x, p, extra, value):
    """x with p rows and columns of `value` before, p + extra after."""
    N, H, W, C = x.shape
    out = np.full((N, H + 2 * p + extra, W + 2 * p + extra, C), value)
    out[:, p:p + H, p:p + W] = x
    return out


# ---------------------------------------------------------------- convolution

def conv_reference(x, W, b, f, s, p, d, groups, table, ceil):
    N, H, Wd, C = x.shape
    c = len(table) if table else W.shape[-1]
    fe = d * (f - 1) + 1
    oh, ow = out_size(H, fe, s, p, ceil), out_size(Wd, fe, s, p, ceil)
    xp = padded(x, p, fe + s, 0.0)
    y = np.zeros((N, oh, ow, c))
    offsets = np.cumsum([0] + [len(r) for r in table]) if table else None
    for n in range(N):
        for i in range(oh):
            for j in range(ow):
                for k in range(c):
                    total = 0.0
                    for kh in range(f):
                        for kw in range(f):
                            pixel = xp[n, i * s + kh * d, j * s + kw * d]
                            if table:
                                chans = list(table[k])
                                weights = W[kh, kw, offsets[k]:offsets[k + 1]]
                            else:
                                cg, g = C // groups, k // (c // groups)
                                chans = list(range(g * cg, (g + 1) * cg))
                                weights = W[kh, kw, :, k]
                            total += sum(pixel[ch] * wt for ch, wt in zip(chans, weights))
                    y[n, i, j, k] = total + (b[k] if b is not None else 0)
    return y


CONVS = [  # (H, W, C, c, f, s, p, dilation, groups, bias, round)
    (7, 7, 3, 4, 3, 1, 0, 1, 1, True, "floor"),
    (8, 9, 4, 6, 3, 2, 1, 1, 2, True, "floor"),
    (9, 9, 4, 4, 3, 1, 2, 2, 4, False, "floor"),     # depthwise, dilated
    (9, 8, 4, 8, 3, 2, 1, 1, 4, True, "ceil"),       # depthwise, 2 filters per map, ceil
    (6, 6, 5, 3, 1, 2, 0, 1, 1, True, "floor"),      # 1x1, stride 2
    (6, 5, 5, 3, 1, 1, 0, 1, 1, False, "floor"),     # 1x1: a plain matmul
    (5, 5, 2, 3, 1, 1, 1, 1, 1, True, "floor"),      # 1x1 with padding
    (10, 7, 3, 5, 5, 3, 2, 1, 1, True, "ceil"),
    (11, 11, 6, 4, 3, 1, "same", 2, 1, True, "floor"),
    (12, 12, 6, 6, 5, 2, "same", 1, 3, False, "floor"),
    (8, 8, 3, 2, 8, 1, 0, 1, 1, True, "floor"),      # one window: LeNet's C5
    (7, 6, 16, 16, 3, 1, 1, 1, 1, True, "floor"),    # Winograd F(2x2, 3x3): odd rows, even columns
    (6, 9, 16, 17, 3, 1, 0, 1, 1, False, "floor"),   # Winograd, no padding: 4 x 7 outputs
    (5, 5, 17, 16, 3, 1, 3, 1, 1, True, "ceil"),     # Winograd, padding past a tile of zeros
    (8, 8, 32, 8, 3, 1, 1, 1, 1, True, "floor"),     # fewer than 16 filters: im2col
    (6, 6, 24, 24, 3, 1, 1, 1, 12, True, "floor"),   # grouped: 12 groups of 2 maps
    (7, 7, 6, 12, 3, 1, 1, 1, 6, True, "floor"),     # depthwise, 2 filters per map
    (8, 8, 12, 12, 3, 2, 1, 1, 12, True, "floor"),   # depthwise 3x3, stride 2
    (9, 8, 8, 8, 5, 2, 2, 1, 8, True, "ceil"),       # depthwise 5x5, stride 2, ceil
    (9, 9, 6, 6, 5, 1, 4, 2, 6, False, "floor"),     # depthwise 5x5, dilated
    (10, 10, 5, 5, 7, 1, 3, 1, 5, True, "floor"),    # depthwise 7x7 (ConvNeXt's)
    (7, 9, 6, 6, 3, 1, 1, 1, 6, True, "floor"),      # depthwise 3x3, rows of 9: blocks of 8 and 1
    (8, 10, 10, 10, 3, 1, 0, 1, 10, False, "floor"), # depthwise 3x3, no padding
    (2, 2, 8, 8, 3, 1, 1, 1, 8, True, "floor"),      # depthwise 3x3 on 2 x 2: every window in the padding
    (6, 7, 9, 9, 3, 1, 3, 1, 9, False, "floor"),     # depthwise 3x3, padding wider than a window
    (5, 100, 24, 24, 5, 1, 2, 1, 24, True, "floor"), # depthwise 5x5, rows of 100: 12 blocks of 8, then 4
    (4, 100, 24, 24, 3, 1, 1, 1, 24, False, "floor"),# depthwise 3x3, rows of 100
    (5, 17, 15, 15, 3, 1, 1, 1, 15, True, "floor"),  # depthwise, 15 maps: chunks of 8, 4, 2, 1 (float64 4s)
    (4, 8, 8, 8, 3, 1, 1, 1, 8, False, "floor"),     # depthwise, rows of exactly one block
    (6, 20, 12, 12, 3, 2, 1, 1, 12, True, "floor"),  # depthwise, stride 2, rows of 10: a full block and 2
    (7, 21, 20, 20, 3, 2, 0, 1, 20, False, "floor"), # depthwise, stride 2, no padding, 20 maps: 8, 8, 4
    (9, 11, 6, 6, 3, 2, 2, 2, 6, True, "ceil"),      # depthwise, dilated and strided, ceil
    (5, 6, 4, 4, 1, 1, 0, 1, 4, True, "floor"),      # depthwise 1x1
    (6, 7, 4, 4, 2, 1, 0, 1, 4, False, "floor"),     # depthwise 2x2: an even f
    (9, 9, 16, 24, 3, 1, 1, 1, 4, True, "floor"),    # grouped 3x3, 4 maps to 6: compiled
    (9, 8, 12, 12, 3, 2, 1, 1, 3, False, "ceil"),    # grouped 3x3, stride 2, ceil: compiled
    (6, 9, 32, 32, 3, 1, 1, 1, 2, True, "floor"),    # grouped 3x3, 16 maps a group: two chunks of 8
    (6, 10, 10, 14, 3, 2, 1, 1, 2, False, "floor"),  # grouped 3x3, 5 maps to 7: chunks of 4, 2, 1
    (6, 18, 24, 36, 3, 2, 1, 1, 2, True, "floor"),   # grouped 3x3, 12 maps to 18, stride 2, rows of 9
    (5, 9, 26, 26, 3, 1, 0, 1, 2, False, "floor"),   # grouped 3x3, 13 maps: chunks of 8, 4, 1
    (7, 7, 34, 34, 3, 1, 1, 1, 2, True, "floor"),    # grouped 3x3, 17 maps a group: chunks of 8, 8, 1
    (5, 9, 66, 66, 3, 1, 1, 1, 2, False, "floor"),   # grouped 3x3, 33 maps a group: BLAS
    (8, 8, 8, 8, 3, 1, 2, 2, 2, True, "floor"),      # grouped 3x3, dilated: BLAS
]
DEPTHWISE = [case for case in CONVS if case[8] == case[2] > 1]
GROUPED = [case for case in CONVS if 1 < case[8] < case[2]]


@pytest.mark.parametrize("case", CONVS, ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("tile_bytes", [TILE_BYTES, 300, 1], ids=["whole", "bands", "rows"])
def test_conv_equals_reference(case, tile_bytes):
    check_conv(case, tile_bytes)


def test_the_tests_run_the_compiled_loops():
    """numba is in the test extra, so the convs above ran the compiled loops where they apply
    (depthwise, narrow grouped 3x3; unless ARCHCALC_JIT=0 asks for the NumPy forms everywhere)."""
    assert compiled.enabled() == (os.environ.get("ARCHCALC_JIT", "1") != "0")


@pytest.mark.parametrize("case", DEPTHWISE + GROUPED, ids=lambda c: "x".join(map(str, c)))
def test_depthwise_and_grouped_numpy_forms_equal_reference(case, monkeypatch):
    """The einsum and the batched product the executor runs without numba give the same
    outputs and counts."""
    monkeypatch.setattr(compiled, "enabled", lambda: False)
    check_conv(case, 300)


@pytest.mark.parametrize("jit", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("case", DEPTHWISE + GROUPED, ids=lambda c: "x".join(map(str, c)))
def test_depthwise_and_grouped_convs_with_a_fused_relu_equal_the_reference_rectified(case, jit, monkeypatch):
    """The ReLU the executor fuses into a conv (ctx.relu): the microkernel rectifies its sums
    before it stores them, the NumPy forms each band."""
    if not jit:
        monkeypatch.setattr(compiled, "enabled", lambda: False)
    check_conv(case, 300, relu=True)
    if jit:
        check_conv(case, 300, relu=True, dtype=np.float32)  # 8 lanes, not 4


@pytest.mark.parametrize("jit", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("groups", [12, 3], ids=["depthwise", "grouped"])
def test_a_nan_input_stays_nan_through_the_fused_relu(groups, dtype, jit, monkeypatch):
    """max(NaN, 0) is NaN in NumPy's maximum: every output whose window reads the NaN is NaN,
    after the ReLU too; the others are the reference's."""
    if not jit:
        monkeypatch.setattr(compiled, "enabled", lambda: False)
    op = ops.Conv(f=3, c=12, s=1, p=1, groups=groups)
    x, W, b = random(1, 5, 11, 12), random(3, 3, 12 // groups, 12), random(12)
    x[0, 2, 4, 0] = np.nan
    y, _ = run_kernel(op, [x], {"W": W, "b": b}, dtype=dtype, relu=True)
    want = np.maximum(conv_reference(x, W, b, 3, 1, 1, 1, groups, None, False), 0)
    assert np.isnan(y).sum() == np.isnan(want).sum() == 9 * (1 if groups == 12 else 4)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", DEPTHWISE + GROUPED, ids=lambda c: "x".join(map(str, c)))
def test_depthwise_and_grouped_convs_in_float32_are_close_to_the_float64_reference(case):
    """simd.py's microkernel has a float32 form of its own (chunks of 8 maps, not 4)."""
    check_conv(case, TILE_BYTES, dtype=np.float32)


@pytest.mark.skipif(not compiled.enabled(), reason="numba is off")
def test_the_microkernel_takes_maps_in_chunks_that_fill_a_register():
    """(lanes, chunks) calls until every map is taken: as many registers' worth as fit in one
    call, then one narrower chunk at a time."""
    from archcalc.executor import simd

    def calls(maps, widest):
        out = []
        while maps:
            lanes, chunks = simd.chunks_for(maps, widest)
            out.append((lanes, chunks))
            maps -= lanes * chunks
        return out

    assert calls(15, 8) == [(8, 1), (4, 1), (2, 1), (1, 1)]  # float32: 8 to a 256-bit register
    assert calls(15, 4) == [(4, 3), (2, 1), (1, 1)]  # float64
    assert calls(24, 8) == [(8, 3)]
    assert calls(20, 8) == [(8, 2), (4, 1)]
    assert calls(3, 8) == [(2, 1), (1, 1)]


GUARDED = [  # (H, W, C, M, f, s, d, p, groups): depthwise where groups == C
    (3, 3, 5, 5, 3, 1, 1, 1, 5),      # one block of 3 outputs, 5 maps: chunks of 4 and 1
    (4, 19, 20, 20, 3, 2, 1, 1, 20),  # stride 2: a block of 8 and one of 2; 8, 8, 4 maps
    (5, 12, 9, 9, 5, 1, 2, 3, 9),     # dilated 5x5 with padding wider than the map reaches
    (3, 3, 8, 8, 3, 1, 1, 1, 2),      # grouped: 4 maps a group
    (5, 17, 26, 26, 3, 2, 1, 1, 2),   # grouped: 13 maps a group (8, 4, 1), stride 2
]


def guarded(shape, dtype, value):
    """An array inside a buffer of `value` 256 numbers on each side, the array's own numbers
    zero: a read past it (a NaN guard) shows in the outputs, a write past it in the guard."""
    size = int(np.prod(shape))
    memory = np.full(size + 512, value, dtype)
    inner = memory[256:256 + size].reshape(shape)
    inner[...] = 0
    return memory, inner


@pytest.mark.skipif(not compiled.enabled(), reason="numba is off")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", GUARDED, ids=lambda c: "x".join(map(str, c)))
def test_the_microkernel_reads_and_writes_only_inside_its_arrays(case, dtype):
    """simd.py works on addresses: its ring of rows, weights and bias sit between NaN guards
    (no NaN reaches an output) and its output between guards of 7.0 (none is overwritten)."""
    H, W_, C, M, f, s, d, p, groups = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, H, W_, C)).astype(dtype)
    W = rng.standard_normal((f, f, C // groups, M)).astype(dtype)
    b = rng.standard_normal(M).astype(dtype)
    fe = d * (f - 1) + 1
    oh, ow = (H + 2 * p - fe) // s + 1, (W_ + 2 * p - fe) // s + 1
    out_memory, y = guarded((1, oh, ow, M), dtype, 7.0)
    taps_memory, taps = guarded(W.shape if groups < C else (f, f, C), dtype, np.nan)
    taps[...] = W if groups < C else W[:, :, 0]
    bias_memory, bias = guarded(b.shape, dtype, np.nan)
    bias[...] = b
    rings = []

    def scratch(shape, slot):
        memory, ring = guarded(shape, dtype, np.nan)
        rings.append(memory)
        return ring

    if groups < C:
        compiled.grouped(x, taps, bias, y, s, p, groups, False, scratch)
    else:
        compiled.depthwise(x, taps, bias, y, s, d, p, False, scratch)
    want = conv_reference(x.astype(np.float64), W.astype(np.float64), b.astype(np.float64), f, s, p, d,
                          groups, None, False)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)  # no NaN read
    assert (out_memory[:256] == 7.0).all() and (out_memory[-256:] == 7.0).all()
    assert len(rings) == 1 and np.isnan(rings[0][:256]).all() and np.isnan(rings[0][-256:]).all()


@pytest.mark.skipif(not compiled.enabled(), reason="numba is off")
@pytest.mark.parametrize("wrong", ["narrow ring", "ring of other maps", "bias of float64", "few taps", "ring a view"])
def test_the_microkernel_refuses_arrays_it_would_read_or_write_past(wrong):
    """simd.depthwise works on addresses, so it checks its arrays first: a 4-wide input
    padded by 1 needs rings 6 wide, of the input's 3 maps, contiguous, and taps and bias of
    the output's dtype and size."""
    from archcalc.executor import simd

    f32 = np.float32
    x, y = np.zeros((1, 4, 4, 3), f32), np.zeros((1, 4, 4, 3), f32)
    ring, taps, bias = np.zeros((3, 6, 3), f32), np.zeros((9, 3), f32), np.zeros(3, f32)
    if wrong == "narrow ring":
        ring = np.zeros((3, 5, 3), f32)
    elif wrong == "ring of other maps":
        ring = np.zeros((3, 6, 4), f32)
    elif wrong == "bias of float64":
        bias = np.zeros(3)
    elif wrong == "few taps":
        taps = np.zeros((4, 3), f32)
    else:
        ring = np.zeros((3, 12, 3), f32)[:, ::2]
    with pytest.raises(ValueError, match="simd: "):
        simd.depthwise(x, taps, bias, y, 3, 1, 1, 1, False, ring)
    simd.depthwise(x, np.zeros((9, 3), f32), np.zeros(3, f32), y, 3, 1, 1, 1, False, np.zeros((3, 6, 3), f32))


@pytest.mark.skipif(not compiled.enabled(), reason="numba is off")
def test_a_strided_channel_slice_runs_as_its_contiguous_copy():
    """An input that is a view (every other map of a wider array) gives the outputs of its
    copy."""
    wide = random(1, 6, 7, 16)
    x = wide[..., ::2]
    W, b = random(3, 3, 1, 8), random(8)
    y, _ = run_kernel(ops.Conv(f=3, c=8, s=1, p=1, groups=8), [x], {"W": W, "b": b})
    want = conv_reference(np.ascontiguousarray(x), W, b, 3, 1, 1, 1, 8, None, False)
    np.testing.assert_allclose(y, want, rtol=1e-9, atol=1e-9)


def check_conv(case, tile_bytes, relu=False, dtype=np.float64):
    H, W_, C, c, f, s, p, d, groups, bias, rnd = case
    op = ops.Conv(f=f, c=c, s=s, p=p, groups=groups, dilation=d, bias=bias, round=rnd)
    x, W, b = random(2, H, W_, C), random(f, f, C // groups, c), random(c)
    y, ctx = run_kernel(op, [x], {"W": W, "b": b} if bias else {"W": W}, dtype=dtype, tile_bytes=tile_bytes,
                        relu=relu)
    pad = op.pad()
    want = conv_reference(x, W, b if bias else None, f, s, pad, d, groups, None, rnd == "ceil")
    if relu:
        want = np.maximum(want, 0)
    tolerance = 1e-10 if dtype == np.float64 else 1e-5 * f * f
    np.testing.assert_allclose(y, want, rtol=tolerance, atol=tolerance)
    oh, ow = want.shape[1:3]
    assert ctx.macs == 2 * oh * ow * c * f * f * (C // groups)


def test_conv_with_connection_table_equals_reference():
    table = ((0, 1, 2), (1, 2, 3), (3, 0), (0, 1, 2, 3), (2,))
    op = ops.Conv(f=3, c=5, s=1, p=1, table=table)
    taps = sum(len(r) for r in table)
    x, W, b = random(2, 6, 7, 4), random(3, 3, taps), random(5)
    y, ctx = run_kernel(op, [x], {"W": W, "b": b}, tile_bytes=200)
    np.testing.assert_allclose(y, conv_reference(x, W, b, 3, 1, 1, 1, 1, table, False), atol=1e-10)
    assert ctx.macs == 2 * 6 * 7 * 3 * 3 * taps


def test_winograd_runs_16_products_per_2x2_block_and_counts_the_conv_by_definition():
    """F(2x2, 3x3) on a 7 x 6 output: ceil(7/2) x ceil(6/2) = 4 x 3 blocks, 16 products per
    block, input map and filter: 2 * 12 * 16 * 16 * 20 = 122,880 multiplications executed;
    the conv's MACs by definition, 2 * 7 * 6 * 9 * 16 * 20 = 241,920 (im2col's)."""
    op = ops.Conv(f=3, c=20, s=1, p=1)
    x, W = random(2, 7, 6, 16), random(3, 3, 16, 20)
    _, ctx = run_kernel(op, [x], {"W": W, "b": random(20)})
    assert (ctx.macs, ctx.executed) == (2 * 7 * 6 * 9 * 16 * 20, 2 * 4 * 3 * 16 * 16 * 20)


@pytest.mark.parametrize("C", [5, 16])  # im2col, Winograd
def test_conv_float32_close_to_float64(C):
    op = ops.Conv(f=3, c=16, s=1, p=1)
    x, W, b = random(2, 9, 9, C), random(3, 3, C, 16), random(16)
    y32, _ = run_kernel(op, [x], {"W": W, "b": b}, dtype=np.float32)
    y64, _ = run_kernel(op, [x], {"W": W, "b": b})
    assert y32.dtype == np.float32 and y64.dtype == np.float64
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-4)


def conv_hw_reference(x, W, b, s, ph, pw, groups):
    N, H, Wd, C = x.shape
    fh, fw, cg, c = W.shape
    oh, ow = (H + 2 * ph - fh) // s + 1, (Wd + 2 * pw - fw) // s + 1
    xp = np.zeros((N, H + 2 * ph, Wd + 2 * pw, C))
    xp[:, ph:ph + H, pw:pw + Wd] = x
    y = np.zeros((N, oh, ow, c))
    for n, i, j, k in np.ndindex(N, oh, ow, c):
        g = k // (c // groups)  # filter k reads the maps of its group
        total = 0.0
        for kh in range(fh):
            for kw in range(fw):
                for ch in range(cg):
                    total += xp[n, i * s + kh, j * s + kw, g * cg + ch] * W[kh, kw, ch, k]
        y[n, i, j, k] = total + (b[k] if b is not None else 0)
    return y


CONV_HWS = [  # (H, W, C, c, fh, fw, s, ph, pw, groups, bias)
    (9, 9, 4, 6, 1, 7, 1, 0, 3, 1, True),    # Inception v3's 1x7
    (9, 8, 4, 6, 7, 1, 2, 3, 0, 2, False),   # 7x1, stride 2, two groups
    (6, 7, 3, 2, 3, 2, 1, 1, 0, 1, True),
]


@pytest.mark.parametrize("case", CONV_HWS, ids=lambda c: "x".join(map(str, c)))
def test_conv_hw_equals_reference(case):
    H, W_, C, c, fh, fw, s, ph, pw, groups, bias = case
    op = ops.ConvHW(fh=fh, fw=fw, c=c, s=s, ph=ph, pw=pw, groups=groups, bias=bias)
    x, W, b = random(2, H, W_, C), random(fh, fw, C // groups, c), random(c)
    y, ctx = run_kernel(op, [x], {"W": W, "b": b} if bias else {"W": W})
    want = conv_hw_reference(x, W, b if bias else None, s, ph, pw, groups)
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-10)
    oh, ow = want.shape[1:3]
    assert ctx.macs == 2 * oh * ow * c * fh * fw * (C // groups)


def conv_transpose_reference(x, W, b, s, p, out_pad, groups):
    """Each input pixel's value times each tap, added into the output at i*s + kh - p."""
    N, H, Wd, C = x.shape
    f, _, mg, _ = W.shape
    cg, c = C // groups, mg * groups
    oh, ow = (H - 1) * s - 2 * p + f + out_pad, (Wd - 1) * s - 2 * p + f + out_pad
    y = np.zeros((N, oh, ow, c))
    for n, i, j, ch, kh, kw, m in np.ndindex(N, H, Wd, C, f, f, mg):
        r, q = i * s + kh - p, j * s + kw - p
        if 0 <= r < oh and 0 <= q < ow:
            y[n, r, q, (ch // cg) * mg + m] += x[n, i, j, ch] * W[kh, kw, m, ch]
    return y + (b if b is not None else 0)


CONV_TRANSPOSES = [  # (H, W, C, c, f, s, p, out_pad, groups, bias)
    (4, 4, 6, 4, 2, 2, 0, 0, 1, True),   # U-Net's 2x2 up-convolution
    (3, 5, 4, 6, 3, 2, 1, 1, 2, False),  # a border cut, one more row, two groups
    (3, 3, 2, 3, 3, 1, 0, 0, 1, True),
    (2, 3, 3, 2, 4, 3, 2, 2, 1, True),   # the border wider than the overlap
]


@pytest.mark.parametrize("case", CONV_TRANSPOSES, ids=lambda c: "x".join(map(str, c)))
def test_conv_transpose_equals_reference(case):
    H, W_, C, c, f, s, p, out_pad, groups, bias = case
    op = ops.ConvTranspose(f=f, c=c, s=s, p=p, out_pad=out_pad, groups=groups, bias=bias)
    x, W, b = random(2, H, W_, C), random(f, f, c // groups, C), random(c)
    y, ctx = run_kernel(op, [x], {"W": W, "b": b} if bias else {"W": W})
    np.testing.assert_allclose(y, conv_transpose_reference(x, W, b if bias else None, s, p, out_pad, groups),
                               rtol=1e-10, atol=1e-10)
    assert ctx.macs == 2 * H * W_ * C * f * f * (c // groups)  # every input pixel times every tap


def test_dwconv_is_the_conv_with_groups_and_c_from_its_input():
    op = ops.DWConv(f=3, s=2, p=1, m=2)
    x, W, b = random(2, 7, 6, 3), random(3, 3, 1, 6), random(6)
    y, ctx = run_kernel(op, [x], {"W": W, "b": b})
    np.testing.assert_allclose(y, conv_reference(x, W, b, 3, 2, 1, 1, 3, None, False), atol=1e-10)
    assert ctx.macs == 2 * 4 * 3 * 6 * 3 * 3  # oh = (7 + 2 - 3)//2 + 1 = 4, ow = 3


def test_weight_standardised_conv_convolves_the_standardised_filters():
    op = ops.Conv(f=3, c=4, p=1, groups=2, ws=True, gain=True, eps=Fraction(1, 1000))
    x, W, b, gain = random(2, 5, 5, 6), random(3, 3, 3, 4), random(4), random(4)
    y, ctx = run_kernel(op, [x], {"W": W, "b": b, "gain": gain})
    Ws = np.empty_like(W)
    for k in range(4):  # filter k's 27 taps
        taps = [W[i, j, ch, k] for i in range(3) for j in range(3) for ch in range(3)]
        mean = sum(taps) / 27
        var = sum((t - mean) ** 2 for t in taps) / 27
        Ws[..., k] = (W[..., k] - mean) / math.sqrt(var + 0.001) * gain[k]
    np.testing.assert_allclose(y, conv_reference(x, Ws, b, 3, 1, 1, 1, 2, None, False), atol=1e-10)
    assert ctx.macs == 2 * 5 * 5 * 4 * 3 * 3 * 3  # the conv's MACs, nothing for the standardising


# ---------------------------------------------------------------- pooling

def pool_reference(x, f, s, p, ceil, how, count_pad=True):
    N, H, W, C = x.shape
    oh, ow = out_size(H, f, s, p, ceil), out_size(W, f, s, p, ceil)
    y = np.zeros((N, oh, ow, C))
    for n in range(N):
        for i in range(oh):
            for j in range(ow):
                for c in range(C):
                    h0, w0 = i * s - p, j * s - p
                    h1, w1 = min(h0 + f, H + p), min(w0 + f, W + p)
                    pool_size = (h1 - h0) * (w1 - w0)
                    h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
                    window = [x[n, a, b_, c] for a in range(h0, h1) for b_ in range(w0, w1)]
                    if how == "max":
                        y[n, i, j, c] = max(window)
                    elif how == "sum":
                        y[n, i, j, c] = sum(window)
                    else:
                        y[n, i, j, c] = sum(window) / (pool_size if count_pad else len(window))
    return y


POOLS = [  # (H, W, f, s, p, round)
    (6, 6, 2, 2, 0, "floor"),
    (7, 7, 3, 2, 0, "floor"),
    (7, 7, 3, 2, 1, "floor"),
    (7, 8, 3, 2, 0, "ceil"),
    (8, 7, 3, 2, 1, "ceil"),
    (9, 9, 3, 1, 1, "ceil"),
    (10, 10, 2, 3, 1, "ceil"),
    (5, 5, 5, 1, 0, "floor"),
]


@pytest.mark.parametrize("form", ["compiled", "numpy"])
@pytest.mark.parametrize("case", POOLS, ids=lambda c: "x".join(map(str, c)))
def test_maxpool_equals_reference(case, form, monkeypatch):
    if form == "numpy":
        monkeypatch.setattr(compiled, "enabled", lambda: False)
    H, W, f, s, p, rnd = case
    x = random(2, H, W, 3)
    y, _ = run_kernel(ops.MaxPool(f=f, s=s, p=p, round=rnd), [x])
    np.testing.assert_array_equal(y, pool_reference(x, f, s, p, rnd == "ceil", "max"))


@pytest.mark.parametrize("form", ["compiled", "numpy"])
def test_a_nan_in_a_window_is_its_maximum_in_either_form(form, monkeypatch):
    if form == "numpy":
        monkeypatch.setattr(compiled, "enabled", lambda: False)
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    x[0, 0, 1, 0] = x[0, 3, 3, 0] = np.nan
    y, _ = run_kernel(ops.MaxPool(f=2, s=2, p=0, round="floor"), [x])
    assert np.isnan(y[0, :, :, 0]).tolist() == [[True, False], [False, True]]
    assert y[0, 0, 1, 0] == 7 and y[0, 1, 0, 0] == 13


@pytest.mark.parametrize("count_pad", [True, False])
@pytest.mark.parametrize("case", POOLS, ids=lambda c: "x".join(map(str, c)))
def test_avgpool_equals_reference(case, count_pad):
    H, W, f, s, p, rnd = case
    x = random(2, H, W, 3)
    y, _ = run_kernel(ops.AvgPool(f=f, s=s, p=p, round=rnd, count_pad=count_pad), [x])
    np.testing.assert_allclose(y, pool_reference(x, f, s, p, rnd == "ceil", "avg", count_pad), atol=1e-12)


def test_subsample_is_window_sum_times_coefficient_plus_bias():
    x, coeff, b = random(2, 8, 8, 3), random(3), random(3)
    y, _ = run_kernel(ops.Subsample(f=2, s=2), [x], {"coeff": coeff, "b": b})
    np.testing.assert_allclose(y, pool_reference(x, 2, 2, 0, False, "sum") * coeff + b, atol=1e-12)


def test_gap_is_the_mean_of_each_map():
    x = random(2, 5, 4, 3)
    y, _ = run_kernel(ops.GlobalAvgPool(), [x])
    want = [[[[np.mean([x[n, i, j, c] for i in range(5) for j in range(4)]) for c in range(3)]]]
            for n in range(2)]
    np.testing.assert_allclose(y, np.array(want), atol=1e-12)


@pytest.mark.parametrize("H, W, o", [(7, 7, 7), (10, 9, 4), (5, 13, 3), (3, 3, 5)])
def test_adaptive_avgpool_uses_pytorch_windows(H, W, o):
    x = random(2, H, W, 3)
    y, _ = run_kernel(ops.AdaptiveAvgPool(out_size=o), [x])
    assert y.shape == (2, o, o, 3)
    for i in range(o):
        h0, h1 = math.floor(i * H / o), math.ceil((i + 1) * H / o)
        for j in range(o):
            w0, w1 = math.floor(j * W / o), math.ceil((j + 1) * W / o)
            np.testing.assert_allclose(y[:, i, j], x[:, h0:h1, w0:w1].mean(axis=(1, 2)), atol=1e-12)


# ---------------------------------------------------------------- vectors

def test_flatten_keeps_nhwc_order():
    x = random(2, 3, 4, 5)
    y, _ = run_kernel(ops.Flatten(), [x])
    assert y.shape == (2, 1, 1, 60)
    for i in range(3):
        for j in range(4):
            for c in range(5):
                assert y[1, 0, 0, (i * 4 + j) * 5 + c] == x[1, i, j, c]


@pytest.mark.parametrize("bias", [True, False])
def test_fc_equals_reference(bias):
    x, W, b = random(3, 1, 1, 7), random(7, 4), random(4)
    y, ctx = run_kernel(ops.FC(c=4, bias=bias), [x], {"W": W, "b": b} if bias else {"W": W})
    for n in range(3):
        for k in range(4):
            want = sum(x[n, 0, 0, j] * W[j, k] for j in range(7)) + (b[k] if bias else 0)
            assert y[n, 0, 0, k] == pytest.approx(want)
    assert ctx.macs == 3 * 7 * 4


def test_rbf_is_the_squared_distance_to_each_prototype():
    x, P = random(2, 1, 1, 6), random(4, 6)
    y, ctx = run_kernel(ops.RBF(c=4), [x], {"P": P})
    for n in range(2):
        for i in range(4):
            assert y[n, 0, 0, i] == pytest.approx(sum((x[n, 0, 0, j] - P[i, j]) ** 2 for j in range(6)))
    assert ctx.macs == 0  # not a conv or fc product: "other ops" by the house convention


# ---------------------------------------------------------------- element-wise

ELEMENTWISE = {
    "relu": (ops.ReLU(), lambda v: max(v, 0.0)),
    "tanh": (ops.Tanh(), math.tanh),
    "sigmoid": (ops.Sigmoid(), lambda v: 1 / (1 + math.exp(-v))),
    "dropout": (ops.Dropout(), lambda v: v),
    "identity": (ops.Identity(), lambda v: v),
    "leaky_relu": (ops.LeakyReLU(alpha=Fraction(1, 10)), lambda v: v if v > 0 else 0.1 * v),
    "clip": (ops.Clip(lo=0, hi=6), lambda v: min(max(v, 0.0), 6.0)),
    "hardsigmoid": (ops.HardSigmoid(), lambda v: max(0.0, min(1.0, v / 6 + 0.5))),
    "hardswish": (ops.HardSwish(), lambda v: v * max(0.0, min(1.0, v / 6 + 0.5))),
    "swish": (ops.Swish(), lambda v: v / (1 + math.exp(-v))),
}


@pytest.mark.parametrize("own", [False, True])
@pytest.mark.parametrize("kind", ELEMENTWISE)
def test_elementwise_equals_reference(kind, own):
    op, f = ELEMENTWISE[kind]
    x = random(2, 3, 3, 4) * 5
    before = x.copy()
    y, _ = run_kernel(op, [x], own=own)
    np.testing.assert_allclose(y, np.vectorize(f)(before), atol=1e-12)


def test_kernels_leave_their_input_alone_unless_told():
    x = np.asarray(random(2, 3, 3, 4))
    for op in [spec[0] for spec in ELEMENTWISE.values()] + [ops.Softmax(), ops.BatchNorm(), ops.Add()]:
        w = {k: np.ones(4) for k in ("gamma", "beta", "mean", "var")} if op.kind == "batchnorm" else {}
        before = x.copy()
        KERNELS[op.kind](op, (x, x) if op.kind == "add" else (x,), w, Context(np.float64))
        np.testing.assert_array_equal(x, before)


def test_sigmoid_does_not_overflow():
    y, _ = run_kernel(ops.Sigmoid(), [np.array([-1e4, 0, 1e4]).reshape(1, 1, 1, 3)], dtype=np.float32)
    np.testing.assert_array_equal(y.ravel(), [0, 0.5, 1])


@pytest.mark.parametrize("own", [False, True])
def test_softmax_over_channels(own):
    x = random(2, 2, 2, 5) * 30
    y, _ = run_kernel(ops.Softmax(), [x.copy()], own=own)
    for idx in np.ndindex(2, 2, 2):
        e = [math.exp(v - max(x[idx])) for v in x[idx]]
        np.testing.assert_allclose(y[idx], [v / sum(e) for v in e], atol=1e-12)


@pytest.mark.parametrize("own", [False, True])
def test_batchnorm_inference_form(own):
    x = random(2, 3, 3, 4)
    w = {"gamma": random(4), "beta": random(4), "mean": random(4), "var": RNG.random(4) + 0.5}
    y, _ = run_kernel(ops.BatchNorm(eps=Fraction(1, 1000)), [x.copy()], w, own=own)
    for idx in np.ndindex(2, 3, 3, 4):
        c = idx[-1]
        want = w["gamma"][c] * (x[idx] - w["mean"][c]) / math.sqrt(w["var"][c] + 0.001) + w["beta"][c]
        assert y[idx] == pytest.approx(want)


@pytest.mark.parametrize("size", [5, 4, 1])
def test_lrn_across_channels(size):
    x = random(2, 2, 3, 7)
    op = ops.LRN(size=size, alpha=Fraction(1, 100), beta=Fraction(3, 4), k=2)
    y, _ = run_kernel(op, [x])
    for idx in np.ndindex(2, 2, 3, 7):
        c = idx[-1]
        window = range(max(0, c - size // 2), min(7, c + (size - 1) // 2 + 1))
        total = sum(x[idx[:-1] + (j,)] ** 2 for j in window)
        assert y[idx] == pytest.approx(x[idx] / (2 + 0.01 * total) ** 0.75)


# ---------------------------------------------------------------- joins and the input

def test_input_returns_the_array_it_is_fed():
    ctx = Context(np.float64)
    ctx.feed = random(2, 3, 4, 5)
    assert KERNELS["input"](ops.Input(shape=(3, 4, 5)), (), {}, ctx) is ctx.feed


@pytest.mark.parametrize("own", [False, True])
def test_add_of_three(own):
    a, b, c = random(2, 3, 3, 4), random(2, 3, 3, 4), random(2, 3, 3, 4)
    y, _ = run_kernel(ops.Add(), [a.copy(), b, c], own=own)
    for idx in np.ndindex(a.shape):
        assert y[idx] == pytest.approx(a[idx] + b[idx] + c[idx])


def test_mul_spreads_sizes_of_one():
    a, gate, c = random(2, 3, 4, 5), random(2, 1, 1, 5), random(2, 3, 4, 1)
    y, ctx = run_kernel(ops.Mul(), [a, gate, c])
    for n, i, j, k in np.ndindex(2, 3, 4, 5):
        assert y[n, i, j, k] == pytest.approx(a[n, i, j, k] * gate[n, 0, 0, k] * c[n, i, j, 0])
    assert ctx.macs == 0  # "other ops": only conv and fc products are MACs


def test_shuffle_transposes_groups_of_channels():
    x = random(2, 2, 3, 12)
    y, _ = run_kernel(ops.Shuffle(groups=3), [x])
    for g in range(3):
        for k in range(4):  # channel g*4 + k of the input is channel k*3 + g of the output
            np.testing.assert_array_equal(y[..., k * 3 + g], x[..., g * 4 + k])


def test_split_sum_adds_the_radix_splits():
    x = random(2, 3, 4, 12)
    y, ctx = run_kernel(ops.SplitSum(r=3), [x])
    assert y.shape == (2, 3, 4, 4) and ctx.macs == 0
    for n, i, j, c in np.ndindex(y.shape):  # split k holds maps 4k .. 4k + 3
        assert y[n, i, j, c] == pytest.approx(x[n, i, j, c] + x[n, i, j, 4 + c] + x[n, i, j, 8 + c])


@pytest.mark.parametrize("r, groups", [(2, 1), (4, 2), (3, 2)])
def test_radix_softmax_is_timms_across_the_splits_in_the_groups_order(r, groups):
    n = 2  # channels per group and split
    x = random(2, 3, 1, groups * r * n) * 3
    y, _ = run_kernel(ops.RadixSoftmax(r=r, groups=groups), [x])
    for b, i, j in np.ndindex(2, 3, 1):
        for g in range(groups):
            for c in range(n):
                logits = [x[b, i, j, g * r * n + k * n + c] for k in range(r)]
                total = sum(math.exp(v) for v in logits)
                for k in range(r):
                    assert y[b, i, j, k * groups * n + g * n + c] == pytest.approx(math.exp(logits[k]) / total)


def test_pad_puts_zeros_on_each_side():
    x = random(2, 3, 4, 2)
    y, _ = run_kernel(ops.Pad(top=1, bottom=2, left=0, right=3), [x])
    assert y.shape == (2, 6, 7, 2)
    for n, i, j, c in np.ndindex(y.shape):
        inside = 1 <= i < 4 and j < 4
        assert y[n, i, j, c] == (x[n, i - 1, j, c] if inside else 0)


def test_slice_keeps_a_range_of_channels():
    x = random(2, 3, 3, 8)
    y, _ = run_kernel(ops.Slice(start=2, stop=7), [x])
    np.testing.assert_array_equal(y, np.stack([x[..., c] for c in range(2, 7)], axis=-1))


def test_concat_joins_channels_in_order():
    a, b = random(2, 3, 3, 2), random(2, 3, 3, 5)
    y, _ = run_kernel(ops.Concat(), [a, b])
    assert y.shape == (2, 3, 3, 7)
    np.testing.assert_array_equal(y[..., :2], a)
    np.testing.assert_array_equal(y[..., 2:], b)


def crop_reference(x, n_H, n_W):
    """Output (i, j) is input (i + floor(d_H/2), j + floor(d_W/2)), d = the rows (columns) cut."""
    top, left = (x.shape[1] - n_H) // 2, (x.shape[2] - n_W) // 2
    y = np.zeros((x.shape[0], n_H, n_W, x.shape[3]))
    for n, i, j, c in np.ndindex(y.shape):
        y[n, i, j, c] = x[n, top + i, left + j, c]
    return y


@pytest.mark.parametrize("shape, n_H, n_W", [((2, 9, 8, 3), 4, 6), ((1, 7, 7, 2), 7, 2), ((2, 12, 10, 1), 8, 8)])
def test_crop_keeps_the_centre_the_extra_row_cut_at_the_bottom(shape, n_H, n_W):
    x = random(*shape)
    by_size, _ = run_kernel(ops.Crop(size=(n_H, n_W)), [x])
    like, _ = run_kernel(ops.Crop(), [x, random(shape[0], n_H, n_W, 5)])  # only its size is read
    np.testing.assert_array_equal(by_size, crop_reference(x, n_H, n_W))
    np.testing.assert_array_equal(like, crop_reference(x, n_H, n_W))


# ---------------------------------------------------------------- resizing

def upsample_taps(i, n, o, mode):
    """(input index, weight) pairs that output i of o reads along an axis of n: PyTorch's
    nearest picks floor(i * n/o); bilinear (align_corners=False) takes the source coordinate
    (i + 1/2) * n/o - 1/2, at least 0, between its floor and the next pixel (the last one at
    the edge), weighted by distance."""
    if mode == "nearest":
        return [(math.floor(Fraction(i * n, o)), 1.0)]
    src = max((i + Fraction(1, 2)) * Fraction(n, o) - Fraction(1, 2), Fraction(0))
    lo = math.floor(src)
    return [(lo, float(1 - (src - lo))), (min(lo + 1, n - 1), float(src - lo))]


def upsample_reference(x, o_h, o_w, mode):
    N, H, W, C = x.shape
    y = np.zeros((N, o_h, o_w, C))
    for n, i, j, c in np.ndindex(N, o_h, o_w, C):
        y[n, i, j, c] = sum(wa * wb * x[n, a, b, c] for a, wa in upsample_taps(i, H, o_h, mode)
                            for b, wb in upsample_taps(j, W, o_w, mode))
    return y


UPSAMPLES = [  # (H, W, scale, size, mode)
    (4, 5, 2, None, "nearest"),
    (3, 4, 3, None, "nearest"),
    (4, 5, 2, None, "bilinear"),
    (3, 4, 3, None, "bilinear"),
    (1, 1, 2, None, "bilinear"),          # one pixel: every output is that pixel
    (5, 7, None, (11, 14), "nearest"),
    (5, 7, None, (12, 4), "bilinear"),    # columns made fewer: the same formula
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", UPSAMPLES, ids=lambda c: "x".join(map(str, c)))
def test_upsample_equals_reference(case, dtype):
    H, W, scale, size, mode = case
    x = random(2, H, W, 3)
    y, ctx = run_kernel(ops.Upsample(scale=scale, size=size, mode=mode), [x], dtype=dtype)
    o_h, o_w = size or (scale * H, scale * W)
    assert y.shape == (2, o_h, o_w, 3) and y.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(y, upsample_reference(x, o_h, o_w, mode), rtol=tol, atol=tol)
    assert ctx.macs == 0  # a copy or an interpolation: "other ops", never MACs


# ---------------------------------------------------------------- ConvNeXt and ViT

def layernorm_reference(x, gamma, beta, eps):
    y = np.zeros_like(x)
    for n, i, j in np.ndindex(x.shape[:3]):
        v = [float(a) for a in x[n, i, j]]
        mu = sum(v) / len(v)
        var = sum((a - mu) ** 2 for a in v) / len(v)
        for c, a in enumerate(v):
            y[n, i, j, c] = gamma[c] * (a - mu) / math.sqrt(var + eps) + beta[c]
    return y


def activation_reference(x, f):
    y = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        y[index] = f(float(x[index]))
    return y


def gelu(a):
    return a / 2 * (1 + math.erf(a / math.sqrt(2)))


def gelu_tanh(a):
    return a / 2 * (1 + math.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layernorm_scale_gelu_elu_equal_references(dtype):
    x = random(2, 3, 4, 6) * 3
    gamma, beta = random(6), random(6)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    cases = [
        (ops.LayerNorm(eps=Fraction(1, 10**6)), {"gamma": gamma, "beta": beta},
         layernorm_reference(x, gamma, beta, 1e-6)),
        (ops.Scale(), {"gamma": gamma}, np.array([[[[x[n, i, j, c] * gamma[c] for c in range(6)]
                                                   for j in range(4)] for i in range(3)] for n in range(2)])),
        (ops.GELU(), {}, activation_reference(x, gelu)),
        (ops.GELU(approximate="tanh"), {}, activation_reference(x, gelu_tanh)),
        (ops.ELU(alpha=Fraction(1, 2)), {}, activation_reference(x, lambda a: a if a > 0 else (math.exp(a) - 1) / 2)),
    ]
    for op, w, want in cases:
        y, ctx = run_kernel(op, [x], w, dtype=dtype)
        assert y.shape == x.shape and y.dtype == dtype, op
        np.testing.assert_allclose(y, want, rtol=tol, atol=tol, err_msg=op.kind)
        assert ctx.macs == 0  # element-wise: other ops, never MACs


def test_gelu_is_exact_far_out_in_float32():
    """x Phi(x) for large negative x is tiny, not 0 from cancellation, and x for large x."""
    x = np.array([-12.0, -6.0, -3.0, 0.0, 1e-3, 3.0, 12.0]).reshape(1, 1, 1, -1)
    y, _ = run_kernel(ops.GELU(), [x], dtype=np.float32)
    want = activation_reference(x, lambda a: a / 2 * math.erfc(-a / math.sqrt(2)))
    np.testing.assert_allclose(y, want, rtol=3e-7, atol=0)


# ---------------------------------------------------------------- weight layouts
# (that KERNELS covers the vocabulary exactly is tests/test_vocabulary.py's)

WEIGHTED = [
    (ops.Conv(f=3, c=6, groups=2), ops.Shape(8, 8, 4)),
    (ops.Conv(f=5, c=3, table=((0, 1), (1, 2, 3), (0,))), ops.Shape(8, 8, 4)),
    (ops.Conv(f=1, c=6, bias=False), ops.Shape(8, 8, 4)),
    (ops.FC(c=10), ops.Shape(1, 1, 84)),
    (ops.RBF(c=10), ops.Shape(1, 1, 84)),
    (ops.Subsample(f=2, s=2), ops.Shape(8, 8, 6)),
    (ops.BatchNorm(), ops.Shape(8, 8, 6)),
    (ops.LayerNorm(), ops.Shape(8, 8, 6)),
    (ops.Scale(), ops.Shape(8, 8, 6)),
    (ops.Tokens(class_token=True, position=True), ops.Shape(2, 3, 4)),
    (ops.Attention(heads=2), ops.Shape(1, 5, 8)),
    (ops.Attention(heads=2, patch=2), ops.Shape(4, 2, 8)),
]


@pytest.mark.parametrize("op, x", WEIGHTED, ids=lambda v: getattr(v, "kind", ""))
def test_weight_rule_holds_the_counted_parameters(op, x):
    """The arrays a kernel reads hold exactly the analysis's params (learnt and fixed) and state."""
    out = op.out((x,)).shape
    cost = op.cost((x,), out)
    shapes = op.weights((x,))
    assert sum(math.prod(s) for s in shapes.values()) == cost.weights + cost.fixed + cost.state


# ---------------------------------------------------------------- tokens and attention

def test_tokens_put_the_class_token_first_and_add_the_position_embedding():
    x, cls, pos = random(2, 2, 3, 4), random(4), random(7, 4)
    y, _ = run_kernel(ops.Tokens(class_token=True, position=True), (x,), {"cls": cls, "pos": pos})
    want = np.zeros((2, 1, 7, 4))
    for n in range(2):
        want[n, 0, 0] = cls + pos[0]
        for i in range(2):
            for j in range(3):  # row by row
                want[n, 0, 1 + i * 3 + j] = x[n, i, j] + pos[1 + i * 3 + j]
    assert np.allclose(y, want)


def test_token_picks_one_position():
    x = random(2, 2, 3, 4)
    y, _ = run_kernel(ops.Token(index=4), (x,))
    assert np.array_equal(y[:, 0, 0], x[:, 1, 1])  # position 4 = row 1, column 1


def attention_reference(x, W_qkv, b_qkv, W_o, b_o, heads):
    """Each head, each query, written out: softmax over the keys of q.k/sqrt(d_h), then the
    weighted sum of values; heads side by side, then the output projection."""
    N, H, W, d = x.shape
    T, d_h = H * W, d // heads
    y = np.zeros((N, T, d))
    for n in range(N):
        seq = x[n].reshape(T, d)
        q, k, v = np.split(seq @ W_qkv + b_qkv, 3, axis=1)
        concat = np.zeros((T, d))
        for h in range(heads):
            cols = slice(h * d_h, (h + 1) * d_h)
            for t in range(T):
                scores = np.array([q[t, cols] @ k[u, cols] / math.sqrt(d_h) for u in range(T)])
                p = np.exp(scores - scores.max())
                p /= p.sum()
                concat[t, cols] = sum(p[u] * v[u, cols] for u in range(T))
        y[n] = concat @ W_o + b_o
    return y.reshape(N, H, W, d)


@pytest.mark.parametrize("H, W, d, heads", [(1, 5, 8, 2), (3, 2, 6, 3), (2, 2, 4, 1)])
def test_attention_equals_reference_and_counts_every_product(H, W, d, heads):
    x = random(2, H, W, d)
    w = {"W_qkv": random(d, 3 * d), "b_qkv": random(3 * d), "W_o": random(d, d), "b_o": random(d)}
    y, ctx = run_kernel(ops.Attention(heads=heads), (x,), w)
    assert np.allclose(y, attention_reference(x, heads=heads, **w))
    T = H * W  # per image: projections T*3d*d + T*d*d, QK^T and AV T*T*d each
    assert ctx.macs == 2 * (4 * T * d * d + 2 * T * T * d)


@pytest.mark.parametrize("H, W, d, heads, p", [(4, 6, 8, 2, 2), (6, 3, 6, 3, 3)])
def test_patch_attention_is_attention_over_each_offset_in_a_patch(H, W, d, heads, p):
    """MobileViT: the pixels (i*p + a, j*p + b) over patches (i, j), row by row, are one
    sequence for each offset (a, b); each sequence attended alone, put back where it came from."""
    x = random(2, H, W, d)
    w = {"W_qkv": random(d, 3 * d), "b_qkv": random(3 * d), "W_o": random(d, d), "b_o": random(d)}
    y, ctx = run_kernel(ops.Attention(heads=heads, patch=p), (x,), w)
    want = np.zeros_like(x)
    for a in range(p):
        for b in range(p):
            cells = [(i * p + a, j * p + b) for i in range(H // p) for j in range(W // p)]
            seq = np.stack([x[:, r, c] for r, c in cells], axis=1)[:, None]  # (2, 1, N, d)
            out = attention_reference(seq, heads=heads, **w)
            for t, (r, c) in enumerate(cells):
                want[:, r, c] = out[:, 0, t]
    assert np.allclose(y, want)
    P, N = p * p, H * W // (p * p)  # per image: projections H*W*4d*d, QK^T and AV P*N*N*d each
    assert ctx.macs == 2 * (4 * H * W * d * d + 2 * P * N * N * d)


ACTIVATIONS = {  # float64 by the definitions; the absolute error allowed besides 4 ulps
    "tanh": (np.tanh, 3e-7),
    "sigmoid": (lambda v: 1 / (1 + np.exp(-v)), 3e-7),
    # x * sigmoid(x), sigmoid as (1 + tanh(x/2))/2 like the NumPy form: e^-16 = 1.1e-7 is
    # below what 1 + tanh can resolve, so at x = -16 the product is 0 instead of -1.8e-6
    "swish": (lambda v: v / (1 + np.exp(-v)), 2e-6),
    "hardswish": (lambda v: v * np.clip(v / 6 + 0.5, 0, 1), 3e-7),
}


@pytest.mark.parametrize("in_place", [False, True], ids=["new", "in_place"])
@pytest.mark.parametrize("kind", ACTIVATIONS)
def test_float32_activations_are_within_a_few_ulps_of_their_definition(kind, in_place):
    """The float32 activations (compiled: tanh, sigmoid and swish by a rational tanh; NumPy's
    forms with ARCHCALC_JIT=0), on a dense grid and the edges; infinities and NaN as the
    definition gives them."""
    edges = [0.0, -0.0, 1e-5, -1e-5, 4e-4, -4e-4, 7.99, 8.5, -8.5, 100, -100, np.inf, -np.inf, np.nan]
    x = np.concatenate([np.linspace(-20, 20, 40_001), edges]).astype(np.float32).reshape(1, 1, -1, 1)
    definition, atol = ACTIVATIONS[kind]
    with np.errstate(over="ignore", invalid="ignore"):
        want = definition(x.astype(np.float64))
        ctx = Context(np.float32)
        ctx.own = in_place
        y = KERNELS[kind](None, [x.copy()], {}, ctx)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, want, rtol=4 * 2**-24, atol=atol)
