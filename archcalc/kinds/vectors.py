"""Layers that see their whole input: flatten, fc and LeNet-5's RBF output."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


from ..errors import RuleError
from ..sizes import differ
from .base import Cost, Op, Out, Shape, arg, elements


def vector_length(x: Shape, kind: str):
    if differ(x.n_H, 1) or differ(x.n_W, 1):
        raise RuleError(f"needs a vector (1, 1, n), got {x}",
                        "add 'flatten' or 'gap' before it")
    return x.n_C


@dataclass(frozen=True)
class Flatten(Op):
    kind: ClassVar[str] = "flatten"
    global_view: ClassVar[bool] = True
    view: ClassVar[bool] = True  # NHWC in C order: a reshape

    def out(self, ins, strict=False):
        return Out(Shape(1, 1, elements(ins[0])))


@dataclass(frozen=True)
class FC(Op):
    kind: ClassVar[str] = "fc"
    weighted: ClassVar[bool] = True
    global_view: ClassVar[bool] = True
    c: object = arg("size", positional=0, required=True)
    bias: bool = arg("flag", True)

    def out(self, ins, strict=False):
        vector_length(ins[0], "fc")
        return Out(Shape(1, 1, self.c))

    def cost(self, ins, out):
        n_in = ins[0].n_C
        bias = self.c if self.bias else 0
        return Cost(weights=n_in * self.c + bias, macs=n_in * self.c, other=bias)

    def family(self, ins):
        return "matmul"

    def weights(self, ins):
        """W (n_C_prev, n_C) and b (n_C,)."""
        return {"W": (ins[0].n_C, self.c)} | ({"b": (self.c,)} if self.bias else {})


@dataclass(frozen=True)
class RBF(Op):
    """LeNet-5's output: y_i = sum_j (x_j - w_ij)^2 against fixed prototypes w."""
    kind: ClassVar[str] = "rbf"
    weighted: ClassVar[bool] = True
    global_view: ClassVar[bool] = True
    c: object = arg("size", 10, positional=0)

    def out(self, ins, strict=False):
        vector_length(ins[0], "rbf")
        return Out(Shape(1, 1, self.c))

    def cost(self, ins, out):
        n_in = ins[0].n_C
        return Cost(fixed=n_in * self.c, other=3 * n_in * self.c)  # subtract, square, add

    def weights(self, ins):
        return {"P": (self.c, ins[0].n_C)}  # prototype i is row i
