"""The package's layout is its architecture: imports run downward only, with no circles, and
modules stay small. Read from the source with `ast`, so a lazy import inside a function counts
as much as one at the top of a module."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "archcalc"

# Lowest first. A module may import from its own layer and the layers below it, never above.
LAYERS = (
    ("errors", "sizes"),
    ("kinds",),
    ("network",),
    ("lang",),
    ("analysis",),
    ("executor",),
    ("onnx",),
    ("present",),
    ("practice",),
    ("source",),
    ("archcalc",),            # the facade, archcalc/__init__.py
    ("commands",),
    ("cli", "__main__"),
)
MAX_LINES = 400
LONG_REASON = "Why this module is long:"  # a module over MAX_LINES says why at its top


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def imported(name: str, path: Path, known: dict) -> set[str]:
    """The package's modules that `name` imports, wherever in the file the import stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "archcalc"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "archcalc":
                target = node.module
            else:
                continue
            for alias in node.names:  # `from . import kinds` imports the module archcalc.kinds
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return {m for m in found if m in known and m != name}


def import_graph() -> nx.DiGraph:
    known = modules()
    graph = nx.DiGraph()
    for name, path in known.items():
        graph.add_node(name)
        graph.add_edges_from((name, target) for target in imported(name, path, known))
    return graph


def layer_of(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else parts[0]
    for level, names in enumerate(LAYERS):
        if key in names:
            return level
    raise AssertionError(f"module {module} is in no layer of tests/test_layout.py's LAYERS")


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)


def test_imports_run_downward_only():
    upward = [f"{a} (layer {LAYERS[layer_of(a)][0]}) imports {b} (layer {LAYERS[layer_of(b)][0]})"
              for a, b in import_graph().edges if layer_of(b) > layer_of(a)]
    assert not upward, "imports that run upward:\n" + "\n".join(sorted(upward))


def test_no_import_circles():
    graph = import_graph()
    # a package's __init__ that re-exports its own modules is not a circle with them
    own = [(a, b) for a, b in graph.edges if b.startswith(a + ".")]
    graph.remove_edges_from(own)
    circles = [c for c in nx.simple_cycles(graph)]
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c + [c[0]]) for c in circles)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    path = PACKAGE / "executor" / "forward.py"
    found = imported("archcalc.executor.forward", path, modules())
    assert "archcalc.analysis.analyzer" in found and "archcalc.executor.kernels" in found


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_are_small_or_say_why(name):
    path = modules()[name]
    lines = path.read_text().count("\n")
    if lines > MAX_LINES:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert LONG_REASON in doc, (f"{path.relative_to(PACKAGE.parent)} has {lines} lines (over "
                                    f"{MAX_LINES}); split it, or say why at its top ('{LONG_REASON}')")


def test_every_folder_of_modules_is_a_package_the_wheel_takes():
    """setuptools finds packages by their __init__.py: a folder without one would be left out
    of the wheel (and the grammar must travel with lang/)."""
    folders = {p.parent for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    assert [str(f.relative_to(PACKAGE)) for f in sorted(folders) if not (f / "__init__.py").exists()] == []
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    assert 'include = ["archcalc*"]' in pyproject and '"archcalc.lang" = ["grammar.lark"]' in pyproject
