"""The HTML pages in a real browser: Debian's headless chromium, driven by selenium through
chromedriver (no browser is downloaded). One browser for the session; every spec's page, the
index and imported ONNX models (one of 1,001 layers) load without console errors and draw
exactly the nodes and rows the analysis has; folding, sorting and filtering are checked by
their exact effect. Set ARCHCALC_NO_BROWSER=1 to skip these where no browser can run; without
it a missing browser is a failure, so CI never passes by skipping them."""
from __future__ import annotations

import io
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import archcalc
from archcalc.analysis.bundle import report_bundle
from archcalc.present.html import report_page
from conftest import ROOT, SPECS

if os.environ.get("ARCHCALC_NO_BROWSER"):
    pytest.skip("ARCHCALC_NO_BROWSER is set", allow_module_level=True)

FOLD_ABOVE = 40  # a network of more layers opens folded (present/plots.FOLD_ABOVE)
HOSTILE = "</script><script>alert(1)</script>"  # no '.': a dot would make it a block
REPORTS = ROOT / "reports"


def find(name: str) -> str:
    path = shutil.which(name) or f"/usr/bin/{name}"
    if not os.path.exists(path):
        pytest.fail(f"{name} not found: apt-get install chromium chromium-driver "
                    "(or set ARCHCALC_NO_BROWSER=1 to skip the browser tests)")
    return path


