"""Every spec in tests/errors/ fails with the located message in its golden .txt file.

A first-line comment `# args: ...` adds command-line arguments to `archcalc analyze`."""
from __future__ import annotations

import re
import shlex
import tracemalloc
from pathlib import Path

import pytest

import archcalc
from archcalc.cli import COMMANDS, main

ERRORS = Path(__file__).parent / "errors"
CASES = sorted(ERRORS.glob("*.arch"))


def extra_args(spec: Path) -> list[str]:
    first = spec.read_bytes().decode("utf-8", errors="replace").splitlines()[0]
    return shlex.split(first.split(":", 1)[1]) if first.startswith("# args:") else []


@pytest.mark.parametrize("spec", CASES, ids=[c.stem for c in CASES])
def test_error_message_is_located_and_matches_golden(spec, capsys, golden, monkeypatch):
    monkeypatch.chdir(ERRORS)  # so the message names the file as a user would type it
    status = main(["analyze", spec.name, *extra_args(spec)])
    out, err = capsys.readouterr()
    assert status == 1 and out == ""
    assert "Traceback" not in err
    golden(spec.with_suffix(".txt"), err)


def test_every_error_golden_has_its_spec():
    assert {p.stem for p in ERRORS.glob("*.txt")} == {p.stem for p in CASES}


# Mistakes in how a spec is used (command-line values, an unreadable file) have no place in
# the spec to point at; every other message is located, with its line and a caret under it.
UNLOCATED = {"set_not_a_pair", "set_not_whole", "set_zero", "set_too_large", "free_unknown_symbol",
             "unknown_set_symbol", "freeze_unknown_layer", "bad_utf8"}


@pytest.mark.parametrize("spec", CASES, ids=[c.stem for c in CASES])
def test_spec_errors_point_into_the_spec(spec):
    message = spec.with_suffix(".txt").read_text()
    first = message.splitlines()[0]
    if spec.stem in UNLOCATED:
        assert first.startswith("error: ")
        return
    line = re.match(rf"{re.escape(spec.name)}:(\d+):(\d+): error: ", first)
    assert line, first
    number, column = int(line[1]), int(line[2])
    source = spec.read_bytes().decode("utf-8", errors="replace").split("\n")[number - 1]
    shown, caret = message.splitlines()[2:4]
    if len(source) <= 200:  # a longer line is shown around the column
        assert shown == f"{number} | {source.rstrip()}"
        assert caret.index("^") == len(f"{number} | ") + column - 1
    assert not first.endswith(".")  # house style: lowercase, no trailing period
    assert not first[len(line[0])].isupper()


def test_the_api_raises_the_message_the_cli_prints(capsys, monkeypatch):
    monkeypatch.chdir(ERRORS)
    with pytest.raises(archcalc.SpecError) as e:
        archcalc.analyze(archcalc.load("concat_mismatch.arch"))
    assert str(e.value) + "\n" == (ERRORS / "concat_mismatch.txt").read_text()


# ---------------------------------------------------------------- errors of `archcalc run`
# The executor (archcalc/executor.py, commands/run.py) owns these messages; the tests hold it
# to the same promise: a located or plain message, exit 1, never a traceback, nothing allocated.

needs_run = pytest.mark.skipif("run" not in COMMANDS, reason="no 'run' command yet")


def run_cli(argv, capsys):
    try:
        status = main(argv)
    except SystemExit as e:
        status = e.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, err


@needs_run
def test_run_refuses_a_symbol_left_unbound(tmp_path, capsys):
    spec = tmp_path / "unbound.arch"
    spec.write_text("network N(H, W=8) {\n    input x : (H, W, 3)\n    conv c1 : f=3 c=8\n}\n")
    status, err = run_cli(["run", str(spec)], capsys)
    assert status == 1 and "symbol 'H'" in err and "--set H=" in err, err
    status, err = run_cli(["run", str(spec), "--set", "H=0"], capsys)
    assert status == 1 and "positive whole number" in err, err
    assert run_cli(["run", str(spec), "--set", "H=16"], capsys)[0] == 0


@needs_run
def test_run_refuses_a_huge_input_up_front_with_the_predicted_memory(tmp_path, capsys):
    spec = tmp_path / "huge.arch"
    spec.write_text("network Huge {\n    input x : (1000000000, 1000000000, 3)\n"
                    "    conv c1 : f=3 c=8\n}\n")
    tracemalloc.start()
    try:
        status, err = run_cli(["run", str(spec)], capsys)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 1 and "Traceback" not in err, err
    assert "memory" in err.lower() or "GiB" in err, err
    assert peak < 64 * 2**20  # refused before any array was made


@pytest.mark.parametrize("odd", ["\x0c", "\u2028", "\x85", "\r"])
def test_line_breaks_python_knows_but_the_grammar_does_not_keep_lines_aligned(odd):
    """str.splitlines() also breaks at form feeds, U+2028 and the like; lark counts '\\n' only.
    The line shown under a message is the line lark means."""
    text = f"network N {{  # a comment with {odd} in it\n    input x : (8, 8, 3)\n    conv c : f=9 c=4\n}}\n"
    with pytest.raises(archcalc.SpecError) as e:
        archcalc.analyze(archcalc.loads(text, "odd.arch"))
    lines = str(e.value).splitlines()
    assert lines[0].startswith("odd.arch:3:5: error: conv 'c': window larger")
    assert lines[2] == "3 |     conv c : f=9 c=4"
