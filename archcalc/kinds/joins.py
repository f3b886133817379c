"""Joins and the input: add (residual), concat (Inception)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


from ..errors import RuleError
from ..sizes import (differ, show, total)
from .base import Cost, Op, Out, Shape, arg, elements


@dataclass(frozen=True)
class Add(Op):
    kind: ClassVar[str] = "add"
    arity: ClassVar[tuple] = (2, None)
    join: ClassVar[bool] = True
    keeps_sign: ClassVar[bool] = True

    def out(self, ins, strict=False):
        first = ins[0]
        for k, x in enumerate(ins[1:], start=1):
            for letter, a, b in zip(Shape._fields, first, x):
                if differ(a, b):
                    raise RuleError(f"inputs differ in {letter}: {show(a)} vs {show(b)}",
                                    f"input 1 is {first}, input {k + 1} is {x}")
        return Out(first)

    def cost(self, ins, out):
        return Cost(other=(len(ins) - 1) * elements(out))

    def takes_rectifier(self):
        return True  # ResNet's add -> ReLU: one pass over the sum instead of two


@dataclass(frozen=True)
class Concat(Op):
    """Joins along the channels (Inception): n_H and n_W must agree."""
    kind: ClassVar[str] = "concat"
    arity: ClassVar[tuple] = (1, None)
    join: ClassVar[bool] = True
    keeps_sign: ClassVar[bool] = True

    def out(self, ins, strict=False):
        first = ins[0]
        for k, x in enumerate(ins[1:], start=1):
            for letter, a, b in (("n_H", first.n_H, x.n_H), ("n_W", first.n_W, x.n_W)):
                if differ(a, b):
                    raise RuleError(f"inputs differ in {letter}: {show(a)} vs {show(b)}",
                                    f"input 1 is {first}, input {k + 1} is {x}")
        return Out(Shape(first.n_H, first.n_W, total(x.n_C for x in ins)))


@dataclass(frozen=True)
class Input(Op):
    kind: ClassVar[str] = "input"
    arity: ClassVar[tuple] = (0, 0)
    network_input: ClassVar[bool] = True
    shape: tuple = arg("shape", positional=0, required=True)

    def out(self, ins, strict=False):
        return Out(Shape(*self.shape))
