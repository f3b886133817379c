"""Kinds that real exports of modern CNNs need (MobileNet, ShuffleNet, EfficientNet, ...)."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar


from ..errors import RuleError
from ..sizes import (decimal, differ, exact_div, is_int, is_integer, is_nonnegative, is_positive, product,
                     ratio, show)
from .base import Cost, Op, Out, Shape, Traffic, arg, elements
from .elementwise import Activation
from .windowed import check_groups, filter_cost, filter_family, merged, window_size


# MobileNet (clip = ReLU6, hardswish), EfficientNet (swish, squeeze-and-excitation: mul),
# ShuffleNet (shuffle, slice), TensorFlow exports (pad), and the rest of what real exports hold.

@dataclass(frozen=True)
class LeakyReLU(Activation):
    """y = x for x > 0, alpha*x otherwise."""
    kind: ClassVar[str] = "leaky_relu"
    rectifier: ClassVar[bool] = True
    alpha: object = arg("real", Fraction(1, 100), positional=0)


@dataclass(frozen=True)
class Clip(Activation):
    """y = min(max(x, lo), hi); MobileNet's ReLU6 is clip lo=0 hi=6."""
    kind: ClassVar[str] = "clip"
    rectifier: ClassVar[bool] = True  # ReLU6
    lo: object = arg("real", 0)
    hi: object = arg("real", 6)

    def out(self, ins, strict=False):
        if self.hi < self.lo:
            raise RuleError(f"hi={decimal(Fraction(self.hi))} is below lo={decimal(Fraction(self.lo))}",
                            argument="hi")
        return Out(ins[0])


@dataclass(frozen=True)
class HardSigmoid(Activation):
    """y = max(0, min(1, alpha*x + beta)); PyTorch's defaults (ONNX's are alpha=0.2)."""
    kind: ClassVar[str] = "hardsigmoid"
    alpha: object = arg("real", Fraction(1, 6))
    beta: object = arg("real", Fraction(1, 2))


@dataclass(frozen=True)
class HardSwish(Activation):
    """y = x * hardsigmoid(x) = x * max(0, min(1, x/6 + 1/2)) (MobileNetV3)."""
    kind: ClassVar[str] = "hardswish"


@dataclass(frozen=True)
class Swish(Activation):
    """y = x * sigmoid(x) (SiLU; EfficientNet)."""
    kind: ClassVar[str] = "swish"


@dataclass(frozen=True)
class Identity(Op):
    kind: ClassVar[str] = "identity"
    keeps_sign: ClassVar[bool] = True
    view: ClassVar[bool] = True


@dataclass(frozen=True)
class Mul(Op):
    """Element-wise product of its inputs; a size of 1 spreads over the others' (squeeze-and-
    excitation: (H, W, C) times (1, 1, C) scales each map)."""
    kind: ClassVar[str] = "mul"
    arity: ClassVar[tuple] = (2, None)

    def out(self, ins, strict=False):
        sizes = []
        for letter, column in zip(Shape._fields, zip(*ins)):
            wide = [v for v in column if not (is_int(v) and v == 1)]
            for k, v in enumerate(wide[1:], start=1):
                if differ(wide[0], v):
                    raise RuleError(f"inputs differ in {letter}: {show(wide[0])} vs {show(v)}",
                                    "each size must equal the others' or be 1",
                                    *(f"input {i + 1} is {x}" for i, x in enumerate(ins)))
            sizes.append(wide[0] if wide else 1)
        return Out(Shape(*sizes))

    def cost(self, ins, out):
        return Cost(other=(len(ins) - 1) * elements(out))


@dataclass(frozen=True)
class Shuffle(Op):
    """ShuffleNet's channel shuffle: maps seen as (groups, n_C/groups), transposed."""
    kind: ClassVar[str] = "shuffle"
    groups: object = arg("size", positional=0, required=True)

    def out(self, ins, strict=False):
        n_C = ins[0].n_C
        if is_integer(ratio(n_C, self.groups)) is False:
            raise RuleError(f"groups={show(self.groups)} does not divide n_C = {show(n_C)}",
                            argument="groups")
        return Out(ins[0])


