"""Memory traffic and the latency estimate against arithmetic written out here; calibrate's
arithmetic with an injected fake clock (no test depends on timing)."""
from __future__ import annotations

import itertools
import json
from fractions import Fraction

import pytest
import sympy

import archcalc
from archcalc.analysis.latency import device_profile, loads_device
from archcalc.errors import SpecError
from archcalc.present import tables
from conftest import ROOT

NET = """network T {
    input  x  : (8, 8, 3)
    conv   c  : f=3 c=4 p=1
    dwconv d  : f=3 p=1
    conv   a  <- c : f=1 c=2
    conv   b  <- c : f=1 c=3
    concat j  <- a, b
    add    s  <- a, a
    flatten
    fc     o  : 10
}
"""


def analysis(**kw):
    return archcalc.analyze(archcalc.loads(NET, "t.arch"), **kw)


def test_traffic_of_hand_worked_layers():
    rows = {r.name: r for r in analysis().rows}
    # (bytes read from inputs, from weights, written) at float32, 4 bytes a number
    expected = {
        "x": (0, 0, 0),                                   # fed from outside
        "c": (8*8*3*4, (3*3*3*4 + 4)*4, 8*8*4*4),         # 768, 448, 1,024
        "d": (8*8*4*4, (3*3*4 + 4)*4, 8*8*4*4),           # depthwise reads its input once
        "a": (8*8*4*4, (4*2 + 2)*4, 8*8*2*4),
        "j": ((8*8*2 + 8*8*3)*4, 0, 8*8*5*4),             # concat moves bytes, does no math
        "s": (2*8*8*2*4, 0, 8*8*2*4),                     # add reads both inputs
        "flatten1": (0, 0, 0),                            # a view
        "o": (8*8*2*4, (128*10 + 10)*4, 10*4),
    }
    for name, (ins, weights, outs) in expected.items():
        r = rows[name]
        assert (r.input_bytes, r.weight_bytes, r.output_bytes) == (ins, weights, outs), name
        assert r.traffic_bytes == ins + weights + outs
    # MACs per byte: conv 8*8*4*3*3*3 = 6,912 over 768 + 448 + 1,024 = 2,240
    assert rows["c"].intensity == Fraction(6912, 2240) == Fraction(108, 35)
    assert rows["d"].intensity == Fraction(8*8*4*9, 1024 + 160 + 1024)
    assert rows["o"].intensity == Fraction(1280, 512 + 5160 + 40)
    assert rows["j"].intensity == 0 and rows["x"].intensity is None


def test_a_crop_moves_only_the_centre_it_keeps():
    # U-Net's copy and crop: the second input gives its size only, and is never read
    net = archcalc.loads("network C {\n input x : (10, 10, 4)\n conv a : f=5 c=4\n"
                         " crop k <- x, a\n}", "c.arch")
    r = archcalc.analyze(net).row("k")
    assert (r.input_bytes, r.weight_bytes, r.output_bytes) == (6*6*4*4, 0, 6*6*4*4)


def test_dtype_scales_bytes_and_totals_add_up():
    a, half = analysis(), analysis(dtype="float16")
    for r, h in zip(a.rows, half.rows):
        assert (h.input_bytes * 2, h.weight_bytes * 2, h.output_bytes * 2) == \
               (r.input_bytes, r.weight_bytes, r.output_bytes)
    assert a.totals["traffic_bytes"] == sum(r.traffic_bytes for r in a.rows) == \
           2 * half.totals["traffic_bytes"]
    with pytest.raises(SpecError, match="unknown dtype 'float8'"):
        analysis(dtype="float8")


def test_traffic_is_a_formula_in_the_free_symbols():
    net = archcalc.loads("network T(H) {\n input x : (H, H, 3)\n conv c : f=1 c=4\n}\n", "t.arch")
    a = archcalc.analyze(net, free=("H",))
    H = sympy.Symbol("H", integer=True, positive=True)
    # reads H*H*3 + 16 weights, writes H*H*4, 4 bytes each
    assert sympy.expand(a.totals["traffic_bytes"] - (28 * H**2 + 64)) == 0
    assert a.totals_at(H=10)["traffic_bytes"] == 28 * 100 + 64
    assert archcalc.sweep(net, "traffic_bytes", H=[10, 20]).values.tolist() == [2864, 11264]


PROFILE = {"name": "toy", "source": "made up for the test", "peak_macs_per_s": 1e9,
           "bandwidth_bytes_per_s": 1e9, "overhead_s": 1e-6}


