"""Property tests with hypothesis.

- Random valid specs (chains, branches joined by concat and add, blocks with parameters,
  repeats, symbols) always analyse; their shapes equal an independent model written here; and
  analysing with the symbols free, then binding them, equals analysing with the values.
- Random mutations of valid specs (deleted tokens, swapped numbers, truncation, garbage) end in
  a SpecError or a valid analysis, never in another exception.
- The command line never prints a traceback and exits 0, 1 or 2.
- The hostile classes (the end of the file): huge and derived sizes, wrong types, hostile
  names, hostile files, kills during writes; each ends cleanly, nothing outside --out.

Example counts are moderate so the file runs in seconds; ARCHCALC_FUZZ_EXAMPLES=N runs every
property with N examples (e.g. 20000 for a long run)."""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sympy
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import archcalc
from archcalc.cli import main
from archcalc.commands.formula import formulas
from archcalc.errors import SpecError
from archcalc.sizes import symbol
from test_hostile_files import forged_npz, npy_header

BIG = os.environ.get("ARCHCALC_FUZZ_EXAMPLES")


def examples(default: int) -> settings:
    return settings(max_examples=int(BIG) if BIG else default, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------- an independent shape model

def window(n, f, s, p, ceil):
    """The output size, counted here apart from archcalc: windows start at k*s in the padded
    input (k = 0, 1, ...); a window fits if it ends inside it (floor), or, with ceil, if it
    starts before the right padding (PyTorch's ceil_mode, whose pools have p <= f/2)."""
    if not ceil:
        return sum(1 for k in range(n + 2 * p) if k * s + f <= n + 2 * p)
    return sum(1 for k in range(n + 2 * p) if k * s < n + p and k * s + f - s < n + 2 * p)


BLOCKS = """\
block res(c) {
    conv a <- in : f=3 p=1 c=c
    relu
    conv b : f=3 p=same c=c
    add out <- in, b
}
block down(c, s=2) {
    conv a : f=3 s=s p=1 c=c
    batchnorm
    relu r
}
block incep(c1, c3) {
    conv b1 <- in : f=1 c=c1
    conv b2r <- in : f=1 c=c3
    conv b2 : f=3 p=1 c=c3
    maxpool b3p <- in : f=3 s=1 p=1
    concat out <- b1, b2, b3p
}
block stack(c, n) {
    repeat n {
        conv : f=3 p=1 c=c
        relu
    }
}
"""


@dataclass
class Builder:
    """Writes a spec statement by statement and predicts every layer's output shape."""
    values: dict
    lines: list = field(default_factory=list)
    shapes: list = field(default_factory=list)  # (n_H, n_W, n_C) per layer, in order
    count: int = 0
    h: int = 0
    w: int = 0
    c: tuple = ("0", 0)  # the current channel count: (spec text, value)

    def name(self, prefix="l") -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def emit(self, line, *shapes):
        self.lines.append("    " + line)
        self.shapes.extend(shapes)

    def text(self, header) -> str:
        return BLOCKS + header + " {\n" + "\n".join(self.lines) + "\n}\n"


@st.composite
def channel_counts(draw, values):
    options = [("8", 8), ("3", 3), ("16", 16)]
    if "B" in values:
        b = values["B"]
        options += [("B", b), ("2*B", 2 * b), ("B + 4", b + 4), ("(B + 1)*2", (b + 1) * 2)]
    return draw(st.sampled_from(options))


@st.composite
def strides(draw, values):
    options = [("1", 1), ("1", 1), ("2", 2), ("3", 3)]
    if "S" in values:
        options.append(("S", values["S"]))
    return draw(st.sampled_from(options))


@st.composite
def valid_specs(draw):
    """(text, values): a spec valid at `values`, and the model's shapes for it."""
    names = draw(st.sampled_from([(), ("H",), ("H", "W"), ("H", "W", "B"), ("B",), ("H", "S"),
                                  ("H", "W", "B", "S")]))
    values = {n: draw(st.integers(12, 48)) if n in "HW" else draw(st.integers(1, 6 if n == "B" else 3))
              for n in names}
    b = Builder(values)
    b.h, b.w = values.get("H", 32), values.get("W", values.get("H", 32))
    h_text = "H" if "H" in values else "32"
    w_text = "W" if "W" in values else h_text
    b.c = draw(channel_counts(values)) if draw(st.booleans()) else ("3", 3)
    b.emit(f"input x : ({h_text}, {w_text}, {b.c[0]})", (b.h, b.w, b.c[1]))
    prev = "x"
    for _ in range(draw(st.integers(1, 9))):
        prev = draw(statement(b, prev))
    if draw(st.booleans()):
        ending = draw(st.sampled_from(["flatten", "gap"]))
        b.emit(ending, (1, 1, b.h * b.w * b.c[1]) if ending == "flatten" else (1, 1, b.c[1]))
        b.h = b.w = 1
        b.c = (None, b.shapes[-1][2])
        width = draw(st.integers(1, 12))
        b.emit(f"fc out : {width}", (1, 1, width))
    header = "network Fuzz" + (f"({', '.join(f'{k}={v}' for k, v in values.items())})" if values else "")
    return b.text(header), values, b.shapes


@st.composite
def statement(draw, b: Builder, prev: str):
    kinds = ["conv", "pool", "act", "concat", "add", "res", "down", "incep", "stack", "repeat"]
    kind = draw(st.sampled_from(kinds))
    h, w, (ctext, c) = b.h, b.w, b.c
    if ctext is None:  # after flatten: only element-wise layers make sense; not generated
        kind = "act"
    if kind == "conv":
        f = draw(st.integers(1, 5))
        d = draw(st.sampled_from([1, 1, 1, 2]))
        f_eff = d * (f - 1) + 1
        same = f_eff % 2 == 1 and draw(st.booleans())
        p = (f_eff - 1) // 2 if same else draw(st.integers(0, f + 1))
        s_text, s = draw(strides(b.values))
        if f_eff > min(h, w) + 2 * p:
            return prev
        ceil = draw(st.booleans())
        out_c = draw(channel_counts(b.values))
        groups = 1
        if ctext.isdigit() and out_c[0].isdigit():
            # groups = c (> 1) is a depthwise conv: its input must then have c maps too
            groups = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0 and out_c[1] % g == 0
                                           and not (1 < g == out_c[1] != c)]))
        args = [f"f={f}", f"c={out_c[0]}"]
        args += [f"s={s_text}"] * (s_text != "1" or draw(st.booleans()))
        args += ["p=same" if same and draw(st.booleans()) else f"p={p}"]
        args += [f"dilation={d}"] * (d != 1)
        args += [f"groups={groups}"] * (groups != 1)
        args += ["round=ceil"] * ceil + ["bias=off"] * draw(st.booleans())
        args = draw(st.permutations(args))
        name = b.name()
        b.h, b.w, b.c = window(h, f_eff, s, p, ceil), window(w, f_eff, s, p, ceil), out_c
        b.emit(f"conv {name} : {' '.join(args)}", (b.h, b.w, out_c[1]))
        return name
    if kind == "pool":
        op = draw(st.sampled_from(["maxpool", "avgpool", "subsample"]))
        f = draw(st.integers(1, 3)) if op != "subsample" else 2
        s = draw(st.sampled_from([None, 1, 2])) if op != "subsample" else None
        p = draw(st.integers(0, f // 2)) if op != "subsample" else 0
        ceil = op != "subsample" and draw(st.booleans())
        if f > min(h, w) + 2 * p:
            return prev
        stride = f if s is None else s
        args = [f"f={f}"] + [f"s={s}"] * (s is not None) + [f"p={p}"] * (p != 0) + ["round=ceil"] * ceil
        name = b.name()
        b.h, b.w = window(h, f, stride, p, ceil), window(w, f, stride, p, ceil)
        b.emit(f"{op} {name} : {' '.join(args)}" if op != "subsample" or draw(st.booleans())
               else f"subsample {name}", (b.h, b.w, c))
        return name
    if prev is None and kind in ("concat", "add"):  # they read prev by name: give it one
        prev = b.name()
        b.emit(f"relu {prev}", (h, w, c))
    if kind == "act":
        op = draw(st.sampled_from(["relu", "tanh", "sigmoid", "softmax", "dropout", "dropout : 0.25",
                                   "batchnorm", "lrn", "lrn : 3 alpha=0.0001 beta=0.75 k=2"]))
        if draw(st.booleans()):
            b.emit(op, (h, w, c))  # unnamed: archcalc numbers it; the next layer reads it
            return None
        name = b.name()
        kind_, _, args = op.partition(" : ")
        b.emit(f"{kind_} {name}" + (f" : {args}" if args else ""), (h, w, c))
        return name
    if kind == "concat" and draw(st.booleans()):  # strided branches: same output size, maybe
        branches, widths = [], []                   # by a symbol in one and its value in another
        stride = draw(strides(b.values))
        for _ in range(draw(st.integers(2, 3))):
            name, f = b.name(), draw(st.sampled_from([1, 3]))
            s_text = draw(st.sampled_from(["S", str(stride[1])])) if stride[0] == "S" else stride[0]
            out_c = draw(channel_counts(b.values))
            b.emit(f"conv {name} <- {prev} : f={f} p={(f - 1) // 2} s={s_text} c={out_c[0]}",
                   (window(h, 1, stride[1], 0, False), window(w, 1, stride[1], 0, False), out_c[1]))
            branches.append(name)
            widths.append(out_c)
        name = b.name()
        b.h, b.w = window(h, 1, stride[1], 0, False), window(w, 1, stride[1], 0, False)
        b.c = (" + ".join(f"({t})" for t, _ in widths), sum(v for _, v in widths))
        b.emit(f"concat {name} <- {', '.join(branches)}", (b.h, b.w, b.c[1]))
        return name
    if kind == "concat":
        branches, widths = [], []
        for _ in range(draw(st.integers(1, 3))):
            name, f = b.name(), draw(st.sampled_from([1, 3, 5]))
            out_c = draw(channel_counts(b.values))
            if draw(st.booleans()):
                b.emit(f"conv {name} <- {prev} : f={f} p=same c={out_c[0]}", (h, w, out_c[1]))
            else:
                b.emit(f"maxpool {name} <- {prev} : f=3 s=1 p=1", (h, w, c))
                out_c = (ctext, c)
            branches.append(name)
            widths.append(out_c)
        name = b.name()
        b.c = (" + ".join(f"({t})" for t, _ in widths), sum(v for _, v in widths))
        b.emit(f"concat {name} <- {', '.join(branches)}", (h, w, b.c[1]))
        return name
    if kind == "add":
        name, join = b.name(), b.name()
        b.emit(f"conv {name} <- {prev} : f=3 p=1 c={ctext}", (h, w, c))
        b.emit(f"add {join} <- {prev}, {name}", (h, w, c))
        return join
    if kind == "res":
        name = b.name("r")
        b.emit(f"res {name} : {ctext}", *[(h, w, c)] * 4)
        return name
    if kind == "down":
        s = draw(st.sampled_from([1, 2, 3]))
        if min(h, w) + 2 < 3:
            return prev
        out_c = draw(channel_counts(b.values))
        name = b.name("d")
        b.h, b.w, b.c = window(h, 3, s, 1, False), window(w, 3, s, 1, False), out_c
        call = f"down {name} : {out_c[0]}" + (f" s={s}" if s != 2 or draw(st.booleans()) else "")
        b.emit(call, *[(b.h, b.w, out_c[1])] * 3)
        return f"{name}"
    if kind == "incep":
        c1, c3 = draw(channel_counts(b.values)), draw(channel_counts(b.values))
        name = b.name("i")
        b.c = (f"({c1[0]}) + ({c3[0]}) + ({ctext})", c1[1] + c3[1] + c)
        b.emit(f"incep {name} : {c1[0]} {c3[0]}", (h, w, c1[1]), (h, w, c3[1]), (h, w, c3[1]),
               (h, w, c), (h, w, b.c[1]))
        return name
    if kind == "stack":
        n = draw(st.integers(1, 3))
        out_c = draw(channel_counts(b.values))
        name = b.name("s")
        b.c = out_c
        b.emit(f"stack {name} : c={out_c[0]} n={n}", *[(h, w, out_c[1])] * (2 * n))
        return name
    # repeat: a body of relu and a size-keeping conv, zero to three times
    k = draw(st.integers(0, 3))
    out_c = draw(channel_counts(b.values))
    shapes = [(h, w, c), (h, w, out_c[1])] + [(h, w, out_c[1])] * (2 * k - 2) if k else []
    b.emit(f"repeat {k} {{\n        relu\n        conv : f=3 p=1 c={out_c[0]}\n    }}", *shapes)
    if k == 0:
        return prev
    b.c = out_c
    return None  # an unnamed conv: the next statement reads it as the one above


# ---------------------------------------------------------------- properties of valid specs

def bind(value, values):
    if not isinstance(value, sympy.Basic):
        return value
    out = value.xreplace({symbol(k): v for k, v in values.items()})  # a bare symbol gives the int
    return int(out) if isinstance(out, sympy.Integer) else out


@examples(150)
@given(valid_specs())
def test_valid_specs_analyse_and_symbolic_then_bound_equals_concrete(case):
    text, values, shapes = case
    graph = archcalc.loads(text, "fuzz.arch")
    concrete = archcalc.analyze(graph, at=values)
    assert [tuple(r.out_shape) for r in concrete.rows] == shapes, text
    free = archcalc.analyze(graph, free=tuple(values))
    assert len(free.rows) == len(concrete.rows)
    for sym, con in zip(free.rows, concrete.rows):
        assert sym.name == con.name
        assert tuple(bind(v, values) for v in sym.out_shape) == tuple(con.out_shape), (con.name, text)
        for key in ("params", "trainable_params", "state", "macs", "other_ops", "activations"):
            assert bind(getattr(sym, key), values) == getattr(con, key), (con.name, key, text)
    for key, value in free.totals.items():
        assert bind(value, values) == concrete.totals[key], (key, text)
    assert formulas(graph, list(values), {})["macs"] == free.totals["macs"]


# ---------------------------------------------------------------- mutations

TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+(?:\.[0-9]+)?|<-|//|\S")
GARBAGE = ["(", ")", "{", "}", "[", "]", ",", ":", "=", "<-", ".", "+", "-", "*", "/", "//", ";",
           "\n", "#", "0", "1", "-1", "99999999999999999999999999999999999999999", "1.5", "x",
           "conv", "repeat", "block", "network", "in", "same", "on", "ceil", "f=", "c=", "@", "'",
           "\"", "\\", "\x00", "\t", "\r", "\u00a0", "é", "ｅ", "__class__", "__import__('os')",
           "1e9", "0.0", "H", "B", "input x : (8, 8, 3)", "add s <- x", "repeat 100000 {",
           "}" * 5, "(" * 50, "1+" * 60 + "1"]


SPECS = sorted((Path(__file__).resolve().parents[1] / "specs").glob("*.arch"))
REAL = [p.read_text() for p in SPECS]  # the case studies: blocks with defaults, tables, symbols


@st.composite
def mutated_specs(draw):
    text = draw(st.one_of(valid_specs().map(lambda case: case[0]), st.sampled_from(REAL)))
    for _ in range(draw(st.integers(1, 4))):
        text = draw(mutation(text))
    return text


@st.composite
def mutation(draw, text):
    tokens = [(m.start(), m.end()) for m in TOKEN.finditer(text)]
    how = draw(st.sampled_from(["delete", "swap_numbers", "replace_number", "truncate", "insert",
                                "duplicate_line", "delete_line", "swap_tokens", "replace_token"]))
    if not tokens:
        how = "insert"
    pick = lambda: tokens[draw(st.integers(0, len(tokens) - 1))]  # noqa: E731
    if how == "delete":
        a, z = pick()
        return text[:a] + text[z:]
    if how in ("swap_numbers", "replace_number"):
        numbers = [(m.start(), m.end()) for m in re.finditer(r"[0-9]+", text)]
        if len(numbers) < 2:
            return text
        (a, z) = numbers[draw(st.integers(0, len(numbers) - 1))]
        if how == "replace_number":
            new = str(draw(st.sampled_from([0, 1, 2, 7, 10**6, 10**39, 10**40, 2**64])))
            return text[:a] + new + text[z:]
        (b, y) = numbers[draw(st.integers(0, len(numbers) - 1))]
        if (a, z) == (b, y):
            return text
        (a, z), (b, y) = sorted([(a, z), (b, y)])
        return text[:a] + text[b:y] + text[z:b] + text[a:z] + text[y:]
    if how == "truncate":
        return text[:draw(st.integers(0, len(text)))]
    if how == "insert":
        at = draw(st.integers(0, len(text)))
        junk = draw(st.sampled_from(GARBAGE) | st.text(max_size=8))
        return text[:at] + junk + text[at:]
    lines = text.split("\n")
    if how == "duplicate_line":
        i = draw(st.integers(0, len(lines) - 1))
        return "\n".join(lines[:i + 1] + [lines[i]] + lines[i + 1:])
    if how == "delete_line":
        i = draw(st.integers(0, len(lines) - 1))
        return "\n".join(lines[:i] + lines[i + 1:])
    if how == "swap_tokens":
        (a, z), (b, y) = sorted([pick(), pick()])
        if z > b:
            return text
        return text[:a] + text[b:y] + text[z:b] + text[a:z] + text[y:]
    a, z = pick()
    return text[:a] + draw(st.sampled_from(GARBAGE)) + text[z:]


def outcome(text: str) -> str:
    """'ok' or 'SpecError'; any other exception fails the test, with the spec."""
    try:
        graph = archcalc.loads(text, "mutant.arch")
        analysis = archcalc.analyze(graph)
        names = [s.name for s in graph.symbols]
        free = archcalc.analyze(graph, free=tuple(names))
        archcalc.analyze(graph, strict=True)
        assert len(free.rows) == len(analysis.rows)
        event("analysed")
        return "ok"
    except SpecError as e:
        message = str(e)
        assert message.startswith(("mutant.arch:", "error:")) and "Traceback" not in message
        event("SpecError: " + e.message.split(":")[0].split("'")[0].strip()[:40])
        return "SpecError"


@examples(400)
@given(mutated_specs())
def test_mutated_specs_give_a_spec_error_or_a_valid_analysis(text):
    assert outcome(text) in ("ok", "SpecError")


@examples(200)
@given(st.lists(st.sampled_from(GARBAGE + ["network N {", "block b(c) {", "relu", "conv c : f=3 c=8",
                                           "maxpool : 2", "x", "<- x", "\n", "\n", " "]),
                max_size=40).map("".join))
def test_token_soup_gives_a_spec_error_or_a_valid_analysis(text):
    assert outcome(text) in ("ok", "SpecError")


@examples(200)
@given(st.text(max_size=200))
def test_arbitrary_text_gives_a_spec_error_or_a_valid_analysis(text):
    assert outcome(text) in ("ok", "SpecError")


# ---------------------------------------------------------------- the command line

OPTIONS = [[], ["--strict"], ["--format", "json"], ["--format", "csv"], ["--format", "markdown"],
           ["--set", "H=20"], ["--set", "B=0"], ["--set", "H=1"], ["--set", "Q=3"], ["--set", "H"],
           ["--set", "H=-4"], ["--free", "H,B"], ["--free", "nope"], ["--freeze", "l1"],
           ["--freeze", "x"], ["--format", "yaml"], ["--bogus"]]


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@examples(150)
@given(spec=st.one_of(mutated_specs(), valid_specs().map(lambda c: c[0])),
       command=st.sampled_from(["analyze", "formula"]),
       options=st.lists(st.sampled_from(OPTIONS), max_size=3))
def test_the_command_line_never_shows_a_traceback(workdir, spec, command, options):
    path = workdir / "spec.arch"
    path.write_text(spec, encoding="utf-8")
    argv = [command, str(path)] + [a for group in options for a in group]
    if command == "formula":  # formula takes --set, --symbols and --latex only
        argv = [a for a in argv if a not in ("--strict", "--format", "json", "csv", "markdown", "yaml")]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as e:
            status = e.code
    assert "Traceback" not in err.getvalue()
    assert status in (0, 1, 2), (status, argv, spec)
    event(f"exit {status}")
    if status == 1:
        assert err.getvalue().startswith(("error:", str(path))), err.getvalue()
    if status == 2:
        assert "usage:" in err.getvalue()


def test_the_generator_writes_every_family_it_names():
    """A guard for the fuzzer itself: the generated specs do use every kind of statement."""
    collected = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(valid_specs())
    def collect(case):
        collected.append(case[0].split("network Fuzz", 1)[1])

    collect()
    body = "\n".join(collected)
    for kind in ("conv", "maxpool", "avgpool", "subsample", "concat", "add", "res", "down", "incep",
                 "stack", "repeat", "flatten", "gap", "fc"):
        assert re.search(rf"^\s+{kind}\b", body, re.M), kind


# ================================================================ the hostile classes
# Generated inputs of the classes a careless or hostile user tries (issue 11): huge and derived
# sizes, wrong types, hostile names, hostile files, kills during writes. For every one the
# outcome is clean: exit 0 with the right answer, or exit 1 with one message (exit 2 with
# argparse's usage), never a traceback; nothing is written outside --out. Inputs are small by
# construction (a run is tiny or refused by its memory limit), so each ends within seconds.

def cli(argv) -> tuple[int, str, str]:
    """archcalc ARGV in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in argv])
        except SystemExit as e:
            status = e.code
    return status, out.getvalue(), err.getvalue()


def clean(status, err, argv) -> None:
    """Exit 0, 1 with one message, or 2 with argparse's usage; never a traceback."""
    assert "Traceback" not in err, (argv, err)
    assert status in (0, 1, 2), (status, argv, err)
    event(f"exit {status}")
    if status == 1:  # a first line, then only its indented details and quoted source lines
        first, *rest = err.splitlines()
        assert re.match(r"(error:|.*:\d+:\d+: error:)", first), (argv, err)
        assert all(re.match(r" |\d+ +\|", line) for line in rest), (argv, err)
    if status == 2:
        assert "usage:" in err, (argv, err)


def files(root: Path, skip: Path | None = None) -> dict:
    """Every entry under root (not following links) -> its bytes, or None; `skip` left out."""
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() and not p.is_symlink() else None
            for p in sorted(root.rglob("*")) if skip is None or skip not in (p, *p.parents)}


def hostile(default: int) -> settings:
    """Fewer examples than the valid-spec properties: each runs commands; reproducible."""
    return settings(examples(default), derandomize=not BIG)


LIMIT = 10**40
TINY = "network N {\n    input x : (8, 8, 3)\n    conv c1 : f=3 c=4\n    relu\n}\n"


# ---------------------------------------------------------------- huge and derived sizes

@hostile(25)
@given(tops=st.lists(st.sampled_from([1, 7, 10**6, 10**20, 10**38, 5 * 10**39, LIMIT - 1, LIMIT]),
                     min_size=1, max_size=5))
def test_pads_growing_past_the_size_limit_are_located_or_exact(tops):
    """n_H = 8 + the tops, exact below 10^40; past it, one located message."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "pads.arch"
        path.write_text("network P {\n    input x : (8, 8, 3)\n"
                        + "".join(f"    pad : top={t}\n" for t in tops) + "}\n")
        argv = ["analyze", path, "--format", "json"]
        status, out, err = cli(argv)
    clean(status, err, argv)
    if 8 + sum(tops) < LIMIT:
        assert status == 0 and json.loads(out)["layers"][-1]["out_shape"] == [8 + sum(tops), 8, 3]
    else:
        assert status == 1 and err.startswith(f"{path}:"), err


def window_count(n, f, s, p):
    """Windows of f at stride s over n padded by p on both sides, written out: floor + 1."""
    return (n + 2 * p - f) // s + 1 if n + 2 * p >= f else 0


HUGE = [1, 2, 3, 10**8, 10**12, 10**39]


@hostile(30)
@given(n=st.sampled_from([1, 8, 10**9]), kind=st.sampled_from(["conv", "maxpool", "avgpool"]),
       f=st.sampled_from(HUGE), s=st.sampled_from(HUGE), p=st.sampled_from([0, 1, 10**8, 10**39]),
       c=st.sampled_from([1, 8, 10**5]))
def test_huge_windows_strides_and_pads_are_exact_or_refused(n, kind, f, s, p, c):
    """The analysis's shape equals the count written out here; `run`, under a 10 MiB limit,
    either runs this tiny case or refuses before any array is made."""
    args = f"f={f} s={s} p={p}" + (f" c={c}" if kind == "conv" else "")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "win.arch"
        path.write_text(f"network W {{\n    input x : ({n}, {n}, 2)\n    {kind} : {args}\n}}\n")
        status, out, err = cli(["analyze", path, "--format", "json"])
        clean(status, err, ["analyze", args])
        side = window_count(n, f, s, p)
        if status == 0:
            assert json.loads(out)["layers"][-1]["out_shape"] == [side, side, c if kind == "conv" else 2]
        else:
            assert side < 1 or n + 2 * p >= LIMIT or c * f * f >= LIMIT or err.startswith(f"{path}:"), err
        argv = ["run", path, "--max-memory", "0.01"]
        status, out, err = cli(argv)
    clean(status, err, argv)
    if status == 0:
        assert f"(1, {side}, {side}, {c if kind == 'conv' else 2})" in out


@hostile(15)
@given(width=st.sampled_from([1, 10, 10**5, 10**9, 10**39]), command=st.sampled_from(
    [["run", "--max-memory", "0.01"], ["run", "--batch", "999999999"], ["analyze", "--images", "1000000000000"],
     ["formula"], ["compare"]]))
def test_wide_fully_connected_layers_are_counted_exactly_or_refused(width, command):
    """fc from 8 inputs to `width`: params 8 * width + width, exact (compare's text shows them)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fc.arch"
        path.write_text(f"network F {{\n    input x : (1, 1, 8)\n    fc : {width}\n}}\n")
        argv = [command[0], path] + ([path] if command[0] == "compare" else []) + command[1:]
        status, out, err = cli(argv)
    clean(status, err, argv)
    if command[0] == "compare":
        assert status == 0 and f"{9 * width:,}" in out
    if command[0] == "run" and width >= 10**9:  # 36 GB of weights and more
        assert status == 1 and "over the limit" in err
    if command[0] == "run" and status == 0:
        assert f"(1, 1, 1, {width})" in out


# ---------------------------------------------------------------- wrong types

ARGUMENTS = {"conv": ["f", "c", "s", "p", "groups", "dilation", "bias", "table", "round"],
             "maxpool": ["f", "s", "p", "round"], "avgpool": ["f", "count_pad", "round"],
             "fc": ["c", "bias"], "lrn": ["size", "alpha", "beta", "k"], "dropout": ["rate"],
             "upsample": ["scale", "size", "mode"], "pad": ["top", "left"], "slice": ["start", "stop"],
             "shuffle": ["groups"], "leaky_relu": ["alpha"], "clip": ["lo", "hi"],
             "adaptive_avgpool": ["size"], "batchnorm": ["eps"], "crop": ["size"]}
WRONG = ["[1]", "[]", "[[0, 1]]", "(1, 2)", "(8, 8, 3)", "same", "on", "off", "ceil", "nearest",
         "0.5", "0", "1", "H", "x", "1/3", "2//0", "4/2", "99999999999999999999999999999999999999999"]


@hostile(120)
@given(kind=st.sampled_from(sorted(ARGUMENTS)), data=st.data(),
       values=st.lists(st.sampled_from(WRONG), min_size=1, max_size=3))
def test_a_value_of_the_wrong_type_is_a_located_error_or_valid(kind, data, values):
    names = [data.draw(st.sampled_from(ARGUMENTS[kind])) for _ in values]
    args = " ".join(f"{n}={v}" for n, v in zip(names, values))
    head = "    flatten\n" if kind == "fc" else ""
    text = f"network T(H=8) {{\n    input x : (8, 8, 4)\n{head}    {kind} : {args}\n}}\n"
    assert outcome(text) in ("ok", "SpecError")


BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "-1", "-5", "0", "-0", "1e400", "1e3", "", " ", "[1]",
               "1" * 30, "0x10", "½", "²", "1_000", "+3", "1.5", "２"]
OPTION_VALUES = {  # the hostile numbers, and a few valid ones that stay small
    ("run", "--max-memory"): ["0.01", "1"], ("run", "--seed"): ["3", str(2**63 - 1), str(2**64)],
    ("run", "--batch"): ["2", "999999999"], ("run", "--crop-from"): ["40", "100000"],
    ("run", "--crops"): ["2", "5", "3"], ("run", "--ensemble"): ["2", "1001", "1000000"],
    ("run", "--set"): ["H=9", "H=nan", "H", "=4", "H=1e400"], ("analyze", "--images"): ["7", "10" * 7],
    ("analyze", "--set"): ["H=12", "H=-3", "H=" + "9" * 41], ("formula", "--set"): ["H=12", "H=0"],
    ("sweep", "--vary"): ["H=8..12", "H=12..8", "H=1..1e400", "H=8..20:0", "H=-5..5", "H=8..99999999999",
                          "H=8..9223372036854775808", "H", "H=8..20:3"],
    ("augment", "--size"): ["7", "2049"], ("augment", "--seed"): ["0"],
    ("report", "--jobs"): ["0", "-2"], ("finetune", "--epochs"): ["nan"], ("finetune", "--lr"): ["inf"],
    ("finetune", "--momentum"): ["1", "-0.5"], ("finetune", "--test-fraction"): ["0", "1", "nan"]}


@hostile(120)
@given(data=st.data(), option=st.sampled_from(sorted(OPTION_VALUES)))
def test_a_hostile_option_value_is_a_usage_error_or_a_message(data, option):
    command, name = option
    value = data.draw(st.sampled_from(BAD_NUMBERS + OPTION_VALUES[option]))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "h.arch"
        path.write_text("network S(H=8) {\n    input x : (H, H, 1)\n    conv : f=3 c=2\n"
                        "    flatten f\n    fc : 2\n}\n")
        extra = {"augment": ["--out", Path(d) / "grid.jpg"],  # refused after the size: no drawing
                 "report": [path, "--out", Path(d) / "empty"],
                 "finetune": ["--freeze", "f", "--data", Path(d) / "none.npz"],  # refused after the options
                 "run": ["--max-memory", "0.01"] if name != "--max-memory" else []}.get(command, [])
        spec = [] if command in ("augment", "report") else [path]
        argv = [command, *spec, *extra, f"{name}={value}"]
        if command == "report":  # a valid --jobs would draw: --out names a file, refused first
            (Path(d) / "empty").write_text("")
        status, out, err = cli(argv)
    clean(status, err, argv)


# ---------------------------------------------------------------- hostile names

SHADOWS = ["FloorDiv", "CeilDiv", "minimum", "maximum", "Max", "Min", "floor", "ceiling", "Mod",
           "Piecewise", "sqrt", "exp", "log", "int64", "numpy", "np", "builtins", "lambda", "None",
           "True", "Integer", "Symbol", "I", "E", "S", "N", "Q", "pi", "oo", "zoo", "nan", "_",
           "__class__", "__import__", "x", "in", "out", "network", "i" * 300]


@hostile(40)
@given(name=st.sampled_from(SHADOWS), layer=st.sampled_from(SHADOWS), low=st.integers(3, 9))
def test_names_shadowing_the_generated_codes_functions_sweep_exactly(name, layer, low):
    """A symbol and a layer named like sympy's or NumPy's functions: the sweep equals the
    analysis at each point, or the spec is refused with one message."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "shadow.arch"
        path.write_text(f"network N({name}=16) {{\n    input x : ({name}, 2*{name}, 3)\n"
                        f"    conv {layer} : f=3 c=8\n    relu\n}}\n")
        argv = ["sweep", path, "--vary", f"{name}={low}..{low + 4}:2"]
        status, out, err = cli(argv)
        clean(status, err, argv)
        if status == 1:
            assert err.startswith(f"{path}:"), err  # a name the language refuses
            return
        for v in (low, low + 2, low + 4):  # MACs = out_H * out_W * 8 * 3*3*3, written out
            macs = (v - 2) * (2 * v - 2) * 8 * 27
            assert re.search(rf"^\s*{v}\s+{macs:,}$", out, re.M), (v, out)
        status, out, err = cli(["analyze", path, "--set", f"{name}={low}", "--format", "json"])
        assert status == 0 and json.loads(out)["totals"]["macs"] == (low - 2) * (2 * low - 2) * 216


FILE_NAMES = ["..", "...", ".", ".hidden", "a\\b", "index.md", "scatter.png", "-rf", "--out", " ",
              "a b", "é", "a\x1bb", "a\nb", "a\tb", "x" * 240, "FloorDiv", "con", "report.md", "~",
              "$HOME", "*", "..\\..", "lenet5"]


def stub_drawing(*args, **kwargs):
    """A drawing's stand-in: the names written matter here, not the pictures."""
    next(a for a in reversed(args) if isinstance(a, Path)).write_bytes(b"png")


def drawings_stubbed():
    from unittest import mock

    from archcalc.present import plots
    return mock.patch.multiple(plots, cost_bars=stub_drawing, graph_drawing=stub_drawing,
                               curve=stub_drawing, scatter=stub_drawing)


@hostile(30)
@given(names=st.lists(st.sampled_from(FILE_NAMES), min_size=1, max_size=3, unique=True))
def test_report_writes_nothing_outside_out_whatever_the_file_names(names):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "specs").mkdir()
        (root / "report.md").write_text("mine")
        for n in names:
            (root / "specs" / f"{n}.arch").write_text(TINY)
        before = files(root, skip=root / "out")
        argv = ["report", root / "specs", "--out", root / "out", "--jobs", "1"]
        with drawings_stubbed():
            status, out, err = cli(argv)
        clean(status, err, argv)
        assert files(root, skip=root / "out") == before  # nothing outside --out
        written = sorted(p.name for p in (root / "out").iterdir()) if (root / "out").exists() else []
        if status == 0:
            assert written == sorted(["index.html", "index.md", "scatter.png", *names]), written
            assert all((root / "out" / n / "report.md").is_file() for n in names)
        else:
            assert "its report folder would be named" in err and written == [], err


