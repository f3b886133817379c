"""Wrong types and out-of-range options end in one clear message, never a traceback.

Spec-side cases are enumerated from the vocabulary itself (archcalc.kinds.KINDS and each
hyperparameter's declared value kind), so a new kind or argument is covered without an edit."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest
import sympy

import archcalc
from archcalc.analysis import sweep
from archcalc.analysis.sweep import evaluate, parse_range
from archcalc.cli import main
from archcalc.commands import testtime
from archcalc.kinds import KINDS, WORDS, hyperparameters
from archcalc.lang.build import RESERVED

# A value each declared kind accepts, to fill the required arguments around the one under test.
GOOD = {"size": "2", "count": "1", "real": "1", "pad": "0", "shape": "(8, 8, 4)", "hw": "(4, 4)",
        "table": "[[0]]", **{kind: next(iter(words)) for kind, words in WORDS.items()}}

WORD_ARGUMENTS = [(kind, f.name, f.metadata["kind"]) for kind, cls in KINDS.items()
                  for f in hyperparameters(cls) if f.metadata["kind"] in WORDS]

# A list or tuple where a word (or on/off) is expected; the text and how the message shows it.
NOT_WORDS = {"[1]": "[1]", "[]": "[]", "(1, 2)": "(1, 2)", "[[1]]": "[[1]]", "[on]": "['on']",
             "[(1, 2)]": "[(1, 2)]", "(on, off)": "('on', 'off')"}


def spec_with(kind: str, name: str, value: str) -> str:
    cls = KINDS[kind]
    others = " ".join(f"{f.name}={GOOD[f.metadata['kind']]}" for f in hyperparameters(cls)
                      if f.metadata["required"] and f.name != name)
    sources = " <- x, x" if cls.arity[0] >= 2 else ""
    return f"network N {{\n    input x : (8, 8, 4)\n    {kind} l{sources} : {others} {name}={value}\n}}\n"


def test_the_word_arguments_are_enumerated():
    assert ("conv", "bias", "flag") in WORD_ARGUMENTS and ("upsample", "mode", "interpolation") in WORD_ARGUMENTS


@pytest.mark.parametrize("text", NOT_WORDS)
@pytest.mark.parametrize("kind, name, value_kind", WORD_ARGUMENTS,
                         ids=[f"{k}.{n}" for k, n, _ in WORD_ARGUMENTS])
def test_a_list_or_tuple_where_a_word_is_expected_is_a_located_error(kind, name, value_kind, text):
    spec = spec_with(kind, name, text)
    with pytest.raises(archcalc.SpecError) as e:
        archcalc.loads(spec, "t.arch")
    column = spec.splitlines()[2].index(f"{name}=") + 1
    assert e.value.message == (f"{kind} 'l': argument '{name}' must be one of "
                               f"{', '.join(WORDS[value_kind])}, got {NOT_WORDS[text]}")
    assert (e.value.span.line, e.value.span.column) == (3, column)


# ---------------------------------------------------------------- command-line values
# Each option's value is checked by its argparse type (commands/__init__.py): a usage error,
# exit 2, naming the option and what it takes, before the spec is read.

LENET = str(Path(__file__).resolve().parents[1] / "specs" / "lenet5.arch")
SEED = "expected a seed, a whole number from 0 to 2^63 - 1"
WHOLE = "expected a whole number >= 1"
GIB = "expected a positive number of GiB"


def usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, err = capsys.readouterr()
    assert e.value.code == 2 and out == "" and "Traceback" not in err
    return err.splitlines()[-1]


@pytest.mark.parametrize("argv, message", [
    (["run", LENET, "--max-memory", "nan"], f"argument --max-memory: {GIB}, got 'nan'"),
    (["run", LENET, "--max-memory", "inf"], f"argument --max-memory: {GIB}, got 'inf'"),
    (["run", LENET, "--max-memory", "-1"], f"argument --max-memory: {GIB}, got '-1'"),
    (["run", LENET, "--max-memory", "0"], f"argument --max-memory: {GIB}, got '0'"),
    (["run", LENET, "--max-memory", "lots"], f"argument --max-memory: {GIB}, got 'lots'"),
    (["run", LENET, "--seed", "-1"], f"argument --seed: {SEED}, got '-1'"),
    (["run", LENET, "--seed", str(2**63)], f"argument --seed: {SEED}, got '{2**63}'"),
    (["export", LENET, "-o", "m.onnx", "--seed", "-1"], f"argument --seed: {SEED}, got '-1'"),
    (["augment", "--seed", "-1"], f"argument --seed: {SEED}, got '-1'"),
    (["finetune", LENET, "--freeze", "c3", "--seed", "-1"], f"argument --seed: {SEED}, got '-1'"),
    (["run", LENET, "--crops", "2", "--crop-from", "-5"], f"argument --crop-from: {WHOLE}, got '-5'"),
    (["run", LENET, "--crops", "2", "--crop-from", "0"], f"argument --crop-from: {WHOLE}, got '0'"),
    (["analyze", LENET, "--freeze", "c3", "--images", "1e400"],
     "argument --images: expected a number of images from 1 to 10^12, got '1e400'"),
    (["analyze", LENET, "--freeze", "c3", "--images", "1" + "0" * 4000],
     f"argument --images: expected a number of images from 1 to 10^12, got '1{'0' * 4000}'"),
    (["run", LENET, "--batch", "0"], f"argument --batch: {WHOLE}, got '0'"),
    (["run", LENET, "--repeat", "0"], "argument --repeat: expected a number of runs from 1 to 1,000, got '0'"),
    (["run", LENET, "--batch", "²"], f"argument --batch: {WHOLE}, got '²'"),
])
def test_a_bad_option_value_is_a_usage_error(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert usage_error(argv, capsys) == f"archcalc {argv[0]}: error: {message}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("k", ["1001", "1000000", "0" * 50 + "1001", "9" * 5000])
def test_an_ensemble_is_bounded_before_any_work(k, capsys, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the bound comes first")
    monkeypatch.setattr(testtime, "single_input", no_work)
    assert main(["run", LENET, "--ensemble", k]) == 1
    assert capsys.readouterr().err == (
        f"error: --ensemble K takes at most 1,000 networks, got {k}\n"
        "  = each network is drawn, analysed and run on every crop of every image: "
        "K networks cost K runs\n")


@pytest.mark.parametrize("low", [2**63 - 2, 10**39])
def test_a_sweep_past_int64_is_exact(low, tmp_path):
    spec = tmp_path / "h.arch"
    spec.write_text("network N(H=8) {\n    input x : (H, H, 3)\n    conv c : f=1 c=2\n}\n")
    net = archcalc.load(spec)
    name, values = parse_range(f"H={low}..{low + 3}")
    assert name == "H" and [int(v) for v in values] == [low, low + 1, low + 2, low + 3]
    swept = evaluate(net, "macs", {"H": values})
    assert [int(m) for m in swept] == [6 * h * h for h in range(low, low + 4)]
    assert int(swept[1]) == archcalc.analyze(net, at={"H": low + 1}).totals["macs"]


def test_a_sweep_bound_past_the_size_limit_is_refused():
    with pytest.raises(archcalc.SpecError) as e:
        parse_range("H=1.." + "9" * 41)
    assert str(e.value) == "error: --vary H: sizes have at most 40 digits"


# ---------------------------------------------------------------- symbol names in a sweep
# `sweep` lambdifies the formula; a swept symbol named like a function the generated code calls
# (FloorDiv, CeilDiv, maximum, reduce, ...) must not shadow it.

POOLED = "network N({name}=8) {{\n    input x : ({name}, {name}, 3)\n    conv c : f=3 c=2 s=2\n" \
         "    maxpool p : f=3 s=2 round=ceil\n}}\n"
EXPECTED = [210, 275, 332, 413]  # peak activations at 8..11: floor, ceiling and a max in one formula


def names_in_generated_code() -> set[str]:
    net = archcalc.loads(POOLED.format(name="S"))
    e = sweep.integer_form(sweep.formula(net, ["S"], "peak_activations"))
    code = inspect.getsource(sympy.lambdify([sympy.Symbol("S")], e,
                                            modules=[sweep.INTEGER_MODULE, "numpy"]))
    return set(re.findall(r"[A-Za-z_]\w*", code)) - RESERVED - {"S"}


def test_the_generated_code_calls_the_integer_functions():
    assert {"FloorDiv", "CeilDiv", "maximum"} <= names_in_generated_code()


@pytest.mark.parametrize("name", sorted(names_in_generated_code() | {"minimum", "floor_divide", "_swept0"}))
def test_a_symbol_named_like_a_function_of_the_generated_code_sweeps(name):
    net = archcalc.loads(POOLED.format(name=name))
    values = sweep.evaluate(net, "peak_activations", {name: np.arange(8, 12)})
    assert values.tolist() == EXPECTED


def test_two_symbols_named_like_functions_sweep_on_a_grid():
    text = "network N(FloorDiv=8, CeilDiv=8) {\n    input x : (FloorDiv, CeilDiv, 3)\n" \
           "    conv c : f=3 c=2 s=2\n    maxpool p : f=3 s=2 round=ceil\n}\n"
    values = sweep.evaluate(archcalc.loads(text), "macs", {"FloorDiv": np.arange(8, 10),
                                                           "CeilDiv": np.arange(8, 11)})
    assert values.tolist() == [[486, 648, 648], [648, 864, 864]]


# ---------------------------------------------------------------- spec files
LAYERS = "network N {\n    input x : (8, 8, 3)\n    conv c : f=3 c=2\n}\n"


def test_a_byte_order_mark_is_accepted(tmp_path):
    (tmp_path / "bom.arch").write_bytes(b"\xef\xbb\xbf" + LAYERS.encode())
    with_mark = archcalc.analyze(archcalc.load(tmp_path / "bom.arch"))
    assert with_mark.totals == archcalc.analyze(archcalc.loads(LAYERS)).totals
    assert with_mark.totals["macs"] == 6 * 6 * 2 * 27


def test_the_size_limit_names_the_file_and_where_it_is_passed(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = "    relu;" * 1_200_000
    Path("big.arch").write_text(f"network N {{\n    input x : (8, 8, 3)\n{line}\n}}\n")
    assert main(["analyze", "big.arch"]) == 1
    err = capsys.readouterr().err.splitlines()
    # 36 characters on lines 1 and 2: the 10,000,001st is line 3's 9,999,965th
    assert err[0] == "big.arch:3:9999965: error: spec is 10,800,039 characters; the limit is 10,000,000"
    assert err[2:] == ["3 | ..." + ("elu;    r" * 14)[:120] + "...", "  | " + " " * 62 + "^"]


@pytest.mark.parametrize("make, reason", [
    (lambda d: (d / "a.arch").symlink_to("b.arch") or (d / "b.arch").symlink_to("a.arch") or "a.arch",
     "a loop of symbolic links (or too many links in a row)"),
    (lambda d: "n" * 300 + ".arch", "the path or one of its names is too long for the system"),
    (lambda d: "d/" * 3000 + "x.arch", "the path or one of its names is too long for the system"),
    (lambda d: "missing.arch", "no such file"),
    (lambda d: (d / "f.arch").write_text(LAYERS) and "f.arch/x.arch", "no such file"),
    (lambda d: (d / "dir.arch").mkdir() or "dir.arch", "not a regular file"),
])
def test_an_unreadable_spec_path_says_why(make, reason, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = make(tmp_path)
    assert main(["analyze", name]) == 1
    assert capsys.readouterr().err == f"error: cannot read spec '{name}': {reason}\n"


@pytest.mark.parametrize("extra", [[], ["--crops", "2"], ["--ensemble", "2"]])
def test_an_input_of_no_images_is_refused(extra, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save("x.npy", np.zeros((0, 32, 32, 1), np.float32))
    assert main(["run", LENET, "--input", "x.npy", *extra]) == 1
    assert capsys.readouterr().err == "error: input 'x' holds no images: its shape is (0, 32, 32, 1)\n"


# ---------------------------------------------------------------- sizes checked before the work

SPECS = Path(__file__).resolve().parents[1] / "specs"


def test_a_sweep_of_a_billion_points_is_refused_before_any_array_is_made(capsys):
    spec = str(SPECS / "inception_bottleneck.arch")
    assert main(["sweep", spec, "--vary", "b=1..1000000000"]) == 1
    assert capsys.readouterr().err == (
        "error: --vary b=1..1000000000: 1,000,000,000 points; a sweep evaluates at most 10,000,000\n"
        "  = take a step (NAME=LOW..HIGH:STEP) or a narrower range\n")
    assert main(["sweep", str(SPECS / "resnet18.arch"), "--vary", "H=1..5000", "--vary", "W=1..5000"]) == 1
    assert "error: H (5,000) x W (5,000): 25,000,000 points; a sweep evaluates at most 10,000,000" \
        in capsys.readouterr().err


def test_random_crops_larger_than_the_memory_limit_are_refused_before_they_are_drawn(capsys):
    assert main(["run", str(SPECS / "lenet5.arch"), "--crops", "2", "--crop-from", "100000"]) == 1
    # 100,000^2 pixels x 1 channel x 4 bytes = 40,000,000,000 bytes = 37.3 GiB
    assert capsys.readouterr().err == (
        "error: drawing 1 random image of 100,000x100,000x1 would need 37.3 GiB, over the limit "
        "of 8.0 GiB\n  = lower --crop-from or --batch, or raise the limit (--max-memory)\n")


def test_an_export_past_protobufs_limit_is_refused_before_weights_are_drawn(tmp_path, capsys):
    pytest.importorskip("onnx")
    spec = tmp_path / "big.arch"
    spec.write_text("network BigFC {\n    input x : (1, 1, 100000)\n    fc f : 100000\n}\n")
    assert main(["export", str(spec), "-o", str(tmp_path / "big.onnx")]) == 1
    # W (100,000 x 100,000) and b (100,000) in float32: 4 x 10,000,100,000 bytes
    assert capsys.readouterr().err == (
        "error: the model's float32 weights would take 40,000,400,000 bytes; an ONNX file holds "
        "at most 2,147,483,647 (protobuf's limit)\n"
        "  = the largest layer, 'f', holds 40,000,400,000 bytes\n")
    assert not (tmp_path / "big.onnx").exists()
