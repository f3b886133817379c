"""Small things a new user meets: freezing a block by name, report's default folder, the files
finetune leaves, JSON numbers, the benchmark's arguments, the commands' help."""
from __future__ import annotations

import importlib.util
import json
import subprocess

import pytest

import archcalc
from archcalc import SpecError
from archcalc.cli import main

from conftest import ROOT, SPECS


def test_freeze_a_block_freezes_through_its_last_layer(capsys):
    a = archcalc.analyze(SPECS / "resnet50.arch", freeze="layer3")
    assert a.freeze == "layer3.b_5.out"
    # torchvision's sums: conv1 9,408 + bn1 128 + layer1 215,808 + layer2 1,219,584
    # + layer3 7,098,368
    assert a.totals["frozen_params"] == 9_408 + 128 + 215_808 + 1_219_584 + 7_098_368 == 8_543_296
    assert a.row("layer4.b0.conv1").trainable_params == 2048 * 512 // 2
    assert main(["analyze", str(SPECS / "resnet50.arch"), "--freeze", "layer3"]) == 0
    assert "frozen through            layer3.b_5.out" in capsys.readouterr().out


def test_a_misspelt_block_is_named_in_the_hint():
    with pytest.raises(SpecError) as e:
        archcalc.analyze(SPECS / "resnet50.arch", freeze="layr3")
    assert str(e.value) == ("error: cannot freeze through unknown layer or block 'layr3'\n"
                            "  = did you mean 'layer3'?")


def test_report_without_out_leaves_the_index_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "index.md").write_text("every network\n")
    assert main(["report", str(SPECS / "lenet5.arch"), "--jobs", "1"]) == 0
    assert (tmp_path / "reports" / "index.md").read_text() == "every network\n"
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["index.md", "lenet5"]
    assert (tmp_path / "reports" / "lenet5" / "report.md").exists()
    assert capsys.readouterr().out.splitlines()[-1] == \
        "reports/index.md left as it is (--out DIR writes an index of these networks)"


def test_finetune_cache_keys_are_ignored_by_git():
    for name in ("lenet5_s4_features.npy.key", "lenet5_s4_features.npy", "lenet5_s4.npz"):
        done = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", name])
        assert done.returncode == 0, name


def test_json_numbers_are_numbers_when_whole(capsys):
    assert main(["analyze", str(SPECS / "inception_bottleneck.arch"), "--free", "b",
                 "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    reduce = doc["layers"][1]
    assert (reduce["params"], reduce["trainable_params"], reduce["frozen_params"]) == \
        ("193*b", "193*b", 0)  # 1x1 conv from 192 channels to b: (192 + 1) b
    assert all(r["frozen_params"] == 0 for r in doc["layers"])


def test_bench_executor_takes_names_and_paths():
    spec = importlib.util.spec_from_file_location("bench_executor",
                                                  ROOT / "benchmarks" / "bench_executor.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.spec_path("resnet50") == ("resnet50", SPECS / "resnet50.arch")
    assert bench.spec_path("specs/resnet50.arch")[0] == "resnet50"
    assert str(bench.spec_path("specs/resnet50.arch")[1]) == "specs/resnet50.arch"


@pytest.mark.parametrize("command", ["analyze", "run", "formula", "sweep", "export", "finetune"])
def test_help_names_both_inputs(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "spec a .arch spec or an .onnx model" in out
