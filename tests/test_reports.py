"""Reports, comparisons, formulas, sweeps and the course's practical advice as costs."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import sympy

import archcalc
from archcalc.analysis import bundle as bundles, costs
from archcalc.analysis.bundle import report_bundle
from archcalc.errors import SpecError
from archcalc.present import report
from archcalc.cli import main
from archcalc.present.compare import depth, render
from archcalc.present.tables import scaled
from archcalc.sizes import ceiling_form
from archcalc.analysis.sweep import evaluate, parse_range
from conftest import ROOT, SPECS

GOLDEN = ROOT / "tests" / "golden"
REPORTS = ROOT / "reports"


def analysis(name, **kw):
    return archcalc.analyze(archcalc.load(SPECS / f"{name}.arch"), **kw)


def bundle_of(path):
    return report_bundle(archcalc.load(path))


def test_inception_comparison_reads_at_a_glance(capsys, golden, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["compare", "specs/inception_naive.arch", "specs/inception_bottleneck.arch",
                 "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    golden(GOLDEN / "compare_inception.md", out)
    # 120,422,400 / 12,443,648 = 9.677...
    assert "120,422,400" in out and "12,443,648" in out and "9.68x fewer" in out


MODERN_BLOCKS = ["specs/block_resnet_bottleneck.arch", "specs/block_inverted_residual.arch",
                 "specs/block_shufflenet_v2.arch", "specs/block_convnext.arch"]


def test_committed_modern_blocks_comparison_is_current(capsys, monkeypatch):
    """reports/modern_blocks.md is `archcalc compare` of the four blocks, as the README shows."""
    monkeypatch.chdir(ROOT)
    assert main(["compare", *MODERN_BLOCKS, "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out == (REPORTS / "modern_blocks.md").read_text(), \
        "reports/modern_blocks.md is stale: run the compare command in the README"
    # the figures of tests/test_networks.py's hand-worked blocks; activations written out at
    # 56x56 (3,136 positions): the input's 256 maps and every layer's output
    #   bottleneck: 256 + 3 layers x 64 twice + 3 x 256 (conv3, bn3, add) + 256 (relu)
    #   ConvNeXt: 256 + dwconv, norm 256 each + pwconv1, gelu 1024 each + pwconv2, scale, add
    assert "|             70,400 |            806,912 |             34,688 |         539,136 |" in out
    assert "|        218,365,952 |      2,509,602,816 |        106,373,120 |   1,683,505,152 |" in out
    hw = 56 * 56
    bottleneck = hw * (256 + 6 * 64 + 4 * 256)
    convnext = hw * (256 + 2 * 256 + 2 * 1024 + 3 * 256)
    assert (bottleneck, convnext) == (5_218_304, 11_239_424)
    assert f"|          {bottleneck:,} |" in out and f"|      {convnext:,} |" in out
    assert "| receptive field         |              3 / 1 |              3 / 1 |" in out


def test_resnet34_against_plain34_shows_what_the_projection_shortcuts_cost():
    text = render([analysis("resnet34"), analysis("plain34")], "markdown")
    # layer2's projection: 1x1 conv 64 -> 128 (8,192 weights) + BN (256) = 8,448 params,
    # 28*28*128*64 = 6,422,528 MACs; layer3: 128*256 + 512 = 33,280; layer4: 256*512 + 1024
    assert "| layer2  |" in text and "-8,448" in text and "-6,422,528" in text
    assert "-33,280" in text and "-132,096" in text


def test_depth_counts_weighted_layers_on_the_longest_path():
    assert [depth(analysis(n)) for n in ("vgg16", "resnet34", "plain34", "resnet152", "lenet5")] \
        == [16, 34, 34, 152, 5]


def test_lenet5_markdown_report_matches_golden(tmp_path, golden, monkeypatch):
    monkeypatch.chdir(ROOT)
    written = report.write_spec(bundle_of(Path("specs/lenet5.arch")), tmp_path)
    assert written.files == ("report.md", "report.html", "cost.png", "graph.png")
    golden(GOLDEN / "report_lenet5.md", (tmp_path / "lenet5" / "report.md").read_text())


def test_committed_reports_are_current(tmp_path, monkeypatch):
    """`archcalc report specs/ --out reports/` regenerates exactly what is committed (the
    text byte for byte; the same set of figures)."""
    monkeypatch.chdir(ROOT)
    report.write_reports([bundle_of(p) for p in sorted(Path("specs").glob("*.arch"))], tmp_path)
    fresh = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    committed = {p.relative_to(REPORTS) for p in REPORTS.rglob("*") if p.is_file()}
    committed -= {Path("augmentation.png")}  # made by `archcalc augment`, tested in test_augment
    committed -= {Path("modern_blocks.md")}  # made by `archcalc compare`, tested above
    committed -= {Path("guidelines.md")}  # made by benchmarks/bench_guidelines.py, tested in test_guidelines
    assert fresh == committed, "reports/ is stale: run archcalc report specs/ --out reports/"
    for rel in sorted(fresh):
        if rel.suffix in (".md", ".html"):
            assert (tmp_path / rel).read_text() == (REPORTS / rel).read_text(), f"{rel} is stale"


def test_figures_are_deterministic(tmp_path):
    a = analysis("inception_3a")
    report.plots.cost_bars(a, tmp_path / "one.png")
    report.plots.cost_bars(a, tmp_path / "two.png")
    assert (tmp_path / "one.png").read_bytes() == (tmp_path / "two.png").read_bytes()


def test_formula_of_the_bottleneck_width():
    graph = archcalc.load(SPECS / "inception_bottleneck.arch")
    macs = archcalc.analyze(graph, free=("b",)).totals["macs"]
    b = sympy.Symbol("b", integer=True, positive=True)
    # 28*28*b*192 + 28*28*32*5*5*b = (150,528 + 627,200) b
    assert sympy.expand(macs - 777_728 * b) == 0


def test_sweep_equals_the_analysis_at_every_sampled_point():
    graph = archcalc.load(SPECS / "resnet50.arch")
    xs = np.arange(32, 97, 7)
    grid = evaluate(graph, "macs", {"H": xs, "W": xs[::-1]})
    for i in (0, 3, len(xs) - 1):
        for j in (0, 5):
            exact = archcalc.analyze(graph, at={"H": int(xs[i]), "W": int(xs[::-1][j])})
            assert grid[i, j] == exact.totals["macs"]


def test_a_million_point_sweep_of_the_bottleneck_width():
    graph = archcalc.load(SPECS / "inception_bottleneck.arch")
    name, bs = parse_range("b=1..1000000")
    values = evaluate(graph, "macs", {name: bs})
    assert values.shape == (1_000_000,)
    assert values[15] == 12_443_648 and values[-1] == 777_728 * 1_000_000


def test_sweep_falls_back_to_exact_integers_past_float_precision():
    graph = archcalc.load(SPECS / "inception_bottleneck.arch")
    values = evaluate(graph, "macs", {"b": np.array([2**45, 2**45 + 1])})
    assert list(values) == [777_728 * 2**45, 777_728 * (2**45 + 1)]


@pytest.mark.parametrize("text", ["b=4", "b=0..5", "b=9..3", "=1..2", "b=x..4"])
def test_bad_sweep_ranges_are_spec_errors(text):
    with pytest.raises(archcalc.SpecError):
        parse_range(text)


def test_transfer_learning_costs_on_vgg16():
    a = analysis("vgg16", freeze="flatten1")
    fc = 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    assert (a.totals["trainable_params"], a.totals["frozen_params"]) == (fc, 138_357_544 - fc)
    fc_macs = 25088 * 4096 + 4096 * 4096 + 4096 * 1000
    assert costs.training(a).macs_per_image == 15_470_264_320 + 2 * fc_macs
    t = costs.transfer(a, "flatten1", images=10_000, epochs=10)
    assert t.feature_bytes_per_image == 7 * 7 * 512 * 4
    assert t.cache_bytes == 7 * 7 * 512 * 4 * 10_000
    conv_macs = 15_470_264_320 - fc_macs
    per_image = 15_470_264_320 + 2 * fc_macs
    assert t.epoch_macs_with_cache == conv_macs * 10_000 + (per_image - conv_macs) * 10_000 * 10


def test_freeze_in_the_spec():
    g = archcalc.loads("network F {\n input x : (1, 1, 10)\n fc a : 5\n freeze <- a\n fc b : 3\n}")
    a = archcalc.analyze(g)
    # a: 10*5 + 5 frozen, b: 5*3 + 3 trainable
    assert (a.freeze, a.totals["frozen_params"], a.totals["trainable_params"]) == ("a", 55, 18)


def test_test_time_multi_crop_and_ensemble():
    a = analysis("alexnet")
    t = costs.test_time(a, crops=10, models=3)
    assert t.macs == 1_135_256_096 * 30 and t.params == 62_378_344 * 3


def test_analyze_prints_the_cache_size(capsys):
    assert main(["analyze", str(SPECS / "vgg16.arch"), "--freeze", "flatten1", "--images", "1000"]) == 0
    out = capsys.readouterr().out
    # 7*7*512 float32 values per image, 1,000 images
    assert f"feature cache for 1,000 images: {7 * 7 * 512 * 4 * 1000:,} bytes" in out


def test_formula_shows_ceilings_equal_to_the_analysis():
    graph = archcalc.load(SPECS / "resnet50.arch")
    macs = archcalc.analyze(graph, free=("H", "W")).totals["macs"]
    shown = ceiling_form(macs)
    H, W = (sympy.Symbol(n, integer=True, positive=True) for n in "HW")
    # each stage halves the map: floor((H - 1)/2^k) + 1 = ceiling(H/2^k)
    assert shown == (14417920 * sympy.ceiling(H / 32) * sympy.ceiling(W / 32)
                     + 7471104 * sympy.ceiling(H / 16) * sympy.ceiling(W / 16)
                     + 1310720 * sympy.ceiling(H / 8) * sympy.ceiling(W / 8)
                     + 245760 * sympy.ceiling(H / 4) * sympy.ceiling(W / 4)
                     + 9408 * sympy.ceiling(H / 2) * sympy.ceiling(W / 2) + 2048000)
    for h, w in ((224, 224), (97, 130), (448, 33)):
        assert shown.xreplace({H: h, W: w}) == archcalc.analyze(graph, at={"H": h, "W": w}).totals["macs"]


def test_sweep_is_exact_for_strides_that_are_not_powers_of_two():
    # floor((H - 5)/3) + 1 at H = 71 is 23 exactly; float64 evaluates H/3 - 5/3 as 21.999...
    g = archcalc.loads("network S(H=224) {\n input x : (H, H, 3)\n conv a : f=5 s=3 c=8\n"
                       " conv b : f=3 s=7 c=8\n}")
    hs = np.arange(70, 1500)
    values = evaluate(g, "macs", {"H": hs})
    exact = [archcalc.analyze(g, at={"H": int(h)}).totals["macs"] for h in hs]
    assert values.dtype == np.int64 and list(values) == exact


def test_report_refuses_two_specs_with_one_folder(tmp_path, capsys):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "net.arch").write_text((SPECS / "nin_1x1.arch").read_text())
    paths = [tmp_path / "a" / "net.arch", tmp_path / "b" / "net.arch"]
    with pytest.raises(archcalc.SpecError, match="share the report folder 'net'"):
        report.write_reports([bundle_of(p) for p in paths], tmp_path / "out")
    assert main(["report", *map(str, paths), "--out", str(tmp_path / "out")]) == 1
    assert "share the report folder 'net'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any work


# ---------------------------------------------------------------- the report's bundle

SQUARE_SPECS = sorted(p.stem for p in SPECS.glob("*.arch")
                      if {"H", "W"} <= {s.name for s in archcalc.load(p).symbols})


def fits(net, x) -> bool:
    try:
        archcalc.analyze(net, at={"H": x, "W": x})
        return True
    except SpecError:
        return False


def bisected(net, high) -> int:
    """The report's search before the bundle: one analysis per halving."""
    low = 1
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if fits(net, mid) else (mid + 1, high)
    return low


