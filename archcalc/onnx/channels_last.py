"""Channels-last regions: PyTorch code that permutes a map to (N, H, W, C) to apply layers at
each position (torchvision's ConvNeXt block: Permute(0, 2, 3, 1), LayerNorm(C), Linear(C, 4C),
GELU, Linear(4C, C), Permute(0, 3, 1, 2)), which torch.onnx writes as Transpose(0, 2, 3, 1),
LayerNormalization(axis=-1), MatMul by a (C, 4C) constant, Add bias, the erf GELU, MatMul,
Add, Transpose(0, 3, 1, 2).

The Transpose(0, 2, 3, 1) opens the region: the map keeps its layer, marked `Tensor.last`
(archcalc's (H, W, C) view is channels-last already, so nothing moves). Inside it, a MatMul by a
(C, c) constant on the last axis (with its bias Add) is the same linear map at every position:
a 1x1 conv of c filters, with the same params C c + c and MACs H W C c; LayerNormalization over
the last axis (or written out: ReduceMean over the last axis ...) is layernorm; a ReduceMean over
axes 1 and 2 is a global average pool; element-wise operators act per position. The
Transpose(0, 3, 1, 2) closes it. Any other operator there is refused: its axes would mean
other things.
"""
from __future__ import annotations

from .common import Unsupported
from ..sizes import is_int, show

# the operators whose handlers read a channels-last map (the others refuse it, `check`)
READ = {"Transpose", "LayerNormalization", "MatMul", "Add", "Sum", "Mul", "Div", "Pow", "Erf",
        "Sqrt", "Gelu", "Relu", "Tanh", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "Clip",
        "Elu", "Softmax", "Dropout", "Identity", "Cast", "Flatten", "ReduceMean"}


def check(ctx, node):
    """Refuse a node on a channels-last map whose handler would read its axes as (N, C, H, W)."""
    if node.op_type in READ and node.domain in ("", "ai.onnx"):
        return
    if any(ctx.tensors[n].last for n in node.input if n in ctx.tensors):
        raise Unsupported(f"{node.op_type} on a channels-last map (N, H, W, C), after a "
                          "Transpose(0, 2, 3, 1): archcalc reads there element-wise operators, "
                          "LayerNormalization over the last axis and MatMul by a constant (a 1x1 "
                          "conv), up to the Transpose(0, 3, 1, 2) back")


def transpose(ctx, node, x, perm):
    """Into a channels-last region or out of it: the same layer's map, marked so; None for
    another Transpose."""
    if perm == [0, 2, 3, 1] and x.rank == 4 and x.perm is None and not x.last:
        t = x._replace(last=True)
    elif perm == [0, 3, 1, 2] and x.last:
        t = x._replace(last=False)
    else:
        return None
    ctx.alias(node.output[0], t)
    return t


def bias_fits(bias, c, x) -> bool:
    """A bias Add after MatMul: c numbers, on the last axis of a channels-last map."""
    return bias.size == c and (not x.last or bias.shape[-1:] == (c,))


def pointwise_linear(ctx, node, x, W, b, shared, output=None):
    """MatMul by W (C, c) on the last axis of a channels-last map: a 1x1 conv, W (1, 1, C, c)."""
    n_C = ctx.shape(x).n_C
    if is_int(n_C) and W.shape[0] != n_C:
        raise Unsupported(f"MatMul whose weight reads {W.shape[0]} channels of a channels-last map "
                          f"of {show(n_C)}")
    weights = {"W": W.reshape(1, 1, *W.shape)}
    if b is not None:
        weights["b"] = b
    return ctx.emit(node, "conv", [x], 4, weights, output=output, shared=shared, f=1,
                    c=int(W.shape[1]), bias=b is not None)
