"""Windowed layers: convolutions and pooling, n_H = floor((n_H_prev + 2p - f)/s) + 1."""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

import sympy

from ..errors import RuleError
from ..sizes import (ceil_div, decimal, differ, exact_div, expr, floor_div, is_int, is_integer, is_nonnegative,
                     is_positive, norm, product, ratio, show, total)
from .base import Cost, Op, Out, Shape, arg, elements


def window_size(n, f, s, p, letter, ceil=False, strict=False):
    """n_out = floor((n_prev + 2p - f)/s) + 1 (ceil on request), with its arithmetic.

    Returns (n_out, note or None); raises RuleError when the window does not fit or, in strict
    mode, when the division is inexact."""
    span = n + 2 * p - f
    formula = f"{letter} = ({letter}_prev + 2p - f)/s + 1"

    def worked():  # the arithmetic as the user reads it, built only when shown (sympy prints slowly)
        return f"({show(n)} + 2*{show(p)} - {show(f)})/{show(s)} + 1"

    if is_nonnegative(span) is False:
        raise RuleError(f"window larger than its padded input in {letter}",
                        f"{letter}_prev + 2p = {show(n)} + 2*{show(p)} = {show(n + 2 * p)} < f = {show(f)}")
    if is_int(span) and is_int(s) and is_int(n) and is_int(p):
        exact = Fraction(span, s) + 1
        if exact.denominator != 1 and strict:
            raise RuleError(f"output {letter} is not an integer", f"{formula} = {worked()} = {show(exact)}")
        if ceil:  # windows start at k*s; one that would start in the right padding is dropped
            size = min(ceil_div(span, s), (n + p - 1) // s) + 1
        else:
            size = span // s + 1
        if size == exact:
            return size, None
        return size, f"{letter}: {worked()} = {decimal(exact)} -> {size}"
    if strict and is_integer(span / s) is False:
        raise RuleError(f"output {letter} is not an integer", f"{formula} = {worked()}")
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
    return Out(Shape(n_H, n_W, n_C), merged(note_h, note_w))


def merged(note_h, note_w) -> tuple[str, ...]:
    """One note for n_H and n_W when both say the same arithmetic (a square input)."""
    if note_h and note_w and note_h[len("n_H"):] == note_w[len("n_W"):]:
        return ("n_H, n_W" + note_h[len("n_H"):],)
    return tuple(n for n in (note_h, note_w) if n)


def same_padding(f_eff):
    if is_int(f_eff) and f_eff % 2 == 0:
        raise RuleError(f"p=same needs an odd filter; the effective f is {f_eff}",
                        "same padding p = (f - 1)/2 is not an integer for an even f")
    return floor_div(f_eff - 1, 2)


def check_groups(n_C_prev, c, groups):
    """A grouped convolution splits the input and output channels into `groups` equal parts."""
    for what, value in (("n_C_prev", n_C_prev), ("c", c)):
        if is_integer(ratio(value, groups)) is False:
            raise RuleError(f"groups={show(groups)} does not divide {what} = {show(value)}",
                            f"{what}/groups = {show(value)}/{show(groups)} is not an integer")


def filter_cost(taps, n_C, bias, positions, out) -> Cost:
    """A layer of n_C filters of `taps` weights in all, each applied at `positions` (an output
    pixel of a conv, an input pixel of a transposed one): params, MACs, and a bias add per output."""
    return Cost(weights=taps + (n_C if bias else 0), macs=product(positions, taps),
                other=elements(out) if bias else 0)


WIDE_GROUP = 16  # input maps per group from which a group runs as a dense conv of its own


def filter_family(one_by_one: bool, groups, n_C_prev) -> str:
    """A conv's kernel family for the latency estimate: one filter per map (depthwise), narrow
    groups (ResNeXt's 32 groups of 4 maps: each a tiny product), 1x1 (a plain matrix product),
    or dense. Wide groups (AlexNet's two towers of 48 maps) are dense convs, one per group."""
    if groups != 1 and groups == n_C_prev:
        return "depthwise"
    per_group = ratio(n_C_prev, groups)
    if groups != 1 and not (is_int(per_group) and per_group >= WIDE_GROUP):
        return "grouped"
    return "pointwise" if one_by_one else "dense"


def check_depthwise(n_C_prev, c, groups):
    """A conv with groups = c (> 1) has one filter per group: depthwise when groups is also the
    input's width. When it is not, each filter reads n_C_prev/groups maps: a valid network, but
    almost surely a mistyped width (MobileNet v1 with one 64 where 128 was meant computes 543M
    MACs instead of 569M), so it is refused. Grouped convs with c != groups (ResNeXt's 32
    groups, AlexNet's two towers, ShuffleNet's grouped 1x1) are not touched."""
    if is_positive(groups - 1) is not True or differ(c, groups) is not False:
        return
    if differ(n_C_prev, groups) is True:
        raise RuleError(f"depthwise conv (groups = c = {show(groups)}) on an input of n_C_prev = "
                        f"{show(n_C_prev)} maps",
                        "a depthwise conv has groups = c = n_C_prev; here each filter would read "
                        f"n_C_prev/groups = {show(n_C_prev)}/{show(groups)} = "
                        f"{show(ratio(n_C_prev, groups))} maps",
                        "dwconv NAME : f takes groups and c from its input", argument="groups")


@dataclass(frozen=True)
class Conv(Op):
    kind: ClassVar[str] = "conv"
    weighted: ClassVar[bool] = True
    f: object = arg("size", positional=0, required=True)
    c: object = arg("size", positional=1, required=True)
    s: object = arg("size", 1)
    p: object = arg("pad", 0)
    groups: object = arg("size", 1)
    dilation: object = arg("size", 1)
    bias: bool = arg("flag", True)
    table: tuple | None = arg("table", None)
    round: str = arg("round", "floor")
    ws: bool = arg("flag", False)
    gain: bool = arg("flag", False)
    eps: object = arg("real", Fraction(1, 1000000))

    def f_eff(self):
        return self.dilation * (self.f - 1) + 1

    def pad(self):
        return same_padding(self.f_eff()) if self.p == "same" else self.p

    def out(self, ins, strict=False):
        (x,) = ins
        self.check_channels(x.n_C)
        if self.gain and not self.ws:
            raise RuleError("gain=on scales standardised weights: it needs ws=on", argument="gain")
        if self.ws and self.table is not None:
            raise RuleError("a connection table and ws cannot be combined", argument="ws")
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
                if len(set(row)) != len(row):
                    twice = next(i for i in row if row.count(i) > 1)
                    raise RuleError(f"connection table row {j} reads map {twice} twice",
                                    argument="table")
            return
        check_groups(n_C_prev, self.c, self.groups)
        check_depthwise(n_C_prev, self.c, self.groups)

    def taps(self, n_C_prev):
        """Input maps each filter reads, summed over filters: n_C * n_C_prev/groups."""
        if self.table is not None:
            return sum(len(row) for row in self.table)
        return exact_div(self.c * n_C_prev, self.groups)

    def cost(self, ins, out):
        (x,) = ins
        taps = self.f * self.f * self.taps(x.n_C)
        cost = filter_cost(taps, self.c, self.bias, product(out.n_H, out.n_W), out)
        return cost._replace(weights=cost.weights + (self.c if self.gain else 0),
                             other=cost.other + self.standardising(taps))

    def family(self, ins):
        return filter_family(self.f == 1 and self.table is None, self.groups, ins[0].n_C)

    def standardising(self, taps):
        """Weight standardisation (NFNet's ScaledStdConv2d, WSConv2d), per filter over its
        K = f*f*n_C_prev/groups taps: the mean (K - 1 adds, 1 divide), centring (K subtracts),
        the variance (K squares, K - 1 adds, 1 divide), eps added and a square root (2), each
        tap divided by it (K), and times the filter's gain (K) with gain=on: 5K + 2 (+ K) other
        ops per filter, n_C*(5K + 2) in all, n_C*K being `taps`. No MACs: the conv's are the
        same with or without it."""
        if not self.ws:
            return 0
        return 5 * taps + 2 * self.c + (taps if self.gain else 0)

    def weights(self, ins):
        """W (f, f, n_C_prev/groups, n_C) and b (n_C,); through a connection table, filter j's
        taps packed in its row's order: W (f, f, taps)."""
        (x,) = ins
        if self.table is not None:
            shapes = {"W": (self.f, self.f, self.taps(x.n_C))}
        else:
            shapes = {"W": (self.f, self.f, exact_div(x.n_C, self.groups), self.c)}
        return shapes | ({"b": (self.c,)} if self.bias else {}) | ({"gain": (self.c,)} if self.gain else {})

    def takes_fusion(self):
        # a table's packed W has no per-filter axis to scale; a standardised W undoes a scale
        return self.table is None and not self.ws

    def window(self, x=None):
        return self.f_eff(), self.s


@dataclass(frozen=True)
class Pool(Op):

    def family(self, ins):
        return "pool"
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

    def window(self, x=None):
        return self.f, self.stride()


@dataclass(frozen=True)
class MaxPool(Pool):
    kind: ClassVar[str] = "maxpool"
    keeps_sign: ClassVar[bool] = True

    def cost(self, ins, out):
        return Cost(other=elements(out) * (self.f * self.f - 1))  # comparisons


@dataclass(frozen=True)
class AvgPool(Pool):
    kind: ClassVar[str] = "avgpool"
    keeps_sign: ClassVar[bool] = True
    count_pad: bool = arg("flag", True)  # divide by f*f even where the window covers padding

    def cost(self, ins, out):
        return Cost(other=elements(out) * self.f * self.f)  # f*f - 1 adds and one divide


@dataclass(frozen=True)
class Subsample(Pool):
    """LeNet-5's S2/S4: a window sum times a trainable coefficient plus a trainable bias."""
    kind: ClassVar[str] = "subsample"
    weighted: ClassVar[bool] = True
    f: object = arg("size", 2, positional=0)

    def cost(self, ins, out):
        # f*f - 1 adds, one multiply by the coefficient, one bias add
        return Cost(weights=2 * out.n_C, other=elements(out) * (self.f * self.f + 1))

    def weights(self, ins):
        n_C = ins[0].n_C  # a coefficient and a bias per map
        return {"coeff": (n_C,), "b": (n_C,)}


@dataclass(frozen=True)
class GlobalAvgPool(Op):
    kind: ClassVar[str] = "gap"
    global_view: ClassVar[bool] = True

    def family(self, ins):
        return "pool"

    def out(self, ins, strict=False):
        return Out(Shape(1, 1, ins[0].n_C))

    def cost(self, ins, out):
        return Cost(other=elements(ins[0]))  # n_H*n_W - 1 adds and one divide per channel


def adaptive_windows(n, o):
    """PyTorch's adaptive pooling: window i spans [floor(i*n/o), ceil((i+1)*n/o))."""
    return [ceil_div((i + 1) * n, o) - floor_div(i * n, o) for i in range(o)]


def largest_adaptive_window(n: int, o: int) -> int:
    """max(adaptive_windows(n, o)) without listing o windows (adaptive_avgpool : 10^8 listed a
    hundred million). With n = q*o + r, window i has q + ceil((a + r)/o) taps, a = i*r mod o;
    the largest a is o - gcd(r, o), so a window has q + 2 taps exactly when r does not divide o."""
    q, r = divmod(n, o)
    if r == 0:
        return q
    return q + 1 if o % r == 0 else q + 2


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
    out_size: object = arg("size", positional=0, required=True)

    def family(self, ins):
        return "pool"

    def sees_all(self, x):
        return self.out_size == 1 or x is None or not is_int(x.n_H)

    def window(self, x=None):
        """The largest of PyTorch's windows and their spacing, floor(n/o): exact when o divides
        n (VGG's 7 -> 7 is the identity, f = s = 1)."""
        return largest_adaptive_window(x.n_H, self.out_size), x.n_H // self.out_size

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
