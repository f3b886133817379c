"""The cut: the frozen part of a network (a layer and every layer it reads) and the trainable
head after it, a chain ending in the classifier fc (made k wide) and an optional softmax; and
the whole network's weights, the classifier's new."""
from __future__ import annotations

from dataclasses import dataclass, replace

import networkx as nx
import numpy as np

from ...errors import SpecError
from ...executor import weights as wts
from ...executor.forward import as_feeds, inferred, plan, weights_for
from ...network import Network
from .head import HEAD_KINDS


@dataclass(frozen=True)
class Split:
    net: Network             # the network, classifier k wide, `through` recorded as its freeze
    through: str
    frozen: tuple            # layer names, in the graph's order
    head: tuple              # trainable layer names after the frozen part, in order
    classifier: str          # the last fc: the new softmax layer
    classes: int


def split(net: Network, through: str, classes: int | None = None) -> Split:
    """The network cut after `through`. `classes`: the classifier's new width (default: as in
    the spec). A SpecError explains a head this module cannot train."""
    graph, through = net.graph, net.freeze_point(through)
    names = list(graph.nodes)
    ancestors = nx.ancestors(graph, through)
    frozen = tuple(n for n in names if n in ancestors or n == through)
    head = tuple(n for n in names if n not in frozen)
    check_chain(net, through, head)
    classifier = check_classifier(net, through, head)
    g = graph.copy()
    width = net.layer(classifier).op.c
    if classes is not None and classes != width:
        if classes < 2:
            raise SpecError(f"a classifier needs at least 2 classes, got {classes}")
        node = net.layer(classifier)
        g.nodes[classifier]["layer"] = replace(node, op=replace(node.op, c=classes))
    k = int(g.nodes[classifier]["layer"].op.c)
    return Split(net.with_(graph=g, freeze=through), through, frozen, head, classifier, k)


def check_chain(net: Network, through: str, head: tuple) -> None:
    """The head's layers are kinds the head can train, each reading the one before it."""
    previous = through
    for name in head:
        node = net.layer(name)
        where = f"{node.kind} '{name}'"
        if node.kind not in HEAD_KINDS:
            raise SpecError(f"{where} follows the frozen part, and only fully connected heads are "
                            f"trained here ({', '.join(HEAD_KINDS)})", node.span,
                            ("freeze through a later layer, e.g. the flatten before the first fc",))
        if node.inputs != (previous,):
            raise SpecError(f"{where} reads {', '.join(node.inputs)}, not the layer before it: the "
                            "layers after the frozen part must form a chain", node.span)
        previous = name


def check_classifier(net: Network, through: str, head: tuple) -> str:
    """The head's last fc, followed by nothing but an optional softmax."""
    def kind(name):
        return net.layer(name).kind

    fcs = [n for n in head if kind(n) == "fc"]
    if not fcs:
        raise SpecError(f"nothing to train after '{through}': the layers after it hold no fc",
                        None, ("freeze through an earlier layer",))
    classifier = fcs[-1]
    after = head[head.index(classifier) + 1:]
    if any(kind(n) != "softmax" for n in after) or \
            any(kind(n) == "softmax" for n in head[:head.index(classifier)]):
        raise SpecError(f"the classifier fc '{classifier}' must be the last layer but an optional "
                        f"softmax; after it: {', '.join(after)}")
    return classifier


def frozen_network(s: Split) -> Network:
    """The frozen part alone, a network whose output is `through`, its layers in the graph's
    order (analyze and run expect a topological order; a networkx subgraph view can iterate a
    set instead, so the head is removed from a copy)."""
    g = s.net.graph.copy()
    g.remove_nodes_from(s.head)
    return s.net.with_(graph=g, freeze=None)


def bindings(net: Network, images) -> dict:
    """Symbols fixed by the images' size (H, W of an ImageNet spec), for the executor."""
    return inferred(net, as_feeds(net, np.asarray(images[:1])), {})


def network_weights(s: Split, weights=None, seed=0, at=None) -> dict:
    """{layer: {key: float32 array}} for the whole (k-wide) network: seeded initialisation,
    overlaid with `weights` (as `executor.weights.given` takes them) for every layer but the
    classifier, which is new."""
    the_plan = plan(s.net, at or {})
    params = weights_for(the_plan, None, seed, np.float32)
    if weights is None:
        return params
    expected = {k: v for k, v in the_plan.weight_shapes.items() if v and k != s.classifier}
    # each array's shape checked against the layout before it is read (a file's header
    # first); the old classifier's arrays, whatever their shape, are dropped unread
    shapes = {wts.key(layer, name): shape for layer, arrays in expected.items()
              for name, shape in arrays.items()}
    flat, source = wts.given(weights, shapes)
    kept = {k: v for k, v in flat.items() if not k.startswith(s.classifier + "/")}
    params.update(wts.fit(kept, expected, s.net.graph, np.float32, source))
    return params