@pytest.fixture(scope="session")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000"):
        options.add_argument(a)
    options.binary_location = find("chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(find("chromedriver")), options=options)
    yield driver
    driver.quit()


def deep_onnx(path: Path) -> Path:
    """A chain of 499 1x1 convs and ReLUs on 4 x 4 x 2, pooled and flattened: 1,001 layers,
    none of them in a block."""
    from onnx_models import Builder
    b = Builder("deep")
    x = "x"
    for _ in range(499):
        x = b.relu(b.conv(x, 2, 2, 1))
    y = b.node("Flatten", [b.node("GlobalAveragePool", [x])])
    path.write_bytes(b.model([1, 2, 4, 4], y).SerializeToString())
    return path


@pytest.fixture(scope="session")
def pages(tmp_path_factory):
    """name -> (page path, analysis): every spec's committed page (test_reports.py checks
    that reports/ is what `archcalc report specs/` writes now), the index, and two ONNX
    models' pages written here."""
    from onnx_models import FAMILIES
    found = {p.stem: (REPORTS / p.stem / "report.html", archcalc.analyze(archcalc.load(p)))
             for p in sorted(SPECS.glob("*.arch"))}
    found["index"] = (REPORTS / "index.html", None)
    out = tmp_path_factory.mktemp("pages")
    model, _ = FAMILIES["resnext"]()
    (out / "resnext.onnx").write_bytes(model.SerializeToString())
    for source in (out / "resnext.onnx", deep_onnx(out / "deep.onnx")):
        b = report_bundle(archcalc.load(source))
        page = out / f"{source.stem}.html"
        page.write_text(report_page(b), encoding="utf-8")
        found[source.stem] = (page, b.analysis)
    return found


def load(browser, path: Path):
    browser.get(path.as_uri())
    return browser


def errors(browser) -> list:
    return [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def count(browser, selector: str) -> int:
    return browser.execute_script(f"return document.querySelectorAll({selector!r}).length")


def js(browser, script: str):
    return browser.execute_script(script)


def top_level(names) -> list:
    return list(dict.fromkeys(n.split(".")[0] for n in names))


def drawn_at_first(a) -> int:
    """Every layer for a small network; a large one folded to its top-level entries, or for a
    network without blocks (more than 40 entries) runs of 40 of them."""
    tops = top_level(r.name for r in a.rows)
    if len(a.rows) <= FOLD_ABOVE:
        return len(a.rows)
    return len(tops) if len(tops) <= 40 else -(-len(tops) // 40)


def test_every_page_loads_and_draws_every_layer(browser, pages):
    for name, (path, a) in pages.items():
        load(browser, path)
        assert errors(browser) == [], name
        if a is None:
            specs = len(list(SPECS.glob("*.arch")))
            assert count(browser, "#networks tbody tr") == specs
            assert count(browser, "#scatter circle") == specs
            continue
        assert count(browser, "#layers tbody tr") == len(a.rows), name
        assert count(browser, "#graph g.node") == drawn_at_first(a), name
        assert js(browser, "return document.querySelector('h1').textContent") == a.network


def test_sizes_drawn_at_first(pages):
    assert drawn_at_first(pages["lenet5"][1]) == 14
    assert drawn_at_first(pages["resnet152"][1]) == 12  # x, conv1, bn1, relu1, maxpool, layer1-4, pool, flatten, fc
    assert len(pages["deep"][1].rows) == 1 + 2 * 499 + 2
    assert drawn_at_first(pages["deep"][1]) == 26  # 1,001 layers in runs of 40


def click_block(browser, name: str):
    browser.execute_script(
        "for (const g of document.querySelectorAll('#graph g.node.block'))"
        " if (g.dataset.block === arguments[0]) g.dispatchEvent(new MouseEvent('click'))", name)


def fold(browser, name: str):
    browser.execute_script(
        "for (const g of document.querySelectorAll('#graph g.cluster'))"
        " if (g.dataset.block === arguments[0]) g.querySelector('text').dispatchEvent(new MouseEvent('click'))", name)


def test_unfolding_a_block_draws_its_parts(browser, pages):
    path, a = pages["resnet152"]
    load(browser, path)
    layer3 = {r.name.split(".")[1] for r in a.rows if r.name.startswith("layer3.")}
    assert len(layer3) == 36  # ResNet-152's conv4_x: 36 bottleneck blocks (He et al. 2015)
    click_block(browser, "layer3")
    assert count(browser, "#graph g.node") == 12 - 1 + 36
    b0 = [r for r in a.rows if r.name.startswith("layer3.b0.")]
    click_block(browser, "layer3.b0")
    assert count(browser, "#graph g.node") == 12 - 1 + 36 - 1 + len(b0)
    fold(browser, "layer3")
    assert count(browser, "#graph g.node") == 12
    assert errors(browser) == []


def test_unfolding_a_run_of_an_imported_model(browser, pages):
    path, a = pages["deep"]
    load(browser, path)
    first = top_level(r.name for r in a.rows)[0]
    click_block(browser, f"{first} .. {top_level(r.name for r in a.rows)[39]}")
    assert count(browser, "#graph g.node") == 26 - 1 + 40


def sort_by(browser, column: str) -> list:
    browser.execute_script(
        "document.querySelector('#layers th[data-column=\"' + arguments[0] + '\"]').click()", column)
    return js(browser, "return [...document.querySelectorAll('#layers tbody tr')]"
                       ".map(tr => tr.cells[0].textContent)")


def test_sorting_puts_the_largest_layer_first(browser, pages):
    load(browser, pages["vgg16"][0])
    # fc6: 7*7*512 inputs to 4,096 units, plus biases: 102,764,544 of VGG-16's 138,357,544
    assert sort_by(browser, "params")[:3] == ["fc6", "fc7", "fc8"]
    assert pages["vgg16"][1].row("fc6").params == 7 * 7 * 512 * 4096 + 4096
    load(browser, pages["lenet5"][0])
    # c3: 10*10*16*5*5*6 = 240,000 MACs; c1: 28*28*6*5*5 = 117,600; f5: 400*120 = 48,000
    assert sort_by(browser, "MACs")[:3] == ["c3", "c1", "f5"]
    assert sort_by(browser, "MACs")[-1] == "c3"  # the second click: ascending
    assert sort_by(browser, "layer")[:3] == ["c1", "c3", "f5"]


def test_filtering_shows_the_matching_layers(browser, pages):
    path, a = pages["vgg16"]
    load(browser, path)
    browser.find_element("id", "filter").send_keys("stage3")
    shown = js(browser, "return [...document.querySelectorAll('#layers tbody tr')]"
                        ".filter(tr => !tr.hidden).map(tr => tr.cells[0].textContent)")
    assert shown == [r.name for r in a.rows if "stage3" in r.name]
    assert len(shown) == 7  # three convs, three ReLUs, one pool
    assert js(browser, "return document.getElementById('shown').textContent") == f"7 of {len(a.rows)} layers"


def info(browser) -> dict:
    return js(browser, "const d = [...document.querySelectorAll('#info dt')];"
                       "return Object.fromEntries(d.map(t => [t.textContent, t.nextSibling.textContent]))")


def test_clicking_a_node_shows_its_row(browser, pages):
    load(browser, pages["lenet5"][0])
    browser.find_element("css selector", '#graph g.node[data-layer="c3"]').click()
    row = info(browser)
    assert row["kind"] == "conv 5x5 c=16"
    assert row["params"] == "2,416"  # (5*5*6 + 1) * 16
    assert row["MACs"] == "240,000"
    assert row["inputs"] == "s2: 14 x 14 x 6" and row["output"] == "10 x 10 x 16"


def test_a_node_shows_its_formula_in_the_free_sizes(browser, pages):
    path, a = pages["alexnet"]
    load(browser, path)
    first = next(r for r in a.rows if r.kind == "conv")
    js(browser, "document.querySelector('#layers tbody tr:nth-child(2)').click()")
    row = info(browser)
    assert row["layer"] == first.name == a.rows[1].name
    assert row["MACs"] == f"{first.macs:,}"
    assert "H" in row["MACs, as a formula"] and "W" in row["MACs, as a formula"]


def test_names_that_look_like_markup_stay_text(browser, pages, tmp_path):
    b = report_bundle(archcalc.load(SPECS / "lenet5.arch"))
    rename = {"c3": HOSTILE}
    rows = tuple(replace(r, name=rename.get(r.name, r.name),
                         inputs=tuple(rename.get(i, i) for i in r.inputs)) for r in b.analysis.rows)
    a = replace(b.analysis, network=HOSTILE, rows=rows, file="<img src=x onerror=alert(2)>.arch")
    page = tmp_path / "report.html"
    page.write_text(report_page(replace(b, analysis=a, args={})), encoding="utf-8")
    load(browser, page)
    from selenium.common.exceptions import NoAlertPresentException
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert
    assert js(browser, "return document.querySelector('h1').textContent") == HOSTILE
    assert count(browser, "#graph g.node") == 14
    assert js(browser, "return document.querySelector('#graph g.node[data-id=\"l4\"] text').textContent") == HOSTILE
    assert count(browser, "img") == 0
    assert errors(browser) == []


def test_a_screenshot_is_not_blank(browser, pages):
    from matplotlib.image import imread
    for name, part in (("googlenet", "graph"), ("index", "scatter")):
        load(browser, pages[name][0])
        shot = browser.find_element("id", part).screenshot_as_png
        grey = imread(io.BytesIO(shot), format="png")[..., :3].mean(axis=2)
        assert grey.min() < 0.5 < grey.max(), name  # dark strokes and text on a light ground
        assert grey.std() > 0.02, name
