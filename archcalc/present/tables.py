"""Analysis -> what a user reads: text and markdown tables, CSV rows, and the JSON document.

The JSON schema (version 1) is documented in README.md; numbers are JSON integers where bound
and strings (sympy's printing) where symbolic."""
from __future__ import annotations

import csv
import io
import json
import textwrap

from tabulate import tabulate

from ..analysis.analyzer import Analysis, Row
from ..sizes import is_int, show
from . import traffic as moved

SCHEMA_VERSION = 1
LEGEND = (
    "params: learnable weights and biases (BatchNorm gamma and beta: 2 per channel); "
    "fixed parameters that are never trained count as frozen; BatchNorm running mean and "
    "variance are state, shown apart",
    "MACs: multiply-accumulates of conv and fc layers, bias excluded; FLOPs = 2 x MACs",
    "other ops: bias adds, activations, pooling, BatchNorm, LRN, residual adds and softmax, "
    "never folded into MACs",
    "activations: output elements per image; peak: largest sum of live activations over the "
    "layer order; bytes at float32; MB = 10^6 bytes",
    "RF: receptive field size and effective stride in input pixels; 'all' sees the whole input",
)
# shown only for a network with attention, so other networks' tables stay as they were
ATTENTION_LEGEND = (
    "attention: its MACs are the Q/K/V and output projections and the two activation-"
    "activation products QK^T and AV, shown apart as 'of which attention products' (tools that "
    "count only layers with weights skip them); softmax, the 1/sqrt(d_h) scaling and the bias "
    "adds are other ops")
COLUMNS = ("layer", "kind", "input", "output", "params", "MACs", "other ops", "activations", "RF")


def number(x) -> str:
    """Thousands separators for integers; sympy's printing for expressions."""
    return f"{x:,}" if is_int(x) else show(x)


