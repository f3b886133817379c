"""Limits before the work: every allocation counted from sizes first (the kernels' temporaries,
the feature cache of finetune, weights read for transfer) and refused with the figure and the
limit; numeric options bounded in one place."""
from __future__ import annotations

import shutil
from collections import namedtuple

import numpy as np
import pytest

import archcalc
from archcalc.practice import transfer as T
from archcalc.cli import main
from archcalc.errors import SpecError
from archcalc.executor.forward import plan, run
from archcalc.executor.kernels import TILE_BYTES
from archcalc.executor.scratch import TEMPORARIES

F32 = np.dtype(np.float32)
Usage = namedtuple("Usage", "total used free")


def refusal(net, limit=8 * 2**30) -> str:
    with pytest.raises(SpecError) as e:
        run(net, memory_limit=limit)
    return e.value.message


# ---------------------------------------------------------------- the kernels' temporaries

def test_conv_hw_padded_copy_is_counted_and_refused():
    """conv_hw pads its input with np.pad: a 1x1x1 map padded by 30,000 on each side is a
    60,001 x 60,001 copy, 60,001^2 * 4 = 14,400,480,004 bytes; the stride of 60,000 leaves
    2 x 2 outputs, whose 1x1x1 patches (4 floats, 16 bytes) are copied once more."""
    net = archcalc.loads("network P {\n input x : (1, 1, 1)\n"
                         " conv_hw c : 1 1 1 s=60000 ph=30000 pw=30000\n}")
    assert plan(net, {}).temporary_bytes(1, F32) == 60_001 ** 2 * 4 + 2 * 2 * 4
    assert refusal(net) == ("running P at batch 1 would need about 13.4 GiB (0.0 KiB of live "
                            "activations + 0.0 KiB of weights + 13.4 GiB of temporaries), over "
                            "the limit of 8.0 GiB")


def test_depthwise_multiplier_reads_its_map_without_a_repeat():
    """A depthwise conv with multiplier m = 4,000/2 = 2,000 reads input map j // m for output
    map j through a broadcast, never a repeated copy (which was 4,008,004,000 floats here).
    The 1x1x2 input padded by 500 (stride 1,000: 2 x 2 outputs) is a slab of
    1,001 x 1,001 x 2 = 2,004,002 floats (workspace, 8,016,008 bytes = 7.6 MiB): the output's
    2 x 2 x 4,000 floats (64,000 bytes) fit in one band, so one slab; no temporaries."""
    net = archcalc.loads("network D {\n input x : (1, 1, 2)\n"
                         " conv c : f=1 c=4000 groups=2 s=1000 p=500\n}")
    the_plan = plan(net, {})
    assert the_plan.workspace_bytes(1, F32) == 1_001 * 1_001 * 2 * 4
    assert the_plan.temporary_bytes(1, F32) == 0
    # live activations: the input 2 floats + the output 16,000 floats = 64,008 bytes = 62.5 KiB;
    # weights: W (1, 1, 1, 4,000) and b (4,000,) = 32,000 bytes = 31.2 KiB
    assert refusal(net, 4 * 2**20) == (
        "running D at batch 1 would need about 7.7 MiB (62.5 KiB of live activations + 31.2 KiB "
        "of weights + 7.6 MiB of workspace), over the limit of 4.0 MiB")


def test_lrn_squares_sum_and_power_are_counted():
    """LRN holds three arrays of its input's size (squares, their sum, its power beta):
    64 * 64 * 256 floats = 4 MiB each, 12 MiB, against 8 MiB of live activations (input and
    output); a 16 MiB limit refuses the 20 MiB this needs."""
    net = archcalc.loads("network L {\n input x : (64, 64, 256)\n lrn : 5\n}")
    assert plan(net, {}).temporary_bytes(1, F32) == 3 * 64 * 64 * 256 * 4
    assert refusal(net, 16 * 2**20) == (
        "running L at batch 1 would need about 20.0 MiB (8.0 MiB of live activations + 0.0 KiB "
        "of weights + 12.0 MiB of temporaries), over the limit of 16.0 MiB")


def test_run_max_memory_refuses_the_temporaries_by_the_command(tmp_path, capsys):
    spec = tmp_path / "l.arch"
    spec.write_text("network L {\n input x : (64, 64, 256)\n lrn : 5\n}\n")
    assert main(["run", str(spec), "--max-memory", "0.015625"]) == 1  # 16 MiB
    assert "would need about 20.0 MiB (8.0 MiB of live activations + 0.0 KiB of weights + " \
           "12.0 MiB of temporaries), over the limit of 16.0 MiB" in capsys.readouterr().err


