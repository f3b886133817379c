"""Small ONNX models with the characteristic patterns of the common CNN families, built with
onnx.helper the way PyTorch and TensorFlow export them (test data for tests/test_onnx.py)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Builder:
    def __init__(self, name, seed=0):
        self.name, self.nodes, self.inits = name, [], []
        self.rng = np.random.default_rng(seed)
        self.count = 0

    def fresh(self, stem):
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, array, stem="c"):
        name = self.fresh(stem)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, *shape, scale=None):
        fan_in = int(np.prod(shape[1:])) or 1
        a = self.rng.standard_normal(shape) * (scale or np.sqrt(2 / fan_in))
        return self.const(a.astype(np.float32), "w")

    def node(self, op, inputs, n_out=1, name=None, **attrs):
        outs = [self.fresh(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name or self.fresh(f"/{op}"), **attrs))
        return outs[0] if n_out == 1 else outs

    def conv(self, x, cin, cout, k, s=1, p=0, group=1, bias=True, name=None, **attrs):
        kh, kw = (k, k) if isinstance(k, int) else k
        ph, pw = (p, p) if isinstance(p, int) else p
        inputs = [x, self.weight(cout, cin // group, kh, kw)]
        if bias:
            inputs.append(self.const(self.rng.standard_normal(cout).astype(np.float32) * 0.1, "b"))
        if "auto_pad" not in attrs and "pads" not in attrs:
            attrs["pads"] = [ph, pw, ph, pw]
        return self.node("Conv", inputs, name=name, kernel_shape=[kh, kw], strides=[s, s], group=group,
                         **attrs)

    def bn(self, x, c):
        r = self.rng
        return self.node("BatchNormalization", [
            x, self.const(r.uniform(0.5, 1.5, c).astype(np.float32)),
            self.const(r.uniform(-0.1, 0.1, c).astype(np.float32)),
            self.const(r.uniform(-0.1, 0.1, c).astype(np.float32)),
            self.const(r.uniform(0.5, 1.5, c).astype(np.float32))], epsilon=1e-5)

    def relu(self, x):
        return self.node("Relu", [x])

    def swish(self, x):
        return self.node("Mul", [x, self.node("Sigmoid", [x])])

    def gemm(self, x, n, c):
        return self.node("Gemm", [x, self.weight(c, n), self.const(np.zeros(c, np.float32), "b")], transB=1)

    def torch_flatten(self, x):
        """x.view(x.size(0), -1), as PyTorch exports it: Shape, Gather, Unsqueeze, Concat."""
        n = self.node("Gather", [self.node("Shape", [x]), self.const(np.array(0, np.int64))], axis=0)
        n = self.node("Unsqueeze", [n, self.const(np.array([0], np.int64))])
        shape = self.node("Concat", [n, self.const(np.array([-1], np.int64))], axis=0)
        return self.node("Reshape", [x, shape])

    def model(self, x_shape, y, opset=17, x_name="x"):
        x = helper.make_tensor_value_info(x_name, TensorProto.FLOAT, x_shape)
        out = helper.make_tensor_value_info(y, TensorProto.FLOAT, [None, None])  # (N, classes)
        g = helper.make_graph(self.nodes, self.name, [x], [out], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="test")
        m.ir_version = 8
        onnx.checker.check_model(m, full_check=True)
        return m


def mobilenet():
    """MobileNetV2/V3: depthwise + pointwise, ReLU6 as Clip, inverted residual, HardSwish,
    squeeze-and-excitation with HardSigmoid, a symbolic input size."""
    b = Builder("mobilenet")
    x = b.relu(b.bn(b.conv("x", 3, 16, 3, s=2, p=1, bias=False), 16))
    six = (b.const(np.float32(0)), b.const(np.float32(6)))
    y = b.node("Clip", [b.bn(b.conv(x, 16, 64, 1, bias=False), 64), *six])
    y = b.node("Clip", [b.bn(b.conv(y, 64, 64, 3, p=1, group=64, bias=False), 64), *six])
    y = b.bn(b.conv(y, 64, 16, 1, bias=False), 16)
    x = b.node("Add", [x, y])
    y = b.node("HardSwish", [b.conv(x, 16, 32, 3, s=2, p=1, group=16)])
    se = b.node("GlobalAveragePool", [y])
    se = b.node("HardSigmoid", [b.conv(b.relu(b.conv(se, 32, 8, 1)), 8, 32, 1)], alpha=1 / 6, beta=0.5)
    y = b.node("Mul", [y, se])
    y = b.node("Flatten", [b.node("GlobalAveragePool", [y])], axis=1)
    return b.model(["N", 3, "H", "W"], b.gemm(y, 32, 10)), {"H": 32, "W": 32}


def squeezenet():
    """Fire modules: squeeze 1x1, expand 1x1 and 3x3, concatenated; ceil-mode max pools."""
    b = Builder("squeezenet")
    x = b.relu(b.conv("x", 3, 16, 3, s=2))
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    for cin, s, e in ((16, 4, 8), (16, 4, 8)):
        sq = b.relu(b.conv(x, cin, s, 1))
        x = b.node("Concat", [b.relu(b.conv(sq, s, e, 1)), b.relu(b.conv(sq, s, e, 3, p=1))], axis=1)
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    x = b.node("Dropout", [x, b.const(np.float32(0.5))])
    x = b.relu(b.conv(x, 16, 10, 1))
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    return b.model([1, 3, 33, 33], x), {}


def densenet():
    """Dense layers (BN, ReLU, 1x1, BN, ReLU, 3x3) concatenated onto their input; a transition
    with an average pool."""
    b = Builder("densenet")
    x = b.conv("x", 3, 16, 3, p=1, bias=False)
    c = 16
    for _ in range(3):
        y = b.conv(b.relu(b.bn(x, c)), c, 16, 1, bias=False)
        y = b.conv(b.relu(b.bn(y, 16)), 16, 8, 3, p=1, bias=False)
        x = b.node("Concat", [x, y], axis=1)
        c += 8
    x = b.conv(b.relu(b.bn(x, c)), c, 20, 1, bias=False)
    x = b.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = b.relu(b.bn(x, 20))
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    return b.model(["N", 3, 16, 16], b.gemm(x, 20, 10)), {}


def channel_shuffle(b, x, groups):
    """PyTorch's channel_shuffle: view(N, g, C/g, H, W), transpose(1, 2), view(N, C, H, W),
    with N, C, H, W read from the tensor's shape at run time."""
    shape = b.node("Shape", [x])
    dims = [b.node("Gather", [shape, b.const(np.array(i, np.int64))], axis=0) for i in range(4)]
    per = b.node("Div", [dims[1], b.const(np.array(groups, np.int64))])
    un = lambda v: b.node("Unsqueeze", [v, b.const(np.array([0], np.int64))])
    five = b.node("Concat", [un(dims[0]), b.const(np.array([groups], np.int64)), un(per), un(dims[2]),
                             un(dims[3])], axis=0)
    y = b.node("Transpose", [b.node("Reshape", [x, five])], perm=[0, 2, 1, 3, 4])
    four = b.node("Concat", [un(dims[0]), b.const(np.array([-1], np.int64)), un(dims[2]), un(dims[3])],
                  axis=0)
    return b.node("Reshape", [y, four])


