"""Nothing in a spec runs: user text never reaches eval, exec, compile, sympify, parse_expr or
pickle, specs built to run code or read files end in a SpecError, and hostile sizes end in a
clear error with bounded memory.

Three independent checks: the package source is read with `ast` for the calls themselves;
sympify is wrapped at run time to refuse any str; and a Python audit hook watches every
hostile spec for code compiled from its text, a file opened, a process started or a pickle
loaded."""
from __future__ import annotations

import ast
import sys
import tracemalloc
from pathlib import Path

import pytest
import sympy

import archcalc
from archcalc.lang import build as graph_module
from archcalc.lang import syntax
from archcalc.cli import COMMANDS, main
from archcalc.commands.formula import formulas
from archcalc.errors import SpecError
from conftest import ROOT, SPECS

PACKAGE = ROOT / "archcalc"
CANARY = "archcalc_canary_7f3a"  # in every hostile spec; code compiled from it would contain it

# ---------------------------------------------------------------- the source, read with ast

BUILTINS = {"eval", "exec", "compile", "__import__", "breakpoint"}  # called by bare name
FORBIDDEN_CALLS = {"parse_expr", "lambdify", "load_module", "system", "popen", "Popen", "run_path"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "joblib",
                     "subprocess", "sympy.parsing", "code", "codeop", "runpy"}
# Each exception says why the call cannot see user text.
ALLOWED = {
    ("sweep.py", "lambdify"): "compiles a sympy expression of the network's symbols, whose names "
                              "the grammar limits to [A-Za-z_][A-Za-z0-9_]*; lambdify renames "
                              "keywords, so no spec text becomes code",
    ("cli.py", "import_module"): "imports archcalc.commands.NAME for NAME in the constant COMMANDS",
}