@pytest.mark.parametrize("name", SQUARE_SPECS)
def test_smallest_valid_size_is_the_first_that_fits(name):
    net = archcalc.load(SPECS / f"{name}.arch")
    b = report_bundle(net)
    first = next(x for x in range(1, b.analysis.symbols["H"] + 1) if fits(net, x))
    assert b.smallest == first == bisected(net, b.analysis.symbols["H"])
    assert b.scaling.xs[0] == first


def test_smallest_valid_sizes_of_the_specs():
    # by hand: VGG needs 32 for its five 2x2 pools; AlexNet's stride-4 11x11 conv and three
    # 3x3/2 pools need 67; GoogLeNet's final 7x7 average pool needs 193 under the paper's
    # floor rounding; ResNets pad enough to take any size
    got = {n: report_bundle(archcalc.load(SPECS / f"{n}.arch")).smallest
           for n in ("vgg16", "alexnet", "googlenet_paper", "resnet50")}
    assert got == {"vgg16": 32, "alexnet": 67, "googlenet_paper": 193, "resnet50": 1}


class Counted:
    """Counts the bundle's calls of the analysis."""
    def __init__(self, monkeypatch):
        self.calls = 0
        original = bundles.analyze

        def counting(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)
        monkeypatch.setattr(bundles, "analyze", counting)


