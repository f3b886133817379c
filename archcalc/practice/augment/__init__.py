"""Data augmentation on batches of images, in NumPy: seeded, one call per batch.

Images are NHWC arrays (N, n_H, n_W, n_C), as everywhere in archcalc. Each transform is a pure
function of its parameters (`mirror`, `crop_at`, `rotate`, `shear`, `warp`, `colour_shift`,
`pca_colour`); each `random_*` function draws those parameters per image from `rng` (a
numpy Generator or a seed) and applies the transform, so a test can check the exact effect of
the parameters and a training loop gets a fresh draw per batch.

One module per family: batch.py (what they share), crops.py (mirror, crops), geometric.py
(resampling: rotate, shear, warp, resize), colour.py (shifts, PCA colour), figure.py (the grid
of examples that `archcalc augment` draws).
"""
from .batch import as_batch, as_float, generator, pair, per_image
from .colour import (ColourPCA, colour_pca, colour_shift, pca_colour, pca_shift,
                     random_colour_shift, random_pca_colour)
from .crops import crop_at, crop_offsets, mirror, random_crop, random_mirror
from .figure import WARP_PX, examples, grid_figure, load_image, sample_image
from .geometric import (SNAP, affine, cos_sin, grid, random_warp, resize, rotate,
                        rotation_matrix, sample, shear, shear_matrix, smooth_flow, snap, warp)
