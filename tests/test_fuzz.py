"""Property tests with hypothesis.

- Random valid specs (chains, branches joined by concat and add, blocks with parameters,
  repeats, symbols) always analyse; their shapes equal an independent model written here; and
  analysing with the symbols free, then binding them, equals analysing with the values.
- Random mutations of valid specs (deleted tokens, swapped numbers, truncation, garbage) end in
  a SpecError or a valid analysis, never in another exception.
- The command line never prints a traceback and exits 0, 1 or 2.

Example counts are moderate so the file runs in seconds; ARCHCALC_FUZZ_EXAMPLES=N runs every
property with N examples (e.g. 20000 for a long run)."""
from __future__ import annotations

import contextlib
import io
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