@pytest.mark.parametrize("name, calls", [
    ("vgg16", 5),                # default, frozen, H and W free, at the smallest (32), at 31
    ("googlenet", 5),            # the same; its ceil-mode pools fit from 31, not from 15
    ("resnet18", 4),             # ... at the smallest (1), which has no smaller one to fail
    ("inception_bottleneck", 4),  # default, frozen, b free, at b = 1
    ("lenet5", 2),               # default, frozen
    ("nin_1x1", 1)])             # no head to freeze
def test_the_bundle_analyses_a_few_times(monkeypatch, name, calls):
    counted = Counted(monkeypatch)
    report_bundle(archcalc.load(SPECS / f"{name}.arch"))
    assert counted.calls == calls


@pytest.mark.parametrize("name", sorted(p.stem for p in SPECS.glob("*.arch")))
def test_the_bundle_of_every_spec_takes_at_most_five_analyses(monkeypatch, name):
    counted = Counted(monkeypatch)
    report_bundle(archcalc.load(SPECS / f"{name}.arch"))
    assert counted.calls <= 5


def test_the_bundle_analyses_as_often_whatever_the_input_size(monkeypatch):
    text = (SPECS / "vgg16.arch").read_text()
    counts = []
    for size in (224, 4096):
        counted = Counted(monkeypatch)
        b = report_bundle(archcalc.loads(text.replace("(H=224, W=224)", f"(H={size}, W={size})")))
        counts.append(counted.calls)
        assert b.smallest == 32 and 3 * size < b.scaling.xs[-1] <= 4 * size
    assert counts == [5, 5]