SHAPE = (3, 12, 10, 4)  # N, n_H, n_W, n_C


@pytest.mark.parametrize("line, expected", [
    # maxpool f=3 s=3: the rows first, (3, 4, 10, 4)
    ("maxpool : f=3 s=3", 3 * 4 * 10 * 4 * 4),
    ("subsample : f=2 s=2", 3 * 6 * 10 * 4 * 4),
    # avgpool f=2 s=2 p=1: rows (3, 7, 10, 4) = 840 floats, or the 7 x 6 divisors (int64 and
    # float32) and 4 int64 index vectors per axis
    ("avgpool : f=2 s=2 p=1", max(3 * 7 * 10 * 4 * 4, 7 * 6 * (8 + 4) + 4 * 8 * (7 + 6))),
    # the rows' 5 sums and their stack, or the rows' result and the columns' 5 x 5 sums
    ("adaptive_avgpool : 5", max(2 * 3 * 5 * 10 * 4, 3 * 5 * 10 * 4 + 3 * 5 * 5 * 4) * 4),
    ("lrn : 3", 3 * 3 * 12 * 10 * 4 * 4),
    ("leaky_relu : 0.1", 3 * 12 * 10 * 4 * (1 + 4)),
    ("hardswish", 3 * 12 * 10 * 4 * 4),
    ("softmax", 2 * 3 * 12 * 10 * 4),
    ("relu", 0),
    # nearest x2: the rows' result (3, 24, 10, 4) and three int64 index vectors of 24 (or 20)
    ("upsample : 2", 3 * 24 * 10 * 4 * 4 + 3 * 8 * 24),
    # bilinear x2: two row takes; then two column takes, one the output, six vectors an axis
    ("upsample : 2 mode=bilinear", 2 * 3 * 24 * 10 * 4 * 4 + max(6 * 8 * 24, 3 * 24 * 20 * 4 * 4 + 6 * 8 * 20)),
    # pad 5: the padded copy (3, 22, 20, 4) and the patches of the (22 - 3)//9 + 1 = 3 by
    # (20 - 5)//9 + 1 = 2 outputs, 3 x 5 x 4 each
    ("conv_hw : 3 5 8 s=9 ph=5 pw=5", (3 * 22 * 20 * 4 + 3 * 3 * 2 * 3 * 5 * 4) * 4),
    # two groups: the second group's patches made while the first's are held
    ("conv_hw : 3 5 8 s=9 ph=5 pw=5 groups=2", (3 * 22 * 20 * 4 + 2 * 3 * 3 * 2 * 3 * 5 * 2) * 4),
    # a grouped conv copies its filters out of W, group by group: 3 * 3 * 2 * 8
    ("conv : f=3 c=8 groups=2 p=1", 3 * 3 * 2 * 8 * 4),
    ("conv : f=3 c=8 p=1", 0),
])
def test_each_kernels_temporaries_by_hand(line, expected):
    net = archcalc.loads(f"network T {{\n input x : {SHAPE[1:]}\n {line}\n}}")
    step = plan(net, {}).steps[1]
    rule = TEMPORARIES.get(step.kind)
    assert (rule(step.op, SHAPE, 4, TILE_BYTES) if rule else 0) == expected


def test_winograd_counts_its_transformed_filters_and_its_bands():
    """A 3x3 stride-1 conv of 16 maps into 20 runs Winograd: its 16 transformed filter
    entries, 16 * 16 * 20 floats = 20,480 bytes, and their 16 x 9 float64 coefficients,
    1,152 bytes. Workspace at batch 2 on 7 x 6 outputs (4 x 3 blocks; one band, all under
    8 MiB): the slab 2 * 10 * 8 * 16, the row- and fully-transformed tiles 16 * 24 * 16
    each and the products 16 * 24 * 20 = 2,560 + 6,144 + 6,144 + 7,680 = 22,528 floats."""
    net = archcalc.loads("network T {\n input x : (7, 6, 16)\n conv : f=3 c=20 p=1\n}")
    the_plan = plan(net, {})
    assert the_plan.temporary_bytes(2, F32) == 16 * 16 * 20 * 4 + 16 * 9 * 8
    assert the_plan.workspace_bytes(2, F32) == 22_528 * 4


