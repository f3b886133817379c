"""Transfer learning: the split, the feature cache, the head's training, the saved weights."""
from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from archcalc import SpecError, load, loads
from archcalc.practice import transfer as T
from archcalc.practice.transfer import finetuning
from archcalc.executor import weights as wts
from archcalc.cli import main
from archcalc import run
from archcalc.executor import single_input
from conftest import ROOT, SPECS

C1, C3 = 28 * 28 * 6 * 5 * 5 * 1, 10 * 10 * 16 * 5 * 5 * 6  # LeNet-5's two convolutions' MACs
F5, F6, OUT = 400 * 120, 120 * 84, 84 * 10


@pytest.fixture(scope="module")
def lenet():
    return load(SPECS / "lenet5.arch")


@pytest.fixture(scope="module")
def digits(lenet):
    return T.digits(single_input(lenet)[0])


def test_split_freezes_the_conv_part_and_trains_a_new_k_way_head(lenet):
    s = T.split(lenet, "s4", 12)
    assert s.frozen == ("x", "c1", "tanh1", "s2", "c3", "tanh2", "s4")
    assert s.head == ("flatten1", "f5", "tanh3", "f6", "tanh4", "out", "softmax1")
    assert (s.classifier, s.classes) == ("out", 12)
    assert s.net.layer("out").op.c == 12 and s.net.freeze == "s4"
    assert lenet.layer("out").op.c == 10 and lenet.freeze is None  # untouched
    assert "s4" in T.frozen_network(s) and T.frozen_network(s).layers[-1].name == "s4"


@pytest.mark.parametrize("through, message", [
    ("c3", "avgpool 's4' follows the frozen part"),
    ("out", "nothing to train after 'out'"),
    ("s5", "unknown layer or block 's5'"),
])
def test_split_explains_what_it_cannot_train(lenet, through, message):
    with pytest.raises(SpecError, match=message):
        T.split(lenet, through)


def test_features_are_the_frozen_layers_output_cached_once(lenet, digits, tmp_path):
    x = digits[0][:40]
    s = T.split(lenet, "s4", 10)
    params = T.network_weights(s, seed=3)
    frozen = {n: params[n] for n in s.frozen if n in params}
    f = T.extract(s, x, tmp_path / "f.npy", frozen, batch=16, progress=False)
    full = run(lenet, x, params, keep=True)
    assert isinstance(f.array, np.memmap) and f.array.dtype == np.float32
    # the same numbers up to float32 rounding (BLAS sums in another order at another batch)
    assert np.allclose(np.load(tmp_path / "f.npy"), full.activations["s4"], rtol=1e-5, atol=1e-6)
    assert not f.reused and f.counted_macs == 40 * (C1 + C3)  # executor's count = analysis
    again = T.extract(s, x, tmp_path / "f.npy", frozen, batch=16, progress=False)
    assert again.reused and again.counted_macs == 0
    changed = T.extract(s, x[:39], tmp_path / "f.npy", frozen, progress=False)
    assert not changed.reused and changed.array.shape == (39, 5, 5, 16)


def test_progress_bar_shows_for_long_runs_only():
    quiet, loud = io.StringIO(), io.StringIO()
    bar = T.Progress(100, "features", quiet)  # shown after a second: nothing for a quick run
    bar.update(100)
    bar.close()
    bar = T.Progress(100, "features", loud, after=0)
    bar.update(100)
    bar.close()
    assert quiet.getvalue() == ""
    assert loud.getvalue().startswith("\rfeatures [" + "#" * 30 + "] 100/100 images")
    assert loud.getvalue().endswith("\n")


def test_head_gradients_match_finite_differences(lenet):
    s = T.split(lenet, "s4", 10)
    layers = T.head_layers(s)
    rng = np.random.default_rng(0)
    params = {n: {k: a.astype(np.float64) for k, a in p.items()}
              for n, p in T.network_weights(s).items() if n in ("f5", "f6", "out")}
    x, y = rng.standard_normal((5, 5, 5, 16)), rng.integers(0, 10, 5)
    logits, saved = T.head_forward(layers, params, x)
    grads = T.head_backward(layers, params, saved, T.softmax(logits), y, decay=0.01)
    for name, key, index in (("f5", "W", (3, 7)), ("f6", "b", (5,)), ("out", "W", (2, 4))):
        a = params[name][key]
        old, eps = a[index], 1e-6
        a[index] = old + eps
        up = T.objective(layers, params, x, y, 0.01)
        a[index] = old - eps
        down = T.objective(layers, params, x, y, 0.01)
        a[index] = old
        assert grads[name][key][index] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)


