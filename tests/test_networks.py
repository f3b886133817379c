"""The reference networks in specs/: their published figures, asserted exactly.

Params count learnable weights and biases plus BatchNorm's gamma and beta (running statistics
are state, not params); MACs are the multiply-accumulates of conv and fc layers, bias excluded.
Where a published figure differs from ours by a convention (K = 1024, biases, BN, the input
size), the comment by the test says so.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import sympy

import archcalc
from archcalc.present.compare import depth
from archcalc.sizes import symbol

SPECS = Path(__file__).resolve().parent.parent / "specs"
SUMMED = ("params", "trainable_params", "frozen_params", "state", "macs", "flops", "other_ops",
          "activations")


@lru_cache(maxsize=None)
def graph(name):
    return archcalc.load(SPECS / f"{name}.arch")


@lru_cache(maxsize=None)
def analysis(name):
    """Analysed at the network's defaults."""
    return archcalc.analyze(graph(name))


def totals(name):
    a = analysis(name)
    return a.totals["params"], a.totals["macs"]


def layer_params(name):
    return {r.name: r.params for r in analysis(name).rows if r.params}


# ---------------------------------------------------------------- LeNet-5

def test_lenet5_course_form():
    # The course's modern LeNet-5 (tanh, average pooling, fc 120/84/10): 61,706 params and
    # 416,520 MACs (117,600 + 240,000 + 48,000 + 10,080 + 840).
    assert totals("lenet5") == (61_706, 416_520)


def test_lenet5_1998_per_layer():
    # LeCun et al. (1998), section II.B: C1 "156 trainable parameters", S2 "12", C3 "1,516",
    # S4 "32", C5 "48,120", F6 "10,164". C3's 1,516 = 25 x 60 table entries + 16 biases.
    # The RBF's 84 x 10 prototypes are fixed by hand, not learnt: 840 frozen params.
    assert layer_params("lenet5_1998") == {"c1": 156, "s2": 12, "c3": 1_516, "s4": 32,
                                           "c5": 48_120, "f6": 10_164, "out": 840}
    a = analysis("lenet5_1998")
    assert a.row("out").frozen_params == 840 and a.row("out").trainable_params == 0
    assert a.row("c3").out_shape == (10, 10, 16)
    assert a.row("c5").out_shape == (1, 1, 120)


def test_lenet5_1998_totals():
    # Trainable 156 + 12 + 1,516 + 32 + 48,120 + 10,164 = 60,000 (the paper's "60,000
    # trainable parameters"); frozen 840 (RBF). The paper counts "connections" with the bias
    # (C1 122,304 = 28*28*156, C3 151,600 = 10*10*1,516); MACs here exclude it:
    # C1 28*28*6*25 = 117,600; C3 10*10*25*60 = 150,000; C5 120*400 = 48,000; F6 84*120 = 10,080.
    a = analysis("lenet5_1998")
    assert a.totals["trainable_params"] == 60_000
    assert a.totals["frozen_params"] == 840
    assert a.totals["params"] == 60_840
    assert a.totals["macs"] == 117_600 + 150_000 + 48_000 + 10_080 == 325_680


# ---------------------------------------------------------------- AlexNet

def test_alexnet_course():
    # Single-tower AlexNet of the deeplearning.ai course on 227x227x3: 62,378,344 params
    # (the course's "about 60 million"; 58.6M of them in the fc layers), 1.135G MACs.
    assert totals("alexnet") == (62_378_344, 1_135_256_096)


def test_alexnet_two_gpus():
    # Krizhevsky et al. (2012), Figure 2: conv2, conv4, conv5 read only their GPU's half of the
    # maps (groups=2), so they have half the weights of the single tower:
    # 62,378,344 - (5*5*48*256 + 3*3*192*384 + 3*3*192*256) = 60,965,224, the paper's
    # "60 million parameters". LRN adds no params.
    assert totals("alexnet_2gpu") == (60_965_224, 724_406_816)
    assert 62_378_344 - (5 * 5 * 48 * 256 + 3 * 3 * 192 * 384 + 3 * 3 * 192 * 256) == 60_965_224


