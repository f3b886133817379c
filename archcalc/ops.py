"""The closed vocabulary of layer kinds: hyperparameters, shape rule and cost rule side by side.

Every rule is written in the course's letters: an input of (n_H_prev, n_W_prev, n_C_prev),
filters of f x f, stride s, padding p, n_C output channels. Counting conventions:
- weights: learnable parameters (weights and biases; BatchNorm's gamma and beta);
- fixed: parameters that are not learnt (LeNet-5's RBF prototypes);
- state: BatchNorm's running mean and variance, shown apart from params;
- macs: multiply-accumulates of conv and fc layers, bias excluded;
- other: every other arithmetic operation (bias adds, activations, pooling, BN, adds, softmax).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import ClassVar, NamedTuple

import sympy

from .errors import RuleError
from .sizes import (ceil_div, decimal, differ, exact_div, expr, floor_div, is_int, is_integer,
                    is_nonnegative, is_positive, norm, product, ratio, show, total)


class Shape(NamedTuple):
    n_H: object
    n_W: object
    n_C: object

    def __str__(self):
        return f"({show(self.n_H)}, {show(self.n_W)}, {show(self.n_C)})"


class Cost(NamedTuple):
    weights: object = 0  # learnable
    fixed: object = 0    # constant parameters, never trained
    state: object = 0    # BatchNorm running statistics
    macs: object = 0
    other: object = 0


class Out(NamedTuple):
    shape: Shape
    notes: tuple = ()


def arg(kind: str, default=None, positional: int | None = None, required=False):
    """Declares a hyperparameter: its value kind, default and positional slot."""
    return field(default=default, metadata={"kind": kind, "pos": positional, "required": required})


def elements(x: Shape):
    return product(x.n_H, x.n_W, x.n_C)


@dataclass(frozen=True)
class Op:
    kind: ClassVar[str] = ""
    arity: ClassVar[tuple] = (1, 1)      # (fewest, most) inputs; None: no upper bound
    global_view: ClassVar[bool] = False  # output sees the whole input (receptive field 'global')

    def out(self, ins: tuple[Shape, ...], strict: bool = False) -> Out:
        return Out(ins[0])

    def cost(self, ins: tuple[Shape, ...], out: Shape) -> Cost:
        return Cost()

    def window(self):
        """(effective f, s) for windowed kinds, for the receptive field; None otherwise."""
        return None


# ---------------------------------------------------------------- windowed layers

def window_size(n, f, s, p, letter, ceil=False, strict=False):
    """n_out = floor((n_prev + 2p - f)/s) + 1 (ceil on request), with its arithmetic.

    Returns (n_out, note or None); raises RuleError when the window does not fit or, in strict
    mode, when the division is inexact."""
    span = n + 2 * p - f
    formula = f"{letter} = ({letter}_prev + 2p - f)/s + 1"
    worked = f"({show(n)} + 2*{show(p)} - {show(f)})/{show(s)} + 1"
    if is_nonnegative(span) is False:
        raise RuleError(f"window larger than its padded input in {letter}",
                        f"{letter}_prev + 2p = {show(n)} + 2*{show(p)} = {show(n + 2 * p)} < f = {show(f)}")
    if is_int(span) and is_int(s) and is_int(n) and is_int(p):
        exact = Fraction(span, s) + 1
        if exact.denominator != 1 and strict:
            raise RuleError(f"output {letter} is not an integer", f"{formula} = {worked} = {show(exact)}")
        if ceil:  # windows start at k*s; one that would start in the right padding is dropped
            size = min(ceil_div(span, s), (n + p - 1) // s) + 1
        else:
            size = span // s + 1
        if size == exact:
            return size, None
        return size, f"{letter}: {worked} = {decimal(exact)} -> {size}"
    if strict and is_integer(span / s) is False:
        raise RuleError(f"output {letter} is not an integer", f"{formula} = {worked}")
    if not ceil:
        return floor_div(span, s) + 1, None
    size = ceil_div(span, s) + 1
    if is_nonnegative(f - p - s) is not True:
        # The last window may start in the padding, and is then dropped, as above: the windows
        # start at k*s <= n + p - 1. (With f >= p + s that never happens.)
        size = norm(sympy.Min(expr(size), expr(floor_div(n + p - 1, s) + 1)))
    return size, None


def windowed_out(x: Shape, n_C, f, s, p, ceil, strict) -> Out:
    n_H, note_h = window_size(x.n_H, f, s, p, "n_H", ceil, strict)
    n_W, note_w = window_size(x.n_W, f, s, p, "n_W", ceil, strict)
    notes = tuple(n for n in (note_h, note_w) if n)
    return Out(Shape(n_H, n_W, n_C), notes)


def same_padding(f_eff):
    if is_int(f_eff) and f_eff % 2 == 0:
        raise RuleError(f"p=same needs an odd filter; the effective f is {f_eff}",
                        "same padding p = (f - 1)/2 is not an integer for an even f")
    return floor_div(f_eff - 1, 2)


@dataclass(frozen=True)
class Conv(Op):
    kind: ClassVar[str] = "conv"
    f: object = arg("size", positional=0, required=True)
    c: object = arg("size", positional=1, required=True)
    s: object = arg("size", 1)
    p: object = arg("pad", 0)
    groups: object = arg("size", 1)
    dilation: object = arg("size", 1)
    bias: bool = arg("flag", True)
    table: tuple | None = arg("table", None)
    round: str = arg("round", "floor")

    def f_eff(self):
        return self.dilation * (self.f - 1) + 1

    def pad(self):
        return same_padding(self.f_eff()) if self.p == "same" else self.p

    def out(self, ins, strict=False):
        (x,) = ins
        self.check_channels(x.n_C)
        return windowed_out(x, self.c, self.f_eff(), self.s, self.pad(), self.round == "ceil", strict)

    def check_channels(self, n_C_prev):
        if self.table is not None:
            if not is_int(self.c) or len(self.table) != self.c:
                raise RuleError(f"connection table has {len(self.table)} rows for c={show(self.c)} filters")
            if self.groups != 1:
                raise RuleError("a connection table and groups cannot be combined")
            for j, row in enumerate(self.table):
                bad = [i for i in row if is_int(n_C_prev) and i >= n_C_prev]
                if bad:
                    raise RuleError(f"connection table row {j} reads map {bad[0]}, but the input "
                                    f"has n_C_prev = {show(n_C_prev)} maps (0 to {show(n_C_prev - 1)})")
            return
        for what, value in (("n_C_prev", n_C_prev), ("c", self.c)):
            if is_integer(ratio(value, self.groups)) is False:
                raise RuleError(f"groups={show(self.groups)} does not divide {what} = {show(value)}",
                                f"{what}/groups = {show(value)}/{show(self.groups)} is not an integer")

    def taps(self, n_C_prev):
        """Input maps each filter reads, summed over filters: n_C * n_C_prev/groups."""
        if self.table is not None:
            return sum(len(row) for row in self.table)
        return exact_div(self.c * n_C_prev, self.groups)

    def cost(self, ins, out):
        (x,) = ins
        weights = self.f * self.f * self.taps(x.n_C) + (self.c if self.bias else 0)
        macs = product(out.n_H, out.n_W, self.f * self.f * self.taps(x.n_C))
        return Cost(weights=weights, macs=macs, other=elements(out) if self.bias else 0)

    def window(self):
        return self.f_eff(), self.s


@dataclass(frozen=True)
class Pool(Op):
    f: object = arg("size", positional=0, required=True)
    s: object = arg("size", None, positional=1)  # defaults to f
    p: object = arg("count", 0)
    round: str = arg("round", "floor")

    def stride(self):
        return self.f if self.s is None else self.s

    def out(self, ins, strict=False):
        (x,) = ins
        if is_int(self.p) and is_int(self.f) and 2 * self.p > self.f:
            raise RuleError(f"padding p={self.p} is more than half the window f={self.f}")
        return windowed_out(x, x.n_C, self.f, self.stride(), self.p, self.round == "ceil", strict)

    def window(self):
        return self.f, self.stride()


@dataclass(frozen=True)
class MaxPool(Pool):
    kind: ClassVar[str] = "maxpool"

    def cost(self, ins, out):
        return Cost(other=elements(out) * (self.f * self.f - 1))  # comparisons


@dataclass(frozen=True)
class AvgPool(Pool):
    kind: ClassVar[str] = "avgpool"
    count_pad: bool = arg("flag", True)  # divide by f*f even where the window covers padding

    def cost(self, ins, out):
        return Cost(other=elements(out) * self.f * self.f)  # f*f - 1 adds and one divide


@dataclass(frozen=True)
class Subsample(Pool):
    """LeNet-5's S2/S4: a window sum times a trainable coefficient plus a trainable bias."""
    kind: ClassVar[str] = "subsample"
    f: object = arg("size", 2, positional=0)

    def cost(self, ins, out):
        # f*f - 1 adds, one multiply by the coefficient, one bias add
        return Cost(weights=2 * out.n_C, other=elements(out) * (self.f * self.f + 1))


