"""What the import notes about a model it reads: BatchNorm that the exporter folded away.

torch.onnx in eval mode (its default) folds each BatchNorm into the conv before it: the conv
gets a bias and no BatchNormalization node is left, so the model holds fewer params than the
source: per channel, BatchNorm's gamma and beta (2) become the conv's bias (1), or are added to
a bias it had (2). Nothing in the model says whether the source had a BatchNorm there (VGG's
convs have a bias and no BatchNorm), so the note is a conditional, written when the model is
PyTorch's (`producer_name`), has no BatchNormalization node, and has convs with a bias whose
output feeds an activation directly (where a conv + BatchNorm + activation would stand).
"""
from __future__ import annotations

ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu", "Sigmoid",
               "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Mish", "ThresholdedRelu")


def folded_batchnorm(model) -> str | None:
    g = model.graph
    if model.producer_name != "pytorch" or any(n.op_type == "BatchNormalization" for n in g.node):
        return None
    dims = {t.name: list(t.dims) for t in g.initializer}
    readers: dict = {}
    for node in g.node:
        for name in node.input:
            readers.setdefault(name, []).append(node.op_type)
    widths = [dims[n.input[1]][0] for n in g.node
              if n.op_type == "Conv" and len(n.input) > 2 and n.input[2] and n.input[1] in dims
              and any(op in ACTIVATIONS for op in readers.get(n.output[0], ()))]
    if not widths:
        return None
    c = sum(widths)
    return (f"BatchNorm folded by the exporter?: this PyTorch export has no BatchNormalization "
            f"node, and {len(widths)} conv(s) with a bias feed an activation directly ({c:,} "
            "channels), as torch.onnx writes conv + BatchNorm + activation in eval mode; if the "
            f"source model had BatchNorm there, the params here are {c:,} fewer than its count "
            f"(its gamma; beta became the conv's bias), {2 * c:,} fewer if its convs had a bias "
            "too, more if other convs had BatchNorm as well")
