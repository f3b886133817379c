"""Golden files: `pytest --update-golden` rewrites them from the current output."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite golden files from the current output")


@pytest.fixture
def golden(request):
    update = request.config.getoption("--update-golden")

    def check(path: Path, actual: str):
        if update or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual)
            if not update:
                pytest.fail(f"golden file {path.name} was missing and has been written; rerun")
        assert actual == path.read_text(), f"output differs from {path} (pytest --update-golden)"

    return check
