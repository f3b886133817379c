"""Data augmentation: the exact effect of each transform's parameters."""
from __future__ import annotations

import numpy as np
import pytest

from archcalc.practice import augment as A
from archcalc.cli import main


@pytest.fixture
def x():
    return np.random.default_rng(0).random((3, 7, 7, 3))


def test_mirroring_twice_is_the_identity(x):
    once = A.mirror(x)
    assert np.array_equal(once[:, :, 0], x[:, :, -1])  # the first column is the last one
    assert np.array_equal(A.mirror(once), x)


def test_random_mirror_flips_the_drawn_images_only(x):
    assert np.array_equal(A.random_mirror(x, 0, p=1.0), A.mirror(x))
    assert np.array_equal(A.random_mirror(x, 0, p=0.0), x)
    flip = np.random.default_rng(5).random(3) < 0.5
    y = A.random_mirror(x, 5)
    for n in range(3):
        assert np.array_equal(y[n], x[n, :, ::-1] if flip[n] else x[n])


def test_crops_have_exact_content():
    x = np.arange(2 * 6 * 5 * 1).reshape(2, 6, 5, 1)
    c = A.crop_at(x, [0, 2], [1, 0], (3, 4))
    assert np.array_equal(c[0], x[0, 0:3, 1:5])
    assert np.array_equal(c[1], x[1, 2:5, 0:4])
    assert c.dtype == x.dtype
    tops, lefts = A.crop_offsets((6, 5), 3, 2, 7)
    assert np.array_equal(A.random_crop(x, 3, 7), A.crop_at(x, tops, lefts, 3))
    assert (tops <= 3).all() and (lefts <= 2).all()
    with pytest.raises(ValueError):
        A.crop_at(x, 4, 0, 3)  # rows 4..6 of 6
    with pytest.raises(ValueError):
        A.random_crop(x, 7)


def test_rotation_by_0_is_the_identity_and_by_90_is_rot90(x):
    assert np.array_equal(A.rotate(x, 0), x)
    assert np.array_equal(A.rotate(x, 360), x)
    for k in (1, 2, 3, -1):
        assert np.array_equal(A.rotate(x, 90 * k), np.rot90(x, k, axes=(1, 2)))
    even = x[:, :6, :6].astype(np.float32)  # the centre between pixels; float32 kept
    turned = A.rotate(even, 90)
    assert turned.dtype == np.float32 and np.array_equal(turned, np.rot90(even, 1, axes=(1, 2)))
    per_image = A.rotate(x, [0, 90, 180])
    assert np.array_equal(per_image[1], np.rot90(x[1]))
    assert np.array_equal(per_image[2], np.rot90(x[2], 2))


def test_rotation_turns_counterclockwise_about_the_centre():
    x = np.zeros((1, 5, 5, 1))
    x[0, 2, 4] = 1  # right of the centre
    assert A.rotate(x, 90)[0, 0, 2, 0] == 1  # now above it
    y = A.rotate(np.ones((1, 9, 9, 1)), 30, fill=-1)
    assert y[0, 4, 4, 0] == 1 and y[0, 0, 0, 0] == -1  # the centre stays, a corner is uncovered


def test_shear_moves_each_row_by_k_times_its_offset():
    cols = np.tile(np.arange(7.0), (7, 1))[None, :, :, None]  # value = column index
    assert np.array_equal(A.shear(cols, 0), cols)
    y = A.shear(cols, 1, fill=-1)  # row r reads column c - (r - 3)
    for r in range(7):
        for c in range(7):
            source = c - (r - 3)
            assert y[0, r, c, 0] == (source if 0 <= source < 7 else -1)
    rows = np.transpose(cols, (0, 2, 1, 3))
    assert np.array_equal(A.shear(rows, 1, axis="y", fill=-1), np.transpose(y, (0, 2, 1, 3)))


def test_warping_reads_the_displaced_pixels(x):
    assert np.array_equal(A.warp(x, np.zeros((1, 7, 7, 2))), x)
    flow = np.zeros((1, 7, 7, 2))
    flow[..., 1] = 1  # every pixel reads its right neighbour
    y = A.warp(x, flow, fill=-1)
    assert np.array_equal(y[:, :, :-1], x[:, :, 1:]) and (y[:, :, -1] == -1).all()
    assert np.array_equal(A.random_warp(x, 0.0, 3, 0), x)
    bent = A.random_warp(x, 1.5, 3, 0)
    assert bent.shape == x.shape and not np.array_equal(bent, x)
    assert np.array_equal(bent, A.random_warp(x, 1.5, 3, 0))  # seeded