# ---------------------------------------------------------------- hostile files

@pytest.fixture(scope="module")
def model_file(workdir):
    """A small valid ONNX model (LeNet-5 exported), to garble."""
    pytest.importorskip("onnx")
    path = workdir / "lenet5.onnx"
    assert cli(["export", SPECS[[p.name for p in SPECS].index("lenet5.arch")], "-o", path])[0] == 0
    return path


@hostile(20)
@given(data=st.data(), how=st.sampled_from(["truncate", "flip", "insert", "zero"]),
       command=st.sampled_from(["analyze", "import", "run"]))
def test_a_garbled_onnx_model_is_refused_or_read(model_file, data, how, command):
    model_bytes = model_file.read_bytes()
    at = data.draw(st.integers(0, len(model_bytes) - 1))
    junk = data.draw(st.binary(min_size=1, max_size=8))
    garbled = {"truncate": model_bytes[:at],
               "flip": model_bytes[:at] + bytes([model_bytes[at] ^ junk[0]]) + model_bytes[at + 1:],
               "insert": model_bytes[:at] + junk + model_bytes[at:],
               "zero": model_bytes[:at] + bytes(len(junk)) + model_bytes[at + len(junk):]}[how]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.onnx"
        path.write_bytes(garbled)
        argv = [command, path] + (["--max-memory", "0.01"] if command == "run" else [])
        status, out, err = cli(argv)
    clean(status, err, argv)