def test_the_scaling_series_is_the_analysis_at_every_size():
    net = archcalc.load(SPECS / "googlenet.arch")
    s = report_bundle(net).scaling
    assert s.names == ("H", "W") and 224 in s.xs and s.params is None
    for i in (0, 1, s.xs.index(224), len(s.xs) - 1):
        assert s.macs[i] == archcalc.analyze(net, at={"H": s.xs[i], "W": s.xs[i]}).totals["macs"]
    s = report_bundle(archcalc.load(SPECS / "inception_bottleneck.arch")).scaling
    # 28*28*b*192 + 28*28*32*5*5*b = 777,728 b MACs; params (1*1*192 + 1) b + (5*5*b + 1) 32
    assert s.names == ("b",) and s.xs[:3] == (1, 2, 3) and s.xs[-1] == 64
    assert all(m == 777_728 * b for m, b in zip(s.macs, s.xs))
    assert all(p == 193 * b + (25 * b + 1) * 32 for p, b in zip(s.params, s.xs))


def test_the_scaling_series_is_exact_past_int64():
    text = (SPECS / "inception_bottleneck.arch").read_text().replace("(b=16)", f"(b={2**60})")
    s = report_bundle(archcalc.loads(text)).scaling
    assert s.xs[-1] > 3 * 2**60 and s.macs[-1] > 2**63
    assert s.macs == tuple(777_728 * b for b in s.xs) and all(type(m) is int for m in s.macs)