def test_roofline_on_a_given_profile():
    device = loads_device(json.dumps(PROFILE))
    rows = {r.name: r for r in analysis(device=device, batch=2).rows}
    ns = Fraction(1, 10**9)
    # conv c: compute 2*6,912 = 13,824 ns; memory 2*(768 + 1,024) + 448 = 4,032 ns
    assert (rows["c"].latency_s, rows["c"].bound) == (1000*ns + 13824*ns, "compute")
    # dwconv d: compute 2*2,304 = 4,608 ns; memory 2*(1,024 + 1,024) + 160 = 4,256 ns
    assert (rows["d"].latency_s, rows["d"].bound) == (1000*ns + 4608*ns, "compute")
    # fc o: compute 2*1,280 = 2,560 ns; memory 2*(512 + 40) + 5,160 = 6,264 ns
    assert (rows["o"].latency_s, rows["o"].bound) == (1000*ns + 6264*ns, "memory")
    # concat j: memory 2*((512 + 768) + 1,280) = 5,120 ns
    assert (rows["j"].latency_s, rows["j"].bound) == (1000*ns + 5120*ns, "memory")
    # add s: memory 2*((512 + 512) + 512) = 3,072 ns
    assert (rows["s"].latency_s, rows["s"].bound) == (1000*ns + 3072*ns, "memory")
    # input: nothing to do but the overhead
    assert (rows["x"].latency_s, rows["x"].bound) == (1000*ns, "overhead")
    a = analysis(device=device, batch=2)
    assert a.totals["latency_s"] == sum(r.latency_s for r in a.rows)


def test_efficiencies_scale_their_term():
    device = loads_device(json.dumps({**PROFILE, "efficiency": {"depthwise": 0.25, "elementwise": 0.5}}))
    rows = {r.name: r for r in analysis(device=device, batch=2).rows}
    ns = Fraction(1, 10**9)
    assert rows["d"].latency_s == 1000*ns + 4608*4*ns       # compute / 0.25
    assert rows["s"].latency_s == 1000*ns + 3072*2*ns       # elementwise: memory / 0.5
    assert rows["c"].latency_s == 1000*ns + 13824*ns        # dense: no factor given, 1


def test_profile_errors_and_shipped_profiles():
    with pytest.raises(SpecError, match="missing 'overhead_s'"):
        loads_device(json.dumps({k: v for k, v in PROFILE.items() if k != "overhead_s"}))
    with pytest.raises(SpecError, match="unknown family 'dephtwise'"):
        loads_device(json.dumps({**PROFILE, "efficiency": {"dephtwise": 1}}))
    with pytest.raises(SpecError, match="'peak_macs_per_s' must be a number above 0"):
        loads_device(json.dumps({**PROFILE, "peak_macs_per_s": 0}))
    v100 = device_profile("nvidia_v100_sxm2")
    assert (v100.peak_macs_per_s, v100.bandwidth_bytes_per_s) == (785 * 10**10, 9 * 10**11)
    assert "datasheet" in v100.source
    t4 = device_profile("nvidia_t4")
    assert (t4.peak_macs_per_s, t4.bandwidth_bytes_per_s) == (405 * 10**10, 32 * 10**10)


def test_json_and_csv_hold_traffic_and_latency():
    doc = tables.document(analysis(device=loads_device(json.dumps(PROFILE))))
    conv = doc["layers"][1]
    assert (conv["input_bytes"], conv["weight_bytes"], conv["output_bytes"], conv["traffic_bytes"]) \
        == (768, 448, 1024, 2240)
    assert conv["latency_s"] == float(Fraction(7912, 10**9)) and conv["bound"] == "compute"
    assert doc["dtype"] == "float32" and doc["batch"] == 1 and doc["device"]["name"] == "toy"
    header, first, second = tables.as_csv(analysis()).splitlines()[:3]
    assert header.endswith(",input_bytes,weight_bytes,output_bytes,traffic_bytes,intensity")
    assert second.endswith(",768,448,1024,2240,3.085714285714286")


def fake_clock(durations):
    """Each timed call lasts the next duration: start 0, end the duration."""
    ticks = iter(itertools.chain.from_iterable((0, d) for d in durations))
    return lambda: next(ticks)


