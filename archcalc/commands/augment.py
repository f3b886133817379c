"""`archcalc augment [IMAGE] --out PNG`: a grid of data augmentations of a real image."""
from __future__ import annotations

from pathlib import Path

from ..practice import augment
from ..errors import SpecError
from . import image_side, seed_value

# An image file is decoded whole before its centre is resized: bounded from its header, before
# any pixel is made (--size is bounded by its argparse type, image_side)
MAX_IMAGE_PIXELS = 50_000_000


def add_parser(sub) -> None:
    p = sub.add_parser("augment", help="a PNG grid of data augmentations (mirror, crops, "
                                       "rotation, shear, warp, colour shift, PCA colour)")
    p.add_argument("image", nargs="?",
                   help="an image file (PNG, or JPEG with Pillow); default: matplotlib's "
                        "sample photograph grace_hopper.jpg")
    p.add_argument("--out", default="reports/augmentation.png",
                   help="the PNG to write (default: reports/augmentation.png)")
    p.add_argument("--size", type=image_side, default=256,
                   help="the image's centre square is resized to SIZE x SIZE (default 256)")
    p.add_argument("--seed", type=seed_value, default=0, help="seed of the random draws (default 0)")
    p.set_defaults(main=main)


def main(args) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise SpecError(f"--out must name a .png file, got '{args.out}'", None,
                        ("the grid is written as PNG",))
    if args.image is None:
        image, source = augment.sample_image(args.size)
    else:
        try:
            check_pixels(args.image)
            image = augment.load_image(args.image, args.size)
        except (OSError, ValueError, SyntaxError) as e:
            raise SpecError(f"cannot read image '{args.image}': {e}") from None
        source = Path(args.image).name
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        pca, count = augment.grid_figure(image, out, args.seed, source)
    except OSError as e:
        raise SpecError(f"cannot write '{out}': {e.strerror or e}") from None
    values = ", ".join(f"{v:.4f}" for v in pca.values)
    print(f"{out}: {count} augmentations of {source}, {args.size}x{args.size}, seed {args.seed}")
    print(f"colour PCA of its pixels: eigenvalues ({values})")
    return 0


def check_pixels(path) -> None:
    """Refuses an image file of more than MAX_IMAGE_PIXELS from its header, before decoding."""
    from PIL import Image
    try:
        with Image.open(path) as im:  # reads the header only
            width, height = im.size
    except Image.DecompressionBombError as e:  # Pillow's own bound, met at open
        raise SpecError(f"cannot read image '{path}': {e}") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise SpecError(f"cannot read image '{path}': {width:,} x {height:,} pixels, over the "
                        f"limit of {MAX_IMAGE_PIXELS:,}")
