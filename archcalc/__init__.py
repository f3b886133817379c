"""archcalc: the arithmetic of convolutional networks, checked before anyone trains them.

The facade: `load`/`loads` read a Network, `analyze` gives its Analysis, `run` executes it."""
from __future__ import annotations

from pathlib import Path

from .analysis.analyzer import Analysis, Row, analyze as _analyze
from .errors import SpecError
from .executor.forward import Result, run as _run
from .network import Layer, Network
from .source import load, loads, read_spec

__version__ = "0.1.0"


def _network(net) -> Network:
    """A Network as it is; a path (str or Path) read with `load`."""
    return net if isinstance(net, Network) else load(Path(net))


def analyze(net, at: dict | None = None, free=(), strict: bool = False,
            freeze: str | None = None) -> Analysis:
    """The analysis of `net` (a Network, or the path of a spec or an .onnx model): one Row per
    layer and the totals; see archcalc.analysis.analyzer.analyze for the arguments."""
    return _analyze(_network(net), at=at, free=free, strict=strict, freeze=freeze)


def run(net, x=None, weights=None, **options) -> Result:
    """Run `net` (a Network, or the path of a spec or an .onnx model) forward; see
    archcalc.executor.forward.run for the options."""
    return _run(_network(net), x, weights, **options)


__all__ = ["Analysis", "Layer", "Network", "Result", "Row", "SpecError", "analyze", "load",
           "loads", "read_spec", "run", "__version__"]