def sources():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def call_name(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return f.attr
    return ""


def owner(node: ast.Call) -> str:
    f = node.func
    return f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""


def is_text(node) -> bool:
    """A str literal, an f-string, a str(...) call or a '...' % / .format() built string."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str":
        return True
    if isinstance(node, ast.Call) and call_name(node) == "format":
        return True
    return isinstance(node, ast.BinOp) and (is_text(node.left) or is_text(node.right))


def problems(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    where = lambda node: f"{path.relative_to(root)}:{node.lineno}"  # noqa: E731
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for m in modules:
                if any(m == bad or m.startswith(bad + ".") for bad in FORBIDDEN_MODULES):
                    found.append(f"{where(node)}: imports {m}")
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sympy"):
                names = {a.name for a in node.names}
                if names & {"sympify", "S", "parse_expr", "lambdify"}:
                    found.append(f"{where(node)}: imports {sorted(names)} from sympy by name "
                                 "(call them as sympy.X so the run-time guard sees them)")
        if not isinstance(node, ast.Call):
            continue
        name = call_name(node)
        bare = isinstance(node.func, ast.Name) or owner(node) == "builtins"
        if (name in FORBIDDEN_CALLS or bare and name in BUILTINS) and (path.name, name) not in ALLOWED:
            found.append(f"{where(node)}: calls {name}")
        if name == "import_module" and (path.name, name) not in ALLOWED:
            found.append(f"{where(node)}: calls import_module")
        if name in ("sympify", "S") and node.args and is_text(node.args[0]):
            found.append(f"{where(node)}: {name} of text")
        if name == "load" and owner(node) in ("np", "numpy"):
            for kw in node.keywords:
                if kw.arg == "allow_pickle" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    found.append(f"{where(node)}: np.load with allow_pickle={ast.unparse(kw.value)}")
    return found


def test_package_source_has_no_path_from_text_to_code():
    found = [p for path in sources() for p in problems(path)]
    assert not found, "\n".join(found)


CORE = ("errors.py", "lang/syntax.py", "lang/build.py", "analysis/analyzer.py", "sizes.py", "cli.py",
        *(f"kinds/{p.name}" for p in sorted((PACKAGE / "kinds").glob("*.py"))))


@pytest.mark.parametrize("name", CORE)
def test_core_modules_never_call_sympify(name):
    """The modules that see spec text build sympy objects directly (sizes.expr), never by
    sympify, which parses strings."""
    tree = ast.parse((PACKAGE / name).read_text())
    calls = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and call_name(n) in ("sympify", "S")]
    assert calls == [], f"{name} calls sympify at lines {calls}"


def test_the_checker_itself_finds_what_it_forbids(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle\nfrom sympy import sympify\nimport numpy as np\n"
                   "eval(x)\nsympy.sympify(f'{x}')\nnp.load(p, allow_pickle=True)\n")
    assert len(problems(bad, tmp_path)) == 5


# ---------------------------------------------------------------- sympify guarded at run time

@pytest.fixture
def sympify_refuses_text(monkeypatch):
    original = sympy.sympify
    seen = []

    def guarded(a, *args, **kwargs):
        if isinstance(a, (str, bytes)):
            seen.append(a)
            raise AssertionError(f"sympify called on text: {a!r}")
        return original(a, *args, **kwargs)

    monkeypatch.setattr(sympy, "sympify", guarded)
    monkeypatch.setattr(sys.modules["sympy.core.sympify"], "sympify", guarded)  # the module
    yield seen


@pytest.mark.parametrize("spec", sorted(SPECS.glob("*.arch")), ids=lambda p: p.stem)
def test_every_spec_analyses_without_sympify_of_text(spec, sympify_refuses_text):
    graph = archcalc.load(spec)
    names = [s.name for s in graph.symbols]
    archcalc.analyze(graph)
    formulas(graph, names, {})
    assert sympify_refuses_text == []


# ---------------------------------------------------------------- hostile specs

def wrap(line: str) -> str:
    return f"# {CANARY}\nnetwork N {{\n    input x : (8, 8, 3)\n    {line}\n}}\n"


def hostile_specs(secret: Path, made: Path) -> dict:
    touch = f"__import__('pathlib').Path('{made}').touch()"
    return {
        "import_in_shape": f"network N {{\n    input x : (__import__('os').system('touch {made}'), 8, 3)\n}}\n",
        "import_in_argument": wrap(f"conv c : f=3 c={touch}"),
        "open_file": wrap(f"conv c : f=3 c=open('{secret}').read()"),
        "open_bare_name": wrap("conv c : f=open c=8"),
        "eval_kind": wrap("eval c : '1+1'"),
        "exec_kind": wrap(f"exec : {touch}"),
        "import_kind": wrap("__import__ os"),
        "getattr_kind": wrap("getattr c : x __class__"),
        "dunder_argument": wrap("conv c : f=3 c=8 __class__=1"),
        "dunder_init_argument": wrap("conv c : f=3 c=8 __init__=__import__"),
        "dunder_source": wrap("relu r <- x.__class__.__bases__"),
        "dunder_kind": wrap("__class__ c : f=3"),
        "dunder_value": wrap("conv c : f=__class__ c=8"),
        "globals_value": wrap("conv c : f=3 c=globals"),
        "lambda_text": wrap("conv c : f=3 c=(lambda: 8)()"),
        "string_value": wrap(f"conv c : f=3 c=\"{touch}\""),
        "attribute_access": wrap("conv c : f=3 c=x.__class__"),
        "subscript": wrap("conv c : f=3 c=().__class__.__bases__[0]"),
        "format_string": wrap("conv c : f=3 c={0.__class__}"),
        "backslash": wrap("conv c : f=3 \\\n c=8"),
        "semicolon_python": wrap(f"relu; import os; os.system('touch {made}')"),
        "table_code": wrap(f"conv c : f=3 c=1 table=[[{touch}]]"),
        "repeat_code": wrap(f"repeat {touch} {{ relu }}"),
        "symbol_code": f"network N(H={touch}) {{\n    input x : (H, 8, 3)\n}}\n",
        "block_default_code": f"block b(c={touch}) {{\n    relu\n}}\nnetwork N {{\n    input x : (8, 8, 3)\n    b\n}}\n",
        "fullwidth_eval": wrap("ｅｖａｌ c : f=3"),
        "nul_byte": wrap("conv c : f=3 c=8\x00"),
        "terminal_escape": wrap("conv c : f=3 c=\x1b[2J8"),
        "include_file": f"include '{secret}'\nnetwork N {{\n    input x : (8, 8, 3)\n}}\n",
        "path_as_source": wrap(f"relu r <- {secret}"),
        "pickle_opcode": wrap("conv c : f=3 c=cos\\nsystem\\n(S'ls'\\ntR."),
    }


@pytest.fixture(scope="module")
def audit():
    """Records what a spec must never cause: source compiled from its text, a file opened
    other than the spec itself, a process started, a pickle loaded."""
    state = {"on": False, "events": [], "allowed_files": set()}

    def hook(event, args):
        if not state["on"]:
            return
        if event in ("compile", "exec") and CANARY in repr(args):
            state["events"].append((event, repr(args)[:200]))
        elif event == "open" and args and str(args[0]) not in state["allowed_files"] \
                and not str(args[0]).endswith((".pyc", ".py", ".so", ".lark")):
            state["events"].append((event, str(args[0])))
        elif event in ("os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn",
                       "pickle.find_class", "shutil.rmtree", "os.remove"):
            state["events"].append((event, repr(args)[:200]))

    sys.addaudithook(hook)  # cannot be removed; it does nothing while 'on' is False
    for command in ("analyze", "formula"):  # warm: every lazy import happens here
        main([command, str(SPECS / "lenet5.arch")])
    return state


def test_the_audit_hook_sees_what_it_watches(audit, tmp_path):
    audit["on"] = True
    try:
        eval(f"1  # {CANARY}")  # noqa: S307 - the one deliberate eval, to test the watcher
        (tmp_path / "other.txt").write_text("x")
    finally:
        audit["on"] = False
    events, audit["events"] = audit["events"], []
    assert [e for e, _ in events] == ["compile", "open"]  # the exec event shows a code object


def entry_points(text: str, path: Path, capsys):
    """Each way a user hands archcalc a spec; yields (entry, outcome) where outcome is
    'SpecError', 'ok', an exit status, or the unexpected exception."""
    path.write_text(text, encoding="utf-8")
    for entry, call in (("loads", lambda: archcalc.loads(text, "hostile.arch")),
                        ("load", lambda: archcalc.load(path))):
        try:
            graph = call()
        except SpecError:
            yield entry, "SpecError"
            continue
        yield entry, "ok"
        for step, fn in (("analyze", lambda: archcalc.analyze(graph)),
                         ("formula", lambda: formulas(graph, [s.name for s in graph.symbols], {}))):
            try:
                fn()
                yield step, "ok"
            except SpecError:
                yield step, "SpecError"
    for command in ("analyze", "formula"):
        status = main([command, str(path)])
        _, err = capsys.readouterr()
        assert "Traceback" not in err
        yield f"cli {command}", status


def test_hostile_specs_end_in_a_spec_error_and_nothing_happens(tmp_path, capsys, audit,
                                                                 sympify_refuses_text):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    made = tmp_path / "made-by-spec"
    spec = tmp_path / "hostile.arch"
    audit["allowed_files"] = {str(spec)}
    outcomes = {}
    for name, text in hostile_specs(secret, made).items():
        audit["on"] = True
        try:
            for entry, outcome in entry_points(text, spec, capsys):
                outcomes[name, entry] = outcome
        finally:
            audit["on"] = False
    assert audit["events"] == []
    assert not made.exists()
    assert sympify_refuses_text == []
    # every one fails to load, with a located message, and the CLI exits 1
    for name in hostile_specs(secret, made):
        assert outcomes[name, "loads"] == "SpecError", name
        assert outcomes[name, "load"] == "SpecError", name
        assert outcomes[name, "cli analyze"] == 1 and outcomes[name, "cli formula"] == 1, name


def test_messages_never_show_a_file_the_spec_names(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    for text in hostile_specs(secret, tmp_path / "made").values():
        with pytest.raises(SpecError) as e:
            archcalc.loads(text)
        assert "TOP-SECRET" not in str(e.value)


def test_control_characters_in_a_shown_line_are_neutralised():
    with pytest.raises(SpecError) as e:
        archcalc.loads("network N {\n    input x : (8, 8, 3) @ # \x1b[2J\x07\n}\n")
    assert "\x1b" not in str(e.value) and "\x07" not in str(e.value)


@pytest.mark.parametrize("name", ["__class__", "__init__", "__dict__", "__globals__", "eval",
                                  "__import__", "lambda", "None"])
def test_python_names_are_plain_names(name, sympify_refuses_text):
    """Names like __class__ are only names: a symbol, a block, a layer and a parameter so
    named analyse like any other, and no attribute of anything is looked up by them."""
    text = (f"block {name}({name}) {{\n    conv {name} : f=1 c={name}\n}}\n"
            f"network N({name}=8) {{\n    input x : ({name}, {name}, 3)\n    {name} blk : {name}\n}}\n")
    a = archcalc.analyze(archcalc.loads(text))
    assert a.rows[-1].name == f"blk.{name}" and a.rows[-1].out_shape == (8, 8, 8)
    assert a.totals["params"] == 4 * 8
    symbolic = archcalc.analyze(archcalc.loads(text), free=(name,))
    assert str(symbolic.totals["params"]) == f"4*{name}"  # (1*1*3 + 1) weights per filter


@pytest.mark.parametrize("argv", [
    ["analyze", "{spec}", "--set", "__import__('os').system('ls')=1"],
    ["analyze", "{spec}", "--set", "H=__import__('os')"],
    ["analyze", "{spec}", "--set", "H=1e3"],
    ["analyze", "{spec}", "--set", "H=0x10"],
    ["analyze", "{spec}", "--set", "H=²"],
    ["analyze", "{spec}", "--set", "H=" + "9" * 5000],
    ["analyze", "{spec}", "--free", "__class__"],
    ["analyze", "{spec}", "--freeze", "__class__"],
    ["formula", "{spec}", "--symbols", "__import__('os')"],
    ["formula", "{spec}", "--set", "H=open('/etc/passwd')"],
])
def test_hostile_command_lines_are_spec_errors(argv, capsys, tmp_path, audit):
    spec = tmp_path / "n.arch"
    spec.write_text("network N(H=32) {\n    input x : (H, H, 3)\n    conv c : f=3 c=8\n}\n")
    audit["allowed_files"] = {str(spec)}
    audit["on"] = True
    try:
        status = main([a.format(spec=spec) for a in argv])
    finally:
        audit["on"] = False
    _, err = capsys.readouterr()
    assert status == 1 and err.startswith(("error:", str(spec))) and "Traceback" not in err
    assert audit["events"] == []


# ---------------------------------------------------------------- hostile sizes

def peak_mib(fn) -> float:
    """Peak memory Python allocated while fn ran (bounded memory, without timing anything)."""
    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak / 2**20


def fails_with(text: str, fragment: str, limit_mib: float = 64):
    def attempt():
        with pytest.raises(SpecError) as e:
            archcalc.analyze(archcalc.loads(text, "h.arch"))
        attempt.message = str(e.value)
    assert peak_mib(attempt) < limit_mib
    assert fragment in attempt.message, attempt.message
    assert attempt.message.startswith("h.arch:"), attempt.message  # located
    return attempt.message


def test_a_billion_repeats_are_refused_before_any_layer_is_built():
    message = fails_with("network N {\n    input x : (8, 8, 3)\n    repeat 1000000000 {\n"
                         "        conv : f=3 p=1 c=8\n        relu\n    }\n}\n", "too many layers")
    assert "2,000,000,000" in message


def test_nested_repeats_are_counted_before_they_are_built():
    text = "network N {\n    input x : (8, 8, 3)\n" + "repeat 10 {\n" * 8 + "relu\n" + "}\n" * 8 + "}\n"
    fails_with(text, "too many layers: repeat 10 makes at least 100,000,000")


def test_blocks_nested_a_thousand_deep():
    blocks = "".join(f"block b{i}(c) {{\n    b{i + 1} inner : c\n}}\n" for i in range(1000))
    text = blocks + "block b1000(c) {\n    relu\n}\nnetwork N {\n    input x : (8, 8, 3)\n    b0 top : 3\n}\n"
    message = fails_with(text, f"blocks and repeats nested more than {graph_module.MAX_DEPTH} deep")
    assert "b0 -> b1 -> b2 -> ... ->" in message


def test_repeats_nested_a_thousand_deep():
    text = "network N {\n    input x : (8, 8, 3)\n" + "repeat 1 {\n" * 1000 + "relu\n" + "}\n" * 1000 + "}\n"
    fails_with(text, f"nested more than {syntax.MAX_NESTING} levels deep")


@pytest.mark.parametrize("opener, closer", [("(", ")"), ("[", "]")])
def test_ten_thousand_open_brackets(opener, closer):
    """On one line they pass the line limit; spread over lines, the first line break inside
    them is the error. Neither reaches Python's recursion limit."""
    fails_with(wrap("conv c : f=1 c=" + opener * 10_000 + "1" + closer * 10_000), "characters long")
    fails_with(wrap("conv c : f=1 c=" + (opener * 5_000 + "\n") * 2 + "1"), "syntax error")
    fails_with(wrap("conv c : f=1 c=2 table=" + "[" * 4_000 + "]" * 4_000), "nested more than")


def test_deep_parentheses_within_a_line_are_just_grouping():
    a = archcalc.analyze(archcalc.loads(wrap("conv c : f=1 c=" + "(" * 4_000 + "8" + ")" * 4_000)))
    assert a.rows[-1].out_shape == (8, 8, 8)


def test_a_million_character_line():
    fails_with(wrap("relu; " * 170_000), "line 4 is 1,020,004 characters long; the limit is 10,000")
    fails_with(wrap("conv c : f=1 c=" + "9" * 1_000_000), "characters long")
    fails_with(wrap("conv c : f=1 c=" + "1+" * 500_000 + "1"), "characters long")


def test_a_long_number_is_refused_before_it_is_converted():
    fails_with(wrap("conv c : f=1 c=" + "9" * 4_500), "a number of 4,500 digits")


def test_widths_of_ten_to_the_thirty_are_counted_exactly():
    w = 10**30
    text = (f"network N {{\n    input x : (8, 8, 3)\n    conv a : f=3 p=1 c={w}\n"
            f"    conv b : f=3 p=1 c={w}\n    gap\n    fc out : {w}\n}}\n")
    a = archcalc.analyze(archcalc.loads(text))
    # a: (3*3*3 + 1)*w params, 8*8*w*27 MACs; b: (9*w + 1)*w params, 8*8*w*9*w MACs; fc: w*w + w
    assert a.row("a").params == 28 * w and a.row("a").macs == 64 * 27 * w
    assert a.row("b").params == 9 * w * w + w and a.row("b").macs == 64 * 9 * w * w
    assert a.row("out").params == w * w + w
    assert a.totals["params"] == 28 * w + 9 * w * w + w + w * w + w
    assert all(type(v) is int for v in a.totals.values())


def test_sizes_at_the_limit_are_refused_with_the_limit():
    fails_with(wrap(f"conv c : f=1 c={10**40}"), "value too large: 41 digits; sizes have at most 40")
    fails_with(wrap(f"conv c : f=1 c={10**20}*{10**20}"), "value too large")
    with pytest.raises(SpecError, match="41 digits"):
        archcalc.analyze(archcalc.loads("network N(H=8) {\n    input x : (H, H, 3)\n}\n"), at={"H": 10**40})


def test_an_input_of_a_billion_squared_is_analysed_statically():
    n = 10**9
    text = (f"network Huge {{\n    input x : ({n}, {n}, 3)\n    conv c1 : f=3 c=64\n"
            f"    maxpool p1 : f=2 s=2\n    adaptive_avgpool a : {n // 1000}\n    gap\n    fc out : 10\n}}\n")

    def run():
        run.a = archcalc.analyze(archcalc.loads(text))
    assert peak_mib(run) < 64
    a = run.a
    side = n - 2
    assert a.row("c1").out_shape == (side, side, 64)
    assert a.row("c1").macs == side * side * 64 * 27
    assert a.row("p1").out_shape == (side // 2, side // 2, 64)
    assert a.row("a").out_shape == (n // 1000, n // 1000, 64)
    assert a.totals["activations"] == (side * side * 64 + (side // 2) ** 2 * 64 + (n // 1000) ** 2 * 64
                                       + 64 + 10 + 3 * n * n)


def test_adaptive_pool_window_sums_match_the_windows():
    from archcalc.kinds import adaptive_window_sum, adaptive_windows
    for n in range(1, 40):
        for o in range(1, 40):
            assert adaptive_window_sum(n, o) == sum(adaptive_windows(n, o))


def test_a_symbolic_size_halved_too_often_is_refused_quickly():
    text = ("network N(H) {\n    input x : (H, H, 3)\n    repeat 1000 {\n"
            "        maxpool : f=3 s=2 round=ceil\n        conv : f=3 s=2 c=3\n    }\n}\n")
    fails_with(text, "too complex to follow symbolically", limit_mib=256)


def test_block_arguments_cannot_grow_an_expression_exponentially():
    blocks = "".join(f"block b{i}(c) {{\n    b{i + 1} inner : c*(c + 1)\n}}\n" for i in range(40))
    text = blocks + ("block b40(c) {\n    conv : f=1 c=c\n}\n"
                     "network N(w=2) {\n    input x : (8, 8, 3)\n    b0 top : w\n}\n")
    fails_with(text, "expression too large")


# ---------------------------------------------------------------- arrays: data, never pickles

def pickled_array(path: Path, made: Path):
    """An .npz/.npy whose object array would, if unpickled, create the file `made`."""
    import numpy as np

    class Payload:
        def __reduce__(self):
            return (Path.touch, (made,))

    array = np.empty(1, dtype=object)
    array[0] = Payload()
    if path.suffix == ".npz":
        np.savez(path, **{"c1/w": array})
    else:
        np.save(path, array, allow_pickle=True)


@pytest.mark.skipif("run" not in COMMANDS, reason="no 'run' command yet")
@pytest.mark.parametrize("option, name", [("--weights", "w.npz"), ("--input", "x.npy")])
def test_pickled_arrays_are_refused_and_never_unpickled(option, name, tmp_path, capsys):
    spec = tmp_path / "n.arch"
    spec.write_text("network N {\n    input x : (8, 8, 3)\n    conv c1 : f=3 c=8\n}\n")
    made = tmp_path / "made-by-pickle"
    pickled_array(tmp_path / name, made)
    status = main(["run", str(spec), option, str(tmp_path / name)])
    _, err = capsys.readouterr()
    assert status == 1 and "Traceback" not in err and err.startswith("error:"), err
    assert not made.exists()


def test_a_quarter_million_statements_are_refused_before_parsing():
    text = "network N {\n    input x : (8, 8, 3)\n" + ("relu; " * 1_000 + "\n") * 1_000 + "}\n"
    fails_with(text, f"more than {syntax.MAX_STATEMENTS:,} statements")
