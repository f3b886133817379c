"""Graph -> a forward pass on NumPy arrays, and its check against the analysis: the plan and
the pass (forward), one kernel per kind (kernels; the convolutions in conv), BatchNorm folding
and fused ReLUs (fusion), weights (initialisation and .npz files)."""
from __future__ import annotations

from .forward import Result, check, run, single_input, size_text

__all__ = ["Result", "check", "run", "single_input", "size_text"]
