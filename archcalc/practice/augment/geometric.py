"""Geometric transforms (rotate, shear, local warp, resize) map every output pixel back to a
point of the input and read it by bilinear interpolation; points outside the image read
`fill`. Angles are in degrees, counterclockwise as the image is shown (row 0 at the top); rows
and columns are measured from the image's centre ((n_H - 1)/2, (n_W - 1)/2). Sample points
within SNAP of a pixel are snapped to it, so a rotation by a multiple of 90 degrees moves
pixels exactly (np.rot90)."""
from __future__ import annotations

import numpy as np

from .batch import as_float, generator, pair, per_image

SNAP = 1e-6  # sample points this close to a pixel read that pixel exactly


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
