"""A latency estimate: a roofline over a device profile, per layer and in total.

A profile holds a peak multiply-accumulate rate P (MAC/s), a memory bandwidth B (bytes/s), a
per-layer overhead t0 (s) and efficiencies e, each keyed by a family or by a layer kind where
the kind's own cost differs from its family's (GELU's erfc against a ReLU): a layer takes its
kind's, else its family's, else 1. For a pass over
n images a layer moves D = n*(input + output bytes) + weight bytes (weights read once a pass)
and computes M = n*MACs:

    compute = M / (P * e)      memory = D / B      (e on compute for the MAC families)
    compute = 0                memory = D / (B * e) (e on memory for pool and elementwise)
    latency = t0 + max(compute, memory) + (1 - overlap) * min(compute, memory)

The overlap (0 to 1, 1 when a profile gives none: the pure roofline) is how far a layer's data
movement hides behind its arithmetic: a GPU overlaps them; the NumPy executor moves a layer's
data (padding, im2col, the output) and then multiplies, one after the other (overlap 0), so at
equal MACs the layer that moves more is slower even when compute is the larger term (ShuffleNet
v2's G1 and G2). `bound` names the largest of the terms t0, compute and memory. Exact: every figure is a
Fraction (a profile's decimals read as written), so a test can write a latency out."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from dataclasses import dataclass, field, replace
from fractions import Fraction

from ..errors import SpecError, did_you_mean
from ..kinds.registry import KINDS
from ..sizes import is_int

# family -> the roofline term its efficiency scales (kinds.Op.family names the family)
FAMILIES = {"dense": "compute", "pointwise": "compute", "depthwise": "compute",
            "grouped": "compute", "matmul": "compute", "pool": "memory", "elementwise": "memory"}
RATES = ("peak_macs_per_s", "bandwidth_bytes_per_s", "overhead_s")


@dataclass(frozen=True)
class Device:
    name: str
    peak_macs_per_s: Fraction
    bandwidth_bytes_per_s: Fraction
    overhead_s: Fraction
    efficiency: dict = field(default_factory=dict)  # family -> Fraction
    source: str = ""
    dtype: str = "float32"
    overlap: Fraction = Fraction(1)  # of data movement with arithmetic: 1 the pure roofline

    def document(self) -> dict:
        """The profile as JSON: numbers as floats."""
        return {"name": self.name, "source": self.source, "dtype": self.dtype,
                **{k: float(getattr(self, k)) for k in RATES}, "overlap": float(self.overlap),
                "efficiency": {k: float(v) for k, v in self.efficiency.items()}}


def loads_device(text: str, where: str = "device profile") -> Device:
    """A profile from JSON text; every problem is a SpecError naming the field."""
    def refuse(token):
        raise SpecError(f"{where}: {token} is not a number a profile can hold")
    try:
        data = json.loads(text, parse_float=Fraction, parse_constant=refuse)
    except json.JSONDecodeError as e:
        raise SpecError(f"{where}: not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a JSON object with {', '.join(RATES)}")
    missing = [k for k in RATES if k not in data]
    if missing:
        raise SpecError(f"{where}: missing '{missing[0]}'", None, (f"a profile holds {', '.join(RATES)}",))
    rates = {k: positive(data[k], k, where, zero=k == "overhead_s") for k in RATES}
    efficiency = data.get("efficiency", {})
    if not isinstance(efficiency, dict):
        raise SpecError(f"{where}: 'efficiency' must map a family to a number")
    for family in efficiency:
        if family not in FAMILIES and family not in KINDS:
            hint = did_you_mean(family, (*FAMILIES, *KINDS))
            raise SpecError(f"{where}: unknown family '{family}' in 'efficiency'", None,
                            ((hint,) if hint else ()) + (f"families: {', '.join(FAMILIES)}; "
                                                         "or a layer kind",))
    overlap = positive(data.get("overlap", 1), "overlap", where, zero=True)
    if overlap > 1:
        raise SpecError(f"{where}: 'overlap' must be a number from 0 to 1, got {json.dumps(str(overlap))}")
    return Device(str(data.get("name", "")), **rates,
                  efficiency={k: positive(v, f"efficiency.{k}", where) for k, v in efficiency.items()},
                  source=str(data.get("source", "")), dtype=str(data.get("dtype", "float32")),
                  overlap=overlap)


def positive(value, key: str, where: str, zero: bool = False) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, Fraction)) or value < 0 \
            or (value == 0 and not zero):
        least = "at least 0" if zero else "above 0"
        raise SpecError(f"{where}: '{key}' must be a number {least}, got {json.dumps(str(value))}")
    return Fraction(value)


def load_device(path) -> Device:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(1_000_000)
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"cannot read device profile '{path}': {getattr(e, 'strerror', None) or e}") from None
    return loads_device(text, f"device profile '{path}'")


def terms(device: Device, family: str, macs: int, moved: int, kind: str = "") -> tuple[Fraction, Fraction]:
    """(compute, memory) seconds of a layer that does `macs` and moves `moved` bytes."""
    e = device.efficiency.get(kind, device.efficiency.get(family, Fraction(1)))
    on_compute = FAMILIES.get(family, "memory") == "compute"
    compute = Fraction(macs) / (device.peak_macs_per_s * (e if on_compute else 1))
    memory = Fraction(moved) / (device.bandwidth_bytes_per_s * (1 if on_compute else e))
    return compute, memory


def layer_latency(device: Device, family: str, macs: int, moved: int, kind: str = "") -> tuple[Fraction, str]:
    compute, memory = terms(device, family, macs, moved, kind)
    work = max(compute, memory) + (1 - device.overlap) * min(compute, memory)
    bound = "overhead" if device.overhead_s > work else "compute" if compute >= memory else "memory"
    return device.overhead_s + work, bound


def estimate(a):
    """The analysis `a` with each row's latency_s and bound, and totals['latency_s'], for a
    pass over a.batch images on a.device."""
    n, device = a.batch, a.device
    free = [r.name for r in a.rows
            if not all(is_int(v) for v in (r.macs, r.input_bytes, r.weight_bytes, r.output_bytes))]
    if free:
        raise SpecError(f"a latency estimate needs every size bound; layer '{free[0]}' has a "
                        "symbolic cost", None, (f"free symbols: {', '.join(a.free)}",
                                                "bind them with --set (or at=...)"))
    rows = []
    for r in a.rows:
        moved = n * (r.input_bytes + r.output_bytes) + r.weight_bytes
        seconds, bound = layer_latency(device, r.family, n * r.macs, moved, r.kind)
        rows.append(replace(r, latency_s=seconds, bound=bound))
    return replace(a, rows=tuple(rows), totals={**a.totals, "latency_s": sum(r.latency_s for r in rows)})


def shipped() -> tuple[str, ...]:
    """The names of the published profiles shipped in archcalc/devices."""
    return tuple(sorted(p.name[:-5] for p in resources.files("archcalc").joinpath("devices").iterdir()
                        if p.name.endswith(".json")))


def device_profile(name_or_path) -> Device:
    """A profile from a file, or a shipped one by its name (`nvidia_t4`)."""
    if Path(name_or_path).exists() or str(name_or_path).endswith(".json"):
        return load_device(name_or_path)
    if name_or_path not in shipped():
        hint = did_you_mean(str(name_or_path), shipped())
        raise SpecError(f"no device profile '{name_or_path}': neither a file nor a shipped profile",
                        None, ((hint,) if hint else ()) + (f"shipped: {', '.join(shipped())}",))
    text = resources.files("archcalc").joinpath("devices", f"{name_or_path}.json").read_text("utf-8")
    return loads_device(text, f"device profile '{name_or_path}'")