def test_colour_shift_adds_exact_offsets(x):
    y = A.colour_shift(x, (0.25, -0.5, 0.125))
    assert np.array_equal(y, x + np.array([0.25, -0.5, 0.125]))
    per_image = np.arange(9.0).reshape(3, 3)
    y = A.colour_shift(x, per_image)
    assert np.array_equal(y[2], x[2] + per_image[2])
    drawn = np.random.default_rng(3).uniform(-20, 20, (3, 3))
    assert np.array_equal(A.random_colour_shift(x, 20, 3), x + drawn[:, None, None, :])
    assert A.colour_shift(np.zeros((1, 2, 2, 3), np.uint8), (1, 2, 3)).dtype == np.float32


def test_pca_basis_is_the_eigen_decomposition_of_the_rgb_covariance(x):
    pca = A.colour_pca(x, chunk=2)
    cov = np.cov(x.reshape(-1, 3).T)
    assert np.all(np.diff(pca.values) <= 0)  # descending
    assert np.allclose(pca.vectors.T @ pca.vectors, np.eye(3))
    assert np.allclose(cov @ pca.vectors, pca.vectors * pca.values)
    assert np.allclose(pca.mean, x.reshape(-1, 3).mean(axis=0))


def test_pca_colour_with_alpha_0_is_the_identity(x):
    assert np.array_equal(A.pca_colour(x, A.colour_pca(x), (0, 0, 0)), x)


def test_pca_colour_with_one_alpha_moves_each_pixel_by_alpha_lambda_p(x):
    pca = A.colour_pca(x)
    for i, alpha in ((0, 0.3), (1, -0.05), (2, 1.7)):
        a = np.zeros(3)
        a[i] = alpha
        step = (alpha * pca.values[i]) * pca.vectors[:, i]
        assert np.array_equal(A.pca_colour(np.zeros_like(x), pca, a),
                              np.broadcast_to(step, x.shape))  # every pixel, exactly
        assert np.array_equal(A.pca_colour(x, pca, a), x + step)


def test_random_pca_colour_draws_alpha_from_n_0_0_1_per_image(x):
    pca = A.colour_pca(x)
    alpha = np.random.default_rng(9).normal(0, 0.1, (3, 3))
    y = A.random_pca_colour(x, pca, 9)
    assert np.array_equal(y, A.pca_colour(x, pca, alpha))
    shift = y[:, 0, 0] - x[:, 0, 0]  # the same shift for every pixel of an image
    assert np.allclose(y - x, shift[:, None, None, :])


def test_resize_keeps_a_same_size_image_and_holds_edges(x):
    assert np.array_equal(A.resize(x, 7), x)
    up = A.resize(np.ones((1, 8, 8, 1)), (32, 32))
    assert up.shape == (1, 32, 32, 1) and np.array_equal(up, np.ones_like(up))


def test_augment_command_writes_the_same_png_twice(tmp_path, capsys):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["augment", "--size", "48", "--out", str(a)]) == 0
    assert main(["augment", "--size", "48", "--out", str(b)]) == 0
    out = capsys.readouterr().out
    assert "11 augmentations of grace_hopper.jpg" in out and "eigenvalues" in out  # + original
    assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and a.read_bytes() == b.read_bytes()
    assert b"Software" not in a.read_bytes()


def test_augment_command_reports_an_unreadable_image(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert main(["augment", str(bad), "--out", str(tmp_path / "o.png")]) == 1
    assert "cannot read image" in capsys.readouterr().err


@pytest.mark.parametrize("side, px", [(256, 12.0), (64, 3.0), (48, 2.25)])
def test_the_grids_warp_scales_with_the_image(side, px):
    image = np.random.default_rng(1).random((side, side, 3))
    panels, _ = A.examples(image, seed=4)
    title, warped = panels[6]
    assert title == f"local warp, {px:g} px, 4x4 cells"
    g = A.generator(4)  # the draws before the warp's: two crop offsets, then alpha
    A.crop_offsets((side, side), 7 * side // 8, 2, g)
    g.normal(0.0, 0.1, 3)
    assert np.array_equal(warped, A.random_warp(image[None], px, 4, g)[0])
    assert sum(t != "original" for t, _ in panels) == 11


def test_augment_command_refuses_an_output_other_than_png(tmp_path, capsys):
    out = tmp_path / "grid.jpg"
    assert main(["augment", "--size", "16", "--out", str(out)]) == 1
    assert capsys.readouterr().err == (f"error: --out must name a .png file, got '{out}'\n"
                                       "  = the grid is written as PNG\n")
    assert not out.exists()


def test_unused_random_rotate_and_shear_are_gone():
    assert not hasattr(A, "random_rotate") and not hasattr(A, "random_shear")
