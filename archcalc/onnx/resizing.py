"""Handlers of Resize and Upsample: archcalc's upsample (PyTorch's nn.Upsample), nearest or
bilinear, by a whole factor or to a size; any other resizing is refused with the reason."""
from __future__ import annotations

import numpy as np

from .common import Unsupported, attr_or_input, need_map, same
from ..sizes import is_int

HALF_PIXEL = ("half_pixel", "pytorch_half_pixel")  # the same for outputs of more than 1 pixel


def resize(ctx, node):
    """Resize (and Upsample, opsets 7-9) as archcalc's upsample, PyTorch's nn.Upsample:
    nearest with asymmetric coordinates and floor, or half_pixel coordinates rounded by a whole
    factor (both pick input floor(i n/n_out)); linear with half_pixel coordinates is bilinear
    (align_corners=False)."""
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    old = node.op_type == "Upsample" or ctx.opset < 11  # asymmetric, floor: no attributes yet
    coords = "asymmetric" if old else a.get("coordinate_transformation_mode", "half_pixel")
    rounding = "floor" if old else a.get("nearest_mode", "round_prefer_floor")
    for key, plain in (("antialias", 0), ("keep_aspect_ratio_policy", "stretch"), ("axes", None)):
        if a.get(key, plain) != plain:
            raise Unsupported(f"{node.op_type} with {key}={a[key]}")
    target = resize_target(ctx, node, a, x, old)
    mode = a.get("mode", "nearest")
    if mode == "nearest" and (coords, rounding) == ("asymmetric", "floor"):
        return ctx.emit(node, "upsample", [x], 4, mode="nearest", **target)
    if mode == "nearest" and coords in HALF_PIXEL and rounding.startswith("round_prefer") and \
            whole_factor(ctx.shape(x), target):
        return ctx.emit(node, "upsample", [x], 4, mode="nearest", **target)
    if mode == "linear" and coords in HALF_PIXEL:
        return ctx.emit(node, "upsample", [x], 4, mode="bilinear", **target)
    how = f"mode {mode}" + (f", nearest_mode {rounding}" if mode == "nearest" else "")
    raise Unsupported(f"{node.op_type} in {how} with coordinate_transformation_mode {coords} "
                      "(archcalc's upsample is PyTorch's nearest, and bilinear with align_corners=False)")


def resize_target(ctx, node, a, x, old) -> dict:
    """{'scale': k} for scales (1, 1, k, k) with a whole k, {'size': (n_H, n_W)} for sizes."""
    sizes = None if old else attr_or_input(ctx, node, a, "sizes", 3)
    sizes = [v.item() if isinstance(v, np.generic) else v
             for v in np.asarray(sizes if sizes is not None else [], dtype=object).reshape(-1)]
    if sizes:
        if len(sizes) != 4:
            raise Unsupported(f"{node.op_type} to {len(sizes)}-D sizes")
        n, c, n_H, n_W = sizes
        if not (same(n, ctx.batch) and same(c, ctx.shape(x).n_C)):
            raise Unsupported(f"{node.op_type} to sizes {ctx.shape_text(sizes)}: archcalc resizes "
                              "n_H and n_W only")
        return {"size": (n_H, n_W)}
    scales = attr_or_input(ctx, node, a, "scales", 1 if old else 2)
    scales = [float(v) for v in np.asarray(scales if scales is not None else []).reshape(-1)]
    if len(scales) != 4 or scales[:2] != [1, 1] or scales[2] != scales[3] or \
            scales[2] < 1 or not scales[2].is_integer():
        raise Unsupported(f"{node.op_type} by scales {scales}: archcalc's upsample takes one whole "
                          "factor for n_H and n_W, or sizes")
    return {"scale": int(scales[2])}


def whole_factor(x, target) -> bool:
    """Whether the output is a whole multiple of the input along both axes."""
    if "scale" in target:
        return True
    return all(is_int(n) and is_int(o) and o % n == 0 for n, o in zip((x.n_H, x.n_W), target["size"]))
