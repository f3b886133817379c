"""Large networks stay exact: long repeats and wide fans build and analyse with every name and
figure right. (How fast is measured by hand, in benchmarks/bench_analysis.py; never here.)"""
from __future__ import annotations

import archcalc

MAP = 4 * 4 * 3  # the activations of one (4, 4, 3) map


def test_a_long_repeat_names_every_iteration_and_reads_the_one_before():
    n = 20_000
    net = archcalc.loads(f"network R {{ input x : (4, 4, 3)\n repeat {n} {{ relu r }}\n"
                         "add s <- r_1, r_20000 }")
    layers = net.layers
    assert len(layers) == n + 2
    assert [l.name for l in layers[:3]] == ["x", "r_1", "r_2"] and layers[-2].name == "r_20000"
    assert layers[-2].inputs == ("r_19999",) and layers[-1].inputs == ("r_1", "r_20000")
    # r_1 lives until s reads it: at r_k, x is gone and r_1, r_(k-1), r_k are live
    assert archcalc.analyze(net).totals["peak_activations"] == 3 * MAP


def test_a_wide_fan_keeps_every_branch_live_to_the_end():
    n = 20_000
    net = archcalc.loads(f"network F {{ input x : (4, 4, 3)\n repeat {n} {{ relu <- x }}\n}}")
    a = archcalc.analyze(net)
    # nobody reads the branches, so they are outputs: the input and all n live at the end
    assert a.totals["peak_activations"] == (n + 1) * MAP
    assert a.totals["other_ops"] == n * MAP  # one max(0, x) per element of each branch


def test_a_wide_symbolic_fan_gives_the_same_peak_as_bound_sizes():
    text = "network F(H=4) {\n input x : (H, H, 3)\n repeat 5000 { relu <- x }\n conv c : f=3 c=2\n}"
    net = archcalc.loads(text)
    free = archcalc.analyze(net, free=("H",)).totals["peak_activations"]
    bound = archcalc.analyze(net).totals["peak_activations"]
    # at the last relu: x and 5000 branches; at the conv, x is gone: 5000 branches + (2, 2, 2)
    assert bound == max(5001 * MAP, 5000 * MAP + 2 * 2 * 2) == 5001 * MAP
    assert free.subs({s: 4 for s in free.free_symbols}) == bound


def test_the_largest_adaptive_window_is_the_largest_of_all_windows_listed():
    from archcalc.kinds.windowed import adaptive_windows, largest_adaptive_window
    for n in range(1, 70):
        for o in range(1, 70):
            assert largest_adaptive_window(n, o) == max(adaptive_windows(n, o)), (n, o)


def test_a_huge_adaptive_pool_is_counted_without_listing_its_windows():
    a = archcalc.analyze(archcalc.loads(
        "network N { input x : (7, 7, 2)\n adaptive_avgpool : 100000000 }"))
    o = 100_000_000
    assert a.rows[-1].out_shape == (o, o, 2)
    # each axis sums n + o - gcd(n, o) = 7 + 10^8 - 1 taps; the map has n_C = 2 channels
    assert a.rows[-1].other_ops == (7 + o - 1) ** 2 * 2
    # n = 7 = 0*o + 7 and 7 does not divide 10^8 = 2^8 * 5^8: the largest window has 0 + 2 taps
    assert a.rows[-1].receptive_field == (2, 0)


def test_an_lrn_wider_than_its_channels_runs_over_the_channels_there_are():
    """size = 10^9 over 6 channels sums every channel, as size = 2*6 - 1 does: the kernel loops
    over the shifts that read a channel, never over `size`."""
    import numpy as np

    from archcalc import kinds
    from archcalc.executor.kernels import KERNELS, Context
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 6)).astype(np.float32)
    huge = KERNELS["lrn"](kinds.LRN(size=10**9), (x,), {}, Context())
    every = x / (2 + np.float32(1e-4) * (x * x).sum(-1, keepdims=True)) ** np.float32(0.75)
    np.testing.assert_allclose(huge, every, rtol=1e-6)
    assert np.array_equal(huge, KERNELS["lrn"](kinds.LRN(size=11), (x,), {}, Context()))


def test_a_pooling_window_of_a_hundred_million_taps_reads_only_the_real_inputs():
    """f = 10^8 with p = 5*10^7 over a 3 x 3 map: one window, covering every input pixel; the
    kernel visits the 3 offsets per axis that reach the map, not 10^8."""
    import numpy as np

    from archcalc.executor import check
    net = archcalc.loads("network N { input x : (3, 3, 2)\n"
                         " maxpool m : f=100000000 p=50000000 s=100000000\n}")
    x = np.random.default_rng(1).standard_normal((2, 3, 3, 2)).astype(np.float32)
    r = archcalc.run(net, x)
    assert check(r) == [] and r.output.shape == (2, 1, 1, 2)
    assert np.array_equal(r.output[:, 0, 0, :], x.max(axis=(1, 2)))
