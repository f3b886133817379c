"""The closed vocabulary: every layer kind by its name in the DSL."""
from __future__ import annotations

from .base import Op
from .convs import ConvTranspose, DWConv
from .elementwise import BatchNorm, Dropout, ELU, GELU, LRN, ReLU, Sigmoid, Softmax, Tanh
from .joins import Add, Concat, Input
from .modern import (Clip, ConvHW, Crop, HardSigmoid, HardSwish, Identity, LeakyReLU, Mul, Pad, Shuffle, Slice, Swish,
                     Upsample)
from .normalisation import LayerNorm, Scale
from .radix import RadixSoftmax, SplitSum
from .tokens import Attention, Token, Tokens
from .vectors import FC, Flatten, RBF
from .windowed import AdaptiveAvgPool, AvgPool, Conv, GlobalAvgPool, MaxPool, Subsample


KINDS: dict[str, type[Op]] = {op.kind: op for op in (
    Input, Conv, MaxPool, AvgPool, Subsample, GlobalAvgPool, AdaptiveAvgPool, Flatten, FC, RBF,
    ReLU, Tanh, Sigmoid, Softmax, Dropout, BatchNorm, LRN, Add, Concat,
    LeakyReLU, Clip, HardSigmoid, HardSwish, Swish, Identity, Mul, Shuffle, Pad, Slice, ConvHW, Upsample,
    LayerNorm, Scale, GELU, ELU, Tokens, Token, Attention,
    ConvTranspose, DWConv, Crop,
    SplitSum, RadixSoftmax)}
