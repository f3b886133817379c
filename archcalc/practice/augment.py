"""Data augmentation on batches of images, in NumPy: seeded, one call per batch.

Images are NHWC arrays (N, n_H, n_W, n_C), as everywhere in archcalc. Each transform is a pure
function of its parameters (`mirror`, `crop_at`, `rotate`, `shear`, `warp`, `colour_shift`,
`pca_colour`); each `random_*` function draws those parameters per image from `rng` (a
numpy Generator or a seed) and applies the transform, so a test can check the exact effect of
the parameters and a training loop gets a fresh draw per batch.

Geometric transforms map every output pixel back to a point of the input and read it by
bilinear interpolation; points outside the image read `fill`. Angles are in degrees,
counterclockwise as the image is shown (row 0 at the top); rows and columns are measured from
the image's centre ((n_H - 1)/2, (n_W - 1)/2). Sample points within SNAP of a pixel are snapped
to it, so a rotation by a multiple of 90 degrees moves pixels exactly (np.rot90).

PCA colour augmentation follows Krizhevsky et al. (2012), section 4.1: the eigenvectors p_i
and eigenvalues lambda_i of the 3x3 covariance of the RGB values of every pixel of the data
set; each image gets [p1 p2 p3][alpha1 lambda1, alpha2 lambda2, alpha3 lambda3]^T added to
every pixel, alpha_i ~ N(0, 0.1) drawn once per image. lambda is in the data's units squared:
with pixels in [0, 1] a typical first eigenvalue is about 0.1 and the shifts are a few levels
of 255.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

SNAP = 1e-6  # sample points this close to a pixel read that pixel exactly


def generator(rng) -> np.random.Generator:
    """A Generator from a Generator, a seed, or None (fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def as_batch(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"images must be a batch (N, n_H, n_W, n_C), got shape {x.shape}")
    return x


def as_float(x) -> np.ndarray:
    """The batch as floats: float arrays keep their dtype, integers become float32."""
    x = as_batch(x)
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def per_image(value, n, width=None) -> np.ndarray:
    """A scalar (or a vector of `width`) for the whole batch, or one per image, as (N, ...)."""
    a = np.asarray(value, dtype=np.float64)
    shape = (n,) if width is None else (n, width)
    if a.ndim == len(shape) - 1:
        a = np.broadcast_to(a, shape)
    if a.shape != shape:
        raise ValueError(f"expected one value for the batch or {shape}, got shape {a.shape}")
    return a


# ---------------------------------------------------------------- mirroring and crops

def mirror(x) -> np.ndarray:
    """Left-right mirror of every image (mirroring twice is the identity)."""
    return as_batch(x)[:, :, ::-1].copy()


def random_mirror(x, rng=None, p=0.5) -> np.ndarray:
    """Mirror each image with probability p."""
    x = as_batch(x)
    flip = generator(rng).random(len(x)) < p
    out = x.copy()
    out[flip] = x[flip][:, :, ::-1]
    return out


def crop_at(x, tops, lefts, size) -> np.ndarray:
    """Image n cropped to rows tops[n] .. tops[n] + h - 1 and columns lefts[n] .. + w - 1;
    `size` is (h, w) or one side; tops and lefts are ints or one per image."""
    x = as_batch(x)
    n, H, W = x.shape[:3]
    h, w = pair(size)
    tops = np.broadcast_to(np.asarray(tops, dtype=np.int64), (n,))
    lefts = np.broadcast_to(np.asarray(lefts, dtype=np.int64), (n,))
    if h > H or w > W or (tops < 0).any() or (lefts < 0).any() \
            or (tops + h > H).any() or (lefts + w > W).any():
        raise ValueError(f"a {h}x{w} crop at the given offsets does not fit a {H}x{W} image")
    out = np.empty((n, h, w) + x.shape[3:], x.dtype)
    for i, (t, l) in enumerate(zip(tops, lefts)):
        out[i] = x[i, t:t + h, l:l + w]
    return out


def crop_offsets(shape, size, n, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random (tops, lefts) of n crops of `size` within images of `shape` (H, W)."""
    H, W = shape[:2]
    h, w = pair(size)
    if h > H or w > W:
        raise ValueError(f"a {h}x{w} crop does not fit a {H}x{W} image")
    g = generator(rng)
    return g.integers(0, H - h + 1, n), g.integers(0, W - w + 1, n)


def random_crop(x, size, rng=None) -> np.ndarray:
    """One random crop of `size` per image (AlexNet: 224x224 patches of 256x256 images)."""
    x = as_batch(x)
    tops, lefts = crop_offsets(x.shape[1:3], size, len(x), rng)
    return crop_at(x, tops, lefts, size)


def pair(size) -> tuple[int, int]:
    if np.ndim(size) == 0:
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


# ---------------------------------------------------------------- sampling

def sample(x, rows, cols, fill=0.0, edge=False) -> np.ndarray:
    """Bilinear reading of x at the points (rows, cols), arrays broadcastable to (N, h, w).
    Neighbours outside the image read `fill` (or, with edge=True, the nearest border pixel)."""
    x = as_float(x)
    n, H, W = x.shape[:3]
    rows, cols = np.broadcast_arrays(np.asarray(rows, np.float64), np.asarray(cols, np.float64))
    rows = snap(np.broadcast_to(rows, (n,) + rows.shape[1:]))
    cols = snap(np.broadcast_to(cols, (n,) + cols.shape[1:]))
    if edge:
        rows, cols = np.clip(rows, 0, H - 1), np.clip(cols, 0, W - 1)
    r0, c0 = np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)
    fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
    batch = np.arange(n).reshape((n,) + (1,) * (rows.ndim - 1))
    fill = np.asarray(fill, x.dtype)

    def read(r, c):
        inside = ((r >= 0) & (r < H) & (c >= 0) & (c < W))[..., None]
        return np.where(inside, x[batch, np.clip(r, 0, H - 1), np.clip(c, 0, W - 1)], fill)

    top = read(r0, c0) * (1 - fc) + read(r0, c0 + 1) * fc
    bottom = read(r0 + 1, c0) * (1 - fc) + read(r0 + 1, c0 + 1) * fc
    out = top * (1 - fr) + bottom * fr
    return out.astype(x.dtype, copy=False)


def snap(a: np.ndarray) -> np.ndarray:
    nearest = np.round(a)
    return np.where(np.abs(a - nearest) < SNAP, nearest, a)


def grid(n_H, n_W):
    """Row and column offsets of every pixel from the image's centre, as (1, H, W) arrays."""
    r, c = np.meshgrid(np.arange(n_H) - (n_H - 1) / 2, np.arange(n_W) - (n_W - 1) / 2,
                       indexing="ij")
    return r[None], c[None]


def affine(x, matrix, fill=0.0) -> np.ndarray:
    """Apply the linear map `matrix` (2x2 on (row, col) offsets from the centre, or one per
    image, (N, 2, 2)) to every image: output pixel q reads the input at matrix^-1 q."""
    x = as_float(x)
    m = np.asarray(matrix, dtype=np.float64)
    m = np.broadcast_to(m, (len(x), 2, 2)) if m.ndim == 2 else m
    inverse = np.linalg.inv(m)
    dr, dc = grid(*x.shape[1:3])
    a, b = inverse[:, 0, 0, None, None], inverse[:, 0, 1, None, None]
    c, d = inverse[:, 1, 0, None, None], inverse[:, 1, 1, None, None]
    r0, c0 = (x.shape[1] - 1) / 2, (x.shape[2] - 1) / 2
    return sample(x, a * dr + b * dc + r0, c * dr + d * dc + c0, fill)


def cos_sin(degrees) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin, exact at multiples of 90 degrees (np.cos(pi/2) is 6e-17, not 0)."""
    d = np.asarray(degrees, dtype=np.float64)
    right = np.mod(d, 90) == 0
    quarter = np.mod(np.round(d / 90), 4).astype(int)
    exact_cos = np.array([1.0, 0.0, -1.0, 0.0])[quarter]
    exact_sin = np.array([0.0, 1.0, 0.0, -1.0])[quarter]
    t = np.deg2rad(d)
    return np.where(right, exact_cos, np.cos(t)), np.where(right, exact_sin, np.sin(t))


def rotation_matrix(degrees) -> np.ndarray:
    """The map of (row, col) offsets that turns an image counterclockwise by `degrees` as it is
    shown (rows grow downwards): (N, 2, 2) for N angles, (2, 2) for one."""
    c, s = cos_sin(degrees)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def rotate(x, degrees, fill=0.0) -> np.ndarray:
    """Rotate each image counterclockwise about its centre by `degrees` (one angle, or one per
    image); the output keeps the input's size, corners uncovered by the input read `fill`.
    rotate(x, 90) equals np.rot90(x, 1, axes=(1, 2)) for square images."""
    x = as_float(x)
    return affine(x, rotation_matrix(per_image(degrees, len(x))), fill)


def shear_matrix(k, axis="x") -> np.ndarray:
    """axis 'x': column offset += k * row offset (rows slide sideways, the more the further
    from the centre); axis 'y': row offset += k * column offset."""
    k = np.asarray(k, dtype=np.float64)
    one, zero = np.ones_like(k), np.zeros_like(k)
    if axis == "x":
        rows = [np.stack([one, zero], -1), np.stack([k, one], -1)]
    elif axis == "y":
        rows = [np.stack([one, k], -1), np.stack([zero, one], -1)]
    else:
        raise ValueError(f"shear axis must be 'x' or 'y', got {axis!r}")
    return np.stack(rows, -2)


def shear(x, k, axis="x", fill=0.0) -> np.ndarray:
    """Shear each image by factor k (one, or one per image) along `axis`, about its centre."""
    x = as_float(x)
    return affine(x, shear_matrix(per_image(k, len(x)), axis), fill)


# ---------------------------------------------------------------- local warping

def warp(x, flow, fill=0.0) -> np.ndarray:
    """Local warping by a displacement field: output pixel (r, c) reads the input at
    (r + flow[..., 0], c + flow[..., 1]); flow is (N or 1, n_H, n_W, 2) in pixels. A zero
    field is the identity."""
    x = as_float(x)
    flow = np.asarray(flow, dtype=np.float64)
    H, W = x.shape[1:3]
    if flow.ndim != 4 or flow.shape[1:] != (H, W, 2):
        raise ValueError(f"flow must be (N, {H}, {W}, 2), got shape {flow.shape}")
    r = np.arange(H, dtype=np.float64)[None, :, None]
    c = np.arange(W, dtype=np.float64)[None, None, :]
    return sample(x, r + flow[..., 0], c + flow[..., 1], fill)


def smooth_flow(shape, n, magnitude, cells, rng=None) -> np.ndarray:
    """A smooth random displacement field per image: offsets uniform in [-magnitude,
    magnitude] pixels at a (cells + 1) x (cells + 1) lattice of control points spread over
    the image, interpolated bilinearly in between. (n, H, W, 2)."""
    H, W = shape[:2]
    control = generator(rng).uniform(-magnitude, magnitude, (n, cells + 1, cells + 1, 2))
    rows = np.linspace(0, cells, H)[None, :, None] + np.zeros((1, 1, W))
    cols = np.linspace(0, cells, W)[None, None, :] + np.zeros((1, H, 1))
    return sample(control, rows, cols, edge=True)


def random_warp(x, magnitude=2.0, cells=4, rng=None, fill=0.0) -> np.ndarray:
    """Local elastic-style warping: every image bent by its own smooth random field."""
    x = as_float(x)
    return warp(x, smooth_flow(x.shape[1:3], len(x), magnitude, cells, rng), fill)


def resize(x, size) -> np.ndarray:
    """Bilinear resize of every image to `size` (h, w), pixel centres aligned as in
    OpenCV's and PyTorch's align_corners=False; edges are held."""
    x = as_float(x)
    H, W = x.shape[1:3]
    h, w = pair(size)
    rows = (np.arange(h) + 0.5) * (H / h) - 0.5
    cols = (np.arange(w) + 0.5) * (W / w) - 0.5
    return sample(x, rows[None, :, None] + np.zeros((1, 1, w)),
                  cols[None, None, :] + np.zeros((1, h, 1)), edge=True)


# ---------------------------------------------------------------- colour

def colour_shift(x, offsets) -> np.ndarray:
    """Add a per-channel offset to every pixel: offsets (n_C,) for the batch or (N, n_C)."""
    x = as_float(x)
    o = per_image(offsets, len(x), x.shape[3]).astype(x.dtype)
    return x + o[:, None, None, :]


def random_colour_shift(x, scale, rng=None) -> np.ndarray:
    """Per image and channel an offset uniform in [-scale, scale] (the course's
    '+20, -20, +20 to R, G, B' with scale 20 on 0..255 pixels)."""
    x = as_float(x)
    return colour_shift(x, generator(rng).uniform(-scale, scale, (len(x), x.shape[3])))


class ColourPCA(NamedTuple):
    """The principal components of a data set's pixel colours: eigenvalues (descending) and
    the matching unit eigenvectors as the columns of `vectors`, and the mean colour."""
    values: np.ndarray   # (C,) lambda_1 >= lambda_2 >= ...
    vectors: np.ndarray  # (C, C), column i is p_i
    mean: np.ndarray     # (C,)


def colour_pca(images, chunk=256) -> ColourPCA:
    """Eigen-decomposition of the covariance of the colours of every pixel of `images`
    (N, H, W, C), accumulated in float64 over chunks of images (a memory-mapped data set
    is read once, in pieces)."""
    images = as_batch(images)
    C = images.shape[3]
    count, s1, s2 = 0, np.zeros(C), np.zeros((C, C))
    for start in range(0, len(images), chunk):
        p = np.asarray(images[start:start + chunk], dtype=np.float64).reshape(-1, C)
        count += len(p)
        s1 += p.sum(axis=0)
        s2 += p.T @ p
    if count < 2:
        raise ValueError("colour PCA needs at least two pixels")
    mean = s1 / count
    cov = (s2 - count * np.outer(mean, mean)) / (count - 1)
    values, vectors = np.linalg.eigh(cov)
    values, vectors = values[::-1], vectors[:, ::-1]
    signs = np.sign(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(C)])
    return ColourPCA(np.clip(values, 0, None), vectors * signs, mean)


def pca_shift(pca: ColourPCA, alpha) -> np.ndarray:
    """sum_i alpha_i lambda_i p_i, one colour per row of alpha ((C,) or (N, C))."""
    a = np.asarray(alpha, dtype=np.float64)
    return (a * pca.values) @ pca.vectors.T


def pca_colour(x, pca: ColourPCA, alpha) -> np.ndarray:
    """AlexNet's colour augmentation with given alpha ((C,) for the batch, or (N, C)): every
    pixel of image n moves by sum_i alpha[n, i] lambda_i p_i. alpha = 0 is the identity."""
    x = as_float(x)
    shift = per_image(pca_shift(pca, alpha), len(x), x.shape[3]).astype(x.dtype)
    return x + shift[:, None, None, :]


def random_pca_colour(x, pca: ColourPCA, rng=None, sigma=0.1) -> np.ndarray:
    """alpha_i ~ N(0, sigma) per image and component, drawn afresh on every call (AlexNet:
    once for each time the image is used, sigma 0.1)."""
    x = as_float(x)
    return pca_colour(x, pca, generator(rng).normal(0.0, sigma, (len(x), x.shape[3])))


# ---------------------------------------------------------------- a grid of examples

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