# ---------------------------------------------------------------- VGG

def test_vgg16():
    # torchvision vgg16: 138,357,544 params (its docs' "138.4M"), 15.47G MACs (the docs'
    # "15.47 GFLOPS" counts multiply-adds).
    assert totals("vgg16") == (138_357_544, 15_470_264_320)


def test_vgg19():
    # torchvision vgg19: 143,667,240 params ("143.7M"), 19.63G MACs ("19.63 GFLOPS").
    assert totals("vgg19") == (143_667_240, 19_632_062_464)


# ---------------------------------------------------------------- ResNet

def test_resnet18_34():
    # torchvision resnet18 / resnet34: 11,689,512 and 21,797,672 params (docs: "11.7M",
    # "21.8M"); 1.81G and 3.66G MACs (docs' "1.81 / 3.66 GFLOPS"; the paper's "1.8 / 3.6
    # x 10^9 FLOPs" are multiply-adds too).
    assert totals("resnet18") == (11_689_512, 1_814_073_344)
    assert totals("resnet34") == (21_797_672, 3_663_761_408)


def test_resnet_bottleneck_v15():
    # torchvision resnet50 / 101 / 152 (v1.5: stride on the 3x3): 25,557,032, 44,549,160 and
    # 60,192,808 params (docs "25.6M / 44.5M / 60.2M"), 4.09G, 7.80G, 11.51G MACs (docs
    # "4.09 / 7.8 / 11.51 GFLOPS"). The paper's "3.8 / 7.6 / 11.3 x 10^9 FLOPs" are for v1,
    # whose stride on the first 1x1 makes the 3x3 run on the smaller map.
    assert totals("resnet50") == (25_557_032, 4_089_184_256)
    assert totals("resnet101") == (44_549_160, 7_801_405_440)
    assert totals("resnet152") == (60_192_808, 11_513_626_624)


def test_plain34_is_resnet34_without_projections():
    # The paper's plain-34: ResNet-34 without shortcuts. Same convs and BNs, minus the three
    # projections (1x1 conv stride 2 + BN) at the entry of layer2, layer3, layer4:
    #   weights 64*128 + 128*256 + 256*512 = 172,032; BN 2*(128 + 256 + 512) = 1,792
    #   MACs    28*28*64*128 + 14*14*128*256 + 7*7*256*512 = 3 * 6,422,528 = 19,267,584
    # (identity adds cost no params nor MACs).
    projection_params = 64 * 128 + 128 * 256 + 256 * 512 + 2 * (128 + 256 + 512)
    projection_macs = 28 * 28 * 64 * 128 + 14 * 14 * 128 * 256 + 7 * 7 * 256 * 512
    assert projection_params == 173_824 and projection_macs == 19_267_584
    assert totals("plain34") == (21_797_672 - projection_params, 3_663_761_408 - projection_macs)
    assert totals("plain34") == (21_623_848, 3_644_493_824)
    assert not [r for r in analysis("plain34").rows if r.kind == "add"]


def test_resnet50_at_448():
    # Every conv output of ResNet-50 doubles in n_H and n_W at 448x448 (all the stride-2
    # windows divide evenly: (448 + 6 - 7)/2 + 1 -> 224, (224 + 2 - 3)/2 + 1 -> 112, ...),
    # so conv MACs are 4x; the gap makes the fc's 2048*1000 MACs unchanged:
    #   4 * (4,089,184,256 - 2,048,000) + 2,048,000 = 16,350,593,024. Params do not change.
    fc = 2048 * 1000
    a = archcalc.analyze(graph("resnet50"), at={"H": 448, "W": 448})
    assert a.totals["macs"] == 4 * (4_089_184_256 - fc) + fc == 16_350_593_024
    assert a.totals["params"] == 25_557_032
    assert a.row("layer4.b_2.out").out_shape == (14, 14, 2048)
    convs_224 = {r.name: r.macs for r in analysis("resnet50").rows if r.kind == "conv"}
    assert all(r.macs == 4 * convs_224[r.name] for r in a.rows if r.kind == "conv")