def test_finetune_on_digits_beats_chance_widely_and_saves_the_full_network(lenet, digits, tmp_path):
    x, y = digits
    out = tmp_path / "w.npz"
    f = T.finetune(lenet, x, y, "s4", epochs=8, batch=64, lr=0.1, cache=tmp_path / "f.npy",
                   out=out, progress=False)
    losses = f.training.losses
    assert losses[0] == pytest.approx(math.log(10), abs=0.15)  # an untrained 10-way head
    assert losses[-1] < 0.3 * losses[0] and losses[1] < losses[0]
    assert f.test_accuracy > 0.85 and f.chance < 0.15  # chance is 1 in 10
    assert (f.n_train, f.n_test) == (1348, 449)
    # the saved .npz is the executor's format for the whole network, and reproduces the head
    saved = wts.read(out)
    assert set(saved) == {f"{n}/{k}" for n in ("c1", "c3", "f5", "f6", "out") for k in "Wb"}
    assert f.executor_agrees is True
    # costs from the analysis: the frozen part once instead of every epoch
    assert f.frozen_macs == C1 + C3 == 357_600
    per_image = (C1 + C3 + F5 + F6 + OUT) + 2 * (F5 + F6 + OUT)
    assert f.cost.epoch_macs_without_cache == per_image * 1348 * 8
    assert f.cost.epoch_macs_without_cache - f.cost.epoch_macs_with_cache == 357_600 * 1348 * 7
    assert f.features.counted_macs == 357_600 * 1797


def test_pretrained_weights_are_kept_and_the_classifier_is_new(lenet, digits, tmp_path):
    x, y = digits[0][:60], digits[1][:60]
    first = T.finetune(lenet, x, y, "tanh4", epochs=2, cache=tmp_path / "a.npy",
                       out=tmp_path / "a.npz", progress=False, verify=False)
    second = T.finetune(lenet, x, y, "tanh4", classes=12, epochs=2, seed=1,
                        weights=tmp_path / "a.npz", cache=tmp_path / "b.npy", progress=False)
    assert np.array_equal(second.weights["f6"]["W"], first.weights["f6"]["W"])  # frozen, given
    assert second.weights["out"]["W"].shape == (84, 12)
    assert second.split.head == ("out", "softmax1") and second.executor_agrees


def test_finetune_command(tmp_path, capsys):
    status = main(["finetune", str(SPECS / "lenet5.arch"), "--freeze", "f6", "--epochs", "3",
                   "--cache", str(tmp_path / "f.npy"), "--out", str(tmp_path / "w.npz")])
    out = capsys.readouterr().out
    assert status == 0
    assert "frozen through 'f6'" in out and "accuracy: train" in out and "saved by the cache" in out
    assert "agrees with the analysis" in out and "predicts exactly as the head" in out
    assert main(["run", str(SPECS / "lenet5.arch"), "--weights", str(tmp_path / "w.npz")]) == 0


SMALL = """
network Small {
    input   x   : (8, 8, 1)
    conv    c1  : f=3 c=2
    relu
    flatten
    fc      f1  : 6
    relu
    fc      f2  : 5
    relu
    fc      out : 3
    softmax
}
"""


def test_frozen_network_keeps_the_topological_order_when_the_frozen_part_is_small():
    # 4 frozen layers of 10: a networkx subgraph view would iterate a set (hash order)
    s = T.split(loads(SMALL), "flatten1", 3)
    assert [l.name for l in T.frozen_network(s).layers] == ["x", "c1", "relu1", "flatten1"]