def shufflenet():
    """ShuffleNet v2: a channel split, a branch, concat, channel shuffle; a down-sampling
    unit with two branches; the mean over H and W."""
    b = Builder("shufflenet")
    x = b.relu(b.bn(b.conv("x", 3, 16, 3, s=2, p=1, bias=False), 16))
    left = b.bn(b.conv(x, 16, 16, 3, s=2, p=1, group=16, bias=False), 16)
    left = b.relu(b.bn(b.conv(left, 16, 16, 1, bias=False), 16))
    right = b.relu(b.bn(b.conv(x, 16, 16, 1, bias=False), 16))
    right = b.bn(b.conv(right, 16, 16, 3, s=2, p=1, group=16, bias=False), 16)
    right = b.relu(b.bn(b.conv(right, 16, 16, 1, bias=False), 16))
    x = channel_shuffle(b, b.node("Concat", [left, right], axis=1), 2)
    x1, x2 = b.node("Split", [x, b.const(np.array([16, 16], np.int64))], n_out=2, axis=1)
    y = b.relu(b.bn(b.conv(x2, 16, 16, 1, bias=False), 16))
    y = b.bn(b.conv(y, 16, 16, 3, p=1, group=16, bias=False), 16)
    y = b.relu(b.bn(b.conv(y, 16, 16, 1, bias=False), 16))
    x = channel_shuffle(b, b.node("Concat", [x1, y], axis=1), 2)
    x = b.node("ReduceMean", [x], axes=[2, 3], keepdims=0)
    return b.model(["N", 3, "H", "W"], b.gemm(x, 32, 10)), {"H": 24, "W": 20}


def efficientnet():
    """MBConv: expand, depthwise, squeeze-and-excitation (mean, reduce, swish, expand,
    sigmoid, scale), project, residual; swish as Sigmoid and Mul; opset 18 (ReduceMean's axes
    an input)."""
    b = Builder("efficientnet")
    x = b.swish(b.bn(b.conv("x", 3, 16, 3, s=2, p=1, bias=False), 16))
    y = b.swish(b.bn(b.conv(x, 16, 64, 1, bias=False), 64))
    y = b.swish(b.bn(b.conv(y, 64, 64, 5, p=2, group=64, bias=False), 64))
    se = b.node("ReduceMean", [y, b.const(np.array([2, 3], np.int64))], keepdims=1)
    se = b.node("Sigmoid", [b.conv(b.swish(b.conv(se, 64, 4, 1)), 4, 64, 1)])
    y = b.node("Mul", [se, y])
    y = b.bn(b.conv(y, 64, 16, 1, bias=False), 16)
    x = b.node("Add", [y, x])
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])])
    x = b.node("Dropout", [x, b.const(np.float32(0.2))])
    return b.model(["N", 3, 32, 32], b.gemm(x, 16, 10), opset=18), {}


def resnext():
    """ResNeXt/RegNet: a bottleneck with a grouped 3x3 (32 paths of 4 maps), a projection
    shortcut, and RegNet's squeeze-and-excitation with ReLU."""
    b = Builder("resnext")
    x = b.relu(b.bn(b.conv("x", 3, 32, 3, p=1, bias=False), 32))
    y = b.relu(b.bn(b.conv(x, 32, 128, 1, bias=False), 128))
    y = b.relu(b.bn(b.conv(y, 128, 128, 3, s=2, p=1, group=32, bias=False), 128))
    se = b.node("GlobalAveragePool", [y])
    se = b.node("Sigmoid", [b.conv(b.relu(b.conv(se, 128, 8, 1)), 8, 128, 1)])
    y = b.node("Mul", [y, se])
    y = b.bn(b.conv(y, 128, 64, 1, bias=False), 64)
    short = b.bn(b.conv(x, 32, 64, 1, s=2, bias=False), 64)
    x = b.relu(b.node("Add", [y, short]))
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])])
    return b.model(["N", 3, 16, 16], b.gemm(x, 64, 10)), {}


