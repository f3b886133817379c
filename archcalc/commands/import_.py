"""`archcalc import MODEL.onnx`: an ONNX model as a readable spec (blocks where the model
repeats itself), and optionally its weights as an .npz keyed by the spec's layer names."""
from __future__ import annotations

import sys
from pathlib import Path

from ..analysis.analyzer import analyze
from ..executor import weights as wts
from ..errors import SpecError
from ..onnx.importer import load_onnx
from ..lang.write import write


def add_parser(sub) -> None:
    p = sub.add_parser("import", help="write an ONNX model as a spec (needs the onnx extra)")
    p.add_argument("model", help="an .onnx file")
    p.add_argument("-o", "--output", metavar="SPEC.arch", help="where to write the spec (default: stdout)")
    p.add_argument("--save-weights", metavar="FILE.npz",
                   help="the model's weights, keyed by the spec's layer names, for `run --weights`")
    p.set_defaults(main=main)


def main(args) -> int:
    net = load_onnx(args.model)
    header = [f"Imported from {Path(args.model).name} by `archcalc import`."]
    analysis = analyze(net) if not any(s.default is None for s in net.symbols) else None
    if analysis is not None:
        header.append(f"params {analysis.totals['params']:,} (BatchNorm running statistics: "
                      f"{analysis.totals['state']:,} more, as state), MACs {analysis.totals['macs']:,}")
    else:
        free = ", ".join(s.name for s in net.symbols if s.default is None)
        header.append(f"free sizes: {free} (bind them with --set to count)")
    if net.shared.params:
        header.append(f"{net.shared.params:,} parameters are read by several layers of "
                      "the model: counted once there, once per layer in this spec")
    widths = {r.name: r.in_shapes[0].n_C for r in (analysis or analyze(net)).rows if r.in_shapes}
    text, renamed = write(net, header, widths)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise SpecError(f"cannot write spec '{args.output}': {e.strerror or e}") from None
    else:
        sys.stdout.write(text)
    if args.save_weights:
        wts.save(args.save_weights, {renamed[k]: v for k, v in net.weights.items()})
    if args.output:
        print(f"wrote {args.output}: {len(net.graph)} layers" +
              (f", weights {args.save_weights}" if args.save_weights else ""))
    return 0
