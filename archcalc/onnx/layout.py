"""Arrays in an imported model's own layout, for `archcalc run` on a model: its input
(NCHW, NHWC or a vector (N, n)) to the executor's NHWC, and an output back to the model's
layout and element order, as `Network.layout` (made by the importer) records them.
"""
from __future__ import annotations

import numpy as np

from ..errors import SpecError
from ..network import Network


def model_input(net: Network, x):
    """An array in the model's own layout (NCHW, NHWC or (N, n)) -> the executor's NHWC."""
    if x is None:
        return None
    inputs = net.layout["inputs"]
    if len(inputs) != 1:
        raise SpecError(f"the model has {len(inputs)} inputs; give them to archcalc.run as "
                        "{input name: NHWC array}")
    layout = next(iter(inputs.values()))["layout"]
    x = np.asarray(x)
    if layout == "NCHW":
        if x.ndim != 4:
            raise SpecError(f"the model's input is (N, C, H, W); got an array of shape {x.shape}")
        return x.transpose(0, 2, 3, 1)
    if layout == "vector":
        if x.ndim != 2:
            raise SpecError(f"the model's input is (N, n); got an array of shape {x.shape}")
        return x.reshape(x.shape[0], 1, 1, -1)
    return x


def model_output(net: Network, layer, y):
    """The executor's NHWC output of `layer` -> the model's layout: (N, C, H, W) for a map
    ((N, H, W, C) for one the model holds channels-last), (N, n) for a vector, its elements in
    the model's order."""
    out = net.layout["outputs"].get(layer)
    if out is None:
        return y
    if out["rank"] == 4:
        return y if out.get("last") else y.transpose(0, 3, 1, 2)
    y = y.reshape(y.shape[0], -1)
    if out["perm"] is not None:
        y = y[:, np.argsort(out["perm"])]
    return y
