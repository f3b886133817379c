"""archcalc: the arithmetic of convolutional networks, checked before anyone trains them."""
from __future__ import annotations

from pathlib import Path

from .analysis import Analysis, Row, analyze
from .errors import SpecError
from .executor import Result, run
from .graph import build
from .syntax import MAX_SOURCE_CHARS, parse

__version__ = "0.1.0"


def loads(text: str, file: str = "<spec>"):
    """Spec text -> layer graph (networkx DiGraph), symbols left free."""
    return build(parse(text, file))


def load(path):
    """A spec file -> layer graph; an ONNX model (.onnx) -> the same kind of graph, with its
    weights in graph.graph["weights"] (archcalc.onnx_import; needs the onnx extra)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        from .onnx_import import load_onnx  # onnx is optional: imported only when asked for
        return load_onnx(path)
    return loads(read_spec(path), str(path))


def read_spec(path: Path) -> str:
    """The text of a spec file: a regular file, at most MAX_SOURCE_CHARS of UTF-8 (a device such
    as /dev/zero or a huge file is refused before it is read)."""
    try:
        if not path.is_file():
            reason = "no such file" if not path.exists() else "not a regular file"
            raise SpecError(f"cannot read spec '{path}': {reason}")
        with path.open("rb") as f:
            data = f.read(MAX_SOURCE_CHARS * 4 + 1)  # UTF-8 takes at most 4 bytes a character
        text = data.decode("utf-8")
    except OSError as e:
        raise SpecError(f"cannot read spec '{path}': {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"cannot read spec '{path}': not UTF-8 text (byte {e.start + 1} is "
                        f"{data[e.start]:#04x})") from None
    if len(data) > MAX_SOURCE_CHARS * 4:
        raise SpecError(f"cannot read spec '{path}': larger than {MAX_SOURCE_CHARS:,} characters")
    return text


__all__ = ["Analysis", "Result", "Row", "SpecError", "analyze", "load", "loads", "run", "__version__"]