@dataclass(frozen=True)
class Pad(Op):
    """Zeros around each map, each side its own (TensorFlow's 'same' pads more at the end)."""
    kind: ClassVar[str] = "pad"
    keeps_sign: ClassVar[bool] = True
    top: object = arg("count", 0)
    bottom: object = arg("count", 0)
    left: object = arg("count", 0)
    right: object = arg("count", 0)

    def out(self, ins, strict=False):
        x = ins[0]
        return Out(Shape(x.n_H + self.top + self.bottom, x.n_W + self.left + self.right, x.n_C))


@dataclass(frozen=True)
class Slice(Op):
    """Channels start .. stop - 1 (ShuffleNet v2's channel split)."""
    kind: ClassVar[str] = "slice"
    start: object = arg("count", 0)
    stop: object = arg("size", positional=0, required=True)

    def traffic(self, ins, out, cost):
        """Copies the channels it keeps: reads and writes only those."""
        return Traffic(elements(out), 0, elements(out))

    def out(self, ins, strict=False):
        n_C = ins[0].n_C
        if is_positive(self.stop - self.start) is False:
            raise RuleError(f"empty channel range: start={show(self.start)} >= stop={show(self.stop)}")
        if is_nonnegative(n_C - self.stop) is False:
            raise RuleError(f"stop={show(self.stop)} is past the input's n_C = {show(n_C)}",
                            argument="stop")
        return Out(Shape(ins[0].n_H, ins[0].n_W, self.stop - self.start))


@dataclass(frozen=True)
class ConvHW(Op):
    """A convolution with an fh x fw filter and padding ph, pw (Inception v3's 1x7 and 7x1):
    n_H = floor((n_H_prev + 2ph - fh)/s) + 1, n_W likewise with fw, pw."""
    kind: ClassVar[str] = "conv_hw"
    weighted: ClassVar[bool] = True
    fh: object = arg("size", positional=0, required=True)
    fw: object = arg("size", positional=1, required=True)
    c: object = arg("size", positional=2, required=True)
    s: object = arg("size", 1)
    ph: object = arg("count", 0)
    pw: object = arg("count", 0)
    groups: object = arg("size", 1)
    bias: bool = arg("flag", True)

    def out(self, ins, strict=False):
        (x,) = ins
        check_groups(x.n_C, self.c, self.groups)
        n_H, note_h = window_size(x.n_H, self.fh, self.s, self.ph, "n_H", False, strict)
        n_W, note_w = window_size(x.n_W, self.fw, self.s, self.pw, "n_W", False, strict)
        return Out(Shape(n_H, n_W, self.c), merged(note_h, note_w))

    def cost(self, ins, out):
        taps = self.fh * self.fw * exact_div(self.c * ins[0].n_C, self.groups)
        return filter_cost(taps, self.c, self.bias, product(out.n_H, out.n_W), out)

    def family(self, ins):
        return filter_family(self.fh == 1 and self.fw == 1, self.groups, ins[0].n_C)

    def weights(self, ins):
        """W (fh, fw, n_C_prev/groups, n_C) and b (n_C,)."""
        W = (self.fh, self.fw, exact_div(ins[0].n_C, self.groups), self.c)
        return {"W": W} | ({"b": (self.c,)} if self.bias else {})

    def window(self, x=None):  # the receptive field is one size: the longer side
        return (self.fh if is_int(self.fh) and is_int(self.fw) and self.fh >= self.fw else self.fw), self.s