@pytest.mark.parametrize("line", [
    "maxpool : f=3 s=3", "avgpool : f=2 s=2 p=1", "adaptive_avgpool : 5", "lrn : 3",
    "leaky_relu : 0.1", "hardswish", "upsample : 2 mode=bilinear", "conv_hw : 3 5 8 s=2 ph=5 pw=5 groups=2",
    "conv : f=3 c=12 groups=4 p=5", "conv : f=3 c=8 groups=2 p=1", "conv : f=3 c=16 groups=16 p=1",
    "conv : f=5 c=32 groups=16 s=2 p=2", "conv : f=3 c=16 p=1", "conv : f=3 c=24 p=0", "conv : f=3 c=16 groups=16 dilation=2 p=2 round=ceil s=2",
    "conv : f=5 c=3 p=2 table=[[0, 1, 2], [1, 2, 3], [0, 1, 2, 3]]", "rbf : 10",
])
def test_the_counted_temporaries_bound_what_the_kernel_allocates(line):
    """tracemalloc's peak during the whole run, less the live activations' peak, the
    weights and the workspace, stays within the counted temporaries plus NumPy's ufunc
    buffers (8,192 elements a operand; 256 KiB covers them)."""
    shape = (1, 1, 12 * 10 * 16) if line.startswith("rbf") else (12, 10, 16)
    net = archcalc.loads(f"network T {{\n input x : {shape}\n {line}\n}}")
    r = run(net, batch=8, keep=True, trace_memory=True)
    temporaries = plan(net, {}).temporary_bytes(8, F32)
    inputs = r.activations["x"].nbytes  # the run's own copy of its input
    assert r.traced_bytes - r.peak_bytes - r.workspace_bytes - inputs <= temporaries + 256 * 2**10


# ---------------------------------------------------------------- finetune's feature cache

WIDE = """network Wide {
    input x    : (1, 1, 1)
    fc    wide : 1000000
    fc    out  : 10
}
"""


def wide_data(n):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 1, 1, 1)).astype(np.float32), np.arange(n) % 10


def test_finetune_refuses_a_cache_past_the_memory_limit_before_any_file(tmp_path):
    """200 images of 1,000,000 features each: a cache of 200 * 10^6 * 4 = 800,000,000 bytes
    (762.9 MiB), read whole to train. Working memory: the weights, (1 * 10^6 + 10^6) +
    (10^6 * 10 + 10) = 12,000,010 floats = 48,000,040 bytes, and the largest phase, the
    frozen part run on all 200 images (one batch of at most 256): its peak, x and wide live
    together, 1,000,001 floats an image, 200 * 1,000,001 * 4 = 800,000,800 bytes (the head's
    training: 150 * 10 + 3 * 10,000,010 floats; the whole network on the 50 test images:
    50 * 1,000,010 floats + its weights: both smaller). 48,000,040 + 800,000,800 =
    848,000,840 bytes = 808.7 MiB; in all 1,648,000,840 bytes = 1.5 GiB."""
    x, y = wide_data(200)
    s = T.split(archcalc.loads(WIDE), "wide", 10)
    need = T.budget_for(s, {}, 200, 150, 50, 256)
    assert need.cache_bytes == 200 * 1_000_000 * 4
    assert need.weight_bytes == (2 * 1_000_000 + 10 * 1_000_000 + 10) * 4
    assert need.extract_bytes == 200 * 1_000_001 * 4
    assert need.train_bytes == (150 * 10 + 3 * 10_000_010) * 4
    assert need.verify_bytes == 50 * 1_000_010 * 4 + need.weight_bytes
    assert need.total_bytes == 1_648_000_840
    with pytest.raises(SpecError) as e:
        T.finetune(archcalc.loads(WIDE), x, y, "wide", cache=tmp_path / "c" / "f.npy",
                   out=tmp_path / "w.npz", progress=False, memory_limit=2**30)
    assert e.value.message == (
        "finetuning Wide frozen through 'wide' on 200 images would need about 1.5 GiB (762.9 MiB "
        "of cached features, 200 images x 1,000,000 numbers x 4 bytes, + 808.7 MiB of working "
        "memory), over the limit of 1.0 GiB")
    assert list(tmp_path.iterdir()) == []


