"""archcalc: the arithmetic of convolutional networks, checked before anyone trains them.

The facade: `load`/`loads` read a Network, `analyze` gives its Analysis (`a.at(H=448)`,
`a.totals_at(H=448)`, `subs(formula, H=448)`), `compare` and `sweep` put several side by side,
`run` executes it. In a notebook each result shows as a compact HTML table."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .analysis.analyzer import Analysis, Row, analyze as _analyze
from .analysis.latency import Device, device_profile
from .analysis.sweep import evaluate
from .errors import SpecError
from .executor.calibrate import calibrate as _calibrate
from .executor.forward import Result, run as _run
from .network import Layer, Network
from .present.notebook import Comparison, Sweep, analysis_html
from .sizes import subs
from .source import load, loads, read_spec

# Jupyter asks the class for _repr_html_; the analysis layer sits below present/, so the
# facade, which sees both, attaches the table
Analysis._repr_html_ = analysis_html

__version__ = "0.1.0"


def _network(net) -> Network:
    """A Network as it is; a path (str or Path) read with `load`."""
    return net if isinstance(net, Network) else load(Path(net))


def analyze(net, at: dict | None = None, free=(), strict: bool = False,
            freeze: str | None = None, dtype: str = "float32", device=None,
            batch: int = 1) -> Analysis:
    """The analysis of `net` (a Network, or the path of a spec or an .onnx model): one Row per
    layer and the totals; see archcalc.analysis.analyzer.analyze for the arguments. `device`
    (a Device, a profile's path or a shipped profile's name) adds rows' `latency_s` and
    `bound` and totals['latency_s'] for a pass over `batch` images."""
    if device is not None and not isinstance(device, Device):
        device = device_profile(device)
    return _analyze(_network(net), at=at, free=free, strict=strict, freeze=freeze, dtype=dtype,
                    device=device, batch=batch)


def calibrate(repeats: int = 3, timer=None) -> Device:
    """A device profile of this machine, measured with the executor's kernels (see
    archcalc.executor.calibrate); `timer` defaults to time.perf_counter."""
    return _calibrate(repeats=repeats, **({"timer": timer} if timer else {}))


def compare(*nets, at: dict | None = None) -> Comparison:
    """Two or more networks (Networks or paths) side by side; `at` binds a symbol in every
    network that declares it (a name none declares is a SpecError)."""
    nets = [_network(n) for n in nets]
    at = at or {}
    declared = [{s.name for s in n.symbols} for n in nets]
    unknown = sorted(set(at) - set().union(*declared))
    if unknown:
        raise SpecError(f"no network declares the symbol '{unknown[0]}'")
    return Comparison(tuple(_analyze(n, at={k: v for k, v in at.items() if k in names})
                            for n, names in zip(nets, declared)))


def sweep(net, metric: str = "macs", at: dict | None = None, **ranges) -> Sweep:
    """A metric (a key of Analysis.totals) over one or two symbols, exactly:
    `sweep("specs/resnet50.arch", H=range(224, 449, 32))`; `at` holds the others fixed
    (their defaults otherwise)."""
    net = _network(net)
    axes = {k: np.asarray(list(v), dtype=np.int64) for k, v in ranges.items()}
    values = evaluate(net, metric, axes, at)
    fixed = {s.name: (at or {}).get(s.name, s.default) for s in net.symbols if s.name not in axes}
    return Sweep(net.name, metric, axes, values, fixed)


def run(net, x=None, weights=None, **options) -> Result:
    """Run `net` (a Network, or the path of a spec or an .onnx model) forward; see
    archcalc.executor.forward.run for the options."""
    return _run(_network(net), x, weights, **options)


__all__ = ["Analysis", "Comparison", "Device", "Layer", "Network", "Result", "Row", "SpecError", "Sweep",
           "analyze", "calibrate", "compare", "load", "loads", "read_spec", "run", "subs", "sweep",
           "__version__"]
