"""Every layer kind against arithmetic worked by hand: (kind, input) -> (output, params, MACs)."""
from __future__ import annotations

from fractions import Fraction

import pytest

import archcalc
from archcalc import kinds as ops

C3_TABLE = "[[0,1,2],[1,2,3],[2,3,4],[3,4,5],[4,5,0],[5,0,1],[0,1,2,3],[1,2,3,4],[2,3,4,5]," \
           "[3,4,5,0],[4,5,0,1],[5,0,1,2],[0,1,3,4],[1,2,4,5],[0,2,3,5],[0,1,2,3,4,5]]"


def network_text(shape, statement):
    """A network of one input of `shape` and the statement; an input statement stands alone."""
    first = "" if ops.KINDS[statement.split()[0]].network_input else f" input x : {shape}\n"
    return f"network T {{\n{first} {statement}\n}}\n"


def last_row(shape, statement, **kw):
    return archcalc.analyze(archcalc.loads(network_text(shape, statement), "t.arch"), **kw).rows[-1]


# (input shape, statement, out shape, params, MACs), each worked out in the comment
CASES = [
    # (32 - 5)/1 + 1 = 28; (5*5*1 + 1)*6 = 156; 28*28*6 * 5*5*1 = 117,600
    ("(32, 32, 1)", "conv c : f=5 c=6", (28, 28, 6), 156, 117_600),
    # (15 + 2 - 3)/2 + 1 = 8; (3*3*4 + 1)*8 = 296; 8*8*8 * 3*3*4 = 18,432
    ("(15, 15, 4)", "conv c : f=3 s=2 p=1 c=8", (8, 8, 8), 296, 18_432),
    # same: p = 1; groups 2: (3*3*6/2 + 1)*4 = 112; 10*10*4 * 3*3*3 = 10,800
    ("(10, 10, 6)", "conv c : f=3 p=same c=4 groups=2", (10, 10, 6 - 2), 112, 10_800),
    # dilation 2: effective f = 2*(3-1) + 1 = 5, (9 - 5) + 1 = 5; (9 + 1)*2 = 20; 5*5*2*9 = 450
    ("(9, 9, 1)", "conv c : f=3 c=2 dilation=2", (5, 5, 2), 20, 450),
    # Network in Network 1x1, no bias: 192*32 = 6,144; 28*28*32*192 = 4,816,896
    ("(28, 28, 192)", "conv c : f=1 c=32 bias=off", (28, 28, 32), 6_144, 4_816_896),
    # LeNet-5 C3: 60 table entries * 25 + 16 biases = 1,516; 10*10 * 60*25 = 150,000
    ("(14, 14, 6)", f"conv c : f=5 c=16 table={C3_TABLE}", (10, 10, 16), 1_516, 150_000),
    # AlexNet pool: (55 - 3)/2 + 1 = 27
    ("(55, 55, 96)", "maxpool p : f=3 s=2", (27, 27, 96), 0, 0),
    # ceil: ceil((112 - 3)/2) + 1 = 55 + 1 = 56
    ("(112, 112, 64)", "maxpool p : f=3 s=2 round=ceil", (56, 56, 64), 0, 0),
    # ceil((5 + 2 - 2)/2) + 1 = 4, but the 4th window would start in the padding: 3 (PyTorch)
    ("(5, 5, 1)", "maxpool p : f=2 s=2 p=1 round=ceil", (3, 3, 1), 0, 0),
    ("(4, 4, 3)", "avgpool p : 2", (2, 2, 3), 0, 0),
    # LeNet-5 S2: a coefficient and a bias per map: 2*6 = 12
    ("(28, 28, 6)", "subsample s : f=2", (14, 14, 6), 12, 0),
    # 400*120 + 120 = 48,120 params; 400*120 = 48,000 MACs
    ("(1, 1, 400)", "fc f : 120", (1, 1, 120), 48_120, 48_000),
    ("(1, 1, 400)", "fc f : 120 bias=off", (1, 1, 120), 48_000, 48_000),
    # gamma and beta per channel: 2*64
    ("(7, 7, 64)", "batchnorm b", (7, 7, 64), 128, 0),
    ("(7, 7, 2048)", "gap g", (1, 1, 2048), 0, 0),
    ("(14, 14, 512)", "adaptive_avgpool a : 4", (4, 4, 512), 0, 0),
    ("(5, 5, 16)", "flatten f", (1, 1, 400), 0, 0),
    ("(55, 55, 96)", "lrn n : 5", (55, 55, 96), 0, 0),
    ("(1, 1, 84)", "rbf r : 10", (1, 1, 10), 840, 0),
    # activations of modern CNNs: shapes unchanged, no params, no MACs
    ("(8, 8, 4)", "leaky_relu a : 0.1", (8, 8, 4), 0, 0),
    ("(8, 8, 4)", "clip a : lo=0 hi=6", (8, 8, 4), 0, 0),
    ("(8, 8, 4)", "hardsigmoid a", (8, 8, 4), 0, 0),
    ("(8, 8, 4)", "hardswish a", (8, 8, 4), 0, 0),
    ("(8, 8, 4)", "swish a", (8, 8, 4), 0, 0),
    ("(8, 8, 4)", "identity a", (8, 8, 4), 0, 0),
    ("(8, 8, 4)", "mul m <- x, x", (8, 8, 4), 0, 0),
    # 6 maps as 3 groups of 2, transposed: shape unchanged
    ("(8, 8, 6)", "shuffle s : 3", (8, 8, 6), 0, 0),
    # 7 + 0 + 1 = 8 rows, 7 + 0 + 1 = 8 columns
    ("(7, 7, 3)", "pad p : top=0 bottom=1 left=0 right=1", (8, 8, 3), 0, 0),
    # channels 2, 3, 4
    ("(8, 8, 6)", "slice s : start=2 stop=5", (8, 8, 3), 0, 0),
    # ResNeSt: 12 maps as r = 3 splits of 12/3 = 4, summed; a softmax across 2 splits in 3 groups
    ("(8, 8, 12)", "split_sum s : 3", (8, 8, 4), 0, 0),
    ("(1, 1, 12)", "radix_softmax s : 2 groups=3", (1, 1, 12), 0, 0),
    # Inception v3's 1x7: (17 + 0 - 1) + 1 = 17 rows, (17 + 2*3 - 7) + 1 = 17 columns;
    # (1*7*8 + 1)*4 = 228; 17*17*4 * 1*7*8 = 64,736
    ("(17, 17, 8)", "conv_hw c : 1 7 4 pw=3", (17, 17, 4), 228, 64_736),
    # the input: the shape it declares
    ("(5, 6, 7)", "input x : (5, 6, 7)", (5, 6, 7), 0, 0),
    # element-wise: shape unchanged, nothing learnt, no matrix product
    ("(8, 8, 4)", "relu a", (8, 8, 4), 0, 0),
    ("(8, 8, 4)", "tanh a", (8, 8, 4), 0, 0),
    ("(8, 8, 4)", "sigmoid a", (8, 8, 4), 0, 0),
    ("(1, 1, 10)", "softmax a", (1, 1, 10), 0, 0),
    ("(8, 8, 4)", "dropout d : 0.5", (8, 8, 4), 0, 0),
    # a residual add of equal shapes keeps the shape
    ("(8, 8, 4)", "add a <- x, x", (8, 8, 4), 0, 0),
    # channels summed: 4 + 4 = 8
    ("(8, 8, 4)", "concat c <- x, x", (8, 8, 8), 0, 0),
    # upsample by 2: 2*4 = 8 rows, 2*5 = 10 columns; a copy or an interpolation, never MACs
    ("(4, 5, 3)", "upsample u : 2", (8, 10, 3), 0, 0),
    ("(4, 5, 3)", "upsample u : scale=3 mode=bilinear", (12, 15, 3), 0, 0),
    # to a size: the size given, channels kept
    ("(5, 7, 3)", "upsample u : size=(12, 4) mode=bilinear", (12, 4, 3), 0, 0),
    # crop to size=(4, 6): 9 - 4 = 5 rows cut (2 at the top, 3 at the bottom), 8 - 6 = 2 columns;
    # to the size of a second input (here the same map): nothing cut; a copy, never MACs
    ("(9, 8, 3)", "crop k : size=(4, 6)", (4, 6, 3), 0, 0),
    ("(8, 8, 4)", "crop k <- x, x", (8, 8, 4), 0, 0),
    # ConvNeXt and ViT: layer norm learns gamma and beta per channel, 2*96 = 192 (no state);
    # layer scale one factor per channel, 96; element-wise, so never MACs
    ("(7, 7, 96)", "layernorm n : eps=0.000001", (7, 7, 96), 192, 0),
    ("(1, 1, 768)", "layernorm n", (1, 1, 768), 1_536, 0),
    ("(7, 7, 96)", "scale s", (7, 7, 96), 96, 0),
    ("(8, 8, 4)", "gelu a", (8, 8, 4), 0, 0),
    ("(8, 8, 4)", "gelu a : approximate=tanh", (8, 8, 4), 0, 0),
    ("(8, 8, 4)", "elu a : 0.5", (8, 8, 4), 0, 0),
    # tokens: 2*3 = 6 positions + a class token = 7 of width 4; class token 4 + position
    # embedding 7*4 = 28: 32 params
    ("(2, 3, 4)", "tokens t : class_token=on position=on", (1, 7, 4), 32, 0),
    ("(2, 3, 4)", "tokens t", (1, 6, 4), 0, 0),
    # token 2 of 7: a vector of width 4
    ("(1, 7, 4)", "token t : 2", (1, 1, 4), 0, 0),
    # attention, N = 2*3 = 6 positions, d = 8, 2 heads: 4*8^2 + 4*8 = 288 params;
    # projections 6*3*8*8 + 6*8*8 = 1,536, QK^T and AV 6*6*8 each = 576: 2,112 MACs
    ("(2, 3, 8)", "attention a : heads=2", (2, 3, 8), 288, 2_112),
    # MobileViT's attention in 2x2 patches: P = 4 sequences of N = 4*6/4 = 6 tokens, d = 8;
    # projections over all 24 positions 4*24*8*8 = 6,144, QK^T and AV 2*4*6*6*8 = 2,304: 8,448
    ("(4, 6, 8)", "attention a : heads=2 patch=2", (4, 6, 8), 288, 8_448),
    # U-Net's up-convolution: (28 - 1)*2 - 2*0 + 2 = 56; 2*2*1024*512 + 512 = 2,097,664;
    # every input pixel times every tap: 28*28*1024 * 2*2*512 = 1,644,167,168
    ("(28, 28, 1024)", "conv_transpose u : 2 512 s=2", (56, 56, 512), 2_097_664, 1_644_167_168),
    # (3 - 1)*2 - 2*1 + 3 + 1 = 6, (4 - 1)*2 - 2 + 3 + 1 = 8; 3*3*(8/2)*6 + 6 = 222; 3*4*8 * 3*3*6/2 = 2,592
    ("(3, 4, 8)", "conv_transpose u : 3 6 s=2 p=1 out_pad=1 groups=2", (6, 8, 6), 222, 2_592),
    # MobileNet v1's 56 x 56 x 128 depthwise: 3*3*128 + 128 = 1,280; 56*56*128 * 3*3 = 3,612,672
    ("(56, 56, 128)", "dwconv d : 3 p=1", (56, 56, 128), 1_280, 3_612_672),
    # multiplier 2: c = 2*3 = 6; 3*3*1*6 = 54; (7 - 3)/1 + 1 = 5: 5*5*6 * 3*3 = 1,350
    ("(7, 7, 3)", "dwconv d : 3 m=2 bias=off", (5, 5, 6), 54, 1_350),
    # weight standardisation: the conv's 3*3*4*6 + 6 = 222 params, plus a gain per filter: 228;
    # the conv's MACs 5*5*6 * 3*3*4 = 5,400
    ("(7, 7, 4)", "conv c : 3 6 ws=on gain=on", (5, 5, 6), 228, 5_400),
]


