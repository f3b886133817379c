"""Depthwise and narrow grouped convs by an explicit-vector microkernel (numba; imported only
when numba is there, by compiled.warm when the executor makes its first Context).

numba turns LLVM's SLP vectoriser off (numba PR 8852, for miscompilations), so a loop over
eight outputs held in registers compiles to scalars, and a loop over the channels keeps its
sums in memory (a load and a store per multiply-add: the loops this replaced ran 4-13 GMAC/s
on one core). `block` writes LLVM's vector types itself: PIXELS outputs (along an output row)
of `lanes` maps each sit in a register for the whole sum, and each step of the sum is one load
of weights (a vector) shared by the outputs, one input load per output, and one fused
multiply-add per output. The steps run as a loop: unrolled, LLVM's scheduler made one chain of
the sums, a dependent FMA at a time.

A step is one term of the sum: a tap (kh, kw) for a depthwise conv, whose inputs are vectors
of maps; a tap and an input map k of the group for a grouped conv, whose input is one number
broadcast to the group's output maps. Step t reads the input at an offset (a table per output
row: the row of its tap, in a ring of zero-bordered input rows, and its column and map) from
each output's first pixel, and its weights at t * wstep. Maps go in chunks of 8 float32 (4
float64: a 256-bit register), as many as fit in one call, then one chunk each of 4, 2 and 1 as
needed; an output row in blocks of PIXELS, whose last block computes its missing outputs from
its first pixel's inputs and stores none.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

PIXELS = 8  # outputs a block: 8 registers of sums, one of weights, one of inputs (of 16)
I32, I64 = ir.IntType(32), ir.IntType(64)

jit = njit(cache=True, nogil=True, error_model="numpy")


@intrinsic
def block(typingctx, like, y, ystep, n, x, xstep, offsets, steps, w, wstep, bias, relu, chunks, xchunk, lanes,
          broadcast):
    """For each of `chunks` chunks k of `lanes` maps: y[i*ystep + m] = bias[m] + sum over the
    steps t of in(i, t) * w[t*wstep + m], for outputs i < n of PIXELS and maps m < lanes, then
    max(., 0) if relu (NaN stays NaN); where y, w and bias move on by `lanes` numbers a chunk
    and in(i, t) is the vector (or, if broadcast, its first number in every lane) at
    x + k*xchunk + i*xstep + offsets[t]. Addresses in bytes; `like`: an array of the dtype
    (float32 or float64); lanes 8, 4, 2 or 1 (float64: 4, 2, 1), each a form of its own."""
    if not (isinstance(broadcast, types.BooleanLiteral) and like.dtype in (types.float32, types.float64)):
        return None
    splat, wide = broadcast.literal_value, like.dtype == types.float64
    sig = types.void(like, *[types.intp] * 10, types.boolean, *[types.intp] * 3, broadcast)

    def codegen(context, builder, signature, args):
        for width in (4, 2, 1) if wide else (8, 4, 2, 1):
            with builder.if_then(builder.icmp_signed("==", args[14], ir.Constant(I64, width))):
                Vectors(builder, width, wide).chunks(args[1:14], splat)
        return context.get_dummy_value()

    return sig, codegen


class Vectors:
    """LLVM IR for vectors of `lanes` numbers (float32, or float64 if wide), at byte addresses."""

    def __init__(self, builder, lanes, wide):
        self.b, self.lanes = builder, lanes
        self.itemsize = 8 if wide else 4
        self.number = ir.DoubleType() if wide else ir.FloatType()
        self.type = ir.VectorType(self.number, lanes)
        self.fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(self.type, [self.type] * 3),
                                                  f"llvm.fma.v{lanes}f{self.itemsize * 8}")

    def load(self, at, kind=None):
        return self.b.load(self.b.inttoptr(at, (kind or self.type).as_pointer()), align=self.itemsize)

    def store(self, value, at):
        self.b.store(value, self.b.inttoptr(at, self.type.as_pointer()), align=self.itemsize)

    def spread(self, at):
        """The number at `at` in every lane."""
        undefined = ir.Constant(self.type, ir.Undefined)
        one = self.b.insert_element(undefined, self.load(at, self.number), ir.Constant(I32, 0))
        return self.b.shuffle_vector(one, undefined, ir.Constant(ir.VectorType(I32, self.lanes), [0] * self.lanes))

    def rectified(self, v, relu):
        """max(v, 0) if relu: an ordered compare, so NaN stays NaN."""
        zero = ir.Constant(self.type, None)
        return self.b.select(relu, self.b.select(self.b.fcmp_ordered("<", v, zero), zero, v), v)

    def chunks(self, args, splat):
        """block's work for this width: a chunk at a time, the sums in registers."""
        y, ystep, n, x, xstep, offsets, steps, w, wstep, bias, relu, chunks, xchunk = args
        b, const = self.b, lambda v: ir.Constant(I64, v)
        # a missing output reads its block's first pixel: no address past the input is formed
        pixels = [b.select(b.icmp_signed("<", const(i), n), b.mul(xstep, const(i)), const(0)) for i in range(PIXELS)]
        sums = [cgutils.alloca_once(b, self.type) for _ in range(PIXELS)]  # registers, after mem2reg
        with cgutils.for_range(b, chunks) as each:
            maps = b.mul(each.index, const(self.lanes * self.itemsize))
            first = self.load(b.add(bias, maps))
            for s in sums:
                b.store(first, s)
            x_k, w_k = b.add(x, b.mul(each.index, xchunk)), b.add(w, maps)
            with cgutils.for_range(b, steps) as step:
                at = b.add(x_k, self.load(b.add(offsets, b.mul(step.index, const(8))), I64))
                weights = self.load(b.add(w_k, b.mul(step.index, wstep)))
                for pixel, s in zip(pixels, sums):
                    inputs = (self.spread if splat else self.load)(b.add(at, pixel))
                    b.store(b.call(self.fma, [inputs, weights, b.load(s)]), s)
            self.stores([self.rectified(b.load(s), relu) for s in sums], b.add(y, maps), ystep, n)

    def stores(self, outs, y, ystep, n):
        """outs[i] at y + i*ystep for i < n: untested when the block is full."""
        b = self.b
        at = [b.add(y, b.mul(ystep, ir.Constant(I64, i))) for i in range(PIXELS)]
        with b.if_else(b.icmp_signed("==", n, ir.Constant(I64, PIXELS))) as (full, partial):
            with full:
                for v, a in zip(outs, at):
                    self.store(v, a)
            with partial:
                for i, (v, a) in enumerate(zip(outs, at)):
                    with b.if_then(b.icmp_signed("<", ir.Constant(I64, i), n)):
                        self.store(v, a)


