"""Read a network from where it is written: spec text (.arch, through lang/) or an ONNX model
(.onnx, through onnx/; needs the onnx extra)."""
from __future__ import annotations

import errno
import stat
from pathlib import Path

from .errors import SpecError
from .lang.build import build
from .lang.syntax import MAX_SOURCE_CHARS, parse
from .network import Network


def loads(text: str, file: str = "<spec>") -> Network:
    """Spec text -> Network, symbols left free."""
    return build(parse(text, file))


def load(path) -> Network:
    """A spec file -> Network; an ONNX model (.onnx) -> the same kind of Network, with the
    model's weights in `Network.weights` and its layout in `Network.layout` (archcalc.onnx;
    needs the onnx extra)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        from .onnx.importer import load_onnx  # onnx is optional: imported only when asked for
        return load_onnx(path)
    return loads(read_spec(path), str(path))


def read_spec(path: Path) -> str:
    """The text of a spec file: a regular file, at most MAX_SOURCE_CHARS of UTF-8 (a device such
    as /dev/zero or a huge file is refused before it is read)."""
    too_large = SpecError(f"cannot read spec '{path}': larger than {MAX_SOURCE_CHARS:,} characters")
    try:
        info = path.stat()  # stat, not is_file(): its errors say why
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(f"cannot read spec '{path}': not a regular file")
        if info.st_size > MAX_SOURCE_CHARS * 4:  # UTF-8 takes at most 4 bytes a character
            raise too_large  # refused from its size, before a byte is read
        with path.open("rb") as f:
            data = f.read(MAX_SOURCE_CHARS * 4 + 1)  # bounded: the file may grow meanwhile
        if len(data) > MAX_SOURCE_CHARS * 4:
            raise too_large  # before decoding
        return data.decode("utf-8")
    except OSError as e:
        raise SpecError(f"cannot read spec '{path}': {why(e)}") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"cannot read spec '{path}': not UTF-8 text (byte {e.start + 1} is "
                        f"{data[e.start]:#04x})") from None


# What the system's error means for a path a user typed (ENOENT and ENOTDIR: nothing there).
REASONS = {errno.ENOENT: "no such file", errno.ENOTDIR: "no such file",
           errno.ELOOP: "a loop of symbolic links (or too many links in a row)",
           errno.ENAMETOOLONG: "the path or one of its names is too long for the system"}


def why(e: OSError) -> str:
    return REASONS.get(e.errno) or e.strerror or str(e)
