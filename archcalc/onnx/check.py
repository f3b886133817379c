"""Checks of a model's structure, made before anything is read from it: a model that breaks
ONNX's own rules is refused with every fault named, never half imported or met later as a
NumPy error deep in a handler.

What is checked: names and operator types that are UTF-8 text; each tensor written by one
node only (and never over a graph input or an initializer); `auto_pad` one of ONNX's four values; a Conv's `kernel_shape` the shape of its
weight; no negative dimension in an input or an initializer; an initializer's data as long as
its dimensions say, and no larger than MAX_TENSOR_ELEMENTS; an external-data file long enough
for the tensor it should hold. External data is checked here and only then read.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import SpecError
from .common import escaped

AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
MAX_TENSOR_ELEMENTS = 2**31  # 8 GiB of float32: beyond any CNN's largest weight (VGG fc6: 10^8)


def check_model(onnx, model, file: str, folder: Path | None = None) -> None:
    """Raise a SpecError listing every fault of `model`; `folder` holds its external data
    (None: the model came as an object, so external data cannot be read)."""
    g = model.graph
    faults = list(texts(g))  # first: every later check reads these names as text
    faults = faults or [*inputs(g), *initializers(onnx, g, folder), *nodes(onnx, g)]
    if faults:
        raise SpecError(f"{escaped(file)}: the model is invalid: {len(faults)} fault(s)", None,
                        tuple(faults))


def where(i, node) -> str:
    return f"node {i} '{escaped(node.name)}'" if node.name else f"node {i}"


def texts(g):
    """Names and operator types that are not UTF-8 (protobuf hands them over as bytes)."""
    for what, values in (("graph input", g.input), ("graph output", g.output),
                         ("initializer", g.initializer)):
        for i, v in enumerate(values):
            if isinstance(v.name, bytes):
                yield f"{what} {i}: its name is not UTF-8 text"
    for i, node in enumerate(g.node):
        fields = {"name": [node.name], "op_type": [node.op_type], "domain": [node.domain],
                  "inputs": node.input, "outputs": node.output}
        for field, values in fields.items():
            if any(isinstance(v, bytes) for v in values):
                yield f"node {i}: its {field} is not UTF-8 text"


def inputs(g):
    for value in g.input:
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim if d.HasField("dim_value")]
        if any(d < 0 for d in dims):
            yield f"input '{escaped(value.name)}': negative dimension in {dims}"


def initializers(onnx, g, folder):
    for t in g.initializer:
        name, dims = escaped(t.name), list(t.dims)
        if any(d < 0 for d in dims):
            yield f"initializer '{name}': negative dimension in {dims}"
            continue
        n = 1
        for d in dims:
            n *= d
        if n > MAX_TENSOR_ELEMENTS:
            yield (f"initializer '{name}': dims {dims} make {n:,} elements, over the limit of "
                   f"{MAX_TENSOR_ELEMENTS:,}")
            continue
        fault = data_fault(onnx, t, n, folder)
        if fault:
            yield f"initializer '{name}': {fault}"


def data_fault(onnx, t, n, folder) -> str | None:
    """Why the tensor's data cannot fill its dims, or None."""
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    except Exception:  # an unknown or packed (4-bit) type: the reader will say what it is
        return None
    if t.data_location == onnx.TensorProto.EXTERNAL:
        return external_fault(t, n * itemsize, folder)
    if t.HasField("raw_data"):
        have, want = len(t.raw_data), n * itemsize
        return None if have == want else \
            f"dims {list(t.dims)} need {want:,} bytes of data, the model holds {have:,}"
    field = onnx.helper.tensor_dtype_to_field(t.data_type)
    have = len(getattr(t, field))
    want = 2 * n if t.data_type in (onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128) else n
    return None if have == want else \
        f"dims {list(t.dims)} need {want:,} values, the model holds {have:,}"


def external_fault(t, want: int, folder) -> str | None:
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    if folder is None:
        return f"its data is in the external file '{escaped(location)}', which was not read"
    try:
        offset, length = int(info.get("offset", 0)), int(info.get("length", want))
    except ValueError:
        return "its external data has an offset or length that is not a number"
    if length != want:
        return f"dims {list(t.dims)} need {want:,} bytes, its external data gives {length:,}"
    path = folder / location
    try:
        size = os.stat(path).st_size
    except OSError:
        return None  # onnx's reader says why (missing, or outside the model's folder)
    if size < offset + want:
        return (f"the external file '{escaped(location)}' holds {size:,} bytes; the tensor needs "
                f"{want:,} from offset {offset:,}")
    return None


def nodes(onnx, g):
    writers = {name: "a graph input" for name in (v.name for v in g.input)}
    writers.update({t.name: "an initializer" for t in g.initializer})
    shapes = {t.name: list(t.dims) for t in g.initializer}
    for i, node in enumerate(g.node):
        for out in node.output:
            if not out:
                continue
            if out in writers:
                yield f"{where(i, node)}: writes tensor '{escaped(out)}', which {writers[out]} writes already"
            else:
                writers[out] = where(i, node)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        auto = attrs.get("auto_pad")
        if auto is not None:
            auto = auto.decode("utf-8", "replace") if isinstance(auto, bytes) else str(auto)
            if auto not in AUTO_PAD:
                yield (f"{where(i, node)}: {node.op_type} with auto_pad '{escaped(auto)}', not "
                       f"one of {', '.join(AUTO_PAD)}")
        if node.op_type == "Conv" and "kernel_shape" in attrs and len(node.input) > 1:
            weight = shapes.get(node.input[1])
            kernel = list(attrs["kernel_shape"])
            if weight is not None and weight[2:] != kernel:
                yield (f"{where(i, node)}: Conv with kernel_shape {kernel}, but its weight "
                       f"'{escaped(node.input[1])}' has shape {weight} (kernel {weight[2:]})")