def scaled(x) -> str:
    """138,357,544 (138.36 M): K, M, G are powers of 1000."""
    if not is_int(x):
        return show(x)
    if abs(x) >= 10**18:  # past exa, a scale word no longer helps: scientific notation
        return f"{x:,} ({x:.3e})"
    for unit, size in (("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(x) >= size:
            return f"{x:,} ({x / size:.2f} {unit})"
    return f"{x:,}"


def shape_text(shape) -> str:
    return " x ".join(show(v) for v in shape)


def rf_text(rf) -> str:
    return "all" if rf is None else f"{show(rf[0])} / {show(rf[1])}"


def layer_cells(r: Row) -> list[str]:
    params = number(r.params) + (" (frozen)" if r.frozen_params != 0 and r.trainable_params == 0 else "")
    ins = ", ".join(shape_text(s) for s in r.in_shapes) or "-"
    return [r.name, r.kind, ins, shape_text(r.out_shape), params, number(r.macs),
            number(r.other_ops), number(r.activations), rf_text(r.receptive_field)]


def total_lines(a: Analysis) -> list[tuple[str, str]]:
    t = a.totals
    lines = [
        ("params", scaled(t["params"])),
        ("trainable params", scaled(t["trainable_params"])),
        ("frozen params", scaled(t["frozen_params"])),
        ("BatchNorm state", scaled(t["state"])),
        ("MACs", scaled(t["macs"])),
        *attention_lines(a),
        ("FLOPs (2 x MACs)", scaled(t["flops"])),
        ("other ops", scaled(t["other_ops"])),
        ("activations", scaled(t["activations"])),
        ("peak live activations", scaled(t["peak_activations"])),
    ]
    if is_int(t["peak_activations"]):
        lines.append(("peak activation memory", f"{t['peak_activations'] * 4 / 1e6:,.2f} MB at float32"))
    if a.freeze:
        lines += freeze_lines(a)
    return lines


def has_attention(a: Analysis) -> bool:
    return any(r.attention_macs != 0 for r in a.rows)


def attention_lines(a: Analysis) -> list[tuple[str, str]]:
    return [("of which attention products", f"{scaled(a.attention_macs)} (QK^T and AV)")] \
        if has_attention(a) else []


def legend(a: Analysis) -> tuple[str, ...]:
    return LEGEND + ((ATTENTION_LEGEND,) if has_attention(a) else ())


def freeze_lines(a: Analysis) -> list[tuple[str, str]]:
    from ..analysis.costs import BYTES, training
    feature = a.row(a.freeze)
    return [("frozen through", a.freeze),
            ("training MACs per image", f"{scaled(training(a).macs_per_image)} "
                                        "(forward all + 2 x forward of trainable layers)"),
            ("cached feature per image", f"{shape_text(feature.out_shape)} = "
                                         f"{number(feature.activations * BYTES)} bytes at float32")]


def heading(a: Analysis) -> str:
    bound = ", ".join(f"{k}={'free' if v is None else v}" for k, v in a.symbols.items())
    return f"{a.network} ({a.file})" + (f"  [{bound}]" if bound else "")


def table(a: Analysis, traffic: bool, tablefmt: str) -> str:
    """The per-layer table; memory traffic columns with `traffic`, latency with a device."""
    extra = moved.columns(a, traffic)
    return tabulate([layer_cells(r) + moved.cells(a, r, traffic) for r in a.rows],
                    COLUMNS + extra, tablefmt=tablefmt, disable_numparse=True,
                    colalign=_align() + ("right",) * len(extra))


def text(a: Analysis, traffic: bool = False) -> str:
    out = [heading(a), "", table(a, traffic, "simple"), ""]
    out += tabulate(total_lines(a) + moved.total_lines(a, traffic), tablefmt="plain",
                    disable_numparse=True).splitlines()
    out += ["", "notes:"] + [f"  {n}" for n in a.notes] if a.notes else []
    out += ["", "conventions:"]
    for c in legend(a) + moved.legend(a, traffic):
        out += textwrap.wrap(c, 96, initial_indent="  ", subsequent_indent="    ")
    return "\n".join(out) + "\n"


def markdown(a: Analysis, traffic: bool = False) -> str:
    out = [f"## {heading(a)}", "", table(a, traffic, "github"), "",
           tabulate(total_lines(a) + moved.total_lines(a, traffic), ("total", "value"),
                    tablefmt="github", disable_numparse=True, colalign=("left", "right")), ""]
    if a.notes:
        out += ["Notes:", ""] + [f"- {n}" for n in a.notes] + [""]
    out += ["Conventions:", ""] + [f"- {c}" for c in legend(a) + moved.legend(a, traffic)]
    return "\n".join(out) + "\n"


def _align():
    return ("left", "left", "right", "right", "right", "right", "right", "right", "right")


def value(x):
    return x if is_int(x) else show(x)


def rf_json(rf):
    return None if rf is None else {"size": value(rf[0]), "stride": value(rf[1])}


def layer_json(a: Analysis, r: Row) -> dict:
    rf = rf_json(r.receptive_field)
    return {
        "name": r.name, "kind": r.kind, "inputs": list(r.inputs),
        "in_shapes": [[value(v) for v in s] for s in r.in_shapes],
        "out_shape": [value(v) for v in r.out_shape],
        "params": value(r.params), "trainable_params": value(r.trainable_params),
        "frozen_params": value(r.frozen_params), "state": value(r.state),
        "macs": value(r.macs), "flops": value(r.flops), "other_ops": value(r.other_ops),
        "activations": value(r.activations), "receptive_field": rf,
    } | moved.layer_fields(a, r)


def document(a: Analysis) -> dict:
    layers = [layer_json(a, r) for r in a.rows]
    totals = {k: moved.json_number(v) if k == "latency_s" else value(v) for k, v in a.totals.items()}
    if has_attention(a):  # only then: other networks' documents stay as they were
        for layer, r in zip(layers, a.rows):
            layer["attention_macs"] = value(r.attention_macs)
        totals["attention_macs"] = value(a.attention_macs)
    return {
        "schema": SCHEMA_VERSION, "network": a.network, "file": a.file,
        "symbols": {k: v for k, v in a.symbols.items()},
        "layers": layers, "totals": totals,
        "notes": list(a.notes), "strict": a.strict, **moved.document_fields(a),
    }


def as_json(a: Analysis, traffic: bool = False) -> str:
    return json.dumps(document(a), indent=2) + "\n"


CSV_FIELDS = ("name", "kind", "inputs", "in_shapes", "out_n_H", "out_n_W", "out_n_C", "params",
              "trainable_params", "frozen_params", "state", "macs", "flops", "other_ops",
              "activations", "rf_size", "rf_stride")


def as_csv(a: Analysis, traffic: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS + moved.csv_fields(a))
    for r in a.rows:
        rf = ("", "") if r.receptive_field is None else tuple(show(v) for v in r.receptive_field)
        writer.writerow([r.name, r.kind, " ".join(r.inputs),
                         " ".join("x".join(show(v) for v in s) for s in r.in_shapes),
                         *(show(v) for v in r.out_shape),
                         *(show(getattr(r, k)) for k in CSV_FIELDS[7:15]), *rf, *moved.csv_cells(a, r)])
    return buffer.getvalue()


FORMATS = {"text": text, "markdown": markdown, "csv": as_csv, "json": as_json}