def test_finetune_command_takes_max_memory(tmp_path, capsys):
    spec, data = tmp_path / "wide.arch", tmp_path / "d.npz"
    spec.write_text(WIDE)
    x, y = wide_data(200)
    np.savez(data, x=x, y=y)
    assert main(["finetune", str(spec), "--freeze", "wide", "--data", str(data),
                 "--cache", str(tmp_path / "c" / "f.npy"), "--max-memory", "1"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "error: finetuning Wide frozen through 'wide' on 200 images would need about 1.5 GiB "
        "(762.9 MiB of cached features, 200 images x 1,000,000 numbers x 4 bytes, + 808.7 MiB "
        "of working memory), over the limit of 1.0 GiB")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz", "wide.arch"]


def test_finetune_refuses_a_cache_its_disk_cannot_hold(tmp_path, monkeypatch):
    """20 images of 100 features: 20 * 100 * 4 = 8,000 bytes, on a disk with 4,096 free."""
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**6, 10**6 - 4096, 4096))
    x, y = wide_data(20)
    cache = tmp_path / "c" / "f.npy"
    with pytest.raises(SpecError) as e:
        T.finetune(archcalc.loads(WIDE.replace("1000000", "100")), x, y, "wide", cache=cache,
                   progress=False)
    assert e.value.message == (f"the feature cache '{cache}' needs 7.8 KiB (20 images x 100 "
                               "numbers x 4 bytes), but its disk has 4.0 KiB free")
    assert list(tmp_path.iterdir()) == []


def test_finetune_refuses_digits_too_large_for_the_limit(tmp_path, capsys):
    """The digits resized to 1,000 x 1,000 x 3: 1,797 * 3,000,000 * 4 = 21,564,000,000 bytes
    (20.1 GiB), refused before they are made."""
    spec = tmp_path / "big.arch"
    spec.write_text("network Big {\n input x : (1000, 1000, 3)\n flatten\n fc out : 10\n}\n")
    assert main(["finetune", str(spec), "--freeze", "flatten1", "--cache", str(tmp_path / "f.npy")]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "error: the digits at the spec's input 1000x1000x3 would need 20.1 GiB (1,797 images x "
        "3,000,000 numbers x 4 bytes), over the limit of 8.0 GiB")


def test_finetune_data_headers_are_checked_before_their_data_is_read(tmp_path, capsys):
    """x of (300, 1000, 1000, 1) float32: 1,200,000,000 bytes = 1.1 GiB by its header."""
    spec, data = tmp_path / "s.arch", tmp_path / "d.npz"
    spec.write_text("network S {\n input x : (1000, 1000, 1)\n flatten\n fc out : 10\n}\n")
    np.savez(data, x=np.broadcast_to(np.float32(0), (300, 1000, 1000, 1)), y=np.zeros(300, np.int64))
    assert main(["finetune", str(spec), "--freeze", "flatten1", "--data", str(data),
                 "--max-memory", "1"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"error: data '{data}' would need 1.1 GiB (1.1 GiB of x + 2.3 KiB of y), over the limit "
        "of 1.0 GiB")


# ---------------------------------------------------------------- weights for transfer

def test_transfer_weights_are_checked_against_the_layout_before_use(tmp_path):
    """'wide/W' must be (1, 100): a (3000, 3000) array is named with both shapes, unread."""
    path = tmp_path / "w.npz"
    np.savez(path, **{"wide/W": np.zeros((3000, 3000), np.float32), "wide/b": np.zeros(100, np.float32)})
    x, y = wide_data(20)
    with pytest.raises(SpecError) as e:
        T.finetune(archcalc.loads(WIDE.replace("1000000", "100")), x, y, "wide", weights=path,
                   cache=tmp_path / "f.npy", progress=False)
    assert e.value.message == (f"fc 'wide': weights 'wide/W' in '{path}' have shape (3000, 3000), "
                               "the spec expects (1, 100)")


# ---------------------------------------------------------------- numeric options, bounded

@pytest.mark.parametrize("argv, message", [
    (["augment", "--size", "2049"], "argument --size: expected a side from 8 to 2,048 pixels, got '2049'"),
    (["augment", "--size", "7"], "argument --size: expected a side from 8 to 2,048 pixels, got '7'"),
    (["run", "specs/lenet5.arch", "--repeat", "1001"],
     "argument --repeat: expected a number of runs from 1 to 1,000, got '1001'"),
    (["run", "specs/lenet5.arch", "--threads", "257"],
     "argument --threads: expected a number of threads from 1 to 256, got '257'"),
    (["run", "specs/lenet5.arch", "--threads", "0"],
     "argument --threads: expected a number of threads from 1 to 256, got '0'"),
])
def test_numeric_options_have_upper_bounds(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"archcalc {argv[0]}: error: {message}"
