"""Weights: seeded initialisation, and .npz files keyed by layer name.

An array's key is 'LAYER/KEY' ('conv1/W', 'layer1.b0.bn1/gamma'), KEY and shape given by the
layer kind's weight layout (`Op.weights`). Initialisation, as a user would expect it:
- conv and fc kernels W: He uniform (variance 2/fan_in) when the layer's output goes on to a
  ReLU, leaky or clipped (through BatchNorm, pooling, dropout, adds or concats), Glorot
  uniform otherwise (tanh, sigmoid, softmax, the logits); fan_in = f_h*f_w*n_C_prev/groups,
  fan_out = f_h*f_w*n_C (n_C_prev and n_C for fc);
- biases b and BatchNorm's beta and running mean 0, gamma and running variance 1;
- LeNet-5's subsampling coefficients 1/f^2 (the window's average), RBF prototypes +1/-1
  (the paper's stylised bitmaps had +1/-1 pixels).
Each layer draws from its own generator, seeded by (seed, layer name), so adding a layer does
not change the weights of the others.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import SpecError, did_you_mean

def key(layer: str, name: str) -> str:
    return f"{layer}/{name}"


def initialise(graph, ops: dict, expected: dict, seed: int, dtype) -> dict:
    """{layer: {key: array}} for every layer that has weights."""
    return {layer: initial(graph, layer, ops[layer], shapes, seed, np.dtype(dtype))
            for layer, shapes in expected.items() if shapes}


def initial(graph, layer, op, shapes, seed, dtype) -> dict:
    rng = np.random.default_rng([seed, zlib.crc32(layer.encode())])
    out = {}
    for name, shape in shapes.items():
        if name == "W":
            out[name] = kernel_init(rng, op, shape, feeds_relu(graph, layer), dtype)
        elif name in ("W_qkv", "W_o", "cls", "pos"):  # attention and token embeddings
            out[name] = glorot(rng, shape, dtype)
        elif name == "P":
            out[name] = np.where(rng.random(shape) < 0.5, -1, 1).astype(dtype)
        elif name == "coeff":
            out[name] = np.full(shape, 1 / op.f ** 2, dtype)
        else:
            out[name] = np.full(shape, 1 if name in ("gamma", "var", "gain") else 0, dtype)
    return out


def kernel_init(rng, op, shape, relu: bool, dtype):
    """Uniform on [-limit, limit]: He (variance 2/fan_in) before a ReLU, Glorot (variance
    2/(fan_in + fan_out)) otherwise. Uniform rather than normal: the same variance, drawn
    twice as fast (VGG-16's fc6 alone has 103 million weights)."""
    c = op.c if hasattr(op, "c") else shape[-1]  # dwconv's c is m*n_C_prev, W's last axis
    fan_in = int(np.prod(shape)) // c
    # the window's taps times c: (f_h, f_w, n_C_prev/groups, c) for conv and conv_hw,
    # (f, f, taps) for a conv through a table, (n_C_prev, c) for fc
    fan_out = (int(np.prod(shape[:2])) if len(shape) > 2 else 1) * c
    limit = np.sqrt(6 / fan_in) if relu else np.sqrt(6 / (fan_in + fan_out))
    w = rng.random(shape, dtype=dtype)
    w *= dtype.type(2 * limit)
    w -= dtype.type(limit)
    return w


def glorot(rng, shape, dtype):
    """Uniform with variance 2/(fan_in + fan_out) for a matrix (rows, columns); a vector
    as one row."""
    rows, cols = (1, shape[0]) if len(shape) == 1 else shape
    limit = dtype.type(np.sqrt(6 / (rows + cols)))
    return (rng.random(shape, dtype=dtype) * 2 - 1) * limit


def feeds_relu(graph, layer) -> bool:
    """Whether the layer's output reaches a ReLU (or a leaky or clipped one) through layers
    that keep its sign's meaning."""
    seen, todo = set(), list(graph.successors(layer))
    while todo:
        name = todo.pop()
        op = graph.nodes[name]["layer"].op
        if op.rectifier:
            return True
        if op.keeps_sign and name not in seen:
            seen.add(name)
            todo += graph.successors(name)
    return False


# ---------------------------------------------------------------- files

def save(path, weights: dict) -> None:
    """Write {layer: {key: array}} as one .npz, arrays keyed 'LAYER/KEY'."""
    flat = {key(layer, name): a for layer, arrays in weights.items() for name, a in arrays.items()}
    try:
        with open(path, "wb") as f:  # a file object: np.savez would otherwise append '.npz'
            np.savez(f, **flat)
    except OSError as e:
        raise SpecError(f"cannot write weights '{path}': {e.strerror or e}") from None


def weights_for(graph, ops: dict, expected: dict, weights, seed: int, dtype) -> dict:
    """{layer: {key: array}}: seeded initialisation when `weights` is None, else the weights
    given (see `given`), checked against the `expected` shapes."""
    if weights is None:
        return initialise(graph, ops, expected, seed, dtype)
    shapes = {key(layer, name): shape for layer, arrays in expected.items()
              for name, shape in arrays.items()}
    flat, source = given(weights, shapes)
    return fit(flat, expected, graph, dtype, source)


def given(weights, shapes: dict | None = None) -> tuple[dict, str]:
    """Weights as a user gives them -> ({'LAYER/KEY': array}, what they are called in a
    message): an .npz path, {'LAYER/KEY': array} or {layer: {key: array}}. `shapes`
    {'LAYER/KEY': shape}, when known, lets a file's arrays be checked before they are read."""
    if isinstance(weights, (str, Path)):
        return read(weights, shapes), f"'{weights}'"
    flat = {}
    for k, v in dict(weights).items():
        flat.update({key(k, name): a for name, a in v.items()} if isinstance(v, dict) else {k: v})
    return flat, "the weights given"


# A weights file may claim any size in a few bytes (an .npy header, a zip member's declared
# size, a zip bomb): each member's header is read first, and only arrays of the expected shape
# are read, within this limit (the executor's default memory limit).
MAX_WEIGHT_BYTES = 8 * 2**30
NPY_MAGIC = b"\x93NUMPY"


class Header(NamedTuple):
    shape: tuple
    dtype: np.dtype
    nbytes: int


def read(path, shapes: dict | None = None) -> dict:
    """The arrays of an .npz file, loaded without pickle (a weights file is data, not code).
    An array whose header gives another shape than `shapes` expects is not read: a stand-in
    of its shape and dtype, costing nothing, lets `fit` say what is wrong with it."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if f.read(len(NPY_MAGIC)) == NPY_MAGIC:
                raise SpecError(f"weights '{path}' hold a single array, not an .npz archive of "
                                "arrays keyed 'LAYER/KEY'")
        with zipfile.ZipFile(path) as z:
            headers = {info.filename[:-4]: (info, member_header(z, info)) for info in z.infolist()}
            wanted = [k for k, (_, h) in headers.items() if shapes is None or shapes.get(k) == h.shape]
            bound(path, {k: headers[k][1] for k in wanted})
            wanted, out = set(wanted), {}
            for k, (info, h) in headers.items():
                if k not in wanted:
                    out[k] = np.broadcast_to(np.zeros((), h.dtype), h.shape)
                    continue
                with z.open(info) as f:
                    out[k] = np.lib.format.read_array(f, allow_pickle=False)
            return out
    except OSError as e:
        raise SpecError(f"cannot read weights '{path}': {e.strerror or e}") from None
    except (ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise SpecError(f"weights '{path}' is not a readable .npz archive: {e}") from None


def member_header(z, info) -> Header:
    """The shape and dtype an .npz member's .npy header claims, checked against the size the
    zip declares for the member (what inflating it may produce), without reading its data."""
    if not info.filename.endswith(".npy"):
        raise ValueError(f"member '{info.filename}' is not an .npy array")
    with z.open(info) as f:
        shape, dtype, nbytes, data_offset = array_header(f, f"member '{info.filename}'")
    if info.file_size != data_offset + nbytes:
        raise ValueError(f"member '{info.filename}' declares {info.file_size:,} bytes, but its "
                         f"header's {shape} of {dtype} needs {data_offset + nbytes:,}")
    return Header(tuple(shape), dtype, nbytes)


def array_header(f, what: str) -> tuple[tuple, np.dtype, int, int]:
    """(shape, dtype, data bytes, data offset) from the .npy header at f's position, without
    reading the data; ValueError if it is not one."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"{what} is .npy format {version}, not 1.0 or 2.0")
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _, dtype = read_header(f)
    if dtype.hasobject:
        raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
    return tuple(shape), dtype, int(np.prod(shape, dtype=object)) * dtype.itemsize, f.tell()


def bound(path, headers: dict) -> None:
    """Refuse arrays whose data, all together, would pass MAX_WEIGHT_BYTES."""
    total = sum(h.nbytes for h in headers.values())
    if total > MAX_WEIGHT_BYTES:
        k, h = max(headers.items(), key=lambda kv: kv[1].nbytes)
        raise SpecError(f"weights '{path}' hold {total:,} bytes of arrays, over the limit of "
                        f"{MAX_WEIGHT_BYTES:,}", None,
                        (f"the largest, '{k}', is {h.shape} of {h.dtype}: {h.nbytes:,} bytes",))


def fit(flat: dict, expected: dict, graph, dtype, source: str) -> dict:
    """Check a flat {'LAYER/KEY': array} mapping against the spec's weight shapes and return
    {layer: {key: array in dtype}}; a SpecError names the layer and the expected shape."""
    wanted = {key(layer, name): (layer, name, shape)
              for layer, shapes in expected.items() for name, shape in shapes.items()}
    for k in flat:
        if k not in wanted:
            hint = did_you_mean(k, wanted)
            raise SpecError(f"{source} has an array '{k}' that no layer of the network takes", None,
                            ((hint,) if hint else ()) + ("arrays are keyed 'LAYER/KEY', e.g. 'conv1/W'",))
    out = {}
    for k, (layer, name, shape) in wanted.items():
        node = graph.nodes[layer]["layer"]
        where = f"{node.kind} '{layer}'"
        if k not in flat:
            raise SpecError(f"{where}: {source} has no array '{k}' (expected shape {shape})", node.span)
        a = np.asarray(flat[k])
        if a.shape != shape:
            raise SpecError(f"{where}: weights '{k}' in {source} have shape {a.shape}, the spec "
                            f"expects {shape}", node.span)
        if a.dtype.kind not in "fiu":
            raise SpecError(f"{where}: weights '{k}' in {source} are {a.dtype}, not real numbers",
                            node.span)
        out.setdefault(layer, {})[name] = np.ascontiguousarray(a, dtype=dtype)
    return out
