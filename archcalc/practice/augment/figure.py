"""A grid of examples: the augmentations of one real image, as a PNG (`archcalc augment`)."""
from __future__ import annotations

import numpy as np

from .batch import as_float, generator
from .colour import ColourPCA, colour_pca, colour_shift, pca_colour
from .crops import crop_at, crop_offsets, mirror
from .geometric import random_warp, resize, rotate, shear


def sample_image(size=256) -> tuple[np.ndarray, str]:
    """matplotlib's sample photograph (Grace Hopper, 600x512), its centre square resized to
    size x size, as floats in [0, 1]: a real image shipped by a package archcalc already
    depends on."""
    from matplotlib import cbook
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return load_image(path, size), "grace_hopper.jpg (matplotlib sample data)"


def load_image(path, size=None) -> np.ndarray:
    """An image file as an (H, W, 3) float32 array in [0, 1]; with `size`, its centre square
    resized to size x size."""
    from matplotlib import image
    a = np.asarray(image.imread(str(path)))
    a = a.astype(np.float32) / 255 if a.dtype.kind in "ui" else a.astype(np.float32)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    a = a[..., :3]
    if size is None:
        return a
    side = min(a.shape[:2])
    top, left = (a.shape[0] - side) // 2, (a.shape[1] - side) // 2
    return resize(a[None, top:top + side, left:left + side], size)[0]


WARP_PX = 12.0  # the local warp's largest displacement in a 256x256 image, in pixels


def examples(image, seed=0, crop=None) -> tuple[list, ColourPCA]:
    """(title, image) for each augmentation at parameters that show it, from one seed, and the
    colour PCA of the image's pixels (the data set is the one image here)."""
    x = as_float(np.asarray(image)[None])
    H, W = x.shape[1:3]
    crop = crop or (7 * min(H, W) // 8)
    bend = WARP_PX * min(H, W) / 256  # the warp's displacement grows with the image
    g = generator(seed)
    pca = colour_pca(x)
    tops, lefts = crop_offsets((H, W), crop, 2, g)
    alpha = g.normal(0.0, 0.1, 3)
    shift = (0.1, -0.1, 0.1)
    return [
        ("original", x[0]),
        ("mirror", mirror(x)[0]),
        (f"random crop {crop}x{crop} at ({tops[0]}, {lefts[0]})", crop_at(x, tops[0], lefts[0], crop)[0]),
        (f"random crop {crop}x{crop} at ({tops[1]}, {lefts[1]})", crop_at(x, tops[1], lefts[1], crop)[0]),
        ("rotate 20 degrees", rotate(x, 20)[0]),
        ("shear x, k = 0.3", shear(x, 0.3)[0]),
        (f"local warp, {bend:.3g} px, 4x4 cells", random_warp(x, bend, 4, g)[0]),
        ("rotate 90 degrees (= np.rot90)", rotate(x, 90)[0] if H == W else rotate(x, -10)[0]),
        ("colour shift (+0.1, -0.1, +0.1)", colour_shift(x, shift)[0]),
        ("PCA colour, alpha = (" + ", ".join(f"{a:+.2f}" for a in alpha) + ")",
         pca_colour(x, pca, alpha)[0]),
        ("PCA colour, alpha_2 = +3 (30 sigma)", pca_colour(x, pca, (0, 3, 0))[0]),
        ("PCA colour, alpha_2 = -3 (30 sigma)", pca_colour(x, pca, (0, -3, 0))[0]),
    ], pca


def grid_figure(image, path, seed=0, source="") -> tuple[ColourPCA, int]:
    """Save a 3x4 grid of `image` (H, W, 3) and augmented versions of it as a PNG with no
    timestamp or software tag (the same inputs give the same bytes); returns the colour PCA
    used and the number of augmented panels (the original not counted)."""
    from matplotlib.figure import Figure
    panels, pca = examples(image, seed)
    fig = Figure(figsize=(12, 11), dpi=100, layout="constrained")
    axes = fig.subplots(3, 4)
    for ax, (title, img) in zip(axes.flat, panels):
        ax.imshow(np.clip(img, 0, 1), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    lam = ", ".join(f"{v:.4f}" for v in pca.values)
    fig.suptitle(f"data augmentation (archcalc.augment, seed {seed}) on {source or 'an image'}\n"
                 f"colour PCA of its pixels (values in [0, 1]): lambda = ({lam}); "
                 f"p_1 = ({', '.join(f'{v:+.2f}' for v in pca.vectors[:, 0])}), "
                 f"p_2 = ({', '.join(f'{v:+.2f}' for v in pca.vectors[:, 1])})", fontsize=11)
    fig.savefig(path, format="png", metadata={"Software": None})
    return pca, sum(title != "original" for title, _ in panels)