def test_a_join_that_fits_at_even_sizes_only_falls_back_to_the_search():
    # sizes alone fit from H = 3 (the 3x3 conv), but the add needs ceil(H/2) = floor(H/2)
    net = archcalc.loads("network Odd(H=224, W=224) {\n input x : (H, W, 3)\n"
                         " conv a : f=1 s=2 c=4\n maxpool b <- x : f=2 s=2\n conv b2 : f=1 c=4\n"
                         " add j <- a, b2\n conv side <- x : f=3 c=2\n}")
    assert report_bundle(net).smallest == bisected(net, 224) == 14


def test_the_frozen_variant_is_frozen_through_the_head():
    b = bundle_of(SPECS / "vgg16.arch")
    assert b.head == "dropout2"
    assert b.frozen.totals == analysis("vgg16", freeze="dropout2").totals


def test_a_size_without_default_is_refused_with_a_hint():
    with pytest.raises(SpecError, match="size 'H' has no default value"):
        report_bundle(archcalc.loads("network F(H) {\n input x : (H, H, 3)\n conv a : f=3 c=4\n}"))


def test_the_renderer_never_analyses(tmp_path, monkeypatch):
    b = bundle_of(SPECS / "inception_bottleneck.arch")

    def refuse(*args, **kwargs):
        raise AssertionError("the renderer analysed")
    for module in (archcalc, archcalc.analysis.analyzer, bundles, archcalc.analysis.sweep):
        monkeypatch.setattr(module, "analyze", refuse)
    written = report.write_reports([b], tmp_path)
    assert written[0].files == ("report.md", "report.html", "cost.png", "scaling.png", "graph.png")