# ---------------------------------------------------------------- Inception

def test_inception_naive_5x5():
    # The course's cost example: 28*28*32 outputs x 5*5*192 MACs each = 120,422,400
    # ("about 120 million").
    assert analysis("inception_naive").totals["macs"] == 28 * 28 * 32 * 5 * 5 * 192 == 120_422_400


def test_inception_bottleneck():
    # The same with a 1x1 bottleneck of b=16 maps: 28*28*16*192 = 2,408,448 plus
    # 28*28*32*5*5*16 = 10,035,200, total 12,443,648 (the course's "about 12.4 million").
    a = analysis("inception_bottleneck")
    assert a.row("reduce").macs == 2_408_448
    assert a.row("conv5").macs == 10_035_200
    assert a.totals["macs"] == 2_408_448 + 10_035_200 == 12_443_648


def test_inception_bottleneck_b32():
    # b = 32: both layers scale with b, so twice b=16:
    # 28*28*32*192 = 4,816,896 and 28*28*32*5*5*32 = 20,070,400, total 24,887,296.
    a = archcalc.analyze(graph("inception_bottleneck"), at={"b": 32})
    assert a.row("reduce").macs == 28 * 28 * 32 * 192 == 4_816_896
    assert a.row("conv5").macs == 28 * 28 * 32 * 5 * 5 * 32 == 20_070_400
    assert a.totals["macs"] == 2 * 12_443_648 == 24_887_296


def test_inception_3a():
    # Szegedy et al. (2015), Table 1, row inception (3a): "159K" params and "128M" ops.
    # Weights 192*64 + 192*96 + 9*96*128 + 192*16 + 25*16*32 + 192*32 = 163,328 = 159.5K with
    # K = 1024 (the table counts no biases); with the 368 biases 163,696.
    # MACs 28*28*163,328 = 128,049,152.
    a = analysis("inception_3a")
    weights = 192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32
    assert weights == 163_328 and weights // 1024 == 159
    assert a.totals["params"] == weights + (64 + 96 + 128 + 16 + 32 + 32) == 163_696
    assert a.totals["macs"] == 28 * 28 * weights == 128_049_152
    assert a.rows[-1].out_shape == (28, 28, 256)
    assert a.row("i3a.out").out_shape == (28, 28, 64 + 128 + 32 + 32)


def test_googlenet_torchvision():
    # torchvision googlenet (no aux, BN, 3x3 in the "5x5" branch): 6,624,904 params (docs
    # "6.6M"), 1,498,376,192 MACs (docs "1.5 GFLOPS").
    assert totals("googlenet") == (6_624_904, 1_498_376_192)


def test_googlenet_aux_heads():
    # torchvision googlenet(aux_logits=True): 13,004,888 params (a state_dict count). Each head:
    # conv 1x1 128 (no bias) + BN, fc 2048 -> 1024, fc 1024 -> 1000:
    #   aux1 (reads 4a, 512 maps): 512*128 + 256 + 2,098,176 + 1,025,000 = 3,188,968
    #   aux2 (reads 4d, 528 maps): 528*128 + 256 + 2,098,176 + 1,025,000 = 3,191,016
    aux1 = 512 * 128 + 2 * 128 + (2048 * 1024 + 1024) + (1024 * 1000 + 1000)
    aux2 = 528 * 128 + 2 * 128 + (2048 * 1024 + 1024) + (1024 * 1000 + 1000)
    assert (aux1, aux2) == (3_188_968, 3_191_016)
    a = analysis("googlenet_aux")
    assert a.totals["params"] == 6_624_904 + aux1 + aux2 == 13_004_888
    assert a.row("aux1.fc2").out_shape == (1, 1, 1000)
    assert a.row("aux1.pool").out_shape == (4, 4, 512)
    assert a.row("aux2.pool").out_shape == (4, 4, 528)
    # the main path is untouched: the heads add only their own MACs
    head_macs = (16 * 512 * 128 + 2048 * 1024 + 1024 * 1000) + (16 * 528 * 128 + 2048 * 1024 + 1024 * 1000)
    assert a.totals["macs"] == 1_498_376_192 + head_macs


