"""Element-wise layers: activations, normalisation, dropout."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

from ..errors import RuleError
from ..sizes import decimal
from .base import Cost, Op, Out, arg, elements


@dataclass(frozen=True)
class Activation(Op):
    def cost(self, ins, out):
        return Cost(other=elements(out))


@dataclass(frozen=True)
class ReLU(Activation):
    kind: ClassVar[str] = "relu"
    rectifier: ClassVar[bool] = True
    runs_in_conv: ClassVar[bool] = True


@dataclass(frozen=True)
class Tanh(Activation):
    kind: ClassVar[str] = "tanh"


@dataclass(frozen=True)
class Sigmoid(Activation):
    kind: ClassVar[str] = "sigmoid"


@dataclass(frozen=True)
class Softmax(Op):
    kind: ClassVar[str] = "softmax"

    def cost(self, ins, out):
        return Cost(other=3 * elements(out))  # exp, add to the sum, divide


@dataclass(frozen=True)
class Dropout(Op):
    kind: ClassVar[str] = "dropout"
    keeps_sign: ClassVar[bool] = True
    view: ClassVar[bool] = True  # at inference
    rate: object = arg("real", Fraction(1, 2), positional=0)

    def out(self, ins, strict=False):
        if not 0 <= self.rate < 1:
            raise RuleError(f"argument 'rate' must be at least 0 and below 1, got "
                            f"{decimal(Fraction(self.rate))}",
                            "rate is the share of units dropped while training: 1 drops them all",
                            argument="rate")
        return Out(ins[0])


@dataclass(frozen=True)
class BatchNorm(Op):
    kind: ClassVar[str] = "batchnorm"
    keeps_sign: ClassVar[bool] = True
    folds_into_conv: ClassVar[bool] = True
    eps: object = arg("real", Fraction(1, 100000))

    def cost(self, ins, out):
        n_C = out.n_C  # gamma and beta learnt; running mean and variance are state
        return Cost(weights=2 * n_C, state=2 * n_C, other=2 * elements(out))

    def weights(self, ins):
        n_C = ins[0].n_C  # gamma, beta learnt; the running mean and variance
        return {"gamma": (n_C,), "beta": (n_C,), "mean": (n_C,), "var": (n_C,)}


@dataclass(frozen=True)
class LRN(Op):
    """AlexNet's local response normalisation across `size` neighbouring channels."""
    kind: ClassVar[str] = "lrn"
    keeps_sign: ClassVar[bool] = True
    size: object = arg("size", 5, positional=0)
    alpha: object = arg("real", Fraction(1, 10000))
    beta: object = arg("real", Fraction(3, 4))
    k: object = arg("real", 2)

    def cost(self, ins, out):
        # size squares, size - 1 adds, scale by alpha, add k, the power, one divide
        return Cost(other=elements(out) * (2 * self.size + 3))


@dataclass(frozen=True)
class GELU(Activation):
    """y = x Phi(x) = x/2 (1 + erf(x/sqrt(2))) (approximate=none), or PyTorch's tanh form
    x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (approximate=tanh); ViT, ConvNeXt."""
    kind: ClassVar[str] = "gelu"
    approximate: str = arg("gelu_form", "none")


@dataclass(frozen=True)
class ELU(Activation):
    """y = x for x > 0, alpha (e^x - 1) otherwise."""
    kind: ClassVar[str] = "elu"
    alpha: object = arg("real", 1, positional=0)