@dataclass(frozen=True)
class GlobalAvgPool(Op):
    kind: ClassVar[str] = "gap"
    global_view: ClassVar[bool] = True

    def out(self, ins, strict=False):
        return Out(Shape(1, 1, ins[0].n_C))

    def cost(self, ins, out):
        return Cost(other=elements(ins[0]))  # n_H*n_W - 1 adds and one divide per channel


def adaptive_windows(n, o):
    """PyTorch's adaptive pooling: window i spans [floor(i*n/o), ceil((i+1)*n/o))."""
    return [ceil_div((i + 1) * n, o) - floor_div(i * n, o) for i in range(o)]


MAX_SYMBOLIC_WINDOWS = 1024


def adaptive_window_sum(n, o):
    """The windows' sizes summed: n + o - gcd(n, o) for numbers (each of the o windows ends
    ceil((i+1)n/o) and starts floor(in/o); they differ by one exactly where o does not divide
    i*n), so a huge o costs nothing. With a symbolic n the windows are summed one by one."""
    if is_int(n):
        return n + o - math.gcd(n, o)
    if o > MAX_SYMBOLIC_WINDOWS:
        raise RuleError(f"output size {o:,} over a symbolic input of {show(n)}: too many windows to "
                        f"sum symbolically (at most {MAX_SYMBOLIC_WINDOWS:,})",
                        "bind the symbols (--set) to count this layer")
    return total(adaptive_windows(n, o))


