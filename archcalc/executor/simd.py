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
REGISTER_BYTES = 32  # AVX2's: 8 float32, 4 float64
SENTINEL = -(2**62)  # no input row has this index
I32, I64 = ir.IntType(32), ir.IntType(64)

jit = njit(cache=True, nogil=True, error_model="numpy")


@intrinsic
def block(typingctx, output, y, ystep, valid, x, xstep, offsets, steps, w, wstep, bias, relu, chunks, xchunk, lanes,
          broadcast):
    """For each of `chunks` chunks k of `lanes` maps: y[i*ystep + m] = bias[m] + sum over the
    steps t of in(i, t) * w[t*wstep + m], for outputs i < valid of PIXELS and maps m < lanes,
    then max(., 0) if relu (NaN stays NaN); where y, w and bias move on by `lanes` numbers a
    chunk and in(i, t) is the vector (or, if broadcast, its first number in every lane) at
    x + k*xchunk + i*xstep + offsets[t]. Addresses in bytes; `output`, the output array, gives
    the dtype (float32 or float64). A form of its own for each lane count: a register's worth
    (REGISTER_BYTES), half of it, ... down to 1, which also takes any other count."""
    if not (isinstance(broadcast, types.BooleanLiteral) and output.dtype in (types.float32, types.float64)):
        return None
    splat, wide = broadcast.literal_value, output.dtype == types.float64
    sig = types.void(output, *[types.intp] * 10, types.boolean, *[types.intp] * 3, broadcast)
    widest = REGISTER_BYTES // (8 if wide else 4)
    widths = [widest >> k for k in range(widest.bit_length())]  # 8, 4, 2, 1 (float64: 4, 2, 1)

    def codegen(context, builder, signature, args):
        def each_width(widths):
            if len(widths) == 1:
                return Vectors(builder, widths[0], wide).chunks(args[1:14], splat)
            with builder.if_else(builder.icmp_signed("==", args[14], ir.Constant(I64, widths[0]))) as (this, other):
                with this:
                    Vectors(builder, widths[0], wide).chunks(args[1:14], splat)
                with other:
                    each_width(widths[1:])

        each_width(widths)
        return context.get_dummy_value()

    return sig, codegen


class Vectors:
    """LLVM IR for vectors of `lanes` numbers (float32, or float64 if wide), at byte addresses."""

    def __init__(self, builder, lanes, wide):
        self.builder, self.lanes = builder, lanes
        self.itemsize = 8 if wide else 4
        self.number = ir.DoubleType() if wide else ir.FloatType()
        self.type = ir.VectorType(self.number, lanes)
        # fmuladd: one fused multiply-add where the CPU has FMA (a product and a sum where not)
        self.fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(self.type, [self.type] * 3),
                                                  f"llvm.fmuladd.v{lanes}f{self.itemsize * 8}")

    def load(self, at, kind=None):
        return self.builder.load(self.builder.inttoptr(at, (kind or self.type).as_pointer()), align=self.itemsize)

    def store(self, value, at):
        self.builder.store(value, self.builder.inttoptr(at, self.type.as_pointer()), align=self.itemsize)

    def spread(self, at):
        """The number at `at` in every lane."""
        undefined = ir.Constant(self.type, ir.Undefined)
        one = self.builder.insert_element(undefined, self.load(at, self.number), ir.Constant(I32, 0))
        return self.builder.shuffle_vector(one, undefined, ir.Constant(ir.VectorType(I32, self.lanes), [0] * self.lanes))

    def rectified(self, v, relu):
        """max(v, 0) if relu: an ordered compare, so NaN stays NaN."""
        zero = ir.Constant(self.type, None)
        return self.builder.select(relu, self.builder.select(self.builder.fcmp_ordered("<", v, zero), zero, v), v)

    def chunks(self, args, splat):
        """block's work for this width: a chunk at a time, the sums in registers."""
        y, ystep, valid, x, xstep, offsets, steps, w, wstep, bias, relu, chunks, xchunk = args
        b, const = self.builder, lambda v: ir.Constant(I64, v)
        # a missing output reads its block's first pixel: no address past the input is formed
        pixels = [b.select(b.icmp_signed("<", const(i), valid), b.mul(xstep, const(i)), const(0))
                  for i in range(PIXELS)]
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
            self.stores([self.rectified(b.load(s), relu) for s in sums], b.add(y, maps), ystep, valid)

    def stores(self, outs, y, ystep, valid):
        """outs[i] at y + i*ystep for i < valid: no compare per output when the block is full."""
        b = self.builder
        at = [b.add(y, b.mul(ystep, ir.Constant(I64, i))) for i in range(PIXELS)]
        with b.if_else(b.icmp_signed("==", valid, ir.Constant(I64, PIXELS))) as (full, partial):
            with full:
                for v, a in zip(outs, at):
                    self.store(v, a)
            with partial:
                for i, (v, a) in enumerate(zip(outs, at)):
                    with b.if_then(b.icmp_signed("<", ir.Constant(I64, i), valid)):
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
    item = y.itemsize
    check(x, ring, taps, bias, y, p, f * f * C, C, ((ow - 1) * s + (f - 1) * d + 1) * C)
    columns = np.arange(f) * (d * C * item)  # tap kw's input, from the window's first
    offsets, loaded = np.empty(f * f, np.int64), np.empty(ring.shape[0], np.int64)
    for image in range(n):
        loaded[:] = SENTINEL
        for i in range(oh):
            rows_in_ring(x, image, ring, loaded, i * s - p, f, d, p)
            origin = ring_offsets(ring, i * s - p, d, columns, offsets)
            out = address(y[image, i])
            for j in range(0, ow, PIXELS):
                along_maps(y, out + j * C * item, C * item, min(PIXELS, ow - j), origin + j * s * C * item,
                           s * C * item, offsets, address(taps), C * item, address(bias), relu, C, False)