def test_googlenet_paper():
    # The paper's GoogLeNet (true 5x5, biases, no BN, LRN, no aux): 6,998,552 params and
    # 1,582,671,872 MACs. The paper's Table 1 sums to ~6.8M params (weights only, K = 1024) and
    # ~1.5G ops; its conv1 row says 34M ops where 112*112*64*7*7*3 = 118,013,952.
    assert totals("googlenet_paper") == (6_998_552, 1_582_671_872)
    a = analysis("googlenet_paper")
    assert a.row("conv1").macs == 112 * 112 * 64 * 7 * 7 * 3 == 118_013_952
    assert a.row("i3a.out").out_shape == (28, 28, 256)
    assert sum(r.macs for r in a.rows if r.name.startswith("i3a.")) == 128_049_152


def test_nin_1x1():
    # 32 filters of 1x1x192 on 28x28x192: 32*192 + 32 = 6,176 params, 28*28*32*192 MACs.
    assert totals("nin_1x1") == (32 * 192 + 32, 28 * 28 * 32 * 192) == (6_176, 4_816_896)


# ---------------------------------------------------------------- mobile and modern CNNs
# torchvision's counts: params = sum(p.numel()) of the model (its weights' meta "num_params"),
# BatchNorm gamma and beta included, running statistics excluded; MACs = conv + fc at batch 1,
# 224x224 (its docs' "GFLOPS" column counts multiply-adds).

def test_mobilenet_v1():
    # Howard et al. (2017), Table 1, BN + ReLU after every conv: the paper's "569 million
    # mult-adds" and "4.2 million parameters"; Keras's MobileNet(alpha=1.0) reports 4,231,976
    # trainable params and 21,888 non-trainable (the BN running statistics, as many as the
    # gammas and betas). Written out, with n the output size of each depthwise separable pair:
    #   MACs   = conv1 112*112*32*27 + sum n*n*c_in*(9 + c_out) + fc 1024*1000
    #   params = conv1 27*32 + BN 2*32 + sum (9*c_in + 2*c_in + c_in*c_out + 2*c_out) + fc
    separable = ([(112, 32, 64), (56, 64, 128), (56, 128, 128), (28, 128, 256), (28, 256, 256),
                  (14, 256, 512)] + [(14, 512, 512)] * 5 + [(7, 512, 1024), (7, 1024, 1024)])
    macs = 112 * 112 * 32 * 27 + sum(n * n * c_in * (9 + c) for n, c_in, c in separable) + 1024 * 1000
    params = (27 * 32 + 2 * 32 + sum(9 * c_in + 2 * c_in + c_in * c + 2 * c for _, c_in, c in separable)
              + 1024 * 1000 + 1000)
    bn = 2 * 32 + sum(2 * c_in + 2 * c for _, c_in, c in separable)
    assert (params, macs, bn) == (4_231_976, 568_740_352, 21_888)
    assert totals("mobilenet_v1") == (4_231_976, 568_740_352)
    assert analysis("mobilenet_v1").totals["state"] == bn  # running mean and variance
    # "counting depthwise and pointwise convolutions as separate layers, MobileNet has 28 layers"
    assert depth(analysis("mobilenet_v1")) == 28


def test_mobilenet_v2():
    # torchvision mobilenet_v2: 3,504,872 params ("3.5M"), 300,774,272 MACs ("0.30 GFLOPS";
    # Sandler et al. (2018): "300M" multiply-adds).
    assert totals("mobilenet_v2") == (3_504_872, 300_774_272)
    assert analysis("mobilenet_v2").row("conv_last.out").out_shape == (7, 7, 1280)