def inception():
    """Inception v3 / TensorFlow patterns: 1x7 and 7x1 convolutions, average pools that do
    and do not count the padding, 'same' padding with stride 2 (more at the end), LRN,
    LeakyReLU, and the old opset 11 (axes as attributes)."""
    b = Builder("inception")
    x = b.node("LeakyRelu", [b.conv("x", 3, 16, 3, s=2, auto_pad="SAME_UPPER")], alpha=0.1)
    x = b.node("LRN", [x], size=5, alpha=1e-4, beta=0.75, bias=2.0)
    a = b.relu(b.conv(x, 16, 8, 1))
    c = b.relu(b.conv(b.relu(b.conv(x, 16, 8, (1, 7), p=(0, 3))), 8, 8, (7, 1), p=(3, 0)))
    d = b.relu(b.conv(b.node("AveragePool", [x], kernel_shape=[3, 3], strides=[1, 1],
                                     pads=[1, 1, 1, 1], count_include_pad=0), 16, 8, 1))
    e = b.node("AveragePool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
               count_include_pad=1)
    x = b.node("Concat", [a, c, d, e], axis=1)
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    x = b.node("Squeeze", [b.node("GlobalAveragePool", [x])], axes=[2, 3])
    x = b.node("Softmax", [b.gemm(x, 40, 10)], axis=1)
    return b.model([2, 3, 16, 16], x, opset=11), {}


def vgg_like():
    """The classic head: conv, pool, x.view(x.size(0), -1) (the elements in (C, H, W) order),
    fc as Gemm, fc as MatMul + Add, softmax."""
    b = Builder("vgg_like")
    x = b.relu(b.conv("x", 3, 8, 3, p=1))
    x = b.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = b.torch_flatten(x)
    x = b.relu(b.gemm(x, 8 * 4 * 4, 32))
    w = b.const(b.rng.standard_normal((32, 10)).astype(np.float32) * 0.2)
    x = b.node("Add", [b.node("MatMul", [x, w]), b.const(np.zeros(10, np.float32))])
    return b.model(["N", 3, 8, 8], b.node("Softmax", [x], axis=-1)), {}


def keras_like():
    """TensorFlow's layout: an NHWC input transposed to NCHW, explicit padding, a valid
    convolution, and a Keras Flatten (Transpose back to NHWC, Reshape)."""
    b = Builder("keras_like")
    x = b.node("Transpose", ["x"], perm=[0, 3, 1, 2])
    x = b.node("Pad", [x, b.const(np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64))], mode="constant")
    x = b.relu(b.conv(x, 3, 6, 3, s=2, auto_pad="VALID"))
    x = b.node("Transpose", [x], perm=[0, 2, 3, 1])
    x = b.node("Reshape", [x, b.const(np.array([-1, 6 * 5 * 5], np.int64))])
    x = b.node("Add", [b.node("MatMul", [x, b.const(b.rng.standard_normal((150, 4)).astype(np.float32))]),
                       b.const(np.ones(4, np.float32))])
    return b.model(["N", 11, 11, 3], x), {}