@jit
def grouped(x, W, bias, y, s, p, groups, ring, relu):
    """y = a 3x3 conv of `groups` groups (W: (3, 3, c_g, M), stride s, zero padding p or
    ceil mode), plus bias, through a ReLU if asked; ring: 3 zero-bordered input rows."""
    n, oh, ow, M = y.shape
    C = x.shape[3]
    cg, mg = C // groups, M // groups
    item = y.itemsize
    check(x, ring, W, bias, y, p, 9 * cg * M, M, ((ow - 1) * s + 3) * C)
    # step (kh, kw, k) reads input map k of the group at tap (kh, kw): W's first three axes,
    # so its weights are at step * M
    columns = (np.arange(3 * cg) // cg * C + np.arange(3 * cg) % cg) * item
    offsets, loaded = np.empty(9 * cg, np.int64), np.empty(3, np.int64)
    for image in range(n):
        loaded[:] = SENTINEL
        for i in range(oh):
            rows_in_ring(x, image, ring, loaded, i * s - p, 3, 1, p)
            origin = ring_offsets(ring, i * s - p, 1, columns, offsets)
            out = address(y[image, i])
            for g in range(groups):  # a group's weights stay in L1 along the row
                m = g * mg * item
                for j in range(0, ow, PIXELS):
                    along_maps(y, out + j * M * item + m, M * item, min(PIXELS, ow - j),
                               origin + (j * s * C + g * cg) * item, s * C * item, offsets, address(W) + m,
                               M * item, address(bias) + m, relu, mg, True)


@jit
def along_maps(y, out, ystep, valid, x, xstep, offsets, w, wstep, bias, relu, maps, broadcast):
    """block over `maps` maps in chunks (chunks_for): a depthwise conv's inputs move on with
    its maps, a group's broadcast inputs stay (its maps all read them)."""
    item, c = y.itemsize, 0
    while c < maps:
        lanes, chunks = chunks_for(maps - c, REGISTER_BYTES // item)
        at = c * item
        if broadcast:
            block(y, out + at, ystep, valid, x, xstep, address(offsets), offsets.size, w + at, wstep, bias + at,
                  relu, chunks, 0, lanes, True)
        else:
            block(y, out + at, ystep, valid, x + at, xstep, address(offsets), offsets.size, w + at, wstep,
                  bias + at, relu, chunks, lanes * item, lanes, False)
        c += chunks * lanes


@jit
def ring_offsets(ring, top, d, columns, offsets):
    """offsets[kh*len(columns) + q] = ring row kh's address (input row top + kh*d) less row
    0's, plus columns[q]; returns row 0's address."""
    origin = address(ring[slot(top, 0, d, ring)])
    per = columns.size
    for kh in range(offsets.size // per):
        row = address(ring[slot(top, kh, d, ring)]) - origin
        for q in range(per):
            offsets[kh * per + q] = row + columns[q]
    return origin


@jit
def check(x, ring, w, bias, y, p, weights, maps, ring_row):
    """What block reads and writes by address lies in these arrays: all contiguous, of y's
    dtype, with enough weights, biases and ring columns; and rows_in_ring's copies of x's
    rows (p columns in) fit the ring (numba does not check indices)."""
    if not (ring.flags.c_contiguous and w.flags.c_contiguous and bias.flags.c_contiguous and y.flags.c_contiguous):
        raise ValueError("simd: arrays read by address must be contiguous")
    if not (ring.itemsize == w.itemsize == bias.itemsize == y.itemsize):
        raise ValueError("simd: the ring, weights and bias must be of the output's dtype")
    if w.size < weights or bias.size < maps or y.shape[3] != maps or ring.shape[1] * ring.shape[2] < ring_row:
        raise ValueError("simd: weights, bias or ring too small for the output")
    if ring.shape[2] != x.shape[3] or ring.shape[1] < x.shape[2] + p or p < 0:
        raise ValueError("simd: the ring does not hold the input's rows")


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