def test_calibrate_arithmetic_with_a_fake_clock():
    # three interleaved rounds of 27 timed calls (matmul, add, the 32 tiny layers through the
    # executor's loop, 17 layers of the families, 7 of the costly kinds); each counts its fastest
    # round: bursts (1 s each) in the first and last rounds, the durations meant in between,
    # every call but the matmul slower (1 s) in the last round too
    true = [Fraction(1, 4), Fraction(1, 8), Fraction(1, 2**15)] + [Fraction(1, 2)] * 24
    durations = [1] * 27 + true + [Fraction(1, 4)] + [1] * 26
    d = archcalc.calibrate(timer=fake_clock(durations), repeats=3)
    peak = Fraction(512 * 1024 * 1024) / Fraction(1, 4)             # 2^31 MAC/s
    bandwidth = Fraction(3 * 2**22 * 4) / Fraction(1, 8)           # 3 arrays of 2^22 float32
    overhead = Fraction(1, 2**15) / 32                              # 2^-20 s a layer
    assert (d.peak_macs_per_s, d.bandwidth_bytes_per_s, d.overhead_s) == (peak, bandwidth, overhead)
    work = Fraction(1, 2) - overhead
    # each family's layers: (MACs, input + output numbers, weight numbers) an image, batch 8;
    # e = their MACs over the peak / their 0.5 s less the overhead less their memory term
    # (overlap 0: the executor moves, then multiplies)
    layers = {
        "dense": [(56*56*64 * 3*3*64, 2 * 56*56*64, 3*3*64*64 + 64),
                  (14*14*256 * 3*3*256, 2 * 14*14*256, 3*3*256*256 + 256),
                  (56*56*64 * 7*7*3, 112*112*3 + 56*56*64, 7*7*3*64 + 64)],
        "pointwise": [(56*56*256 * 64, 56*56*(64 + 256), 64*256 + 256),
                      (28*28*128 * 512, 28*28*(512 + 128), 512*128 + 128),
                      (14*14*1024 * 256, 14*14*(256 + 1024), 256*1024 + 1024)],
        "depthwise": [(56*56*128 * 3*3, 2 * 56*56*128, 3*3*128 + 128),
                      (14*14*240 * 5*5, 28*28*240 + 14*14*240, 5*5*240 + 240),
                      (28*28*192 * 7*7, 2 * 28*28*192, 7*7*192 + 192)],
        "grouped": [(28*28*128 * 3*3*(128 // 32), 2 * 28*28*128, 3*3*4*128 + 128),
                    (56*56*64 * 3*3*(64 // 8), 2 * 56*56*64, 3*3*8*64 + 64)],
        # fc 2048 -> 1000; attention over 50 tokens of 384: 4 projections 50*384*384, QK^T and
        # AV, weights 4 d^2 + 4 d
        "matmul": [(2048 * 1000, 2048 + 1000, 2048*1000 + 1000),
                   (4 * 50*384*384 + 2 * 50*50*384, 2 * 50*384, 4*384*384 + 4*384)]}
    for family, found in layers.items():
        ideal = sum(Fraction(8 * macs) / peak for macs, _, _ in found)
        spent = sum(work - Fraction(8 * 4 * data + 4 * w) / bandwidth for _, data, w in found)
        assert d.efficiency[family] == ideal / spent, family
    assert d.overlap == 0
    # bytes at batch 8 over the bandwidth: maxpool 112 -> 56 (64 maps) and a 7x7 average pool
    # of 1,024 maps; an add of two 56x56x256 and a ReLU on 28x28x512
    pool = 8 * 4 * ((112*112*64 + 56*56*64) + (7*7*1024 + 1024))
    assert d.efficiency["pool"] == Fraction(pool) / bandwidth / (2 * work)
    elementwise = 8 * 4 * (3 * 56*56*256 + 2 * 28*28*512)
    assert d.efficiency["elementwise"] == Fraction(elementwise) / bandwidth / (2 * work)
    kinds = ("gelu", "sigmoid", "swish", "hardswish", "tanh", "softmax", "layernorm")
    for kind in kinds:  # one layer each on 14x14x512: read and written once, layernorm's 2 x 512 weights too
        moved = 8 * 2 * 14*14*512 * 4 + (2 * 512 * 4 if kind == "layernorm" else 0)
        assert d.efficiency[kind] == Fraction(moved) / bandwidth / work, kind
    assert set(d.efficiency) == set(layers) | {"pool", "elementwise"} | set(kinds)
    again = loads_device(json.dumps(d.document()))
    assert float(again.peak_macs_per_s) == float(peak) and set(again.efficiency) == set(d.efficiency)
    assert again.overlap == 0


def test_a_kinds_efficiency_comes_before_its_familys():
    """GELU is element-wise: with 'gelu': 1/8 and 'elementwise': 1/2 its memory term is 8x, an
    add's 2x (bytes / bandwidth / e)."""
    net = archcalc.loads("network K {\n input x : (4, 4, 8)\n gelu g\n add s <- g, g\n}\n")
    profile = {**PROFILE, "efficiency": {"gelu": 0.125, "elementwise": 0.5}}
    rows = {r.name: r for r in archcalc.analyze(net, device=loads_device(json.dumps(profile))).rows}
    ns = Fraction(1, 10**9)
    # gelu reads and writes 4*4*8 float32 (512 bytes each); the add reads two, writes one
    assert rows["g"].latency_s == 1000*ns + 1024 * 8 * ns
    assert rows["s"].latency_s == 1000*ns + 1536 * 2 * ns


def cli(capsys, *argv):
    from archcalc.cli import main
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_traffic_totals_and_errors(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    status, out, _ = cli(capsys, "analyze", "specs/lenet5.arch", "--traffic")
    # LeNet-5 at float32: inputs 62,504 + weights 246,824 (61,706 params x 4) bytes read
    assert status == 0 and "bytes read (inputs + weights)  62,504 + 246,824 = 309,328 bytes (0.31 MB)" in out
    assert "bytes written (outputs)        58,448 bytes (0.06 MB)" in out
    status, _, err = cli(capsys, "analyze", "specs/lenet5.arch", "--device", "nvidia_t5")
    assert status == 1 and err == ("error: no device profile 'nvidia_t5': neither a file nor a "
                                   "shipped profile\n  = did you mean 'nvidia_t4'?\n"
                                   "  = shipped: nvidia_t4, nvidia_v100_sxm2\n")
    status, _, err = cli(capsys, "analyze", "specs/resnet50.arch", "--free", "H", "--device", "nvidia_t4")
    assert status == 1 and err.startswith("error: a latency estimate needs every size bound; layer "
                                          "'conv1' has a symbolic cost\n  = free symbols: H\n")


def test_profile_lines_put_measured_against_predicted():
    from archcalc.present.traffic import profile_lines
    a = analysis(device=loads_device(json.dumps(PROFILE)))
    measured = {r.name: 2 * float(r.latency_s) for r in a.rows}  # as if twice as slow
    lines = profile_lines(a, measured, 2 * float(a.totals["latency_s"]))
    conv = next(line for line in "\n".join(lines).splitlines() if line.startswith("c "))
    # conv c at batch 1: 1,000 ns + 6,912 ns = 7.91 us predicted, 15.8 us measured
    assert conv.split() == ["c", "conv", "15.8", "us", "7.91", "us", "2.00", "compute"]
    assert lines[-1].endswith("ratio 2.00")


def test_families_for_the_efficiencies():
    families = {r.name: r.family for r in analysis().rows}
    assert [families[k] for k in ("x", "c", "d", "a", "j", "s", "o")] == \
        ["elementwise", "dense", "depthwise", "pointwise", "elementwise", "elementwise", "matmul"]
    net = archcalc.loads("network T {\n input x : (8, 8, 64)\n conv n : f=3 c=64 groups=16\n"
                         " conv w : f=3 c=64 groups=2\n maxpool : f=2 s=2\n}\n", "t.arch")
    # 64/16 = 4 maps per group: grouped; 64/2 = 32 maps per group: dense convs side by side
    assert [r.family for r in archcalc.analyze(net).rows[1:]] == ["grouped", "dense", "pool"]


def test_formula_prints_the_traffic(capsys):
    status, out, _ = cli(capsys, "formula", str(ROOT / "specs" / "inception_bottleneck.arch"))
    # in a block of width b; checked against the analysis at b = 1 and b = 2 (a line in b)
    one, two = (archcalc.analyze(ROOT / "specs" / "inception_bottleneck.arch", at={"b": b})
                .totals["traffic_bytes"] for b in (1, 2))
    assert status == 0 and f"traffic bytes    = {two - one}*b + {2 * one - two}" in out


def test_overlap_adds_part_of_the_smaller_term():
    """conv c of NET at batch 1: 8*8*4 outputs x 27 MACs = 6,912 ns at 1e9 MAC/s; it moves
    768 + 448 + 1,024 = 2,240 bytes, 2,240 ns at 1e9 B/s; overlap 1/4 leaves 3/4 of those."""
    device = loads_device(json.dumps({**PROFILE, "overlap": 0.25}))
    ns = Fraction(1, 10**9)
    assert analysis(device=device).row("c").latency_s == 1000*ns + 6912*ns + Fraction(3, 4) * 2240*ns
    assert analysis(device=loads_device(json.dumps(PROFILE))).row("c").latency_s == 1000*ns + 6912*ns
    with pytest.raises(SpecError, match="'overlap' must be a number from 0 to 1, got \"3/2\""):
        loads_device(json.dumps({**PROFILE, "overlap": 1.5}))