@dataclass(frozen=True)
class AdaptiveAvgPool(Op):
    kind: ClassVar[str] = "adaptive_avgpool"
    global_view: ClassVar[bool] = True
    out_size: object = arg("size", positional=0, required=True)

    def out(self, ins, strict=False):
        if not is_int(self.out_size):
            raise RuleError(f"the output size must be a number, got {show(self.out_size)}",
                            "the output size sets the shape: bind its symbols (--set) or give a number",
                            argument="out_size")
        return Out(Shape(self.out_size, self.out_size, ins[0].n_C))

    def cost(self, ins, out):
        (x,) = ins
        rows = adaptive_window_sum(x.n_H, self.out_size)
        cols = adaptive_window_sum(x.n_W, self.out_size)
        return Cost(other=product(rows, cols, x.n_C))


# ---------------------------------------------------------------- vectors

def vector_length(x: Shape, kind: str):
    if differ(x.n_H, 1) or differ(x.n_W, 1):
        raise RuleError(f"needs a vector (1, 1, n), got {x}",
                        "add 'flatten' or 'gap' before it")
    return x.n_C


@dataclass(frozen=True)
class Flatten(Op):
    kind: ClassVar[str] = "flatten"
    global_view: ClassVar[bool] = True

    def out(self, ins, strict=False):
        return Out(Shape(1, 1, elements(ins[0])))


@dataclass(frozen=True)
class FC(Op):
    kind: ClassVar[str] = "fc"
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


@dataclass(frozen=True)
class RBF(Op):
    """LeNet-5's output: y_i = sum_j (x_j - w_ij)^2 against fixed prototypes w."""
    kind: ClassVar[str] = "rbf"
    global_view: ClassVar[bool] = True
    c: object = arg("size", 10, positional=0)

    def out(self, ins, strict=False):
        vector_length(ins[0], "rbf")
        return Out(Shape(1, 1, self.c))

    def cost(self, ins, out):
        n_in = ins[0].n_C
        return Cost(fixed=n_in * self.c, other=3 * n_in * self.c)  # subtract, square, add


# ---------------------------------------------------------------- element-wise

@dataclass(frozen=True)
class Activation(Op):
    def cost(self, ins, out):
        return Cost(other=elements(out))


