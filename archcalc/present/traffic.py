"""Memory traffic and the latency estimate as a user reads them: the extra table columns
(`analyze --traffic`, `--device`), their totals and legend, and their JSON and CSV fields."""
from __future__ import annotations

from fractions import Fraction

from ..analysis.analyzer import Analysis, Row
from ..analysis.traffic import intensity
from ..sizes import is_int, show

TRAFFIC_COLUMNS = ("read", "written", "MACs/B")
LATENCY_COLUMNS = ("latency", "bound")
TRAFFIC_FIELDS = ("input_bytes", "weight_bytes", "output_bytes", "traffic_bytes", "intensity")
LATENCY_FIELDS = ("latency_s", "bound")


def number(x) -> str:
    return f"{x:,}" if is_int(x) else show(x)


def ratio_text(x) -> str:
    """MACs per byte: two decimals; '-' for a layer that moves nothing; a formula as it is."""
    if x is None:
        return "-"
    return f"{float(x):,.2f}" if isinstance(x, (int, Fraction)) else show(x)


def seconds_text(s) -> str:
    """1.50 ms, 12.0 us, 143 us, 2.35 s: three significant figures."""
    for unit, size in (("s", 1), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if s >= size or unit == "ns":
            v = float(s) / size
            return f"{v:.{2 if v < 10 else 1 if v < 100 else 0}f} {unit}"


def columns(a: Analysis, traffic: bool) -> tuple[str, ...]:
    return (TRAFFIC_COLUMNS if traffic else ()) + (LATENCY_COLUMNS if a.device else ())


def cells(a: Analysis, r: Row, traffic: bool) -> list[str]:
    out = [number(r.input_bytes + r.weight_bytes), number(r.output_bytes),
           ratio_text(r.intensity)] if traffic else []
    return out + ([seconds_text(r.latency_s), r.bound] if a.device else [])


def total_lines(a: Analysis, traffic: bool) -> list[tuple[str, str]]:
    t, lines = a.totals, []
    if traffic:
        read = t["input_bytes"] + t["weight_bytes"]
        lines += [("bytes read (inputs + weights)", f"{number(t['input_bytes'])} + "
                   f"{number(t['weight_bytes'])} = {megabytes(read)}"),
                  ("bytes written (outputs)", megabytes(t["output_bytes"])),
                  ("MACs per byte", ratio_text(intensity(t["macs"], t["traffic_bytes"])))]
    if a.device:
        name = a.device.name or "the device"
        lines.append(("latency estimate", f"{seconds_text(t['latency_s'])} for {a.batch:,} "
                      f"image{'s' if a.batch != 1 else ''} on {name}"))
    return lines


def megabytes(x) -> str:
    return f"{x:,} bytes ({x / 1e6:,.2f} MB)" if is_int(x) else show(x)


def legend(a: Analysis, traffic: bool) -> tuple[str, ...]:
    out = ()
    if traffic or a.device:
        out += (f"traffic: bytes read (each input once, every weight, bias and BatchNorm "
                f"statistic once) and written (the output once) per image at {a.dtype}, layer "
                "by layer as if nothing were fused; views (flatten, identity, dropout) and the "
                "input move nothing; MACs/B = MACs per byte; MB = 10^6 bytes",)
    if a.device:
        d = a.device
        out += (f"latency: roofline on '{d.name}' ({d.source or 'no source given'}): per layer "
                f"overhead {seconds_text(d.overhead_s)} + max(n*MACs / (peak "
                f"{float(d.peak_macs_per_s):.3g} MAC/s x efficiency), (n*(read + written "
                f"activations) + weights) / {float(d.bandwidth_bytes_per_s):.3g} B/s)"
                + (f" + {float(1 - d.overlap):.3g} x the smaller of the two (overlap "
                   f"{float(d.overlap):.3g})" if d.overlap != 1 else "")
                + f", n = {a.batch:,} images; bound names the largest term",)
    return out


def json_number(x):
    """An int as it is, an exact ratio as a float, a formula as its text, None as null."""
    if x is None or is_int(x) or isinstance(x, str):
        return x
    return float(x) if isinstance(x, Fraction) else show(x)


def layer_fields(a: Analysis, r: Row) -> dict:
    keys = TRAFFIC_FIELDS + (LATENCY_FIELDS if a.device else ())
    return {k: json_number(getattr(r, k)) for k in keys}


def document_fields(a: Analysis) -> dict:
    out = {"dtype": a.dtype}
    if a.device:
        out |= {"device": a.device.document(), "batch": a.batch}
    return out


def csv_fields(a: Analysis) -> tuple[str, ...]:
    return TRAFFIC_FIELDS + (LATENCY_FIELDS if a.device else ())


def csv_cells(a: Analysis, r: Row) -> list[str]:
    return ["" if v is None else str(v) if isinstance(v, (str, int, float)) else show(v)
            for v in layer_fields(a, r).values()]


def profile_lines(a: Analysis, measured: dict, total_s: float) -> list[str]:
    """Per layer the measured seconds (`measured`, layer -> s) against the estimate of `a`
    (an analysis with a device), and the ratio measured / predicted. A layer the executor
    folded into the one before shows its time there."""
    from tabulate import tabulate
    rows = [(r.name, r.kind, seconds_text(measured.get(r.name, 0)), seconds_text(r.latency_s),
             f"{measured.get(r.name, 0) / float(r.latency_s):.2f}", r.bound) for r in a.rows]
    predicted = float(a.totals["latency_s"])
    table = tabulate(rows, ("layer", "kind", "measured", "predicted", "ratio", "bound"),
                     tablefmt="simple", disable_numparse=True,
                     colalign=("left", "left", "right", "right", "right", "left"))
    return [f"profile against '{a.device.name}' (batch {a.batch:,}):", table,
            f"pass: measured {seconds_text(total_s)}, predicted {seconds_text(predicted)}, "
            f"ratio {total_s / predicted:.2f}"]
