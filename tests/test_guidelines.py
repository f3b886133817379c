"""ShuffleNet v2's guidelines G1 and G2 (Ma et al. 2018, Tables 1 and 2) as specs
(specs/guidelines/) and reports/guidelines.md: equal MACs written out, the paper's memory access
cost against our traffic, the T4 roofline written out. Measured times live in the benchmark's
output (README), never here."""
from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import pytest

import archcalc

ROOT = Path(__file__).resolve().parents[1]
GUIDELINES = ROOT / "specs" / "guidelines"
HW = 56 * 56
# (spec, c1, c2, g): c1*c2/g = 19,600 in every one
SPECS = [("g1_1to1", 140, 140, 1), ("g1_1to2", 100, 196, 1), ("g1_1to6", 56, 350, 1),
         ("g1_1to12", 40, 490, 1), ("g2_g1", 140, 140, 1), ("g2_g2", 196, 200, 2),
         ("g2_g4", 280, 280, 4), ("g2_g8", 392, 400, 8)]


def bench():
    spec = importlib.util.spec_from_file_location("bench_guidelines",
                                                  ROOT / "benchmarks" / "bench_guidelines.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_specs_are_the_tables():
    assert sorted(p.stem for p in GUIDELINES.glob("*.arch")) == sorted(s for s, *_ in SPECS)
    tables = bench().TABLES
    assert [name for _, name in tables["G1"][2]] == [s for s, *_ in SPECS[:4]]
    assert [name for _, name in tables["G2"][2]] == [s for s, *_ in SPECS[4:]]


@pytest.mark.parametrize("name, c1, c2, g", SPECS)
def test_equal_macs_written_out(name, c1, c2, g):
    """10 blocks of two 1x1 convs, each h*w*c1*c2/g MACs: 10 * 2 * 3,136 * 19,600."""
    a = archcalc.analyze(archcalc.load(GUIDELINES / f"{name}.arch"))
    assert c1 * c2 // g == 19_600 and c1 * c2 % g == 0
    assert [(r.in_shapes[0].n_C, r.out_shape.n_C) for r in a.rows[1:]] == [(c1, c2), (c2, c1)] * 10
    assert a.totals["macs"] == 10 * 2 * HW * 19_600 == 1_229_312_000


@pytest.mark.parametrize("name, c1, c2, g", SPECS)
def test_traffic_is_the_papers_memory_access_cost(name, c1, c2, g):
    """The paper's MAC of a 1x1 conv, h*w*(c1 + c2) + c1*c2/g numbers (Section 2, G1 and G2),
    is our traffic at one byte a number: input and output read and written once, weights once."""
    a = archcalc.analyze(archcalc.load(GUIDELINES / f"{name}.arch"), dtype="int8")
    for r in a.rows[1:]:
        n_in, n_out = r.in_shapes[0].n_C, r.out_shape.n_C
        assert r.input_bytes + r.weight_bytes + r.output_bytes == HW * (n_in + n_out) + n_in * n_out // g
    assert a.totals["traffic_bytes"] == 20 * (HW * (c1 + c2) + 19_600)


def test_memory_access_cost_grows_as_the_paper_says():
    """G1: least at 1:1 (h*w*(c1 + c2) at fixed c1*c2 is least when c1 = c2); G2: grows with g.
    Numbers an image, 20 layers: 20 * (3,136 * (c1 + c2) + 19,600)."""
    mac = {name: archcalc.analyze(archcalc.load(GUIDELINES / f"{name}.arch"), dtype="int8")
           .totals["traffic_bytes"] for name, *_ in SPECS}
    assert [mac[s] for s, *_ in SPECS[:4]] == [17_953_600, 18_957_120, 25_856_320, 33_633_600]
    assert [mac[s] for s, *_ in SPECS[4:]] == [17_953_600, 25_229_120, 35_515_200, 50_066_240]
    assert 20 * (HW * 280 + 19_600) == 17_953_600 and 20 * (HW * 792 + 19_600) == 50_066_240


def test_t4_latency_written_out_and_ordered():
    """At batch 8 on the T4 profile (4.05e12 MAC/s, 3.2e11 B/s, 5 us a layer, the input layer
    included): 1:1's layers are compute-bound, 8 * 61,465,600 MACs / 4.05e12; memory
    (8 * 3,136 * 280 * 4 + 19,600 * 4 bytes / 3.2e11) is less."""
    t4 = {name: archcalc.analyze(archcalc.load(GUIDELINES / f"{name}.arch"), device="nvidia_t4",
                                 batch=8).totals["latency_s"] for name, *_ in SPECS}
    assert Fraction(8 * HW * 280 * 4 + 19_600 * 4, 320_000_000_000) < Fraction(8 * 61_465_600, 4_050_000_000_000)
    assert t4["g1_1to1"] == 21 * Fraction(5, 10 ** 6) + 20 * Fraction(8 * 61_465_600, 4_050_000_000_000)
    assert t4["g1_1to1"] == t4["g1_1to2"] < t4["g1_1to6"] < t4["g1_1to12"]  # 1:1 and 1:2 both compute-bound
    assert t4["g2_g1"] < t4["g2_g2"] < t4["g2_g4"] < t4["g2_g8"]


def test_order_names_rows_fastest_first_with_ties():
    assert bench().order([3.0, 1.0, 2.0, 1.0]) == "2=4<3<1"


def test_agreement_counts_pairs_measurably_apart():
    """Measured 100, 102, 110, 200: 100 and 102 are within 3% (not counted); of the other 5
    pairs the estimate (1, 2, 2, 3) ties 2 and 3, so orders 4."""
    assert bench().agreement([1, 2, 2, 3], [100, 102, 110, 200]) == (4, 5)
    assert bench().agreement([1, 2, 3, 4], [100, 102, 110, 200]) == (5, 5)


def test_committed_report_is_current():
    """reports/guidelines.md is what `python benchmarks/bench_guidelines.py --report` prints."""
    text = bench().report()
    assert text == (ROOT / "reports" / "guidelines.md").read_text(), \
        "reports/guidelines.md is stale: run the command in the README"
    assert "| 1:12 | 40, 490 | 1,229,312,000 | 134,534,400 | 33,633,600 | 9.14 | 3.434 |" in text
    assert "| 8 | 392, 400 (g=8) | 1,229,312,000 | 200,264,960 | 50,066,240 | 6.14 | 5.077 |" in text