@dataclass(frozen=True)
class ReLU(Activation):
    kind: ClassVar[str] = "relu"


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
    rate: object = arg("real", Fraction(1, 2), positional=0)


@dataclass(frozen=True)
class BatchNorm(Op):
    kind: ClassVar[str] = "batchnorm"
    eps: object = arg("real", Fraction(1, 100000))

    def cost(self, ins, out):
        n_C = out.n_C  # gamma and beta learnt; running mean and variance are state
        return Cost(weights=2 * n_C, state=2 * n_C, other=2 * elements(out))


@dataclass(frozen=True)
class LRN(Op):
    """AlexNet's local response normalisation across `size` neighbouring channels."""
    kind: ClassVar[str] = "lrn"
    size: object = arg("size", 5, positional=0)
    alpha: object = arg("real", Fraction(1, 10000))
    beta: object = arg("real", Fraction(3, 4))
    k: object = arg("real", 2)

    def cost(self, ins, out):
        # size squares, size - 1 adds, scale by alpha, add k, the power, one divide
        return Cost(other=elements(out) * (2 * self.size + 3))


# ---------------------------------------------------------------- joins and the input

@dataclass(frozen=True)
class Add(Op):
    kind: ClassVar[str] = "add"
    arity: ClassVar[tuple] = (2, None)

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


@dataclass(frozen=True)
class Concat(Op):
    """Joins along the channels (Inception): n_H and n_W must agree."""
    kind: ClassVar[str] = "concat"
    arity: ClassVar[tuple] = (1, None)

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
    shape: tuple = arg("shape", positional=0, required=True)

    def out(self, ins, strict=False):
        return Out(Shape(*self.shape))


# ---------------------------------------------------------------- kinds of modern CNNs (ONNX imports)
# MobileNet (clip = ReLU6, hardswish), EfficientNet (swish, squeeze-and-excitation: mul),
# ShuffleNet (shuffle, slice), TensorFlow exports (pad), and the rest of what real exports hold.

@dataclass(frozen=True)
class LeakyReLU(Activation):
    """y = x for x > 0, alpha*x otherwise."""
    kind: ClassVar[str] = "leaky_relu"
    alpha: object = arg("real", Fraction(1, 100), positional=0)


@dataclass(frozen=True)
class Clip(Activation):
    """y = min(max(x, lo), hi); MobileNet's ReLU6 is clip lo=0 hi=6."""
    kind: ClassVar[str] = "clip"
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
        for what, value in (("n_C_prev", x.n_C), ("c", self.c)):
            if is_integer(ratio(value, self.groups)) is False:
                raise RuleError(f"groups={show(self.groups)} does not divide {what} = {show(value)}")
        n_H, note_h = window_size(x.n_H, self.fh, self.s, self.ph, "n_H", False, strict)
        n_W, note_w = window_size(x.n_W, self.fw, self.s, self.pw, "n_W", False, strict)
        return Out(Shape(n_H, n_W, self.c), tuple(n for n in (note_h, note_w) if n))

    def cost(self, ins, out):
        taps = self.fh * self.fw * exact_div(self.c * ins[0].n_C, self.groups)
        return Cost(weights=taps + (self.c if self.bias else 0), macs=product(out.n_H, out.n_W, taps),
                    other=elements(out) if self.bias else 0)

    def window(self):  # the receptive field is one size: the longer side
        return (self.fh if is_int(self.fh) and is_int(self.fw) and self.fh >= self.fw else self.fw), self.s


KINDS: dict[str, type[Op]] = {op.kind: op for op in (
    Input, Conv, MaxPool, AvgPool, Subsample, GlobalAvgPool, AdaptiveAvgPool, Flatten, FC, RBF,
    ReLU, Tanh, Sigmoid, Softmax, Dropout, BatchNorm, LRN, Add, Concat,
    LeakyReLU, Clip, HardSigmoid, HardSwish, Swish, Identity, Mul, Shuffle, Pad, Slice, ConvHW)}


# ---------------------------------------------------------------- building an op from arguments

def hyperparameters(cls: type[Op]) -> list:
    return [f for f in fields(cls)]