@pytest.mark.parametrize("shape, statement, out, params, macs", CASES)
def test_layer_rule_matches_hand_arithmetic(shape, statement, out, params, macs):
    row = last_row(shape, statement)
    assert tuple(row.out_shape) == out
    assert row.params == params
    assert row.macs == macs
    assert row.flops == 2 * macs


def test_other_ops_counts():
    # bias adds: one per output element, 28*28*6
    assert last_row("(32, 32, 1)", "conv c : f=5 c=6").other_ops == 4_704
    # max pool: f*f - 1 comparisons per output: 27*27*96*8
    assert last_row("(55, 55, 96)", "maxpool p : f=3 s=2").other_ops == 27 * 27 * 96 * 8
    # adaptive 14 -> 4: windows [0,4) [3,7) [7,11) [10,14), 16 rows and 16 columns summed
    assert last_row("(14, 14, 512)", "adaptive_avgpool a : 4").other_ops == 16 * 16 * 512
    # LRN across 5 channels: 2*5 + 3 per element
    assert last_row("(55, 55, 96)", "lrn n : 5").other_ops == 55 * 55 * 96 * 13
    # BatchNorm: scale and shift per element; running statistics are state
    row = last_row("(7, 7, 64)", "batchnorm b")
    assert (row.other_ops, row.state, row.trainable_params) == (2 * 7 * 7 * 64, 128, 128)