SHAPES = [(5, 5, 1, 6), (6,), (10**9,), (10**6, 10**6), (0,), (30000, 30000), (2, 32, 32, 1),
          (10**6, 32, 32, 1), ()]


@hostile(60)
@given(data=st.data(), kind=st.sampled_from(["weights", "input", "spec", "directory", "loop",
                                             "missing", "long", "bytes"]))
def test_hostile_files_are_refused_with_one_message(data, kind):
    """Lying .npz/.npy headers, a directory or a symlink loop where a file goes, an over-long
    path, a spec with a BOM, NULs, CRs or bytes that are not UTF-8."""
    lenet = str(SPECS[[p.name for p in SPECS].index("lenet5.arch")])
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        where = root / "f"
        if kind == "weights":
            members = data.draw(st.lists(st.tuples(st.sampled_from(["c1/W", "c1/b", "f5/W", "x/W"]),
                                                   st.sampled_from(SHAPES)), min_size=1, max_size=3,
                                         unique_by=lambda m: m[0]))
            forged_npz(where, dict(members), data.draw(st.booleans()))
        elif kind == "input":
            where.write_bytes(npy_header(data.draw(st.sampled_from(SHAPES)))
                              + bytes(data.draw(st.sampled_from([0, 16, 8192]))))
        elif kind == "directory":
            where.mkdir()
        elif kind == "loop":
            where.symlink_to(root / "g")
            (root / "g").symlink_to(where)
        elif kind == "long":
            where = root / ("n" * 300)
        elif kind in ("spec", "bytes"):
            text = TINY.encode()
            for _ in range(data.draw(st.integers(1, 3))):
                at = data.draw(st.integers(0, len(text)))
                junk = data.draw(st.sampled_from([b"\xef\xbb\xbf", b"\x00", b"\r", b"\r\n", b"\xff",
                                                  b"\xc3", b"\xef\xbb\xbf" * 2, b"\x1b[2J"])
                                 | st.binary(max_size=4))
                text = text[:at] + junk + text[at:]
            where.write_bytes(b"\xef\xbb\xbf" + text if kind == "spec" else text)
        role = data.draw(st.sampled_from(["spec", "--weights", "--input"]))
        if kind in ("weights", "input"):
            role = f"--{kind}"
        argv = (["run", lenet, role, where, "--max-memory", "0.01"] if role != "spec"
                else [data.draw(st.sampled_from(["analyze", "formula", "run"])), where])
        status, out, err = cli(argv)
    clean(status, err, argv)
    if kind in ("directory", "loop", "missing", "long", "weights"):  # weights: lenet5's are missing
        assert status == 1, (argv, out)
    if status == 0 and kind == "input":  # the one honest header: 2 images of 32x32x1
        assert "output 'softmax1': (2, 1, 1, 10)" in out


