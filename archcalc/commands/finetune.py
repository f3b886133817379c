"""`archcalc finetune SPEC --freeze LAYER`: transfer learning on cached features.

The frozen part runs once over the data (scikit-learn's digits by default, or an .npz of
images and labels) into a memory-mapped feature cache; a new softmax head is trained on the
cached features; the full network's weights are saved for `archcalc run --weights`."""
from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np

from ..source import load
from ..practice import transfer
from ..errors import SpecError
from ..executor import weights as wts
from ..executor.forward import single_input, size_text
from . import (add_memory_option, add_set_option, add_spec_argument, add_weights_option,
               class_count, decay_value, epoch_count, fraction_value, learning_rate,
               memory_limit, mini_batch_size, momentum_value, parse_sets, seed_value)


def add_parser(sub) -> None:
    p = sub.add_parser("finetune", help="freeze a network, cache its features, train a new "
                                        "softmax head, save the weights")
    add_spec_argument(p)
    p.add_argument("--freeze", metavar="LAYER", required=True,
                   help="the last frozen layer (it and every layer it reads); the fc layers "
                        "after it are trained, the last one anew as a k-way classifier")
    p.add_argument("--data", default="digits", metavar="digits|FILE.npz",
                   help="'digits' (scikit-learn's 8x8 digits, resized to the spec's input; "
                        "the default) or an .npz with arrays x (N, n_H, n_W, n_C) and y (N,)")
    p.add_argument("--classes", type=class_count, metavar="K",
                   help="width of the new classifier (default: largest label + 1)")
    add_weights_option(p, "pretrained weights keyed 'LAYER/KEY' (default: seeded initialisation)")
    p.add_argument("--out", metavar="FILE.npz",
                   help="where to save the full network's weights (default: SPEC_finetuned.npz)")
    p.add_argument("--cache", metavar="FILE.npy",
                   help="the feature cache (default: SPEC_LAYER_features.npy); reused when "
                        "spec, weights and data are unchanged")
    p.add_argument("--epochs", type=epoch_count, default=30, help="passes over the train "
                                                                   "features (default 30)")
    p.add_argument("--batch", type=mini_batch_size, default=32, help="mini-batch size (default 32)")
    p.add_argument("--lr", type=learning_rate, default=0.05, help="learning rate (default 0.05)")
    p.add_argument("--momentum", type=momentum_value, default=0.9,
                   help="0 for plain gradient descent")
    p.add_argument("--decay", type=decay_value, default=1e-4, help="weight decay (default 1e-4)")
    p.add_argument("--test-fraction", type=fraction_value, default=0.25,
                   help="share of the images held out for the accuracy (default 0.25)")
    p.add_argument("--seed", type=seed_value, default=0,
                   help="seed of the weights, the split and the mini-batches (default 0)")
    add_set_option(p, "bind a free symbol (repeatable); the images' size binds H and W")
    add_memory_option(p, "refuse a run whose feature cache and working memory would need more "
                         "(default 8 GiB)")
    p.set_defaults(main=main)


def main(args) -> int:
    net = load(args.spec)
    at = parse_sets(args.set)
    if args.data == "digits":
        x, y = transfer.digits(single_input(net, at, "finetune")[0], memory_limit(args))
        data = f"scikit-learn digits, 8x8 resized to {x.shape[1]}x{x.shape[2]}x{x.shape[3]}"
    else:
        x, y = read_data(args.data, memory_limit(args))
        data = f"'{args.data}', {x.shape[1]}x{x.shape[2]}x{x.shape[3]}"
    stem = f"{Path(args.spec).stem}_{args.freeze}"
    out = args.out or f"{Path(args.spec).stem}_finetuned.npz"
    cache = args.cache or f"{stem}_features.npy"
    result = transfer.finetune(net, x, y, args.freeze, classes=args.classes,
                               test_fraction=args.test_fraction, epochs=args.epochs,
                               batch=args.batch, lr=args.lr, decay=args.decay,
                               momentum=args.momentum, seed=args.seed, weights=args.weights,
                               cache=cache, out=out, progress=progress_stream(),
                               memory_limit=memory_limit(args))
    print(transfer.report(result, data), end="")
    feats = result.features
    if not feats.reused and feats.counted_macs != len(feats.array) * result.frozen_macs:
        raise SpecError(f"the executor counted {feats.counted_macs:,} MACs for the features, the "
                        f"analysis predicts {len(feats.array) * result.frozen_macs:,}")
    if result.executor_agrees is False:
        raise SpecError(f"the executor, running the saved network '{out}' on the test images, "
                        "disagrees with the trained head")
    return 0


def progress_stream():
    """stderr for the progress bar when a person watches it; none into a log, a pipe or a
    test's captured stderr, which then hold only the messages."""
    return sys.stderr if sys.stderr.isatty() else False


def read_data(path, limit):
    try:
        refuse_large_data(path, limit)
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile) or not {"x", "y"} <= set(z.files):
                raise SpecError(f"data '{path}' must be an .npz with arrays x and y")
            x, y = z["x"], z["y"]
    except AttributeError:
        raise SpecError(f"data '{path}' must be an .npz with arrays x and y") from None
    except OSError as e:
        raise SpecError(f"cannot read data '{path}': {e.strerror or e}") from None
    except (ValueError, zipfile.BadZipFile, EOFError) as e:
        raise SpecError(f"data '{path}' is not a readable .npz archive: {e}") from None
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or y.dtype.kind not in "iu":
        raise SpecError(f"data '{path}': x must be (N, n_H, n_W, n_C) and y (N,) whole-number "
                        f"labels; got x {x.shape}, y {y.shape} {y.dtype}")
    return x, y.astype(np.int64)


def refuse_large_data(path, limit) -> None:
    """The arrays x and y as their .npy headers give them, checked against `limit` bytes
    before their data is read (a header may claim any size in a few bytes)."""
    if not zipfile.is_zipfile(path):
        return  # np.load says what the file is instead
    with zipfile.ZipFile(path) as z:
        sizes = {info.filename[:-4]: wts.member_header(z, info).nbytes for info in z.infolist()
                 if info.filename in ("x.npy", "y.npy")}
    if sum(sizes.values()) > limit:
        parts = " + ".join(f"{size_text(n)} of {k}" for k, n in sorted(sizes.items()))
        raise SpecError(f"data '{path}' would need {size_text(sum(sizes.values()))} ({parts}), "
                        f"over the limit of {size_text(limit)}", None,
                        ("give fewer or smaller images, or raise the limit (--max-memory)",))