def test_layernorm_scale_gelu_elu_other_ops_and_state():
    # layer norm, per position of 96 channels: 7 per element (sum for the mean, subtract it,
    # square, sum for the variance, divide, scale, shift) and 2 per position (add eps, sqrt):
    # 7*7*7*96 + 2*7*7 = 32,928 + 98 = 33,026; gamma and beta learnt, no running state
    row = last_row("(7, 7, 96)", "layernorm n : eps=0.000001")
    assert (row.other_ops, row.state, row.trainable_params) == (33_026, 0, 192)
    assert last_row("(7, 7, 96)", "scale s").other_ops == 7 * 7 * 96  # one product per element
    assert last_row("(8, 8, 4)", "gelu a").other_ops == 256             # activations: one each
    assert last_row("(8, 8, 4)", "elu a").other_ops == 256
def test_attention_counts_its_products_apart_and_its_other_ops():
    row = last_row("(2, 3, 8)", "attention a : 2")
    assert row.attention_macs == 2 * 6 * 6 * 8 == 576
    # 4 bias adds and one 1/sqrt(d_h) scaling per token and channel, 5*6*8 = 240; softmax 3
    # per score, 3 * 2 heads * 6*6 = 216
    assert row.other_ops == 240 + 216 == 456
    # in 2x2 patches (MobileViT): 4 sequences of 6 tokens; scalings and biases 5*24*8 = 960 as
    # over all positions, softmax 3 * 2 heads * 4*6*6 = 864
    row = last_row("(4, 6, 8)", "attention a : 2 patch=2")
    assert (row.attention_macs, row.other_ops) == (2 * 4 * 6 * 6 * 8, 960 + 864) == (2_304, 1_824)
    # the position embedding is added: 7*4 adds
    assert last_row("(2, 3, 4)", "tokens t : class_token=on position=on").other_ops == 28


