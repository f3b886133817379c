"""`archcalc export SPEC -o MODEL.onnx`: the network as an ONNX model (NCHW), checked with
onnx.checker, its weights from the executor's seeded initialisation or an .npz."""
from __future__ import annotations

from ..source import load
from ..onnx.export import export
from . import add_set_option, add_spec_argument, add_weights_option, parse_names, parse_sets, seed_value


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="write the network as an ONNX model (needs the onnx extra)")
    add_spec_argument(p)
    p.add_argument("-o", "--output", metavar="MODEL.onnx", required=True,
                   help="where to write the model")
    add_weights_option(p)
    p.add_argument("--seed", type=seed_value, default=0, help="seed of the random weights")
    add_set_option(p, "bind a free symbol (repeatable); others take their defaults")
    p.add_argument("--fold-bn", action="store_true",
                   help="fold each BatchNorm into the convolution it follows (as PyTorch's eval export)")
    p.add_argument("--free", metavar="NAMES", default="",
                   help="comma-separated symbols left as named dimensions of the model's input")
    p.set_defaults(main=main)


def main(args) -> int:
    net = load(args.spec)
    model = export(net, args.output, weights=args.weights, at=parse_sets(args.set),
                   free=parse_names(args.free),
                   seed=args.seed, fold_bn=args.fold_bn)
    inputs = ", ".join(f"{i.name} ({', '.join(d.dim_param or str(d.dim_value) for d in i.type.tensor_type.shape.dim)})"
                       for i in model.graph.input)
    print(f"wrote {args.output}: {len(model.graph.node)} nodes, opset {model.opset_import[0].version}, "
          f"input {inputs}; checked with onnx.checker")
    return 0
