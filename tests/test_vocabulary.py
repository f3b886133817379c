"""The vocabulary is closed: every table keyed by kind covers `archcalc.kinds.KINDS` exactly.

A kind is one class in archcalc/kinds/ (its arguments, shape, cost, weight layout, receptive
field and traits); outside it only the NumPy kernel and the ONNX adapters (export, and the
operators the import reads) are keyed by kind, and the per-kind tests must reach every kind.
Adding a kind to KINDS without its kernel, its export entry, its import entry, its hand-worked
case or its loop reference fails here, naming the table.
"""
from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

import archcalc
from archcalc.kinds import KINDS
from test_ops import CASES, network_text

TESTS = Path(__file__).resolve().parent


def assert_covers(table: str, keys) -> None:
    """`keys` equal the vocabulary; otherwise name each missing and each extra kind."""
    missing, extra = sorted(set(KINDS) - set(keys)), sorted(set(keys) - set(KINDS))
    problems = ([f"{table} lacks the kind(s) {', '.join(missing)}"] if missing else []) + \
               ([f"{table} has entries for unknown kind(s) {', '.join(extra)}"] if extra else [])
    assert not problems, "; ".join(problems)


def case_kind(statement: str) -> str:
    return statement.split()[0]


def test_every_kind_has_a_kernel():
    from archcalc.executor.kernels import KERNELS
    assert_covers("archcalc.executor.kernels.KERNELS", KERNELS)
    assert all(callable(k) for k in KERNELS.values())


def test_every_kind_has_an_onnx_export():
    from archcalc.onnx.export import KINDS as EXPORTS
    assert_covers("archcalc.onnx.export.KINDS", EXPORTS)


def test_every_kind_says_which_onnx_operators_import_to_it():
    """The import's table of operators per kind (an empty entry: no operator becomes it; test_onnx
    checks that each operator listed has a handler)."""
    from archcalc.onnx.handlers import IMPORTS
    assert_covers("archcalc.onnx.handlers.IMPORTS", IMPORTS)


def test_the_transfer_head_table_names_only_kinds():
    from archcalc.practice.transfer.head import HEAD
    unknown = sorted(set(HEAD) - set(KINDS))
    assert not unknown, f"archcalc.practice.transfer.head.HEAD has entries for unknown kind(s) {unknown}"


def test_every_kind_has_a_hand_worked_case():
    assert_covers("tests/test_ops.py's CASES (hand-worked shape, params and MACs)",
                  {case_kind(statement) for _, statement, *_ in CASES})


def test_every_kind_has_a_loop_reference():
    """tests/test_kernels.py checks each kernel against a naive reference: every kind's class
    must be built there (`ops.Conv(...)`)."""
    tree = ast.parse((TESTS / "test_kernels.py").read_text())
    used = {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ops"}
    by_class = {cls.__name__: kind for kind, cls in KINDS.items()}
    assert_covers("tests/test_kernels.py (naive loop references)",
                  {by_class[name] for name in used if name in by_class})


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_weight_layout_holds_the_counted_parameters(kind):
    """Two computations that must agree: the numbers in the arrays the kind's weight layout
    declares, and its cost rule's params (learnt and fixed) and state."""
    found = [(shape, statement) for shape, statement, *_ in CASES if case_kind(statement) == kind]
    if not found:
        pytest.fail(f"{kind}: no hand-worked case in tests/test_ops.py's CASES to check its weight "
                    "layout on")
    shape, statement = found[0]
    net = archcalc.loads(network_text(shape, statement), "t.arch")
    layer = net.layers[-1]
    ins = archcalc.analyze(net).rows[-1].in_shapes
    cost = layer.op.cost(ins, layer.op.out(ins).shape)
    declared = sum(math.prod(s) for s in layer.op.weights(ins).values())
    assert declared == cost.weights + cost.fixed + cost.state, layer.op.weights(ins)