def test_attention_products_show_in_the_totals_only_with_attention():
    from archcalc.present import tables
    net = archcalc.loads(network_text("(2, 3, 8)", "attention a : 2"), "t.arch")
    a = archcalc.analyze(net)
    assert (a.totals["macs"], a.attention_macs) == (2_112, 576)
    lines = tables.text(a).splitlines()
    assert lines[lines.index(next(l for l in lines if l.startswith("MACs "))) + 1].split() == \
        ["of", "which", "attention", "products", "576", "(QK^T", "and", "AV)"]
    assert a.notes == ("attention 'a': MACs include the products QK^T and AV: 2*N*N*d = 2*6*6*8 = 576",)
    doc = tables.document(a)
    assert (doc["totals"]["attention_macs"], [l["attention_macs"] for l in doc["layers"]]) == (576, [0, 576])
    plain = archcalc.analyze(archcalc.loads(network_text("(2, 3, 8)", "relu a"), "t.arch"))
    assert "attention" not in tables.text(plain) + tables.as_json(plain) and plain.attention_macs == 0


def test_upsample_other_ops_count_the_interpolation():
    # nearest copies: nothing to count
    assert last_row("(4, 4, 3)", "upsample u : 2").other_ops == 0
    # bilinear: 8*8*3 = 192 outputs, each a 2-tap interpolation along rows and one along
    # columns, w0*a + w1*b = 2 multiplications + 1 addition: 192 * 2 * (2 + 1) = 1,152
    assert last_row("(4, 4, 3)", "upsample u : 2 mode=bilinear").other_ops == 1_152