# ---------------------------------------------------------------- kills during writes

KILLER = """\
import os, pathlib, shutil, signal, sys
k = int(sys.argv[1])
calls = [0]
def counted(f):
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)
        return f(*args, **kwargs)
    return wrapper
def drawing(*args, **kwargs):  # as stub_drawing: the pictures do not matter here
    next(a for a in reversed(args) if isinstance(a, pathlib.Path)).write_bytes(b"png")
for owner, name in [(os, "rename"), (os, "replace"), (shutil, "rmtree"), (os, "unlink"),
                    (pathlib.Path, "mkdir"), (pathlib.Path, "write_text"), (pathlib.Path, "unlink")]:
    setattr(owner, name, counted(getattr(owner, name)))
from archcalc.present import plots
for name in ("cost_bars", "graph_drawing", "curve", "scatter"):
    setattr(plots, name, counted(drawing))
from archcalc.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def two_generations(workdir):
    """Report folders of two specs drawn from one version of them (old), then another (new)."""
    gens = {}
    for gen, width in (("old", 4), ("new", 6)):
        specs, out = workdir / f"{gen}-specs", workdir / f"{gen}-out"
        specs.mkdir()
        for name in ("a", "b"):
            (specs / f"{name}.arch").write_text(TINY.replace("c=4", f"c={width}"))
        with drawings_stubbed():
            assert cli(["report", specs, "--out", out, "--jobs", "1"])[0] == 0
        gens[gen] = (specs, files(out))
    return gens


@hostile(5)
@given(k=st.integers(1, 30))
def test_a_report_killed_at_any_step_leaves_each_folder_old_or_new(two_generations, k):
    """kill -9 before the k-th file operation of `report` (a rename, a write, a drawing saved,
    a removal), then the next run's clean-up: each folder and index file is wholly the old one
    or wholly the new one, and no temporary is left."""
    import subprocess
    import sys

    from archcalc.present import report
    (_, old), (new_specs, new) = two_generations["old"], two_generations["new"]
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out"
        for rel, content in old.items():  # the old report, as a former run left it
            (out / rel).mkdir(parents=True) if content is None else (out / rel).write_bytes(content)
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), MPLBACKEND="Agg")
        child = subprocess.run([sys.executable, "-c", KILLER, str(k), "report", new_specs, "--out", out,
                                "--jobs", "1"], env=env, capture_output=True, text=True)
        assert child.returncode in (0, -9), child.stderr
        event("killed" if child.returncode == -9 else "finished")
        with report.writing(out):  # what the next run does first
            pass
        after = files(out)
    for top in ("a", "b", "index.md", "scatter.png"):
        mine = {r: c for r, c in after.items() if r == top or r.startswith(top + "/")}
        assert mine in ({r: c for r, c in gen.items() if r == top or r.startswith(top + "/")}
                        for gen in (old, new)), (k, top)
    assert set(after) <= set(old) | set(new), (k, sorted(set(after) - set(old) - set(new)))
