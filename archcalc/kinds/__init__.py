"""The closed vocabulary of layer kinds: hyperparameters, shape rule and cost rule side by side.

Every rule is written in the course's letters: an input of (n_H_prev, n_W_prev, n_C_prev),
filters of f x f, stride s, padding p, n_C output channels. Counting conventions:
- weights: learnable parameters (weights and biases; BatchNorm's gamma and beta);
- fixed: parameters that are not learnt (LeNet-5's RBF prototypes);
- state: BatchNorm's running mean and variance, shown apart from params;
- macs: multiply-accumulates of conv and fc layers, bias excluded;
- other: every other arithmetic operation (bias adds, activations, pooling, BN, adds, softmax).

One module per family (windowed, vectors, elementwise, joins, modern, normalisation, tokens, convs,
radix), the vocabulary in
`kinds.KINDS`, and argument checking in `arguments`; this package re-exports them all, so
`ops.Conv`, `ops.KINDS` and `ops.make` read as one module.
"""
from __future__ import annotations

from .base import (
    Cost, Op, Out, Shape, Traffic, arg, elements)
from .windowed import (
    AdaptiveAvgPool, AvgPool, Conv, GlobalAvgPool, MAX_SYMBOLIC_WINDOWS, MaxPool,
    Pool, Subsample, adaptive_window_sum, adaptive_windows, same_padding, window_size,
    windowed_out)
from .vectors import (
    FC, Flatten, RBF, vector_length)
from .elementwise import (
    Activation, BatchNorm, Dropout, ELU, GELU, LRN, ReLU, Sigmoid,
    Softmax, Tanh)
from .joins import (
    Add, Concat, Input)
from .modern import (
    Clip, ConvHW, Crop, HardSigmoid, HardSwish, Identity, LeakyReLU,
    Mul, Pad, Shuffle, Slice, Swish, Upsample)
from .normalisation import (
    LayerNorm, Scale)
from .tokens import (
    Attention, Token, Tokens, positions)
from .convs import (
    ConvTranspose, DWConv)
from .radix import (
    RadixSoftmax, SplitSum)
from .registry import (
    KINDS)
from .arguments import (
    WORDS, check_size, check_value, default_text, hyperparameters, make,
    make_checked, show_any, usage)

__all__ = [
    "Cost",
    "Op",
    "Out",
    "Shape",
    "arg",
    "elements",
    "AdaptiveAvgPool",
    "AvgPool",
    "Conv",
    "GlobalAvgPool",
    "MAX_SYMBOLIC_WINDOWS",
    "MaxPool",
    "Pool",
    "Subsample",
    "adaptive_window_sum",
    "adaptive_windows",
    "same_padding",
    "window_size",
    "windowed_out",
    "FC",
    "Flatten",
    "RBF",
    "vector_length",
    "Activation",
    "BatchNorm",
    "Dropout",
    "ELU",
    "GELU",
    "LRN",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "Add",
    "Concat",
    "Input",
    "Clip",
    "ConvHW",
    "Crop",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "LeakyReLU",
    "Mul",
    "Pad",
    "Shuffle",
    "Slice",
    "Swish",
    "Upsample",
    "LayerNorm",
    "Scale",
    "Attention",
    "Token",
    "Tokens",
    "positions",
    "ConvTranspose",
    "DWConv",
    "RadixSoftmax",
    "SplitSum",
    "KINDS",
    "WORDS",
    "check_size",
    "check_value",
    "default_text",
    "hyperparameters",
    "make",
    "make_checked",
    "show_any",
    "usage",
]