def test_mobilenet_v3():
    # torchvision mobilenet_v3_large / mobilenet_v3_small: 5,483,032 and 2,542,856 params
    # ("5.5M", "2.5M"), 216,589,760 and 56,510,400 MACs ("0.22 / 0.06 GFLOPS"; Howard et al.
    # (2019): "219M" and "56M" multiply-adds).
    assert totals("mobilenet_v3_large") == (5_483_032, 216_589_760)
    assert totals("mobilenet_v3_small") == (2_542_856, 56_510_400)
    # squeeze-and-excitation of b5 (120 maps through 32): (120 + 1)*32 + (32 + 1)*120 params
    assert analysis("mobilenet_v3_large").row("b5.body.se.fc1").params == 121 * 32
    assert analysis("mobilenet_v3_large").row("b5.body.se.fc2").params == 33 * 120


def test_efficientnet_b0():
    # torchvision efficientnet_b0: 5,288,548 params ("5.3M"), 385,814,752 MACs ("0.39 GFLOPS";
    # Tan and Le (2019), Table 2: "0.39B FLOPS", multiply-adds).
    assert totals("efficientnet_b0") == (5_288_548, 385_814_752)
    assert analysis("efficientnet_b0").row("s7.b0.out").out_shape == (7, 7, 320)


def test_shufflenet_v2():
    # torchvision shufflenet_v2_x1_0: 2,278,604 params ("2.3M"), 144,907,992 MACs ("0.14
    # GFLOPS"; Ma et al. (2018), Table 5: "146M" FLOPs, multiply-adds).
    assert totals("shufflenet_v2") == (2_278_604, 144_907_992)
    a = analysis("shufflenet_v2")
    assert [a.row(f"stage{i}.u0.out").out_shape for i in (2, 3, 4)] == [
        (28, 28, 116), (14, 14, 232), (7, 7, 464)]


def test_squeezenet():
    # torchvision squeezenet1_0: 1,248,424 params ("1.2M"), 818,924,576 MACs ("0.82 GFLOPS").
    # conv1 is 7x7/2 without padding: (224 - 7)/2 + 1 = 109.5 -> 109; the pools round up.
    assert totals("squeezenet") == (1_248_424, 818_924_576)
    a = analysis("squeezenet")
    assert a.row("conv1").out_shape == (109, 109, 96)
    assert a.row("conv1").macs == 109 * 109 * 96 * 7 * 7 * 3
    assert a.row("fire9.out").out_shape == (13, 13, 512)


def test_densenet121():
    # torchvision densenet121: 7,978,856 params ("8.0M"), 2,834,161,664 MACs ("2.83 GFLOPS").
    # The 121 layers of its name are the weighted ones on the longest path: conv0,
    # 2*(6 + 12 + 24 + 16) dense-layer convs, 3 transition convs and the fc.
    assert totals("densenet121") == (7_978_856, 2_834_161_664)
    a = analysis("densenet121")
    assert depth(a) == 1 + 2 * (6 + 12 + 24 + 16) + 3 + 1 == 121
    assert [a.row(f"denseblock{i}.layer_{n}.out").out_shape[2]
            for i, n in ((1, 6), (2, 12), (3, 24), (4, 16))] == [
        64 + 6 * 32, 128 + 12 * 32, 256 + 24 * 32, 512 + 16 * 32]


def test_regnet_y_400mf():
    # torchvision regnet_y_400mf: 4,344,144 params ("4.3M"), 401,842,848 MACs ("0.4 GFLOPS").
    # Stage widths 48, 104, 208, 440 in groups of 8 maps: the 3x3 of block4 has 55 groups,
    # 440 * 3*3*8 weights.
    assert totals("regnet_y_400mf") == (4_344_144, 401_842_848)
    a = analysis("regnet_y_400mf")
    assert a.row("block4.b0.f.b.conv").params == 440 * 3 * 3 * 8


