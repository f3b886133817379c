"""report.html and index.html, read as text: the page's data (golden for LeNet-5), names that
look like markup kept as text, the block tree that folding uses, and the assets in the wheel.
tests/test_browser.py runs the same pages in a real browser."""
from __future__ import annotations

import json
import re
import tomllib
from dataclasses import replace
from pathlib import Path

import archcalc
from archcalc.analysis.bundle import report_bundle
from archcalc.present.html import ASSETS, digest, index_page, page, report_page, script_json
from archcalc.present.html.data import block_tree, report_data
from conftest import ROOT, SPECS

GOLDEN = ROOT / "tests" / "golden"
HOSTILE = "</script><script>window.pwned = 1</script>"


def bundle(name):
    return report_bundle(archcalc.load(SPECS / f"{name}.arch"))


def embedded(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    return json.loads(m[1])


def test_lenet5_page_data_matches_golden(golden, monkeypatch):
    monkeypatch.chdir(ROOT)
    b = report_bundle(archcalc.load(Path("specs/lenet5.arch")))
    data = embedded(report_page(b))
    assert data == report_data(b)
    golden(GOLDEN / "html_lenet5.json", json.dumps(data, indent=1) + "\n")


def test_lenet5_figures_in_the_page_are_the_papers():
    layers = {l["name"]: l for l in report_data(bundle("lenet5"))["layers"]}
    assert layers["c1"]["args"] == [["f", "5"], ["c", "6"]]
    assert layers["c1"]["params"] == (5 * 5 * 1 + 1) * 6 == 156
    assert layers["c3"]["macs"] == 10 * 10 * 16 * 5 * 5 * 6 == 240_000
    assert layers["f5"]["in_shapes"] == ["1 x 1 x 400"]


def test_formulas_in_the_free_sizes():
    c = {l["name"]: l for l in report_data(bundle("googlenet"))["layers"]}["conv1.conv"]
    # 7x7/2, pad 3, 3 -> 64 channels: n_H = floor((H + 6 - 7)/2) + 1 = floor((H - 1)/2) + 1
    assert c["formula"]["params"] == str(7 * 7 * 3 * 64)
    assert c["formula"]["output"] == "floor(H/2 - 1/2) + 1 x floor(W/2 - 1/2) + 1 x 64"
    assert c["macs"] == 112 * 112 * 64 * 7 * 7 * 3 == 118_013_952


def test_markup_in_names_stays_text():
    b = bundle("lenet5")
    a = b.analysis
    rename = {"c3": HOSTILE}
    rows = tuple(replace(r, name=rename.get(r.name, r.name),
                         inputs=tuple(rename.get(i, i) for i in r.inputs)) for r in a.rows)
    a = replace(a, network=HOSTILE, file="<img src=x onerror=alert(1)>.arch", rows=rows,
                notes=(HOSTILE,))
    html = report_page(replace(b, analysis=a))
    assert HOSTILE not in html and "<img" not in html
    assert html.count("</script>") == 2  # the data's and the script's own
    data = embedded(html)
    assert data["network"] == HOSTILE and data["notes"] == [HOSTILE]
    assert [l["name"] for l in data["layers"]].count(HOSTILE) == 1
    assert f"<title>{HOSTILE.replace('<', '&lt;').replace('>', '&gt;')}: archcalc report</title>" in html
    index = index_page([a])
    assert HOSTILE not in index and "<img" not in index
    assert embedded(index)["networks"][0]["name"] == HOSTILE


def test_script_json_escapes_what_could_end_a_script():
    assert script_json({"a": "</script>&\u2028"}) == '{"a":"\\u003c/script\\u003e\\u0026\\u2028"}'


def test_the_policy_lets_only_the_pages_own_script_and_style_run():
    html = page("t", {"page": "index", "networks": [], "conventions": []})
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html)[1]
    js = re.search(r"<script>(.*)</script>", html, re.S)[1]
    css = re.search(r"<style>(.*)</style>", html, re.S)[1]
    assert policy == (f"default-src 'none'; script-src '{digest(js)}'; "
                      f"style-src '{digest(css)}'; img-src data:")
    assert "http://" not in js.replace("http://www.w3.org/2000/svg", "") and "https://" not in html


def test_block_tree_from_dotted_names():
    blocks, paths = block_tree(["x", "l1.b0.c", "l1.b0.r", "l1.b1.c", "fc"], large=False)
    assert [(b["name"], b["parent"], b["layers"]) for b in blocks] == [
        ("l1", None, [1, 2, 3]), ("l1.b0", 0, [1, 2]), ("l1.b1", 0, [3])]
    assert paths == [[], [0, 1], [0, 1], [0, 2], []]


def test_a_large_flat_network_is_cut_into_runs():
    names = [f"n{i}" for i in range(85)]
    blocks, paths = block_tree(names, large=True)
    assert [(b["name"], len(b["layers"])) for b in blocks] == [
        ("n0 .. n39", 40), ("n40 .. n79", 40), ("n80 .. n84", 5)]
    assert paths[84] == [2]
    assert block_tree(names, large=False)[0] == []


def test_the_wheel_carries_the_page_assets():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = project["tool"]["setuptools"]["package-data"]["archcalc.present.html"]
    assert sorted(data) == sorted(ASSETS)
    folder = ROOT / "archcalc" / "present" / "html"
    assert sorted(p.name for p in folder.iterdir() if p.suffix != ".py" and p.is_file()) == sorted(ASSETS)
