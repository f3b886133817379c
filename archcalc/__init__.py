"""archcalc: the arithmetic of convolutional networks, checked before anyone trains them."""
from __future__ import annotations

from pathlib import Path

from .analysis import Analysis, Row, analyze
from .errors import SpecError
from .graph import build
from .syntax import parse

__version__ = "0.1.0"


def loads(text: str, file: str = "<spec>"):
    """Spec text -> layer graph (networkx DiGraph), symbols left free."""
    return build(parse(text, file))


def load(path) -> "networkx.DiGraph":
    """A spec file -> layer graph."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"cannot read spec '{path}': {getattr(e, 'strerror', None) or e}") from None
    return loads(text, str(path))


__all__ = ["Analysis", "Row", "SpecError", "analyze", "load", "loads", "__version__"]