def test_convnext_tiny():
    # torchvision convnext_tiny: num_params 28,589,128, 4,455,531,264 MACs ("4.46 GFLOPS"; Liu
    # et al. (2022), Table 9: "28M" params, "4.5G" FLOPs, multiply-adds).
    assert totals("convnext_tiny") == (28_589_128, 4_455_531_264)
    # weighted layers on the path: stem, 3 convs in each of 3 + 3 + 9 + 3 blocks, 3
    # downsampling convs, fc
    assert depth(analysis("convnext_tiny")) == 1 + 3 * 18 + 3 + 1 == 59


def test_convnext_block_arithmetic():
    # One CNBlock of dim d at n x n: depthwise 7x7 (49d + d bias), LayerNorm (2d), Linear
    # d -> 4d (4d^2 + 4d), Linear 4d -> d (4d^2 + d), layer scale (d): 8d^2 + 58d params;
    # MACs n^2 (49d + 4d^2 + 4d^2). Stage 1: d = 96 at 56x56.
    d, n = 96, 56
    a = analysis("convnext_tiny")
    block = [r for r in a.rows if r.name.startswith("stage1.b_1.")]
    assert [r.params for r in block] == [49 * d + d, 2 * d, d * 4 * d + 4 * d, 0, 4 * d * d + d,
                                         d, 0]
    assert sum(r.params for r in block) == 8 * d * d + 58 * d == 79_296
    assert sum(r.macs for r in block) == n * n * (49 * d + 8 * d * d) == 245_962_752
    assert a.row("stage1.b_1.pwconv1").out_shape == (56, 56, 384)
    # Written out: stem 4x4x3x96 + 96 and its LayerNorm; blocks 8d^2 + 58d; each downsampling
    # LayerNorm 2d + 2x2 conv 4d(2d) + 2d; head LayerNorm 2*768 + fc 768*1000 + 1000.
    stages = [(96, 56, 3), (192, 28, 3), (384, 14, 9), (768, 7, 3)]
    params = (4 * 4 * 3 * 96 + 96 + 2 * 96 + sum(k * (8 * d * d + 58 * d) for d, _, k in stages)
              + sum(2 * d + 4 * d * 2 * d + 2 * d for d in (96, 192, 384))
              + 2 * 768 + 768 * 1000 + 1000)
    macs = (56 * 56 * 96 * 4 * 4 * 3 + sum(k * n * n * (49 * d + 8 * d * d) for d, n, k in stages)
            + sum((n // 2) ** 2 * 2 * d * 4 * d for d, n, _ in stages[:3]) + 768 * 1000)
    assert (params, macs) == (28_589_128, 4_455_531_264)


# ---------------------------------------------------------------- the design comparison
# reports/modern_blocks.md: four blocks with 256 maps in and out at 56x56, stride 1. Each
# block's params and MACs written out from its paper's figure and torchvision's layout; BN's
# gamma and beta 2 per channel.

HW = 56 * 56


def test_block_resnet_bottleneck():
    # 1x1 256 -> 64, 3x3 64 -> 64, 1x1 64 -> 256, no bias, BN after each
    params = 256 * 64 + 2 * 64 + 3 * 3 * 64 * 64 + 2 * 64 + 64 * 256 + 2 * 256
    macs = HW * (256 * 64 + 3 * 3 * 64 * 64 + 64 * 256)
    assert (params, macs) == (70_400, 218_365_952)
    assert totals("block_resnet_bottleneck") == (params, macs)


def test_block_inverted_residual():
    # t = 6: 1x1 256 -> 1536, depthwise 3x3 on 1536, 1x1 1536 -> 256, no bias, BN after each
    e = 6 * 256
    params = 256 * e + 2 * e + 3 * 3 * e + 2 * e + e * 256 + 2 * 256
    macs = HW * (256 * e + 3 * 3 * e + e * 256)
    assert (params, macs) == (806_912, 2_509_602_816)
    assert totals("block_inverted_residual") == (params, macs)


def test_block_shufflenet_v2_unit():
    # half of the maps (128) through 1x1, depthwise 3x3, 1x1, no bias, BN after each
    h = 256 // 2
    params = h * h + 2 * h + 3 * 3 * h + 2 * h + h * h + 2 * h
    macs = HW * (h * h + 3 * 3 * h + h * h)
    assert (params, macs) == (34_688, 106_373_120)
    assert totals("block_shufflenet_v2") == (params, macs)


def test_block_convnext():
    # depthwise 7x7 (bias), LayerNorm, 1x1 256 -> 1024 (bias), 1x1 1024 -> 256 (bias), scale
    d = 256
    params = 7 * 7 * d + d + 2 * d + d * 4 * d + 4 * d + 4 * d * d + d + d
    macs = HW * (7 * 7 * d + d * 4 * d + 4 * d * d)
    assert (params, macs) == (539_136, 1_683_505_152)
    assert totals("block_convnext") == (params, macs)
    # the 7x7 sees 7 input pixels a side; the others' one 3x3 sees 3
    assert [analysis(n).rows[-1].receptive_field for n in (
        "block_resnet_bottleneck", "block_inverted_residual", "block_shufflenet_v2",
        "block_convnext")] == [(3, 1), (3, 1), (3, 1), (7, 1)]


# ---------------------------------------------------------------- every spec

ALL_SPECS = sorted(p.stem for p in SPECS.glob("*.arch"))
IMAGENET = ["alexnet", "alexnet_2gpu", "vgg16", "vgg19", "resnet18", "resnet34", "resnet50",
            "resnet101", "resnet152", "plain34", "googlenet", "googlenet_aux", "googlenet_paper",
            "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
            "efficientnet_b0", "shufflenet_v2", "squeezenet", "densenet121", "regnet_y_400mf",
            "convnext_tiny"]


def test_every_named_spec_exists():
    assert set(IMAGENET) | {"lenet5", "lenet5_1998", "nin_1x1", "inception_naive",
                            "inception_bottleneck", "inception_3a"} <= set(ALL_SPECS)


@pytest.mark.parametrize("name", ALL_SPECS)
def test_rows_sum_to_totals(name):
    a = analysis(name)
    for key in SUMMED:
        assert sum(getattr(r, key) for r in a.rows) == a.totals[key], key


@pytest.mark.parametrize("name", ALL_SPECS)
def test_free_symbols_then_defaults(name):
    # Analysing with every symbol free and substituting the defaults afterwards gives exactly
    # the analysis at the defaults: totals and every row's params, MACs and output shape.
    g = graph(name)
    names = [s.name for s in g.symbols]
    defaults = {symbol(s.name): s.default for s in g.symbols}
    free = archcalc.analyze(g, free=names)
    concrete = analysis(name)

    def at_defaults(x):
        x = sympy.sympify(x)
        if isinstance(x, sympy.Max):
            # Max.subs binds one symbol at a time and re-compares the half-bound arguments
            # pairwise (~0.4 s a network); substituting into each argument is the same value
            value = sympy.Max(*(arg.subs(defaults) for arg in x.args))
        else:
            value = x.subs(defaults)
        assert value.is_Integer, (x, value)
        return int(value)

    assert set(free.totals) == set(concrete.totals)
    for key, value in concrete.totals.items():
        assert at_defaults(free.totals[key]) == value, key
    assert [r.name for r in free.rows] == [r.name for r in concrete.rows]
    for f, c in zip(free.rows, concrete.rows):
        assert at_defaults(f.params) == c.params, f.name
        assert at_defaults(f.macs) == c.macs, f.name
        assert tuple(at_defaults(n) for n in f.out_shape) == tuple(c.out_shape), f.name


@pytest.mark.parametrize("name", IMAGENET)
def test_imagenet_specs_reanalyse(name):
    # The ImageNet networks declare H and W with the paper's defaults and an (H, W, 3) input;
    # at 448x448 they still end in 1000 logits and keep their params (the fc layers follow a
    # global or adaptive pool) except the flatten-to-fc AlexNets, whose fc6 grows.
    g = graph(name)
    assert {s.name: s.default for s in g.symbols} == (
        {"H": 227, "W": 227} if name.startswith("alexnet") else {"H": 224, "W": 224})
    assert analysis(name).rows[0].out_shape[2] == 3
    a = archcalc.analyze(g, at={"H": 448, "W": 448})
    assert a.rows[-1].out_shape[:2] == (1, 1) and a.rows[-1].out_shape[2] == 1000
    assert a.totals["macs"] > analysis(name).totals["macs"]
    if not name.startswith("alexnet") and name != "googlenet_paper":
        assert a.totals["params"] == analysis(name).totals["params"]


# ---------------------------------------------------------------- ViT-B/16

def vit_split(a):
    """MACs by part: the patch conv, attention (QKV, output projection, QK^T and AV), MLP and head."""
    attn = [r for r in a.rows if r.kind == "attention"]
    rest = sum(r.macs for r in a.rows if r.kind in ("conv", "fc") and r.name != "patch")
    return a.row("patch").macs, sum(r.macs - r.attention_macs for r in attn), a.attention_macs, rest


def vit_figures(a):
    # Paper (Table 1, Base), torchvision's vit_b_16: d = 768, N = 14*14 + 1 = 197, 12 blocks.
    # params: patch 16*16*3*768 + 768 = 590,592; class token 768; position 197*768 = 151,296;
    # a block: 2 LayerNorms 2*2*768 = 3,072, attention 4*768^2 + 4*768 = 2,362,368,
    # MLP 768*3072 + 3072 + 3072*768 + 768 = 4,722,432: 7,087,872, times 12 = 85,054,464;
    # final LayerNorm 1,536; head 768*1000 + 1000 = 769,000.
    assert a.totals["params"] == 590_592 + 768 + 151_296 + 12 * 7_087_872 + 1_536 + 769_000 == 86_567_656
    conv, projections, products, rest = vit_split(a)
    assert conv == 14 * 14 * 768 * 16 * 16 * 3 == 115_605_504
    # QKV 12*197*3*768*768 = 4,183,031,808, output 12*197*768*768 = 1,394,343,936
    assert projections == 4_183_031_808 + 1_394_343_936
    assert products == 12 * 2 * 197 * 197 * 768 == 715_327_488
    assert rest == 12 * 2 * 197 * 768 * 3072 + 768 * 1000 == 11_155_519_488
    assert a.totals["macs"] == conv + projections + products + rest == 17_563_828_224


def test_vit_b_16():
    a = analysis("vit_b_16")
    vit_figures(a)
    assert a.row("seq").out_shape == (1, 197, 768) and a.row("cls").out_shape == (1, 1, 768)


def test_vit_b_16_runs_at_32x32_and_counts_what_it_analyses():
    # patch 16 on 32x32: 2*2 = 4 tokens + the class token; every product the kernels run,
    # QK^T and AV included (12 * 2 * 5*5*768 = 460,800 of them), is the analysis' MACs
    from archcalc.executor import check
    from archcalc.executor.forward import plan
    vit = archcalc.load(SPECS / "vit_b_16.arch")
    result = archcalc.run(vit, at={"H": 32, "W": 32})
    assert check(result) == []
    # the workspace counted before the run is the one the kernels took; attention's: Q, K, V
    # (5 tokens x 3*768) and the scores (12 heads x 5 x 5)
    assert result.workspace_bytes == plan(vit, {"H": 32, "W": 32}).workspace_bytes(1, np.dtype(np.float32))
    from archcalc.executor.kernels import TILE_BYTES, WORKSPACE
    assert WORKSPACE["attention"](vit.layer("layer_1.attn").op, (1, 1, 5, 768), 4, TILE_BYTES) == {"qkv": 5 * 3 * 768, "scores": 12 * 5 * 5}
    assert result.analysis.attention_macs == 12 * 2 * 5 * 5 * 768 == 460_800
    assert result.total_macs == result.analysis.totals["macs"] == (
        2 * 2 * 768 * 16 * 16 * 3 + 12 * (4 * 5 * 768 * 768 + 2 * 5 * 5 * 768 + 2 * 5 * 768 * 3072) + 768_000)