def test_upsample_divides_the_stride_and_widens_the_field_only_by_its_taps():
    text = """network U {
        input    x : (16, 16, 1)
        conv     a : f=3 p=1 c=1
        upsample n : 2
        conv     b : f=3 p=1 c=1
        upsample l <- a : 2 mode=bilinear
        upsample m <- x : 2
        conv     w : f=5 p=2 c=1
        concat   j <- w, b
        maxpool  p <- b : 2
    }"""
    a = archcalc.analyze(archcalc.loads(text))
    rf = {n: a.row(n).receptive_field for n in "anblwjp"}
    assert rf["a"] == (3, 1)
    assert rf["n"] == (3, Fraction(1, 2))  # a copy of one pixel: the field stays, the step halves
    assert rf["b"] == (4, Fraction(1, 2))  # 3 + (3 - 1) * 1/2
    assert rf["l"] == (4, Fraction(1, 2))  # 2 taps: 3 + (2 - 1) * 1
    assert rf["w"] == (3, Fraction(1, 2))  # 1 + (5 - 1) * 1/2
    assert rf["j"] == (4, Fraction(1, 2))  # the larger of b's and w's, compared as numbers
    assert rf["p"] == (Fraction(9, 2), 1)  # 4 + (2 - 1) * 1/2; the step 1/2 * 2 = 1
    assert "upsample 'n': receptive field: an output step is 1/2 of an input step" in a.notes[0]


def test_rbf_prototypes_are_frozen_parameters():
    row = last_row("(1, 1, 84)", "rbf r : 10")
    assert (row.trainable_params, row.frozen_params) == (0, 840)
    assert row.other_ops == 3 * 84 * 10


def test_joins():
    text = """network J {
        input x : (28, 28, 192)
        conv a <- x : f=1 c=64
        conv b <- x : f=3 p=1 c=128
        concat c <- a, b
        conv d <- c : f=1 c=192
        add e <- d, x
    }"""
    a = archcalc.analyze(archcalc.loads(text))
    assert tuple(a.row("c").out_shape) == (28, 28, 192)
    assert a.row("e").other_ops == 28 * 28 * 192  # one add per element


def test_receptive_field_grows_by_f_minus_1_times_the_stride_so_far():
    text = """network R {
        input x : (32, 32, 1)
        conv a : f=3 c=1
        conv b : f=3 c=1
        maxpool p : f=2 s=2
        conv d : f=3 c=1
        fc e : 10
    }"""
    a = archcalc.analyze(archcalc.loads(text.replace("fc e : 10", "flatten\n fc e : 10")))
    # 1 -> 3 -> 5 -> 6 (stride 2) -> 6 + 2*2 = 10 (stride 2); fc sees everything
    assert [a.row(n).receptive_field for n in "abpd"] == [(3, 1), (5, 1), (6, 2), (10, 2)]
    assert a.row("e").receptive_field is None


