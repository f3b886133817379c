"""Memory traffic per layer: the bytes a layer reads (its inputs, its weights) and writes (its
output) at a dtype, and its arithmetic intensity, MACs per byte. The elements come from each
kind's `traffic` rule (kinds.base.Op.traffic: each input, weight and state number read once, the
output written once; views and the network's input move nothing). Per image, like activations:
a layer's weights count once per image here; a batch of n reads them once (analysis.latency)."""
from __future__ import annotations

from fractions import Fraction

from ..errors import SpecError
from ..sizes import expr, is_int, norm

DTYPES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}
KEYS = ("input_bytes", "weight_bytes", "output_bytes")


def itemsize(dtype: str) -> int:
    if dtype not in DTYPES:
        raise SpecError(f"unknown dtype '{dtype}'", None, (f"dtypes: {', '.join(DTYPES)}",))
    return DTYPES[dtype]


def layer_bytes(op, ins, out, cost, size: int) -> dict:
    """{input_bytes, weight_bytes, output_bytes} of one layer, `size` bytes per number."""
    moved = op.traffic(ins, out, cost)
    return {key: norm(n * size) for key, n in zip(KEYS, moved)}


def traffic_bytes(row):
    """Bytes read and written."""
    return norm(row.input_bytes + row.weight_bytes + row.output_bytes)


def intensity(macs, moved):
    """MACs per byte moved, exact: a Fraction (a formula while sizes are free); None when the
    layer moves nothing."""
    if is_int(moved) and moved == 0:
        return None
    if is_int(macs) and is_int(moved):
        return Fraction(macs, moved)
    return expr(macs) / expr(moved)


def row_intensity(row):
    return intensity(row.macs, traffic_bytes(row))
