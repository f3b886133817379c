"""Colour augmentations: a per-channel shift, and AlexNet's PCA colour augmentation.

PCA colour augmentation follows Krizhevsky et al. (2012), section 4.1: the eigenvectors p_i
and eigenvalues lambda_i of the 3x3 covariance of the RGB values of every pixel of the data
set; each image gets [p1 p2 p3][alpha1 lambda1, alpha2 lambda2, alpha3 lambda3]^T added to
every pixel, alpha_i ~ N(0, 0.1) drawn once per image. lambda is in the data's units squared:
with pixels in [0, 1] a typical first eigenvalue is about 0.1 and the shifts are a few levels
of 255."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .batch import as_batch, as_float, generator, per_image


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