def onnx_model(tmp_path, family, defaults=None):
    pytest.importorskip("onnx")
    from onnx import helper
    from onnx_models import FAMILIES
    model, _ = FAMILIES[family]()
    if defaults:
        helper.set_model_props(model, {"archcalc.defaults": defaults})
    path = tmp_path / f"{family}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_report_of_onnx_models(tmp_path, capsys):
    fixed = onnx_model(tmp_path, "squeezenet")
    free = onnx_model(tmp_path, "mobilenet", "H=32,W=32")
    out = tmp_path / "out"
    assert main(["report", str(fixed), str(free), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{out}/squeezenet/: report.md, report.html, cost.png, graph.png" in printed
    assert f"{out}/mobilenet/: report.md, report.html, cost.png, scaling.png, graph.png" in printed
    for path in (fixed, free):
        a = archcalc.analyze(archcalc.load(path))
        text = (out / path.stem / "report.md").read_text()
        assert text.startswith(f"# {a.network}\n\nSpec: `{path}`.")
        assert re.search(rf"\| MACs per image +\| +{re.escape(scaled(a.totals['macs']))} \|", text)
    assert "Symbols: H = 32, W = 32." in (out / "mobilenet" / "report.md").read_text()
    assert "[squeezenet](squeezenet/report.md)" in (out / "index.md").read_text()


def test_report_of_an_onnx_model_with_a_free_size_says_what_is_missing(tmp_path, capsys):
    assert main(["report", str(onnx_model(tmp_path, "mobilenet")), "--out", str(tmp_path)]) == 1
    assert "size 'H' has no default value" in capsys.readouterr().err


def test_a_window_rounded_up_must_still_fit(monkeypatch):
    # 3x3/2 ceil-mode pool: at H = 2 its size rounds up to ceil((2 - 3)/2) + 1 = 1, but the
    # window is larger than the input; it fits from H = 3 on
    net = archcalc.loads("network C(H=32, W=32) {\n input x : (H, W, 3)\n"
                         " maxpool m : f=3 s=2 round=ceil\n}")
    counted = Counted(monkeypatch)
    b = report_bundle(net)
    assert b.smallest == 3 == next(x for x in range(1, 33) if fits(net, x))
    assert counted.calls == 4  # default, H and W free, at 3, at 2 (no weights: nothing to freeze)


def test_reports_drawn_by_a_pool_equal_those_drawn_in_one_process(tmp_path, capsys):
    specs = [str(SPECS / f"{name}.arch") for name in ("lenet5", "nin_1x1", "inception_3a")]
    assert main(["report", *specs, "--out", str(tmp_path / "one"), "--jobs", "1"]) == 0
    assert main(["report", *specs, "--out", str(tmp_path / "pool"), "--jobs", "3"]) == 0
    one = {p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").rglob("*")
           if p.is_file()}
    pool = {p.relative_to(tmp_path / "pool"): p.read_bytes() for p in (tmp_path / "pool").rglob("*")
            if p.is_file()}
    # report.md, report.html, cost.png, graph.png; the index: index.md, index.html, scatter.png
    assert one == pool and len(one) == 3 * 4 + 3
    printed = capsys.readouterr().out.replace(str(tmp_path / "one"), "OUT") \
        .replace(str(tmp_path / "pool"), "OUT").splitlines()
    assert printed[:4] == printed[4:]  # the same lines, in the same order, either way


@pytest.mark.parametrize("jobs", ["0", "-1", "two", "1e9"])
def test_report_jobs_must_be_a_positive_whole_number(jobs, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["report", str(SPECS / "lenet5.arch"), "--out", str(tmp_path), "--jobs", jobs])
    assert e.value.code == 2
    assert f"argument --jobs: expected a whole number >= 1, got '{jobs}'" in capsys.readouterr().err


def test_a_sweep_is_exact_where_the_cost_peaks_inside_the_range():
    """MACs = H^2 * 3 * (3000000 - H) peak at H = 2,000,000 with 1.2 * 10^19, past int64,
    while both ends of the range fit int64: the bound of every value, not the corner, decides."""
    net = archcalc.loads("network Peak(H=1000) {\n input x : (H, H, 3)\n conv c : f=1 c=3000000-H\n}")
    hs = np.arange(1_000_000, 2_999_001, 1_000, dtype=np.int64)
    macs = evaluate(net, "macs", {"H": hs})
    peak = int(np.argmax(macs))
    assert int(hs[peak]) == 2_000_000 and int(macs[peak]) == 2_000_000 ** 2 * 3 * 1_000_000
    for i in (0, peak, len(hs) - 1):
        h = int(hs[i])
        assert int(macs[i]) == archcalc.analyze(net, at={"H": h}).totals["macs"] == h * h * 3 * (3_000_000 - h)


def test_the_int64_bound_covers_every_value_on_the_way():
    from archcalc.analysis.sweep import FloorDiv, magnitude
    from archcalc.sizes import symbol
    H = symbol("H")
    assert magnitude(3 * H**2 * (3_000_000 - H), {H: 10}) == 3 * 100 * 3_000_010
    assert magnitude(FloorDiv(H - 7, 2) + 1, {H: 100}) == (100 + 7) + 1 + 1
    assert magnitude(H, {}) == float("inf")  # a symbol without a bound is unbounded