@dataclass(frozen=True)
class Upsample(Op):
    """Each map enlarged by a whole factor, n_H = scale*n_H_prev and n_W = scale*n_W_prev, or
    resized to size=(n_H, n_W); n_C unchanged (U-Net and FPN decoders). PyTorch's nn.Upsample,
    ONNX's Resize. Output row i (columns alike) reads, with r = n_H_prev/n_H:
    - nearest: input row floor(i*r) (ONNX: asymmetric, nearest_mode floor);
    - bilinear: the two input rows around (i + 1/2)*r - 1/2, clamped to the map (ONNX:
      half_pixel, linear; PyTorch: align_corners=False).
    No params and no MACs (no matrix product). Other ops: nearest 0, a copy (as pad and slice);
    bilinear 6 per output element: along each of the two axes a 2-tap interpolation
    w0*a + w1*b, 2 multiplications and 1 addition (the weights depend on the position alone:
    not counted). Receptive field: nearest reads 1 input pixel, bilinear 2 along each axis,
    and the stride becomes r, a fraction of an input pixel."""
    kind: ClassVar[str] = "upsample"
    keeps_sign: ClassVar[bool] = True
    scale: object = arg("size", None, positional=0)
    size: tuple | None = arg("hw", None)
    mode: str = arg("interpolation", "nearest")

    def out(self, ins, strict=False):
        x = ins[0]
        if self.scale is not None and self.size is not None:
            raise RuleError("takes scale or size, not both", argument="size")
        if self.size is not None:
            n_H, n_W = self.size
        elif self.scale is not None:
            n_H, n_W = product(self.scale, x.n_H), product(self.scale, x.n_W)
        else:
            raise RuleError("needs scale (a whole factor) or size=(n_H, n_W)",
                            "usage: upsample NAME : SCALE [mode=nearest|bilinear], or size=(n_H, n_W)")
        notes = () if differ(n_H, x.n_H) is False else (
            f"receptive field: an output step is {show(self.window(x)[1])} of an input step, so below "
            "this layer a window's field is its average over positions (one input step more at most)",)
        return Out(Shape(n_H, n_W, x.n_C), notes)

    def cost(self, ins, out):
        return Cost(other=0 if self.mode == "nearest" else 6 * elements(out))

    def window(self, x=None):
        taps = 1 if self.mode == "nearest" else 2
        return taps, ratio(1, self.scale) if self.size is None else ratio(x.n_H, self.size[0])


@dataclass(frozen=True)
class Crop(Op):
    """U-Net's copy and crop: the centre n_H x n_W of each map, cut to the size of the map it is
    concatenated with (`crop c <- enc4, up4`: n_H, n_W of the second input, whose values are never
    read), or to size=(n_H, n_W); n_C unchanged. Of d = n_H_prev - n_H rows, floor(d/2) are cut
    at the top and the rest at the bottom (columns: floor(d/2) on the left): an odd d cuts its
    extra row at the bottom, as the PyTorch U-Nets' centre crop x[..., d//2 : d//2 + n_H] and
    OpenCV's Crop layer do; a note says so, an error in strict mode. No params, MACs or other
    ops (a copy, as slice and pad)."""
    kind: ClassVar[str] = "crop"
    arity: ClassVar[tuple] = (1, 2)
    keeps_sign: ClassVar[bool] = True
    size_from_last: ClassVar[bool] = True  # with two inputs, the second gives only its n_H, n_W
    size: tuple | None = arg("hw", None)

    def traffic(self, ins, out, cost):
        """Copies the centre it keeps: reads and writes only that (the second input, whose size
        alone is taken, is never read)."""
        return Traffic(elements(out), 0, elements(out))

    def out(self, ins, strict=False):
        x = ins[0]
        if (len(ins) == 2) == (self.size is not None):
            raise RuleError("takes the size of a second input or size=(n_H, n_W), one of them",
                            "usage: crop NAME <- MAP, LIKE, or crop NAME <- MAP : size=(n_H, n_W)",
                            argument="size" if self.size is not None else None)
        sizes = self.size if self.size is not None else (ins[1].n_H, ins[1].n_W)
        notes = []
        for letter, n_prev, n in zip(("n_H", "n_W"), (x.n_H, x.n_W), sizes):
            d = n_prev - n
            arithmetic = f"{letter}_prev - {letter} = {show(n_prev)} - {show(n)} = {show(d)}"
            if is_nonnegative(d) is False:
                raise RuleError(f"{letter} = {show(n)} is larger than the input's {show(n_prev)}", arithmetic,
                                f"input 1 is {x}" + (f", input 2 is {ins[1]}" if len(ins) == 2 else ""))
            if is_int(d) and d % 2:
                if strict:
                    raise RuleError(f"the crop of {letter} is not centred: {d} to cut is odd", arithmetic,
                                    f"floor({d}/2) = {d // 2} would be cut before, {d - d // 2} after")
                notes.append(f"{letter}: {show(n_prev)} - {show(n)} = {d} to cut is odd: {d // 2} at the top "
                             f"(left), {d - d // 2} at the bottom (right)")
        notes = merged(*notes) if len(notes) == 2 else tuple(notes)
        return Out(Shape(*sizes, x.n_C), notes)
