"""More convolutions: the transposed convolution (U-Net's up-convolution) and the depthwise
convolution that reads its width from its input (MobileNet), so a spec need not restate it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import RuleError
from ..sizes import ceil_div, exact_div, is_positive, product, ratio, show
from .base import Op, Out, Shape, arg
from .windowed import Conv, check_groups, filter_cost, filter_family


@dataclass(frozen=True)
class ConvTranspose(Op):
    """The transposed convolution (PyTorch's ConvTranspose2d, ONNX's ConvTranspose): every input
    pixel scatters f x f taps into the output, s pixels apart, and the border p is cut off:
        n_H = (n_H_prev - 1)*s - 2p + f + out_pad      (n_W alike; out_pad < s)
    params = (f*f*n_C_prev/groups)*n_C + n_C (bias);
    MACs = n_H_prev*n_W_prev*n_C_prev * f*f*n_C/groups: every input pixel times every filter tap,
    the count of fvcore and PyTorch's profilers, taps that land in the cut border included (U-Net's
    2x2 up-convolution, 28 x 28 x 1024 -> 56 x 56 x 512: 28*28*1024 * 2*2*512 = 1,644,167,168).
    Bias adds are other ops, one per output element. Weights W (f, f, n_C/groups, n_C_prev): the W
    of the convolution from n_C maps to n_C_prev that this layer transposes."""
    kind: ClassVar[str] = "conv_transpose"
    weighted: ClassVar[bool] = True
    f: object = arg("size", positional=0, required=True)
    c: object = arg("size", positional=1, required=True)
    s: object = arg("size", 1)
    p: object = arg("count", 0)
    out_pad: object = arg("count", 0)
    groups: object = arg("size", 1)
    bias: bool = arg("flag", True)

    def out(self, ins, strict=False):
        (x,) = ins
        check_groups(x.n_C, self.c, self.groups)
        if is_positive(self.s - self.out_pad) is False:
            raise RuleError(f"out_pad={show(self.out_pad)} must be below the stride s={show(self.s)}",
                            "out_pad adds rows only a stride can leave uncovered", argument="out_pad")
        sizes = []
        for letter, n in (("n_H", x.n_H), ("n_W", x.n_W)):
            size = (n - 1) * self.s - 2 * self.p + self.f + self.out_pad
            if is_positive(size) is False:
                raise RuleError(f"output {letter} is not positive",
                                f"{letter} = ({letter}_prev - 1)*s - 2p + f + out_pad = ({show(n)} - 1)*"
                                f"{show(self.s)} - 2*{show(self.p)} + {show(self.f)} + {show(self.out_pad)}"
                                f" = {show(size)}")
            sizes.append(size)
        return Out(Shape(*sizes, self.c))

    def cost(self, ins, out):
        (x,) = ins
        taps = self.f * self.f * exact_div(self.c * x.n_C, self.groups)
        return filter_cost(taps, self.c, self.bias, product(x.n_H, x.n_W), out)

    def family(self, ins):
        return filter_family(False, self.groups, ins[0].n_C)

    def weights(self, ins):
        W = (self.f, self.f, exact_div(self.c, self.groups), ins[0].n_C)
        return {"W": W} | ({"b": (self.c,)} if self.bias else {})

    def window(self, x=None):
        """An output pixel reads at most ceil(f/s) input pixels along an axis, and an output step
        is 1/s of an input step."""
        return ceil_div(self.f, self.s), ratio(1, self.s)


@dataclass(frozen=True)
class DWConv(Op):
    """The depthwise convolution, its width read from its input: groups = n_C_prev and
    c = m*n_C_prev (m filters per input map, the depth multiplier), so
    params = f*f*m*n_C_prev + m*n_C_prev and MACs = n_H*n_W*m*n_C_prev*f*f; every rule is the conv's
    with those values (`as_conv`)."""
    kind: ClassVar[str] = "dwconv"
    weighted: ClassVar[bool] = True
    f: object = arg("size", positional=0, required=True)
    s: object = arg("size", 1)
    p: object = arg("pad", 0)
    m: object = arg("size", 1)
    dilation: object = arg("size", 1)
    bias: bool = arg("flag", True)
    round: str = arg("round", "floor")

    def as_conv(self, n_C_prev) -> Conv:
        return Conv(f=self.f, c=product(self.m, n_C_prev), s=self.s, p=self.p, groups=n_C_prev,
                    dilation=self.dilation, bias=self.bias, round=self.round)

    def out(self, ins, strict=False):
        return self.as_conv(ins[0].n_C).out(ins, strict)

    def cost(self, ins, out):
        return self.as_conv(ins[0].n_C).cost(ins, out)

    def weights(self, ins):
        return self.as_conv(ins[0].n_C).weights(ins)

    def family(self, ins):
        return "depthwise"

    def takes_fusion(self):
        return True

    def window(self, x=None):
        return self.dilation * (self.f - 1) + 1, self.s