def unet_like():
    """A U-Net/FPN decoder as PyTorch exports it: nn.Upsample(scale_factor=2) (Resize by
    scales, asymmetric, floor) joined to the skip connection, and F.interpolate to a size,
    bilinear (Resize by sizes built from the tensor's Shape, pytorch_half_pixel)."""
    b = Builder("unet_like")
    skip = b.relu(b.conv("x", 3, 8, 3, p=1))
    x = b.node("MaxPool", [skip], kernel_shape=[2, 2], strides=[2, 2])
    x = b.relu(b.conv(x, 8, 16, 3, p=1))
    x = b.node("Resize", [x, "", b.const(np.array([1, 1, 2, 2], np.float32))], mode="nearest",
               coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    x = b.relu(b.conv(b.node("Concat", [x, skip], axis=1), 24, 8, 3, p=1))
    nc = b.node("Slice", [b.node("Shape", [x]), b.const(np.array([0], np.int64)),
                          b.const(np.array([2], np.int64))])
    sizes = b.node("Concat", [nc, b.const(np.array([20, 12], np.int64))], axis=0)
    x = b.node("Resize", [x, "", "", sizes], mode="linear",
               coordinate_transformation_mode="pytorch_half_pixel")
    x = b.node("Flatten", [b.node("GlobalAveragePool", [b.conv(x, 8, 4, 1)])], axis=1)
    return b.model(["N", 3, 16, 16], b.gemm(x, 4, 10)), {}


def layernorm2d(b, x, c):
    """torchvision's LayerNorm2d: channels last, LayerNormalization, channels first."""
    y = b.node("Transpose", [x], perm=[0, 2, 3, 1])
    y = b.node("LayerNormalization", [y, b.const(b.rng.uniform(0.5, 1.5, c).astype(np.float32)),
                                      b.const(b.rng.uniform(-0.1, 0.1, c).astype(np.float32))],
               axis=-1, epsilon=1e-6)
    return b.node("Transpose", [y], perm=[0, 3, 1, 2])


def scalar(b, value):
    """A Constant node, as PyTorch puts one before the node that reads it."""
    return b.node("Constant", [], value=numpy_helper.from_array(np.array(value, np.float32)))


def layernorm_written_out(b, x, c, square="Pow", subs=1, axis=1):
    """ConvNeXt's own LayerNorm (channels_first): u = x.mean(1), s = (x - u).pow(2).mean(1),
    (x - u)/sqrt(s + eps) * weight[:, None, None] + bias[:, None, None]; axis=-1: F.layer_norm
    over the last axis as torch.onnx writes it before opset 17, weight and bias (c,)."""
    shape = (c, 1, 1) if axis == 1 else (c,)
    u = b.node("ReduceMean", [x], axes=[axis], keepdims=1)
    d = b.node("Sub", [x, u])
    sq = b.node("Pow", [d, scalar(b, 2.0)]) if square == "Pow" else b.node("Mul", [d, d])
    s = b.node("ReduceMean", [sq], axes=[axis], keepdims=1)
    r = b.node("Sqrt", [b.node("Add", [s, scalar(b, 1e-6)])])
    y = b.node("Div", [b.node("Sub", [x, u]) if subs == 2 else d, r])
    y = b.node("Mul", [b.const(b.rng.uniform(0.5, 1.5, shape).astype(np.float32)), y])
    return b.node("Add", [y, b.const(b.rng.uniform(-0.1, 0.1, shape).astype(np.float32))])


def gelu_erf(b, x, order="x first"):
    """nn.GELU() as PyTorch exports it before opset 20: x/sqrt(2), Erf, + 1, then (x * .) * 0.5;
    'half first' is (x * 0.5) * . (Hugging Face's), 'half last' (. * 0.5) * x."""
    gate = b.node("Add", [b.node("Erf", [b.node("Div", [x, scalar(b, np.sqrt(2))])]), scalar(b, 1.0)])
    if order == "half first":
        return b.node("Mul", [b.node("Mul", [x, scalar(b, 0.5)]), gate])
    if order == "half last":
        return b.node("Mul", [b.node("Mul", [gate, scalar(b, 0.5)]), x])
    return b.node("Mul", [b.node("Mul", [x, gate]), scalar(b, 0.5)])


def gelu_tanh(b, x, cube="Mul"):
    """nn.GELU(approximate='tanh') as PyTorch exports it: x*x*x, * 0.044715, + x, * sqrt(2/pi),
    Tanh, + 1, * x, * 0.5; cube='Pow': Hugging Face's gelu_new, with x * 0.5 first."""
    half = b.node("Mul", [x, scalar(b, 0.5)]) if cube == "Pow" else None
    x3 = b.node("Pow", [x, scalar(b, 3.0)]) if cube == "Pow" else b.node("Mul", [x, b.node("Mul", [x, x])])
    inner = b.node("Add", [x, b.node("Mul", [scalar(b, 0.044715), x3])])
    gate = b.node("Add", [scalar(b, 1.0), b.node("Tanh", [b.node("Mul", [scalar(b, np.sqrt(2 / np.pi)), inner])])])
    if half is not None:
        return b.node("Mul", [half, gate])
    return b.node("Mul", [scalar(b, 0.5), b.node("Mul", [x, gate])])


def convnext_like():
    """ConvNeXt's block as exporters write it: a 4x4 stride-4 stem, LayerNorm2d both ways
    (torchvision's transposes, the original repo's written-out form), depthwise 7x7, a 1x1
    expansion, GELU, a 1x1 projection, layer scale (Mul by (C, 1, 1)), the residual add; then
    Elu, and a head with LayerNormalization on the vector and the tanh GELU."""
    b = Builder("convnext_like")
    x = layernorm2d(b, b.conv("x", 3, 8, 4, s=4), 8)
    y = layernorm_written_out(b, b.conv(x, 8, 8, 7, p=3, group=8), 8)
    y = b.conv(gelu_erf(b, b.conv(y, 8, 32, 1)), 32, 8, 1)
    y = b.node("Mul", [b.const(b.rng.uniform(0.5, 1.5, (8, 1, 1)).astype(np.float32)), y])
    x = b.node("Elu", [b.node("Add", [x, y])], alpha=0.5)
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    x = b.node("LayerNormalization", [x, b.const(np.ones(8, np.float32)), b.const(np.zeros(8, np.float32))],
               axis=-1)
    return b.model(["N", 3, 16, 16], b.gemm(gelu_tanh(b, x, cube="Pow"), 8, 10)), {}
def linear_last(b, x, n, c):
    """nn.Linear(n, c) on a channels-last map, as torch.onnx writes it: MatMul by the (n, c)
    transposed weight, then Add(bias, .)."""
    y = b.node("MatMul", [x, b.weight(n, c)])
    return b.node("Add", [b.const(b.rng.uniform(-0.1, 0.1, c).astype(np.float32), "b"), y])


def cn_block(b, x, c):
    """torchvision's CNBlock: depthwise 7x7, Permute(0, 2, 3, 1), LayerNorm(c), Linear(c, 4c),
    GELU, Linear(4c, c), Permute(0, 3, 1, 2), layer_scale (c, 1, 1) * ., stochastic depth (none
    in eval), + input."""
    y = b.node("Transpose", [b.conv(x, c, c, 7, p=3, group=c)], perm=[0, 2, 3, 1])
    y = b.node("LayerNormalization", [y, b.const(b.rng.uniform(0.5, 1.5, c).astype(np.float32)),
                                      b.const(b.rng.uniform(-0.1, 0.1, c).astype(np.float32))],
               axis=-1, epsilon=1e-6)
    y = linear_last(b, gelu_erf(b, linear_last(b, y, c, 4 * c)), 4 * c, c)
    y = b.node("Transpose", [y], perm=[0, 3, 1, 2])
    y = b.node("Mul", [b.const(b.rng.uniform(0.5, 1.5, (c, 1, 1)).astype(np.float32)), y])
    return b.node("Add", [y, x])


def convnext_torch():
    """torchvision's ConvNeXt as torch.onnx (opset 17) exports it, two stages of one block (8
    and 16 channels): stem Conv 4x4/4 + LayerNorm2d, CNBlock(8), LayerNorm2d + Conv 2x2/2,
    CNBlock(16), GlobalAveragePool, LayerNorm2d on (N, 16, 1, 1), Flatten, Gemm."""
    b = Builder("convnext_torch")
    x = layernorm2d(b, b.conv("x", 3, 8, 4, s=4), 8)
    x = cn_block(b, x, 8)
    x = cn_block(b, b.conv(layernorm2d(b, x, 8), 8, 16, 2, s=2), 16)
    x = b.node("Flatten", [layernorm2d(b, b.node("GlobalAveragePool", [x]), 16)], axis=1)
    return b.model(["N", 3, 16, 16], b.gemm(x, 16, 10)), {}


def timm_block(b, x, c):
    """timm's ConvNeXtBlock: depthwise 7x7, permute, LayerNorm, Mlp (fc1, GELU, fc2), x.mul(gamma)
    with gamma (c,) while channels-last, permute back, + shortcut; before opset 17."""
    y = b.node("Transpose", [b.conv(x, c, c, 7, p=3, group=c)], perm=[0, 2, 3, 1])
    y = layernorm_written_out(b, y, c, axis=-1)
    y = linear_last(b, gelu_erf(b, linear_last(b, y, c, 4 * c)), 4 * c, c)
    y = b.node("Mul", [y, b.const(b.rng.uniform(0.5, 1.5, c).astype(np.float32))])
    return b.node("Add", [b.node("Transpose", [y], perm=[0, 3, 1, 2]), x])


def convnext_timm():
    """A timm-style ConvNeXt exported at opset 14, where F.layer_norm is written out: stem Conv
    4x4/4 + LayerNorm2d, one block of 8 channels, x.mean((2, 3)), LayerNorm on the vector, Gemm."""
    b = Builder("convnext_timm")
    x = b.node("Transpose", [b.conv("x", 3, 8, 4, s=4)], perm=[0, 2, 3, 1])
    x = b.node("Transpose", [layernorm_written_out(b, x, 8, axis=-1)], perm=[0, 3, 1, 2])
    x = b.node("ReduceMean", [timm_block(b, x, 8)], axes=[2, 3], keepdims=0)
    return b.model(["N", 3, 16, 16], b.gemm(layernorm_written_out(b, x, 8, axis=-1), 8, 10), opset=14), {}


INT64_MAX = 2**63 - 1


def same_pad(b, x, k, s, d=1):
    """timm's Conv2dSame padding (EfficientNet-lite, TF ports) as torch.onnx writes it: per
    axis max((ceil(i / s) - 1) * s + (k - 1) * d + 1 - i, 0) from Shape(x), in float then int,
    and F.pad's [left, right, top, bottom] turned into ONNX's pads (Reshape, reversed Slice,
    Transpose, Reshape)."""
    shape = b.node("Shape", [x])
    lows, highs = [], []
    for axis in (3, 2):  # F.pad lists the last axis first
        i = b.node("Gather", [shape, b.const(np.array(axis, np.int64))], axis=0)
        q = b.node("Ceil", [b.node("Div", [b.node("Cast", [i], to=TensorProto.FLOAT),
                                           b.const(np.float32(s))])])
        q = b.node("Sub", [b.node("Cast", [q], to=TensorProto.INT64), b.const(np.int64(1))])
        total = b.node("Sub", [b.node("Add", [b.node("Mul", [q, b.const(np.int64(s))]),
                                               b.const(np.int64((k - 1) * d + 1))]), i])
        total = b.node("Max", [total, b.const(np.int64(0))])
        low = b.node("Div", [total, b.const(np.int64(2))])
        lows.append(low)
        highs.append(b.node("Sub", [total, low]))
    one = b.const(np.array([0], np.int64))
    parts = [b.node("Unsqueeze", [v, one]) for v in (lows[0], highs[0], lows[1], highs[1])]
    zeros = b.node("ConstantOfShape", [b.const(np.array([4], np.int64))],
                   value=numpy_helper.from_array(np.zeros(1, np.int64)))
    pads = b.node("Reshape", [b.node("Concat", parts + [zeros], axis=0),
                              b.const(np.array([-1, 2], np.int64))])
    pads = b.node("Slice", [pads, b.const(np.array([-1], np.int64)),
                            b.const(np.array([-INT64_MAX], np.int64)), b.const(np.array([0], np.int64)),
                            b.const(np.array([-1], np.int64))])
    pads = b.node("Transpose", [pads], perm=[1, 0])
    pads = b.node("Reshape", [pads, b.const(np.array([-1], np.int64))])
    pads = b.node("Cast", [pads], to=TensorProto.INT64)
    return b.node("Pad", [x, pads, b.const(np.float32(0))], mode="constant")


def efficientnet_lite(dims=("N", 3, 8, 9)):
    """EfficientNet-lite's stem and a depthwise stage with TF's 'same' padding computed from
    the activation's shape (8 x 9: pads 0/1 rows, 1/1 columns; then 2/2 on both); ReLU6."""
    b = Builder("efficientnet_lite")
    six = (b.const(np.float32(0)), b.const(np.float32(6)))
    x = b.node("Clip", [b.bn(b.conv(same_pad(b, "x", 3, 2), 3, 8, 3, s=2, bias=False), 8), *six])
    x = b.node("Clip", [b.conv(same_pad(b, x, 5, 1), 8, 8, 5, group=8), *six])
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    return b.model(list(dims), b.gemm(x, 8, 10)), {}


def mobilevit_like():
    """MobileViT's patch count from the shape: n = Sqrt(Cast(H * W)), here the side of a
    Resize to (2n, 2n) (8 x 8 -> 16 x 16), the sizes built with Concat from Shape."""
    b = Builder("mobilevit_like")
    x = b.relu(b.conv("x", 3, 4, 3, p=1))
    shape = b.node("Shape", [x])
    h, w = (b.node("Gather", [shape, b.const(np.array(a, np.int64))], axis=0) for a in (2, 3))
    n = b.node("Sqrt", [b.node("Cast", [b.node("Mul", [h, w])], to=TensorProto.FLOAT)])
    n = b.node("Mul", [b.node("Cast", [n], to=TensorProto.INT64), b.const(np.int64(2))])
    n = b.node("Unsqueeze", [n, b.const(np.array([0], np.int64))])
    nc = b.node("Slice", [shape, b.const(np.array([0], np.int64)), b.const(np.array([2], np.int64))])
    x = b.node("Resize", [x, "", "", b.node("Concat", [nc, n, n], axis=0)], mode="nearest")
    x = b.node("Flatten", [b.node("GlobalAveragePool", [b.conv(x, 4, 4, 3, s=2)])], axis=1)
    return b.model(["N", 3, 8, 8], b.gemm(x, 4, 10)), {}


def split_attention(b, x, cin, c, r, card, attn):
    """timm's SplitAttn (ResNeSt) as torch.onnx exports it: grouped conv to r*c maps + BN + ReLU;
    Reshape (N, r, c, H, W) from the shape, ReduceSum over the splits, mean over H and W; fc1
    (groups=card) + BN + ReLU, fc2 to r*c (groups=card); RadixSoftmax: Reshape (N, card, r, -1),
    Transpose (0, 2, 1, 3), Softmax axis 1, Reshape (N, -1); view (N, -1, 1, 1), reshape
    (N, r, c, 1, 1); Mul with the splits, ReduceSum over them."""
    y = b.relu(b.bn(b.conv(x, cin, r * c, 3, p=1, group=card * r, bias=False), r * c))
    shape = b.node("Shape", [y])
    n, rc, h, w = (b.node("Unsqueeze", [b.node("Gather", [shape, b.const(np.array(i, np.int64))], axis=0),
                                        b.const(np.array([0], np.int64))]) for i in range(4))
    per_split = b.node("Div", [rc, b.const(np.array([r], np.int64))])
    radix = b.const(np.array([r], np.int64))
    splits = b.node("Reshape", [y, b.node("Concat", [n, radix, per_split, h, w], axis=0)])
    gap = b.node("ReduceMean", [b.node("ReduceSum", [splits, b.const(np.array([1], np.int64))], keepdims=0)],
                 axes=[2, 3], keepdims=1)
    a = b.conv(b.relu(b.bn(b.conv(gap, c, attn, 1, group=card), attn)), attn, r * c, 1, group=card)
    a = b.node("Reshape", [a, b.node("Concat", [n, b.const(np.array([card, r, -1], np.int64))], axis=0)],
               name=b.fresh("/rsoftmax/Reshape"))
    a = b.node("Softmax", [b.node("Transpose", [a], perm=[0, 2, 1, 3])], axis=1)
    a = b.node("Reshape", [a, b.node("Concat", [n, b.const(np.array([-1], np.int64))], axis=0)])
    a = b.node("Reshape", [a, b.node("Concat", [n, b.const(np.array([-1, 1, 1], np.int64))], axis=0)])
    five = b.node("Concat", [n, radix, per_split, b.const(np.array([1, 1], np.int64))], axis=0)
    a = b.node("Reshape", [a, five])
    return b.node("ReduceSum", [b.node("Mul", [splits, a]), b.const(np.array([1], np.int64))], keepdims=0)


def resnest_like():
    """A stem, then two split-attention blocks: resnest50d's radix 2, cardinality 1, and
    resnest50d_4s2x40d's radix 4, cardinality 2 (the channel order RadixSoftmax changes)."""
    b = Builder("resnest_like")
    x = b.relu(b.conv("x", 3, 16, 3, p=1))
    x = split_attention(b, x, 16, 16, r=2, card=1, attn=32)
    x = split_attention(b, x, 16, 16, r=4, card=2, attn=32)
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    return b.model(["N", 3, 8, 8], b.gemm(x, 16, 10)), {}


FAMILIES = {"mobilenet": mobilenet, "squeezenet": squeezenet, "densenet": densenet,
            "shufflenet": shufflenet, "efficientnet": efficientnet, "resnext": resnext,
            "inception": inception, "vgg_like": vgg_like, "keras_like": keras_like,
            "unet_like": unet_like, "convnext_like": convnext_like}
FAMILIES.update({"efficientnet_lite": efficientnet_lite, "mobilevit_like": mobilevit_like})
FAMILIES.update({"convnext_torch": convnext_torch, "convnext_timm": convnext_timm})


# ---------------------------------------------------------------- ViT as torch.onnx writes it

def mha_torch(b, x, T, d, h, split=False):
    """nn.MultiheadAttention(batch_first=True) in eval mode as torch.onnx (opset 17, dynamo=False)
    writes it: to (T, N, d), in_proj MatMul + Add(bias, ...), Reshape (T, N, 3, d), Unsqueeze,
    Transpose (3, 1, 2, 0, 4), Squeeze, Gather 0/1/2 (or, split=True, a Split and one Div by
    sqrt(d_h) on Q), heads by Reshape (T, N*h, d_h) and Transpose (1, 0, 2), Q and K^T each times
    sqrt(1/sqrt(d_h)) computed from Shape(q), MatMul, Softmax, MatMul, heads joined, out_proj Gemm,
    back to (N, T, d)."""
    i64 = lambda *v: b.const(np.array(v, np.int64))
    t = b.node("Transpose", [x], perm=[1, 0, 2])
    qkv = b.node("Add", [b.const(b.rng.standard_normal(3 * d).astype(np.float32) * 0.1, "b"),
                         b.node("MatMul", [t, b.weight(d, 3 * d)])])
    if split:
        parts = b.node("Split", [qkv, i64(d, d, d)], n_out=3, axis=2)
    else:
        y = b.node("Reshape", [qkv, i64(T, 1, 3, d)])
        y = b.node("Squeeze", [b.node("Transpose", [b.node("Unsqueeze", [y, i64(0)])], perm=[3, 1, 2, 0, 4]),
                               i64(3)])
        parts = [b.node("Gather", [y, b.const(np.array(k, np.int64))], axis=0) for k in range(3)]
    q, k, v = (b.node("Reshape", [b.node("Transpose", [b.node("Reshape", [p, i64(T, h, d // h)])],
                                         perm=[1, 0, 2]), i64(1, h, T, d // h)]) for p in parts)
    k = b.node("Transpose", [k], perm=[0, 1, 3, 2])
    if split:
        q = b.node("Div", [q, b.const(np.float32(np.sqrt(d // h)))])
    else:
        size = b.node("Cast", [b.node("Slice", [b.node("Shape", [q]), i64(-1), i64(2**63 - 1)])], to=1)
        scale = b.node("Cast", [b.node("Div", [b.const(np.array([1.0], np.float32)), b.node("Sqrt", [size])])], to=1)
        q = b.node("Mul", [q, b.node("Sqrt", [scale])])
        k = b.node("Mul", [k, b.node("Sqrt", [scale])])
    a = b.node("Softmax", [b.node("MatMul", [q, k])], axis=-1)
    y = b.node("Reshape", [b.node("Transpose", [b.node("MatMul", [a, v])], perm=[2, 0, 1, 3]), i64(T, d)])
    y = b.node("Gemm", [y, b.weight(d, d), b.const(b.rng.standard_normal(d).astype(np.float32) * 0.1, "b")],
               transB=1)
    return b.node("Transpose", [b.node("Reshape", [y, i64(T, 1, d)])], perm=[1, 0, 2])


def vit_torch(split=False):
    """torchvision's VisionTransformer as torch.onnx writes it (see tests/data/README.md): patch
    conv, Reshape (N, d, HW), Transpose, Concat with the Expanded class token, Add of the position
    embedding; blocks LN, attention, +, LN, MatMul + Add, GELU (erf), MatMul + Add, +; LN, x[:, 0],
    head. d = 16, 4 heads, MLP 32, 2 blocks, patches 4 x 4 of 16 x 16: T = 17 tokens."""
    b = Builder("vit_torch", seed=5)
    d, h, mlp, T = 16, 4, 32, 17
    i64 = lambda *v: b.const(np.array(v, np.int64))
    vec = lambda n: b.const(b.rng.standard_normal(n).astype(np.float32) * 0.1, "p")
    ln = lambda x: b.node("LayerNormalization", [x, b.const(1 + b.rng.standard_normal(d).astype(np.float32) * 0.1),
                                                 vec(d)], axis=-1, epsilon=1e-6)
    x = b.node("Transpose", [b.node("Reshape", [b.conv("x", 3, d, 4, s=4), i64(1, d, 16)])], perm=[0, 2, 1])
    cls = b.node("Expand", [b.weight(1, 1, d, scale=0.5), i64(1, 1, 1)])  # torch: (N, -1, -1) via Where
    x = b.node("Add", [b.node("Concat", [cls, x], axis=1), b.weight(1, T, d, scale=0.1)])
    for _ in range(2):
        x = b.node("Add", [mha_torch(b, ln(x), T, d, h, split), x])
        y = b.node("Add", [vec(mlp), b.node("MatMul", [ln(x), b.weight(d, mlp)])])
        g = b.node("Add", [b.node("Erf", [b.node("Div", [y, b.const(np.float32(np.sqrt(2)))])]),
                           b.const(np.float32(1))])
        y = b.node("Mul", [b.node("Mul", [y, g]), b.const(np.float32(0.5))])
        x = b.node("Add", [x, b.node("Add", [vec(d), b.node("MatMul", [y, b.weight(mlp, d)])])])
    x = b.node("Gather", [ln(x), b.const(np.array(0, np.int64))], axis=1)
    return b.model([1, 3, 16, 16], b.gemm(x, d, 10)), {}


FAMILIES.update({"vit_torch": vit_torch})
FAMILIES["resnest_like"] = resnest_like


# ---------------------------------------------------------------- invalid and hostile models

def unchecked(b: Builder, y, x_shape=(1, 3, 8, 8)):
    """b's graph as a model, without onnx.checker: the tests of invalid models feed what the
    checker would refuse."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))
    out = helper.make_tensor_value_info(y, TensorProto.FLOAT, None)
    m = helper.make_model(helper.make_graph(b.nodes, b.name, [x], [out], b.inits),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def initializer(name, dims, data_len):
    """A float initializer whose dims say one size and whose raw data holds data_len floats."""
    t = numpy_helper.from_array(np.zeros(data_len, np.float32), name)
    t.dims[:] = dims
    return t


# ---------------------------------------------------------------- transposed and standardised convs

def upconv(dilations=1):
    """U-Net's decoder step as PyTorch exports nn.ConvTranspose2d: (C_in, C_out/group, f, f)
    weights; here 2 groups, stride 2, pads 1, output_padding 1, then a 2x2 up-convolution."""
    b = Builder("upconv")
    x = b.relu(b.conv("x", 3, 8, 3, p=1))
    w = b.weight(8, 3, 3, 3)
    x = b.node("ConvTranspose", [x, w, b.const(np.full(6, 0.1, np.float32), "b")], kernel_shape=[3, 3],
               strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1], group=2,
               dilations=[dilations, dilations])
    x = b.node("ConvTranspose", [x, b.weight(6, 4, 2, 2)], kernel_shape=[2, 2], strides=[2, 2])
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    return b.model(["N", 3, 5, 6], b.gemm(x, 4, 10)), {}


def scaled_std_conv(b, x, cin, cout, k, p, eps=1e-6, gamma=1.0):
    """timm's ScaledStdConv2d as a decomposed export: per filter (W - mean)/sqrt(var + eps)
    times gain*gamma/sqrt(fan-in), the gain a learnt (cout, 1, 1, 1) tensor."""
    w = b.weight(cout, cin, k, k)
    axes = dict(axes=[1, 2, 3], keepdims=1)
    mean = b.node("ReduceMean", [w], **axes)
    d = b.node("Sub", [w, mean])
    var = b.node("ReduceMean", [b.node("Pow", [d, b.const(np.float32(2))])], **axes)
    std = b.node("Sqrt", [b.node("Add", [var, b.const(np.float32(eps))])])
    gain = b.const(b.rng.uniform(0.5, 1.5, (cout, 1, 1, 1)).astype(np.float32), "gain")
    scale = b.node("Mul", [gain, b.const(np.float32(gamma / np.sqrt(cin * k * k)))])
    weight = b.node("Mul", [b.node("Div", [d, std]), scale])
    bias = b.const(b.rng.standard_normal(cout).astype(np.float32) * 0.1, "b")
    return b.node("Conv", [x, weight, bias], kernel_shape=[k, k], pads=[p] * 4)


def std_conv_by_batchnorm(b, x, cin, cout, k, eps=1e-5):
    """timm's StdConv2d: F.batch_norm(W.reshape(1, cout, -1), training=True) reshaped back."""
    w = b.weight(cout, cin, k, k)
    flat = b.node("Reshape", [w, b.const(np.array([1, cout, -1], np.int64))])
    zeros, ones = np.zeros(cout, np.float32), np.ones(cout, np.float32)
    normed = b.node("BatchNormalization", [flat, b.const(ones), b.const(zeros), b.const(zeros),
                                           b.const(ones)], n_out=3, epsilon=eps, training_mode=1)[0]
    weight = b.node("Reshape", [normed, b.const(np.array([cout, cin, k, k], np.int64))])
    return b.node("Conv", [x, weight], kernel_shape=[k, k])


def nfnet_like(by_batchnorm=False):
    b = Builder("nfnet_like")
    x = b.relu(scaled_std_conv(b, "x", 3, 8, 3, 1))
    x = b.relu(std_conv_by_batchnorm(b, x, 8, 4, 3) if by_batchnorm else scaled_std_conv(b, x, 8, 4, 3, 0))
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    return b.model(["N", 3, 6, 7], b.gemm(x, 4, 10)), {}


# ---------------------------------------------------------------- MobileViT as torch.onnx writes it

def timm_attention(b, x, S, N, d, h):
    """timm's vision_transformer.Attention (fused: F.scaled_dot_product_attention) as torch.onnx
    (opset 17, dynamo=False) writes it on (S, N, d): qkv MatMul + Add(bias, ...), Reshape
    (S, N, 3, h, d_h), Transpose (2, 0, 3, 1, 4), Split [1, 1, 1] and Squeeze, Q and K^T each
    times Sqrt(Cast(1 / Sqrt(Cast(Slice(Shape(q), -1))))), MatMul, Softmax, MatMul,
    Transpose (0, 2, 1, 3), Reshape (S, N, d), proj MatMul + Add."""
    i64 = lambda *v: b.const(np.array(v, np.int64))
    qkv = b.node("Add", [b.const(b.rng.standard_normal(3 * d).astype(np.float32) * 0.1, "b"),
                         b.node("MatMul", [x, b.weight(d, 3 * d)])])
    parts = b.node("Transpose", [b.node("Reshape", [qkv, i64(S, N, 3, h, d // h)])], perm=[2, 0, 3, 1, 4])
    q, k, v = (b.node("Squeeze", [p, i64(0)]) for p in b.node("Split", [parts, i64(1, 1, 1)], n_out=3, axis=0))
    size = b.node("Cast", [b.node("Slice", [b.node("Shape", [q]), i64(-1), i64(2**63 - 1)])], to=1)
    scale = b.node("Cast", [b.node("Div", [b.const(np.array([1.0], np.float32)), b.node("Sqrt", [size])])], to=1)
    k = b.node("Mul", [b.node("Transpose", [k], perm=[0, 1, 3, 2]), b.node("Sqrt", [scale])])
    q = b.node("Mul", [q, b.node("Sqrt", [scale])])
    a = b.node("Softmax", [b.node("MatMul", [q, k])], axis=-1)
    y = b.node("Reshape", [b.node("Transpose", [b.node("MatMul", [a, v])], perm=[0, 2, 1, 3]), i64(S, N, d)])
    return b.node("Add", [b.const(b.rng.standard_normal(d).astype(np.float32) * 0.1, "b"),
                          b.node("MatMul", [y, b.weight(d, d)])])


def mobilevit_torch():
    """timm's MobileVitBlock as torch.onnx (opset 17, dynamo=False, eval: BatchNorm folded into
    the convs) writes it (see tests/data/README.md): 3x3 conv + SiLU, 1x1 conv to d without bias,
    the unfold Reshape (C*H/2, 2, W/2, 2), Transpose (0, 2, 1, 3), Reshape (1, C, N, 4),
    Transpose (0, 3, 2, 1), Reshape (4, N, d); 2 transformer blocks (LN, attention, +, LN,
    MatMul + Add, SiLU, MatMul + Add, +); LN; the fold back; 1x1 conv + SiLU; Concat with the
    input; 3x3 conv + SiLU; then a head (global pool, Gemm). In 8, d 16, 4 heads, MLP 32, an
    8 x 6 map: P = 4 sequences of N = 12 patches."""
    b = Builder("mobilevit_torch", seed=7)
    C, d, h, mlp, H, W = 8, 16, 4, 32, 8, 6
    i64 = lambda *v: b.const(np.array(v, np.int64))
    vec = lambda n: b.const(b.rng.standard_normal(n).astype(np.float32) * 0.1, "p")
    ln = lambda x: b.node("LayerNormalization", [x, b.const(1 + b.rng.standard_normal(d).astype(np.float32) * 0.1),
                                                 vec(d)], axis=-1, epsilon=1e-5)
    x = b.conv(b.swish(b.conv("x", C, C, 3, p=1)), C, d, 1, bias=False)
    x = b.node("Transpose", [b.node("Reshape", [x, i64(d * H // 2, 2, W // 2, 2)])], perm=[0, 2, 1, 3])
    x = b.node("Transpose", [b.node("Reshape", [x, i64(1, d, 12, 4)])], perm=[0, 3, 2, 1])
    x = b.node("Reshape", [x, i64(4, 12, -1)])
    for _ in range(2):
        x = b.node("Add", [x, timm_attention(b, ln(x), 4, 12, d, h)])
        y = b.swish(b.node("Add", [vec(mlp), b.node("MatMul", [ln(x), b.weight(d, mlp)])]))
        x = b.node("Add", [x, b.node("Add", [vec(d), b.node("MatMul", [y, b.weight(mlp, d)])])])
    x = b.node("Transpose", [b.node("Reshape", [ln(x), i64(1, 4, 12, -1)])], perm=[0, 3, 2, 1])
    x = b.node("Transpose", [b.node("Reshape", [x, i64(d * H // 2, W // 2, 2, 2)])], perm=[0, 2, 1, 3])
    x = b.swish(b.conv(b.node("Reshape", [x, i64(1, d, H, W)]), d, C, 1))
    x = b.swish(b.conv(b.node("Concat", ["x", x], axis=1), 2 * C, C, 3, p=1))
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    return b.model([1, C, H, W], b.gemm(x, C, 10)), {}


FAMILIES.update({"mobilevit_torch": mobilevit_torch})
