"""Every spec in tests/errors/ fails with the located message in its golden .txt file.

A first-line comment `# args: ...` adds command-line arguments to `archcalc analyze`."""
from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from archcalc.cli import main

ERRORS = Path(__file__).parent / "errors"
CASES = sorted(ERRORS.glob("*.arch"))


def extra_args(spec: Path) -> list[str]:
    first = spec.read_text().splitlines()[0]
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
