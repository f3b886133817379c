"""What the importer and its operator tables share: the values a handler reads and makes
(`Tensor`, `Unsupported`), the readings of a node every table needs (a constant given as an
attribute or an input, axes, square windows), and the model's own weights and names.

Nothing here knows an operator: the tables (`handlers`, `reshapes`, `fold`, `functions`) sit
above this module and the `importer` above them, so imports run one way.
"""
from __future__ import annotations

import re
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from .. import kinds
from ..errors import SpecError
from ..lang.write import identifier
from ..sizes import differ, is_int


def need_onnx():
    """The onnx package, or a SpecError that says how to get it."""
    try:
        import onnx
    except ImportError:
        raise SpecError("reading and writing ONNX needs the 'onnx' package", None,
                        ("install it: pip install 'archcalc[onnx]' (onnx and onnxruntime)",)) from None
    return onnx


class Unsupported(Exception):
    """A node archcalc cannot express: the reason, for the list of every such node."""


class Dynamic(Unsupported):
    """Shape arithmetic on a symbolic size that archcalc would have to fold beyond + - * /
    (Ceil, Sqrt, Max ...): the operator and its values; the importer adds the chain."""


class Tensor(NamedTuple):
    """An activation of the model: the layer that makes it, its rank in the model (2: a vector
    (N, n), 4: a map (N, C, H, W)), and for a vector the order of its elements: ours at i is
    the model's at perm[i] (None: the same order). `last`: a map the model holds channels-last,
    (N, H, W, C), inside a Transpose(0, 2, 3, 1) ... Transpose(0, 3, 1, 2) region
    (`channels_last`); archcalc's own (H, W, C) view of it is the same. Rank 5 is a map seen as
    `splits` radix splits (N, r, C/r, H, W) (ResNeSt); archcalc keeps the map. `patch` = p: a map
    the model holds as p*p token sequences (B*P, N, C), MobileViT's unfold (`patches`)."""
    layer: str
    rank: int
    perm: tuple | None = None
    last: bool = False
    splits: int = 1
    patch: int = 1


def channel_axis(t: Tensor) -> int:
    """The model's axis of the channels: 1, or 3 for a channels-last map."""
    return 3 if t.last else 1


class ModelWeights(dict):
    """{layer: {key: array}}, the model's own; printed as what it is, not array by array."""

    def __repr__(self):
        return f"the model's weights ({len(self)} layers)"

    __str__ = __repr__


# ---------------------------------------------------------------- names and numbers

def escaped(text) -> str:
    """A name from the model as a message shows it: control characters (a terminal escape, a
    newline, a right-to-left override) written as Python escapes, so a name cannot move the
    cursor, recolour the terminal or fake a line of the message. Idempotent."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def clean_name(text: str) -> str:
    """'/layer1/layer1.0/conv1/Conv' -> 'layer1.0.conv1': the module path PyTorch puts in a
    node's name, without the operator; other names keep letters, digits, '_' and '.'."""
    parts = [p for p in text.strip("/").split("/") if p]
    if len(parts) > 1 and re.fullmatch(r"[A-Z][A-Za-z]*(_\d+)?", parts[-1]):
        parts = parts[:-1]
    path = []  # each scope repeats its parent's local name: 'branch1' then 'branch1.0'
    for part in parts:
        if path and part.startswith(path[-1] + "."):
            path[-1] = part
        else:
            path.append(part)
    return re.sub(r"[^A-Za-z0-9_.]+", "_", ".".join(path)).strip("._")


def symbol_name(text: str, taken) -> str:
    """A free symbol for a named input dimension ('height' -> height)."""
    return identifier(text, taken, fallback="S", lead="S")


def real(value) -> Fraction:
    """A float attribute as an exact, short fraction: 1e-05 -> 1/100000, 0.16666667 -> 1/6."""
    v = float(value)
    close = Fraction(v).limit_denominator(10_000)
    if v and abs(float(close) - v) <= 1e-6 * abs(v):
        return close
    return Fraction(str(np.float32(v)) if np.float32(v) == v else repr(v))  # float32's shortest


def chw_order(shape: kinds.Shape):
    """The model's index of each of our flattened elements: a (C, H, W) flatten seen in (H, W,
    C) order. None when the two orders agree (one position, or one channel)."""
    H, W, C = shape
    if not all(is_int(v) for v in shape):
        raise Unsupported(f"flattening a map of symbolic size {shape}: the order of its elements "
                          "depends on the sizes (export with fixed sizes)")
    if H * W == 1 or C == 1:
        return None
    return tuple(np.arange(C * H * W).reshape(C, H, W).transpose(1, 2, 0).ravel().tolist())


# ---------------------------------------------------------------- reading a node

def same(a, b) -> bool:
    a, b = (v.item() if isinstance(v, np.generic) else v for v in (a, b))
    return differ(a, b) is False


def square(values, what, node) -> int:
    values = list(values)
    if len(values) != 2:
        raise Unsupported(f"{node.op_type} with {len(values)}-D {what}: archcalc's layers are 2-D")
    if values[0] != values[1]:
        raise Unsupported(f"{node.op_type} with {what} {values[0]}x{values[1]}: archcalc's "
                          f"{what} are square")
    return int(values[0])


def need_map(ctx, t: Tensor, node):
    if t.rank != 4:
        raise Unsupported(f"{node.op_type} on a vector: it needs a map (N, C, H, W)")
    if t.perm is not None:
        raise Unsupported(f"{node.op_type} on a map made from a flattened vector whose elements "
                          "archcalc keeps in another order")


def symmetric(pads) -> int | None:
    return pads[0] if len(set(pads)) == 1 else None


def attr_or_input(ctx, node, a, name, position, default=None):
    """An argument given as an attribute (old opsets) or as a constant input (new ones)."""
    if name in a:
        return a[name]
    if len(node.input) > position and node.input[position]:
        value = ctx.const(node.input[position])
        if value is None:
            raise Unsupported(f"{node.op_type} whose '{name}' is computed, not a constant")
        return value.tolist() if isinstance(value, np.ndarray) else value
    return default


def slice_args(ctx, node):
    """Slice's starts and ends (flat), axes and steps (flat, or None where not given)."""
    a = ctx.attrs(node)
    starts, ends, axes, steps = (attr_or_input(ctx, node, a, name, i)
                                 for i, name in enumerate(("starts", "ends", "axes", "steps"), 1))
    return (flat(starts), flat(ends), None if axes is None else flat(axes),
            None if steps is None else flat(steps))


def flat(v) -> np.ndarray:
    return np.asarray(v).reshape(-1)


def axes_of(ctx, node, a, rank, position=1):
    axes = attr_or_input(ctx, node, a, "axes", position)
    if axes is None:
        return None
    axes = [axes] if isinstance(axes, int) else list(axes)
    return sorted(int(v) % rank for v in axes)


def reader(ctx, name, op_type):
    """The one node reading `name`, if it is an `op_type`; None otherwise."""
    n = ctx.only_reader(name)
    return n if n is not None and n.op_type == op_type else None
