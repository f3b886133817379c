"""The README runs: every ```python, ```sh, ```bash and ```console block of README.md is executed,
in order, in one temporary folder that holds a link to specs/, with this worktree's package.

Conventions (a README block follows one of them, or is a plain ``` block that is not run:
spec text, usage synopses, printed errors):
- ```python: the blocks run one after another in one namespace; their asserts are the checks.
- ```sh / ```bash: each line is a command; `# ...` to the end of a line is a comment. A line
  starting `archcalc` runs as `python -m archcalc`, one starting `python` with this Python;
  any other command fails this test, so that nothing is silently left out. Each must exit 0.
- ```console: lines starting `$ ` are commands as above; the lines under one are its output,
  each found in order in what it prints (spaces and line breaks count as one space; `...`
  stands for anything).
- `<!-- readme-test: exit N -->` on the line before a block: its commands must exit N (an
  error shown on purpose).
- `<!-- readme-test: skip, REASON -->` on the line before a block: not run; at most
  MAX_SKIPS in the README, each with its reason.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SPECS

README = ROOT / "README.md"
RUN = ("python", "sh", "bash", "console")
MAX_SKIPS = 1
FENCE = re.compile(r"^```(\w*)\s*$")
MARK = re.compile(r"^<!-- readme-test: (skip, .+|exit \d+) -->$")


def blocks(text: str) -> list[dict]:
    """Each fenced block: its language, first line number, body and the mark above it."""
    found, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        above = MARK.match(lines[i - 1]) if i else None
        found.append({"lang": m.group(1), "line": i + 2, "body": "\n".join(lines[i + 1:end]),
                      "mark": above.group(1) if above else ""})
        i = end + 1
    return found


def command(line: str) -> list[str]:
    words = shlex.split(line, comments=True)
    if words[0] == "archcalc":
        return [sys.executable, "-m", "archcalc", *words[1:]]
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    raise AssertionError(f"README runs '{words[0]}': only archcalc and python commands run here")


def run(line: str, where: Path, status: int, context: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    done = subprocess.run(command(line), cwd=where, env=env, capture_output=True, text=True)
    assert done.returncode == status, (f"{context}: `{line}` exited {done.returncode}, not "
                                       f"{status}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    assert "Traceback" not in done.stderr, f"{context}: `{line}`\n{done.stderr[-2000:]}"
    return done.stdout


def shown(expected: list[str], out: str, context: str) -> None:
    """Each expected line found in order in the output; '...' stands for anything."""
    flat, at = " ".join(out.split()), 0
    for line in expected:
        for part in filter(None, (" ".join(p.split()) for p in line.split("..."))):
            found = flat.find(part, at)
            assert found >= 0, f"{context}: README shows '{part}', the command printed:\n{out}"
            at = found + len(part)


def console(body: str) -> list[tuple[str, list[str]]]:
    steps = []
    for line in body.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif line.strip():
            steps[-1][1].append(line)
    return steps


def test_every_example_of_the_readme_runs(tmp_path):
    (tmp_path / "specs").symlink_to(SPECS)
    namespace: dict = {"__name__": "readme"}
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        for b in blocks(README.read_text()):
            if b["lang"] not in RUN or b["mark"].startswith("skip"):
                continue
            context = f"README.md:{b['line']}"
            status = int(b["mark"].split()[1]) if b["mark"].startswith("exit") else 0
            if b["lang"] == "python":
                exec(compile(b["body"], context, "exec"), namespace)
            elif b["lang"] == "console":
                for line, expected in console(b["body"]):
                    shown(expected, run(line, tmp_path, status, context), context)
            else:
                for line in b["body"].splitlines():
                    if shlex.split(line, comments=True):
                        run(line, tmp_path, status, context)
    finally:
        os.chdir(cwd)


def test_blocks_that_do_not_run_are_few_and_say_why():
    found = blocks(README.read_text())
    skipped = [b for b in found if b["mark"].startswith("skip")]
    assert len(skipped) <= MAX_SKIPS
    assert all(len(b["mark"]) > len("skip, ") + 20 for b in skipped)  # a reason, not a word
    assert sum(b["lang"] == "python" for b in found) >= 1
    assert sum(b["lang"] in ("sh", "console") for b in found) >= 4


def test_the_runner_matches_output_with_elisions():
    shown(["a b ... d", "e"], "a  b c\nd e\n", "t")
    with pytest.raises(AssertionError, match="README shows 'x'"):
        shown(["a ... x"], "a b", "t")
    assert console("$ archcalc x\none\n two\n$ python -c 1\n") == \
        [("archcalc x", ["one", " two"]), ("python -c 1", [])]
    with pytest.raises(AssertionError, match="only archcalc and python commands run here"):
        command("rm -rf /")
