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
def block(typingctx, like, y, ystep, n, x, xstep, offsets, steps, w, wstep, bias, relu, chunks, xchunk, lanes, broadcast):
    """For each of `chunks` chunks k of `lanes` maps: y[i*ystep + m] = bias[m] + sum over the
    steps t of in(i, t) * w[t*wstep + m], for outputs i < n of PIXELS and maps m < lanes, then
    max(., 0) if relu (NaN stays NaN); where y, w and bias move on by `lanes` numbers a chunk
    and in(i, t) is the vector (or its first number broadcast) at x + k*xchunk + i*xstep +
    offsets[t]. Addresses in bytes; `like`: an array of the dtype (float32 or float64)."""
    if not (isinstance(lanes, types.IntegerLiteral) and isinstance(broadcast, types.BooleanLiteral)
            and like.dtype in (types.float32, types.float64)):
        return None
    n_lanes, splat, wide = lanes.literal_value, broadcast.literal_value, like.dtype == types.float64
    address = types.intp
    sig = types.void(like, *[address] * 10, types.boolean, address, address, lanes, broadcast)

    def codegen(context, builder, signature, args):
        _, y_at, y_step, n_out, x_at, x_step, offsets_at, n_steps, w_at, w_step, bias_at, rectify = args[:12]
        n_chunks, x_chunk = args[12:14]
        number = ir.DoubleType() if wide else ir.FloatType()
        itemsize = 8 if wide else 4
        vector = ir.VectorType(number, n_lanes)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector, [vector] * 3),
                                             f"llvm.fma.v{n_lanes}f{itemsize * 8}")

        def const(v):
            return ir.Constant(I64, v)

        def load(at, kind):
            return builder.load(builder.inttoptr(at, kind.as_pointer()), align=itemsize)

        def spread(at):
            undefined = ir.Constant(vector, ir.Undefined)
            one = builder.insert_element(undefined, load(at, number), ir.Constant(I32, 0))
            return builder.shuffle_vector(one, undefined, ir.Constant(ir.VectorType(I32, n_lanes), [0] * n_lanes))

        # a missing output reads its block's first pixel: no address past the input is formed
        pixels = [builder.select(builder.icmp_signed("<", const(i), n_out), builder.mul(x_step, const(i)), const(0))
                  for i in range(PIXELS)]
        full = builder.icmp_signed("==", n_out, const(PIXELS))
        zero = ir.Constant(vector, None)
        sums = [cgutils.alloca_once(builder, vector) for _ in range(PIXELS)]  # registers, after mem2reg
        with cgutils.for_range(builder, n_chunks) as each:
            k = each.index
            maps = builder.mul(k, const(n_lanes * itemsize))
            x_k = builder.add(x_at, builder.mul(k, x_chunk))
            w_k, y_k = builder.add(w_at, maps), builder.add(y_at, maps)
            first = load(builder.add(bias_at, maps), vector)
            for s in sums:
                builder.store(first, s)
            with cgutils.for_range(builder, n_steps) as loop:
                t = loop.index
                at_t = builder.add(x_k, load(builder.add(offsets_at, builder.mul(t, const(8))), I64))
                weights = load(builder.add(w_k, builder.mul(t, w_step)), vector)
                for pixel, s in zip(pixels, sums):
                    at = builder.add(at_t, pixel)
                    inputs = spread(at) if splat else load(at, vector)
                    builder.store(builder.call(fma, [inputs, weights, builder.load(s)]), s)
            outs = []
            for s in sums:
                v = builder.load(s)
                outs.append(builder.select(rectify, builder.select(builder.fcmp_ordered("<", v, zero), zero, v), v))
            with builder.if_else(full) as (all_, some):
                with all_:  # the usual block: eight stores, no tests
                    for i, v in enumerate(outs):
                        store(builder, v, builder.add(y_k, builder.mul(y_step, const(i))), vector, itemsize)
                with some:
                    for i, v in enumerate(outs):
                        with builder.if_then(builder.icmp_signed("<", const(i), n_out)):
                            store(builder, v, builder.add(y_k, builder.mul(y_step, const(i))), vector, itemsize)
        return context.get_dummy_value()

    return sig, codegen


def store(builder, value, at, vector, itemsize):
    builder.store(value, builder.inttoptr(at, vector.as_pointer()), align=itemsize)


@jit
def chunk(like, y, ystep, n, x, xstep, offsets, steps, w, wstep, bias, relu, chunks, xchunk, lanes, broadcast):
    """block for `lanes` (8, 4, 2 or 1) known only when running: one compiled form each (the
    arguments written out: numba passes no literal through *args)."""
    if broadcast:
        if lanes == 8:
            block(like, y, ystep, n, x, xstep, offsets, steps, w, wstep, bias, relu, chunks, xchunk, 8, True)
        elif lanes == 4:
            block(like, y, ystep, n, x, xstep, offsets, steps, w, wstep, bias, relu, chunks, xchunk, 4, True)
        elif lanes == 2:
            block(like, y, ystep, n, x, xstep, offsets, steps, w, wstep, bias, relu, chunks, xchunk, 2, True)
        else:
            block(like, y, ystep, n, x, xstep, offsets, steps, w, wstep, bias, relu, chunks, xchunk, 1, True)
    elif lanes == 8:
        block(like, y, ystep, n, x, xstep, offsets, steps, w, wstep, bias, relu, chunks, xchunk, 8, False)
    elif lanes == 4:
        block(like, y, ystep, n, x, xstep, offsets, steps, w, wstep, bias, relu, chunks, xchunk, 4, False)
    elif lanes == 2:
        block(like, y, ystep, n, x, xstep, offsets, steps, w, wstep, bias, relu, chunks, xchunk, 2, False)
    else:
        block(like, y, ystep, n, x, xstep, offsets, steps, w, wstep, bias, relu, chunks, xchunk, 1, False)


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
                    chunk(y, out + (j * C + c) * item, C * item, min(PIXELS, ow - j), first + (j * s * C + c) * item,
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
                        chunk(y, out + j * M * item + m, M * item, min(PIXELS, ow - j),
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
