"""ResNeSt's split attention (Zhang et al. 2020, "ResNeSt: Split-Attention Networks"): the two
operations on r splits of the channels that its block needs besides convs, pooling and mul.

The splits are PyTorch's reshape (N, r, n_C/r, H, W): split i holds maps i*n_C/r ..
(i+1)*n_C/r - 1. A SplitAttn block of C maps and radix r is then, in the DSL:

    conv          conv  : f=3 p=1 c=r*C groups=card*r bias=off
    batchnorm     bn0
    relu          act0
    split_sum     gap_in : r                 # x.reshape(N, r, C, H, W).sum(1)
    gap           pool
    conv          fc1   : f=1 c=A groups=card
    batchnorm     bn1
    relu          act1
    conv          fc2   : f=1 c=r*C groups=card
    radix_softmax attn  : r groups=card      # timm's RadixSoftmax
    mul           prod  <- act0, attn
    split_sum     out   : r                  # (x * attn).sum(1)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import RuleError
from ..sizes import is_integer, product, ratio, show
from .base import Cost, Op, Out, Shape, arg, elements


def check_splits(n_C, parts, what: str, argument: str):
    if is_integer(ratio(n_C, parts)) is False:
        label = what if what.isidentifier() else f"({what})"
        raise RuleError(f"{what} = {show(parts)} does not divide n_C = {show(n_C)}",
                        f"n_C/{label} = {show(n_C)}/{show(parts)} is not an integer",
                        argument=argument)


@dataclass(frozen=True)
class SplitSum(Op):
    """The sum of the r splits: output map j = sum over i of input map i*n_C/r + j, so n_C
    becomes n_C/r. No params, no MACs (a sum, not a matrix product); other ops (r - 1) per
    output element. One layer rather than r slices and an add: it is what the model computes
    (ONNX: Reshape to 5-D, ReduceSum over axis 1), and no slice copies count as activations."""
    kind: ClassVar[str] = "split_sum"
    r: object = arg("size", positional=0, required=True)

    def out(self, ins, strict=False):
        x = ins[0]
        check_splits(x.n_C, self.r, "r", "r")
        return Out(Shape(x.n_H, x.n_W, ratio(x.n_C, self.r)))

    def cost(self, ins, out):
        return Cost(other=(self.r - 1) * elements(out))


@dataclass(frozen=True)
class RadixSoftmax(Op):
    """timm's RadixSoftmax (r >= 2): at each position, a softmax across the r splits of each
    channel, the channels read in the cardinal groups' order and written in the splits' order.
    Input map g*(r*n) + i*n + j (group g of `groups`, split i, channel j of n = n_C/(r*groups):
    fc2's grouped output) holds logit i of channel g*n + j; output map i*(n_C/r) + g*n + j is
    its weight, softmax over i (PyTorch: view(N, groups, r, -1).transpose(1, 2), softmax over
    dim 1, reshape(N, -1)). With groups = 1 the order is kept. No params, no MACs; other ops
    3 per element, as softmax (exp, add to the sum, divide). timm's r = 1 is a sigmoid:
    write `sigmoid`."""
    kind: ClassVar[str] = "radix_softmax"
    r: object = arg("size", positional=0, required=True)
    groups: object = arg("size", 1)

    def out(self, ins, strict=False):
        x = ins[0]
        if self.r == 1:
            raise RuleError("r=1 has one split: softmax over it is 1 everywhere",
                            "timm's RadixSoftmax with radix 1 is a sigmoid: write `sigmoid`",
                            argument="r")
        check_splits(x.n_C, product(self.r, self.groups), "r*groups", "groups")
        return Out(x)

    def cost(self, ins, out):
        return Cost(other=3 * elements(out))