def test_peak_activations_frees_after_the_last_reader():
    text = """network P {
        input x : (10, 10, 1)
        conv a : f=1 c=4
        conv b : f=1 c=2
        add c <- b, b
    }"""
    a = archcalc.analyze(archcalc.loads(text))
    # computing b: a (400) and b (200) live, x freed after a; then b and c: 200 + 200
    assert a.totals["peak_activations"] == max(100 + 400, 400 + 200, 200 + 200)


def test_inexact_division_is_a_note_in_floor_mode():
    a = archcalc.analyze(archcalc.loads("network N {\n input x : (224, 224, 3)\n conv c1 : f=7 s=2 p=2 c=8\n}"))
    # one note when n_H and n_W round alike; two when they differ
    assert a.notes == ("conv 'c1': n_H, n_W: (224 + 2*2 - 7)/2 + 1 = 111.5 -> 111",)
    a = archcalc.analyze(archcalc.loads("network N {\n input x : (224, 226, 3)\n conv c1 : f=7 s=2 p=2 c=8\n}"))
    assert a.notes == ("conv 'c1': n_H: (224 + 2*2 - 7)/2 + 1 = 111.5 -> 111",
                       "conv 'c1': n_W: (226 + 2*2 - 7)/2 + 1 = 112.5 -> 112")


def test_freeze_through_a_layer():
    text = "network F {\n input x : (1, 1, 10)\n fc a : 5\n fc b : 3\n}"
    a = archcalc.analyze(archcalc.loads(text), freeze="a")
    # a: 10*5 + 5 = 55 frozen; b: 5*3 + 3 = 18 trainable
    assert (a.totals["trainable_params"], a.totals["frozen_params"]) == (18, 55)


def test_mul_spreads_a_size_of_one_squeeze_and_excitation():
    text = """network SE {
        input x : (14, 14, 32)
        gap   g
        conv  r : f=1 c=8
        relu
        conv  e : f=1 c=32
        sigmoid
        mul   m <- x, sigmoid1
    }"""
    a = archcalc.analyze(archcalc.loads(text))
    assert tuple(a.row("m").out_shape) == (14, 14, 32)
    assert a.row("m").other_ops == 14 * 14 * 32  # one product per output element
    assert a.row("m").macs == 0                   # element-wise work is never MACs
    with pytest.raises(archcalc.SpecError, match="inputs differ in n_C: 32 vs 8"):
        archcalc.analyze(archcalc.loads(text.replace("x, sigmoid1", "x, relu1")))


@pytest.mark.parametrize("statement, message", [
    ("shuffle s : 4", "groups=4 does not divide n_C = 6"),
    ("split_sum s : 4", "r = 4 does not divide n_C = 6"),
    ("radix_softmax s : 2 groups=2", "r*groups = 4 does not divide n_C = 6"),
    ("radix_softmax s : 1", "r=1 has one split: softmax over it is 1 everywhere"),
    ("slice s : start=2 stop=9", "stop=9 is past the input's n_C = 6"),
    ("slice s : start=5 stop=5", "empty channel range"),
    ("clip c : lo=6 hi=1", "hi=1 is below lo=6"),
    ("upsample u", "needs scale"),
    ("upsample u : 2 size=(4, 4)", "takes scale or size, not both"),
    ("upsample u : size=(4, 4, 4)", r"argument 'size' must be a size \(n_H, n_W\)"),
    ("upsample u : 2 mode=cubic", "argument 'mode' must be one of nearest, bilinear, got 'cubic'"),
    ("gelu g : approximate=erf", "argument 'approximate' must be one of none, tanh, got 'erf'"),
    ("crop k : size=(9, 4)", "n_H = 9 is larger than the input's 8"),
    ("crop k", r"takes the size of a second input or size=\(n_H, n_W\), one of them"),
    ("crop k <- x, x : size=(4, 4)", r"takes the size of a second input or size=\(n_H, n_W\), one of them"),
])
def test_modern_kinds_refuse_bad_arguments(statement, message):
    with pytest.raises(archcalc.SpecError, match=message):
        last_row("(8, 8, 6)", statement)