@jit
def chunks_for(maps, widest):
    """(lanes, chunks): as many chunks of `widest` maps (a register) as `maps` holds, else one
    chunk of the widest power of two that fits."""
    lanes = widest
    while lanes > maps:
        lanes //= 2
    return lanes, (maps // lanes if lanes == widest else 1)


@jit
def address(a):
    """a's first number's address, signed (so that differences of two may be negative)."""
    return np.int64(a.ctypes.data)


@jit
def depthwise(x, taps, bias, y, f, s, d, p, relu, ring):
    """y = x's depthwise convolution (stride s, dilation d, zero padding p, or windows past
    the edge in ceil mode) with one f x f filter per map (taps: (f*f, C)), plus bias, through a
    ReLU if asked; ring: (f-1)*d + 1 zero-bordered input rows, as compiled.depthwise_workspace."""
    n, oh, ow, C = y.shape
    item = y.itemsize  # the ring, taps and bias are y's dtype too (compiled.depthwise)
    widest = 32 // item
    offsets = np.empty(f * f, np.int64)
    loaded = np.empty(ring.shape[0], np.int64)
    for b in range(n):
        loaded[:] = SENTINEL
        for i in range(oh):
            top = i * s - p
            rows_in_ring(x, b, ring, loaded, top, f, d, p)
            first = address(ring[slot(top, 0, d, ring)])
            for kh in range(f):
                row = address(ring[slot(top, kh, d, ring)]) - first
                for kw in range(f):
                    offsets[kh * f + kw] = row + kw * d * C * item
            out = address(y[b, i])
            for j in range(0, ow, PIXELS):
                c = 0
                while c < C:
                    lanes, chunks = chunks_for(C - c, widest)
                    block(y, out + (j * C + c) * item, C * item, min(PIXELS, ow - j), first + (j * s * C + c) * item,
                          s * C * item, address(offsets), f * f, address(taps) + c * item, C * item,
                          address(bias) + c * item, relu, chunks, lanes * item, lanes, False)
                    c += chunks * lanes


@jit
def grouped(x, W, bias, y, s, p, groups, ring, relu):
    """y = a 3x3 conv of `groups` groups (W: (3, 3, c_g, M), stride s, zero padding p or
    ceil mode), plus bias, through a ReLU if asked; ring: 3 zero-bordered input rows."""
    n, oh, ow, M = y.shape
    C = x.shape[3]
    cg, mg = C // groups, M // groups
    item = y.itemsize
    widest = 32 // item
    steps = 9 * cg  # (kh, kw, k): W's first three axes, so step t's weights are at t*M
    offsets = np.empty(steps, np.int64)
    loaded = np.empty(3, np.int64)
    for b in range(n):
        loaded[:] = SENTINEL
        for i in range(oh):
            top = i * s - p
            rows_in_ring(x, b, ring, loaded, top, 3, 1, p)
            first = address(ring[slot(top, 0, 1, ring)])
            for kh in range(3):
                row = address(ring[slot(top, kh, 1, ring)]) - first
                for kw in range(3):
                    for k in range(cg):
                        offsets[(kh * 3 + kw) * cg + k] = row + (kw * C + k) * item
            out = address(y[b, i])
            for g in range(groups):  # a group's weights stay in L1 along the row
                for j in range(0, ow, PIXELS):
                    c = 0
                    while c < mg:  # the group's inputs are the same for each chunk of its maps
                        lanes, chunks = chunks_for(mg - c, widest)
                        m = (g * mg + c) * item
                        block(y, out + j * M * item + m, M * item, min(PIXELS, ow - j),
                              first + (j * s * C + g * cg) * item, s * C * item, address(offsets), steps,
                              address(W) + m, M * item, address(bias) + m, relu, chunks, 0, lanes, True)
                        c += chunks * lanes


SENTINEL = -(2**62)  # no input row has this index


@jit
def rows_in_ring(x, b, ring, loaded, top, f, d, p):
    """Make sure the ring holds input rows top, top + d, ..., top + (f-1)*d of image b, p
    columns in (rows outside the input are zeros; the border columns stay as zeroed)."""
    H, W, C = x.shape[1], x.shape[2], x.shape[3]
    for k in range(f):
        r = top + k * d
        at = slot(top, k, d, ring)
        if loaded[at] != r:
            dst = ring[at]
            if 0 <= r < H:
                src = x[b, r]
                for q in range(W):
                    for c in range(C):
                        dst[p + q, c] = src[q, c]
            else:
                for q in range(W):
                    for c in range(C):
                        dst[p + q, c] = 0
            loaded[at] = r


@jit
def slot(top, k, d, ring):
    return (top + k * d) % ring.shape[0]