@pytest.mark.parametrize("hashseed", ["0", "1", "5"])
def test_finetune_with_a_small_frozen_part_under_any_hash_seed(tmp_path, hashseed):
    spec = tmp_path / "small.arch"
    spec.write_text(SMALL)
    done = subprocess.run(
        [sys.executable, "-m", "archcalc", "finetune", str(spec), "--freeze", "flatten1",
         "--epochs", "1", "--cache", str(tmp_path / "f.npy"), "--out", str(tmp_path / "w.npz")],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": hashseed})
    assert done.returncode == 0, done.stderr
    assert "frozen through 'flatten1' (4 layers, 20 frozen params)" in done.stdout
    assert "1,797 images x 648 (agrees with the analysis)" in done.stdout


LR = "expected a learning rate above 0 and at most 10"
MOMENTUM = "expected a momentum from 0 to below 1"
EPOCHS = "expected a number of epochs from 1 to 10,000"


@pytest.mark.parametrize("option, value, message", [
    ("--lr", "nan", f"{LR}, got 'nan'"),
    ("--lr", "inf", f"{LR}, got 'inf'"),
    ("--lr", "0", f"{LR}, got '0'"),
    ("--lr", "11", f"{LR}, got '11'"),
    ("--epochs", "0", f"{EPOCHS}, got '0'"),
    ("--epochs", "10001", f"{EPOCHS}, got '10001'"),
    ("--epochs", "1e9", f"{EPOCHS}, got '1e9'"),
    ("--batch", "1000001", "expected a batch size from 1 to 1,000,000, got '1000001'"),
    ("--classes", "1", "expected a number of classes from 2 to 100,000, got '1'"),
    ("--decay", "nan", "expected a weight decay from 0 to 1, got 'nan'"),
    ("--decay", "2", "expected a weight decay from 0 to 1, got '2'"),
    ("--momentum", "nan", f"{MOMENTUM}, got 'nan'"),
    ("--momentum", "1", f"{MOMENTUM}, got '1'"),
    ("--test-fraction", "nan", "expected a fraction above 0 and below 1, got 'nan'"),
    ("--test-fraction", "1", "expected a fraction above 0 and below 1, got '1'"),
])
def test_finetune_command_refuses_options_out_of_range(option, value, message, capsys):
    """A usage error (exit 2) from the option's type, before the spec is read."""
    with pytest.raises(SystemExit) as e:
        main(["finetune", str(SPECS / "lenet5.arch"), "--freeze", "f6", option, value])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert err.splitlines()[-1] == f"archcalc finetune: error: argument {option}: {message}"


def test_finetune_command_fails_when_the_executor_disagrees_with_the_head(tmp_path, capsys,
                                                                          monkeypatch):
    monkeypatch.setattr(finetuning, "softmax_if_needed", lambda s, y: np.zeros_like(y))
    out = tmp_path / "w.npz"
    status = main(["finetune", str(SPECS / "lenet5.arch"), "--freeze", "f6", "--epochs", "1",
                   "--cache", str(tmp_path / "f.npy"), "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 1 and "the executor DISAGREES with the head" in captured.out
    assert captured.err == (f"error: the executor, running the saved network '{out}' on the "
                            "test images, disagrees with the trained head\n")


def test_finetune_command_fails_when_the_executor_miscounts_the_features(tmp_path, capsys,
                                                                         monkeypatch):
    real = T.extract
    monkeypatch.setattr(finetuning, "extract", lambda *a, **k: replace(real(*a, **k), counted_macs=1))
    status = main(["finetune", str(SPECS / "lenet5.arch"), "--freeze", "f6", "--epochs", "1",
                   "--cache", str(tmp_path / "f.npy"), "--out", str(tmp_path / "w.npz")])
    captured = capsys.readouterr()
    assert status == 1 and "(DISAGREES with the analysis)" in captured.out
    # 1,797 digits x (416,520 - 84 * 10) MACs: LeNet-5 but its classifier
    assert captured.err == ("error: the executor counted 1 MACs for the features, the analysis "
                            "predicts 746,976,960\n")


def test_the_head_kinds_are_declared_once_in_the_table():
    from archcalc.kinds import KINDS
    assert T.HEAD_KINDS == tuple(T.HEAD) and set(T.HEAD) <= set(KINDS)
    assert [k for k, kind in T.HEAD.items() if kind.grads] == ["fc"]  # the only weighted kind


def test_the_command_draws_the_progress_bar_for_a_terminal_only(monkeypatch):
    # a bar in a captured stderr would depend on how long the features take
    from archcalc.commands import finetune as command

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    assert command.progress_stream() is sys.stderr
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert command.progress_stream() is False
