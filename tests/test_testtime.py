"""Test time: the 10 crops, ensembles averaging outputs, and their cost against the executor."""
from __future__ import annotations

import numpy as np
import pytest

from archcalc import SpecError, analyze, load
from archcalc.practice import testtime as TT
from archcalc import run
from conftest import SPECS

LENET_MACS = 416_520


@pytest.fixture(scope="module")
def lenet():
    return load(SPECS / "lenet5.arch")


def test_the_ten_crops_are_four_corners_the_centre_and_their_mirrors():
    assert TT.crop_boxes((256, 256), 224, 10) == [
        (0, 0, False), (0, 32, False), (32, 0, False), (32, 32, False), (16, 16, False),
        (0, 0, True), (0, 32, True), (32, 0, True), (32, 32, True), (16, 16, True)]
    assert TT.crop_boxes((256, 256), 224, 1) == [(16, 16, False)]
    assert TT.crop_boxes((256, 256), 224, 2) == [(16, 16, False), (16, 16, True)]
    assert TT.crop_boxes((256, 256), 224, 5) == TT.crop_boxes((256, 256), 224, 10)[:5]


def test_crops_have_exact_content():
    x = np.arange(2 * 5 * 6 * 1).reshape(2, 5, 6, 1)
    c = TT.ten_crops(x, 3)
    assert c.shape == (10, 2, 3, 3, 1)
    expected = [x[:, 0:3, 0:3], x[:, 0:3, 3:6], x[:, 2:5, 0:3], x[:, 2:5, 3:6], x[:, 1:4, 2:5]]
    for i, e in enumerate(expected):
        assert np.array_equal(c[i], e)
        assert np.array_equal(c[i + 5], e[:, :, ::-1])  # the mirror of the same crop
    with pytest.raises(SpecError, match="does not fit"):
        TT.crops(x, 6, 10)
    with pytest.raises(SpecError) as e:
        TT.crops(x, 3, 3)
    assert e.value.message == "n, the number of crops, must be one of 1, 2, 5, 10; got 3"
    with pytest.raises(SpecError) as e:
        TT.evaluate([], x, 4)
    assert e.value.message == "n_crops, the number of crops, must be one of 1, 2, 5, 10; got 4"


def test_ten_crop_cost_is_ten_times_the_analysis_and_the_executors_count(lenet):
    x = np.random.default_rng(0).standard_normal((3, 36, 36, 1)).astype(np.float32)
    e = TT.evaluate([TT.Member(lenet)], x, 10)
    assert analyze(lenet).totals["macs"] == LENET_MACS
    assert e.predicted_macs == 10 * LENET_MACS * 3 == e.counted_macs
    assert e.multiplier == 10 and e.agrees
    assert e.output.shape == (3, 1, 1, 10) and e.outputs.shape == (1, 10, 3, 1, 1, 10)
    # the average of the network run on each crop
    one = [run(lenet, c).output for c in TT.ten_crops(x, 32)]
    assert np.allclose(e.output, np.mean(one, axis=0), rtol=1e-6, atol=1e-7)


def test_ensemble_averages_the_outputs_of_its_networks(lenet):
    x = np.random.default_rng(1).standard_normal((4, 32, 32, 1)).astype(np.float32)
    members = [TT.Member(lenet, seed=s) for s in (0, 1, 2)]
    e = TT.evaluate(members, x, 1)
    single = [run(lenet, x, seed=s).output for s in (0, 1, 2)]
    assert not np.allclose(single[0], single[1])  # three different networks
    assert np.allclose(e.output, np.mean(single, axis=0), rtol=1e-6, atol=1e-7)
    assert e.counted_macs == e.predicted_macs == 3 * LENET_MACS * 4 and e.multiplier == 3
    assert e.params == 3 * 61_706
    # outputs, not weights: the network with averaged weights gives something else
    mean_weights = {layer: {k: np.mean([run(lenet, x[:1], seed=s).weights[layer][k] for s in (0, 1, 2)],
                                       axis=0) for k in arrays}
                    for layer, arrays in run(lenet, x[:1]).weights.items()}
    assert not np.allclose(run(lenet, x, mean_weights).output, e.output)


def test_crops_and_ensemble_multiply(lenet):
    x = np.random.default_rng(2).standard_normal((2, 37, 37, 1)).astype(np.float32)
    e = TT.evaluate([TT.Member(lenet, seed=s) for s in (0, 1)], x, 5)
    assert e.counted_macs == e.predicted_macs == 5 * 2 * LENET_MACS * 2 and e.multiplier == 10
    assert np.allclose(e.output, e.outputs.mean(axis=(0, 1)))


def test_ensemble_weights_files(lenet, tmp_path):
    from archcalc.executor import weights as wts
    x = np.random.default_rng(3).standard_normal((2, 32, 32, 1)).astype(np.float32)
    paths = []
    for s in (4, 5):
        paths.append(tmp_path / f"w{s}.npz")
        wts.save(paths[-1], run(lenet, x, seed=s).weights)
    e = TT.evaluate([TT.Member(lenet, p) for p in paths], x, 1)
    expected = np.mean([run(lenet, x, seed=s).output for s in (4, 5)], axis=0)
    assert np.allclose(e.output, expected, rtol=1e-6, atol=1e-7)


def test_run_command_with_crops_and_an_ensemble(tmp_path, capsys):
    from archcalc.cli import main
    y = tmp_path / "y.npy"
    status = main(["run", str(SPECS / "lenet5.arch"), "--crops", "10", "--ensemble", "3",
                   "--batch", "2", "--output", str(y)])
    out = capsys.readouterr().out
    assert status == 0
    assert "10 crops of 32x32 (4 corners + centre, and their mirrors) x 3 models" in out
    assert f"416,520 x 10 crops x 3 models = {30 * LENET_MACS:,}" in out
    assert f"the executor counted {30 * LENET_MACS:,}: they agree (cost multiplier 30x)" in out
    assert np.load(y).shape == (2, 1, 1, 10)
    assert main(["run", str(SPECS / "lenet5.arch"), "--ensemble", "2", "--weights", "w.npz"]) == 1
    assert "cannot take --weights" in capsys.readouterr().err
