"""Import of the kinds archcalc's export writes as model-local functions of the domain
'archcalc' (see `export`): TableConv, Subsample, RBF and AdaptiveAvgPool_<sizes>; an import
reads each back as the same kind, with the weights in the executor's layouts.
"""
from __future__ import annotations

import numpy as np

from .attention import ac_attention, ac_token, ac_tokens
from .common import need_map, square, symmetric


def ac_table_conv(ctx, node):
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    dense = ctx.weight(node, 1, "weight")
    rows, flat, table, start = list(a["table_rows"]), list(a["table"]), [], 0
    for n in rows:
        table.append([int(m) for m in flat[start:start + n]])
        start += n
    f = square(a["kernel_shape"], "kernels", node)
    packed = np.concatenate([dense[j, maps].transpose(1, 2, 0) for j, maps in enumerate(table)], axis=2)
    weights = {"W": packed}
    if a.get("bias", 1):
        weights["b"] = ctx.weight(node, 2, "bias")
    return ctx.emit(node, "conv", [x], 4, weights, f=f, c=len(table), table=table,
                    s=square(a.get("strides", [1, 1]), "strides", node), p=symmetric(a["pads"]),
                    dilation=square(a.get("dilations", [1, 1]), "dilations", node),
                    bias=bool(a.get("bias", 1)))


def ac_subsample(ctx, node):
    a = ctx.attrs(node)
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    weights = {"coeff": ctx.weight(node, 1, "coeff").reshape(-1), "b": ctx.weight(node, 2, "bias").reshape(-1)}
    return ctx.emit(node, "subsample", [x], 4, weights, f=square(a["kernel_shape"], "windows", node),
                    s=square(a["strides"], "strides", node), p=symmetric(a["pads"]),
                    round="ceil" if a.get("ceil_mode", 0) else "floor")


def ac_rbf(ctx, node):
    x = ctx.tensor(node.input[0])
    P = ctx.weight(node, 1, "prototypes")
    if x.perm is not None:
        P = P[:, list(x.perm)]
    return ctx.emit(node, "rbf", [x], 2, {"P": P}, c=int(P.shape[0]))


def ac_adaptive(ctx, node):
    x = ctx.tensor(node.input[0])
    need_map(ctx, x, node)
    return ctx.emit(node, "adaptive_avgpool", [x], 4, out_size=int(ctx.attrs(node)["out_size"]))


# names that end in what the function holds: AdaptiveAvgPool_<sizes> (one function per input
# size), Tokens[_cls][_pos]
PREFIXES = {"AdaptiveAvgPool_": ac_adaptive, "Tokens": ac_tokens}


class _Functions(dict):
    """op_type -> handler, by full name or by one of PREFIXES."""

    def __contains__(self, op_type):
        return dict.__contains__(self, op_type) or any(op_type.startswith(p) for p in PREFIXES)

    def __getitem__(self, op_type):
        for prefix, handler in PREFIXES.items():
            if op_type.startswith(prefix):
                return handler
        return dict.__getitem__(self, op_type)


ARCHCALC = _Functions(TableConv=ac_table_conv, Subsample=ac_subsample, RBF=ac_rbf, Attention=ac_attention, Token=ac_token,
                      PatchAttention=ac_attention)