@pytest.mark.parametrize("shape, statement, message", [
    ("(2, 3, 8)", "attention a : 3", "heads=3 does not divide d = n_C = 8"),
    ("(4, 3, 8)", "attention a : 2 patch=2", "patch=2 does not divide n_W = 3"),
    ("(1, 7, 4)", "token t : 7", "token 7 is past the input's N = n_H*n_W = 7 tokens (0 to 6)"),
])
def test_token_kinds_refuse_bad_arguments(shape, statement, message):
    with pytest.raises(archcalc.SpecError) as e:
        last_row(shape, statement)
    assert message in e.value.message


def test_modern_kernels_follow_their_definitions():
    import numpy as np

    from archcalc.executor.kernels import KERNELS, Context
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 6)) * 4

    def run(op, *xs):
        return KERNELS[op.kind](op, tuple(np.array(a) for a in xs), {}, Context(np.float64))

    sig = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(run(ops.LeakyReLU(alpha=0.1), x), np.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(run(ops.Clip(lo=0, hi=6), x), np.minimum(np.maximum(x, 0), 6))
    np.testing.assert_allclose(run(ops.HardSigmoid(), x), np.clip(x / 6 + 0.5, 0, 1))
    np.testing.assert_allclose(run(ops.HardSwish(), x), x * np.clip(x / 6 + 0.5, 0, 1))
    np.testing.assert_allclose(run(ops.Swish(), x), x * sig)
    np.testing.assert_allclose(run(ops.Identity(), x), x)
    scale = rng.standard_normal((2, 1, 1, 6))
    np.testing.assert_allclose(run(ops.Mul(), x, scale), x * scale)
    np.testing.assert_allclose(run(ops.Mul(), scale, x), x * scale)
    y = run(ops.Shuffle(groups=3), x)  # output map j*3 + g is input map g*2 + j
    for g in range(3):
        for j in range(2):
            np.testing.assert_array_equal(y[..., j * 3 + g], x[..., g * 2 + j])
    y = run(ops.Pad(top=1, right=2), x)
    assert y.shape == (2, 4, 6, 6) and y[:, 0].sum() == 0 and y[:, :, 4:].sum() == 0
    np.testing.assert_array_equal(y[:, 1:, :4], x)
    np.testing.assert_array_equal(run(ops.Slice(start=2, stop=5), x), x[..., 2:5])
    W, b = rng.standard_normal((1, 3, 6, 4)), rng.standard_normal(4)
    ctx = Context(np.float64)
    y = KERNELS["conv_hw"](ops.ConvHW(fh=1, fw=3, c=4, pw=1), (x,), {"W": W, "b": b}, ctx)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    want = sum(np.einsum("nhwc,cd->nhwd", xp[:, :, k:k + 4], W[0, k]) for k in range(3)) + b
    np.testing.assert_allclose(y, want)
    assert ctx.macs == 2 * 3 * 4 * 4 * 1 * 3 * 6  # outputs x taps: the analysis' MACs


def test_adaptive_pool_keeps_the_receptive_field_when_it_is_the_identity():
    text = "network A {\n input x : (14, 14, 2)\n conv c : f=3 p=1 c=2\n adaptive_avgpool a : 14\n adaptive_avgpool b : 7\n adaptive_avgpool g : 1\n}"
    a = archcalc.analyze(archcalc.loads(text))
    # 14 -> 14: windows of 1, spacing 1; 14 -> 7: windows of 2, spacing 2: 3 + (2 - 1)*1 = 4
    assert [a.row(n).receptive_field for n in "cab"] == [(3, 1), (3, 1), (4, 2)]
    assert a.row("g").receptive_field is None  # one output sees everything


def test_weighted_kinds_are_the_ones_with_weights():
    assert {k for k, cls in ops.KINDS.items() if cls.weighted} == {"conv", "conv_hw", "fc", "subsample", "rbf",
                                                                          "attention", "conv_transpose", "dwconv"}
