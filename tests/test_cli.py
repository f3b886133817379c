"""The `archcalc` command as a user runs it: formats, bindings, exit codes, golden tables."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from archcalc.cli import main
from conftest import ROOT, SPECS

GOLDEN = ROOT / "tests" / "golden"


def run_cli(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("spec", ["lenet5", "inception_naive", "inception_bottleneck"])
@pytest.mark.parametrize("fmt, ext", [("text", "txt"), ("markdown", "md")])
def test_tables_match_golden(spec, fmt, ext, capsys, golden, monkeypatch):
    monkeypatch.chdir(ROOT)
    status, out, _ = run_cli(capsys, "analyze", f"specs/{spec}.arch", "--format", fmt)
    assert status == 0
    golden(GOLDEN / f"{spec}.{ext}", out)


def test_json_schema_and_values(capsys):
    status, out, _ = run_cli(capsys, "analyze", str(SPECS / "lenet5.arch"), "--format", "json")
    doc = json.loads(out)
    assert status == 0
    assert set(doc) >= {"network", "symbols", "layers", "totals", "notes"}
    layer = doc["layers"][1]
    assert set(layer) >= {"name", "kind", "inputs", "in_shapes", "out_shape", "params",
                          "trainable_params", "macs", "flops", "other_ops", "activations",
                          "receptive_field"}
    # c1: 5x5x1 filters, 6 of them: (25 + 1)*6 params, 28*28*6*25 MACs
    assert (layer["name"], layer["out_shape"], layer["params"], layer["macs"]) == \
        ("c1", [28, 28, 6], 156, 117_600)
    assert layer["inputs"] == ["x"] and layer["in_shapes"] == [[32, 32, 1]]
    totals = doc["totals"]
    assert set(totals) >= {"params", "trainable_params", "frozen_params", "macs", "flops",
                           "other_ops", "peak_activations"}
    assert (totals["params"], totals["macs"], totals["flops"]) == (61_706, 416_520, 833_040)


def test_json_keeps_free_symbols_as_strings(capsys):
    _, out, _ = run_cli(capsys, "analyze", str(SPECS / "inception_bottleneck.arch"),
                        "--format", "json", "--free", "b")
    doc = json.loads(out)
    assert doc["symbols"] == {"b": None}
    # 28*28*b*192 + 28*28*32*25*b = 150528*b + 627200*b
    assert doc["totals"]["macs"] == "777728*b"


def test_set_rebinds_a_symbol(capsys):
    _, out, _ = run_cli(capsys, "analyze", str(SPECS / "inception_bottleneck.arch"),
                        "--format", "json", "--set", "b=32")
    doc = json.loads(out)
    assert doc["symbols"] == {"b": 32}
    assert doc["totals"]["macs"] == 777_728 * 32


def test_csv_has_one_row_per_layer(capsys):
    _, out, _ = run_cli(capsys, "analyze", str(SPECS / "lenet5.arch"), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 14
    assert sum(int(r["macs"]) for r in rows) == 416_520
    assert rows[1]["in_shapes"] == "32x32x1"


def test_formula_prints_closed_forms(capsys):
    status, out, _ = run_cli(capsys, "formula", str(SPECS / "inception_bottleneck.arch"))
    assert status == 0
    assert "MACs             = 777728*b" in out
    # params: (192 + 1)*b + (25*b + 1)*32 = 993*b + 32
    assert "params           = 993*b + 32" in out


def test_formula_latex(capsys):
    _, out, _ = run_cli(capsys, "formula", str(SPECS / "inception_bottleneck.arch"), "--latex")
    assert "777728 b" in out


@pytest.mark.parametrize("argv, status", [
    (["analyze", "no/such/file.arch"], 1),
    (["analyze", str(SPECS / "lenet5.arch"), "--set", "H"], 1),
    (["analyze", str(SPECS / "inception_bottleneck.arch"), "--set", "b=0"], 1),
    (["analyze", str(SPECS / "inception_bottleneck.arch"), "--set", "b=1.5"], 1),
    (["analyze", str(SPECS / "lenet5.arch"), "--format", "yaml"], 2),
    (["frobnicate"], 2),
])
def test_bad_input_exits_with_documented_status_and_no_traceback(argv, status, capsys):
    try:
        got = main(argv)
    except SystemExit as e:
        got = e.code
    out, err = capsys.readouterr()
    assert got == status
    assert "Traceback" not in err and err.strip()


def test_installed_command_runs(tmp_path):
    done = subprocess.run([sys.executable, "-m", "archcalc", "analyze", str(SPECS / "nin_1x1.arch"),
                           "--format", "json"], capture_output=True, text=True, check=True)
    # 28*28*32*192 multiplications, (192 + 1)*32 params
    assert json.loads(done.stdout)["totals"]["macs"] == 4_816_896


def test_an_output_path_that_cannot_be_written_is_a_message(tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    status = main(["sweep", str(SPECS / "inception_bottleneck.arch"), "--vary", "b=1..4",
                   "--plot", str(blocker / "x.png")])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err and "cannot write or read" in err


def subcommand_options(name):
    """The options (dest -> argparse action) of one subcommand, as the parser builds them."""
    from archcalc.cli import parser
    sub = next(a for a in parser()._actions if a.dest == "command")
    return {a.dest: a for a in sub.choices[name]._actions}


def test_set_and_weights_are_declared_one_way_in_every_command():
    commands = ("analyze", "formula", "compare", "sweep", "run", "finetune", "export")
    sets = [subcommand_options(c)["set"] for c in commands]
    assert {(a.option_strings[0], type(a).__name__, a.metavar, a.default == []) for a in sets} \
        == {("--set", "_AppendAction", "NAME=VALUE", True)}
    weights = [subcommand_options(c)["weights"] for c in ("run", "finetune", "export")]
    assert {(a.option_strings[0], a.metavar, a.default) for a in weights} == \
        {("--weights", "FILE.npz", None)}


def test_every_metric_a_sweep_evaluates_has_one_label():
    from archcalc.analysis.sweep import METRICS
    from archcalc.commands import LABELS
    from archcalc.commands.formula import QUANTITIES
    assert set(METRICS) == set(LABELS) >= set(QUANTITIES)
    assert subcommand_options("sweep")["metric"].choices == METRICS
