"""Per-position normalisation and scaling of ConvNeXt and ViT: layer norm and layer scale."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

from ..sizes import product
from .base import Cost, Op, arg, elements


@dataclass(frozen=True)
class LayerNorm(Op):
    """Over the n_C channels at each position (ConvNeXt's LayerNorm2d, ONNX LayerNormalization
    over the last axis of a channels-last tensor; ViT's LayerNorm over a token's width):
    mu = sum(x)/n_C, sigma^2 = sum((x - mu)^2)/n_C, y = gamma (x - mu)/sqrt(sigma^2 + eps) + beta.
    gamma and beta learnt, n_C each (like BatchNorm's); no running state. Other ops, 7 per
    element: the sum for mu (n_C - 1 adds and 1 divide per position), subtract mu, square, the
    sum for sigma^2 (likewise), divide by sigma, scale by gamma, shift by beta; and 2 per
    position: add eps, square root. No MACs: nothing is a matrix product."""
    kind: ClassVar[str] = "layernorm"
    keeps_sign: ClassVar[bool] = True
    eps: object = arg("real", Fraction(1, 100000))  # PyTorch's default; ConvNeXt uses 1e-6

    def cost(self, ins, out):
        return Cost(weights=2 * out.n_C, other=7 * elements(out) + 2 * product(out.n_H, out.n_W))

    def weights(self, ins):
        n_C = ins[0].n_C
        return {"gamma": (n_C,), "beta": (n_C,)}


@dataclass(frozen=True)
class Scale(Op):
    """ConvNeXt's layer scale: each channel multiplied by its own learnt factor gamma, n_C
    params. Element-wise, so no MACs: one other op per element."""
    kind: ClassVar[str] = "scale"
    keeps_sign: ClassVar[bool] = True

    def cost(self, ins, out):
        return Cost(weights=out.n_C, other=elements(out))

    def weights(self, ins):
        return {"gamma": (ins[0].n_C,)}