def make(kind: str, positional: list, keywords: dict) -> Op:
    """Build the op for `kind` from evaluated arguments; RuleError names what is wrong."""
    cls = KINDS[kind]
    params = hyperparameters(cls)
    slots = sorted((f for f in params if f.metadata["pos"] is not None), key=lambda f: f.metadata["pos"])
    if len(positional) > len(slots):
        allowed = ", ".join(f.name for f in slots) or "none"
        raise RuleError(f"takes {len(slots)} positional argument(s), got {len(positional)}",
                        f"positional arguments of {kind}: {allowed}")
    values = dict(zip((f.name for f in slots), positional))
    for key, value in keywords.items():
        if key in values:
            raise RuleError(f"argument '{key}' given twice", "once by position, once by name",
                            argument=key)
        values[key] = value
    for f in params:
        if f.name in values:
            try:
                values[f.name] = check_value(kind, f.name, f.metadata["kind"], values[f.name])
            except RuleError as e:
                e.argument = f.name
                raise
        elif f.metadata["required"]:
            raise RuleError(f"needs argument '{f.name}'", usage(cls))
    return cls(**values)


def usage(cls: type[Op]) -> str:
    parts = []
    for f in hyperparameters(cls):
        parts.append(f.name if f.metadata["required"] else f"{f.name}={default_text(f.default)}")
    return f"usage: {cls.kind} NAME : {' '.join(parts)}" if parts else f"usage: {cls.kind} NAME"


def default_text(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    return show(value) if not isinstance(value, Fraction) else decimal(value)


WORDS = {"flag": {"on": True, "off": False}, "round": {"floor": "floor", "ceil": "ceil"}}


def check_value(kind, name, value_kind, value):
    where = f"argument '{name}'"
    if value_kind in WORDS:
        words = WORDS[value_kind]
        if value not in words:
            raise RuleError(f"{where} must be one of {', '.join(words)}, got {show_any(value)}")
        return words[value]
    if value_kind == "pad" and value == "same":
        return value
    if value_kind in ("size", "count", "pad"):
        return check_size(where, value, allow_zero=value_kind != "size")
    if value_kind == "real":
        if isinstance(value, (int, Fraction)) and not isinstance(value, bool) and value >= 0:
            return value
        raise RuleError(f"{where} must be a non-negative number, got {show_any(value)}")
    if value_kind == "shape":
        if not isinstance(value, tuple) or len(value) != 3:
            raise RuleError(f"{where} must be a shape (n_H, n_W, n_C), got {show_any(value)}")
        return tuple(check_size(f"{letter} in {where}", v) for letter, v in zip(Shape._fields, value))
    if value_kind == "table":
        if not isinstance(value, list) or not all(isinstance(r, list) and r for r in value):
            raise RuleError(f"{where} must be a list of non-empty lists of input maps")
        rows = tuple(tuple(check_size(where, i, allow_zero=True) for i in row) for row in value)
        if not all(is_int(i) for row in rows for i in row):
            raise RuleError(f"{where} must list input maps by number, got {show_any(value)}")
        return rows
    raise AssertionError(value_kind)


def check_size(where, value, allow_zero=False):
    if isinstance(value, (str, tuple, list)) or isinstance(value, Fraction) and value.denominator != 1:
        raise RuleError(f"{where} must be a whole number, got {show_any(value)}")
    if isinstance(value, Fraction):
        value = int(value)
    if is_integer(value) is False:
        raise RuleError(f"{where} must be a whole number, got {show(value)}")
    good = is_nonnegative(value) if allow_zero else is_positive(value)
    if good is False:
        need = "non-negative" if allow_zero else "positive"
        raise RuleError(f"{where} must be {need}, got {show(value)}")
    return value


def show_any(value) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, tuple):
        return "(" + ", ".join(show_any(v) for v in value) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(show_any(v) for v in value) + "]"
    if isinstance(value, Fraction):
        return decimal(value)
    return show(value)


def make_checked(op: Op) -> Op:
    """Re-check an op's sizes after its symbols were bound (a width b - 16 may turn negative)."""
    for f in fields(op):
        value, value_kind = getattr(op, f.name), f.metadata["kind"]
        if value is not None and (value_kind in ("size", "count", "shape")
                                  or value_kind == "pad" and value != "same"):
            try:
                check_value(op.kind, f.name, value_kind, value)
            except RuleError as e:
                e.argument = f.name
                raise
    return op
