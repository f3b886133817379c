"""The network as a value: its layers (a graph), its symbols, and what came with it.

`Network` is what every stage reads: `lang.build` and `onnx.importer` make one, the analysis,
the executor, the exporter and the reports take one. It is frozen; a variant (another freeze
point, a part of the graph) is a new Network, never an edit of this one."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import networkx as nx

from .errors import SpecError, Span, did_you_mean


@dataclass(frozen=True)
class Layer:
    name: str                 # qualified: 'i3a.b1'
    op: object                # a kind's instance (archcalc.kinds), its hyperparameters bound
    inputs: tuple[str, ...]
    span: Span
    trace: tuple[str, ...] = ()  # the block instantiations that led here, innermost first

    @property
    def kind(self) -> str:
        return self.op.kind


@dataclass(frozen=True)
class Symbol:
    name: str
    default: int | None
    span: Span


@dataclass(frozen=True)
class Shared:
    """Numbers that several layers read (an imported model's tied tensors): shown in each
    reader's row, counted once in the totals."""
    params: int = 0
    state: int = 0


@dataclass(frozen=True)
class Network:
    name: str
    file: str
    symbols: tuple[Symbol, ...]
    graph: nx.DiGraph = field(repr=False)  # node -> {"layer": Layer}; insertion order is topological
    freeze: str | None = None              # the last frozen layer (it and all it reads are frozen)
    weights: Mapping | None = field(default=None, repr=False)  # imported {layer: {key: array}}
    shared: Shared = Shared()
    layout: Mapping | None = field(default=None, repr=False)   # an imported model's own layout:
    # {"inputs": {layer: {"tensor", "layout"}}, "outputs": {layer: {"tensor", "rank", "perm"}}}
    notes: tuple[str, ...] = ()            # what the import notes about the model (analysis notes)

    def layer(self, name: str) -> Layer:
        return self.graph.nodes[name]["layer"]

    @property
    def layers(self) -> tuple[Layer, ...]:
        return tuple(self.graph.nodes[n]["layer"] for n in self.graph.nodes)

    def __contains__(self, name) -> bool:
        return name in self.graph

    def with_(self, **changes) -> "Network":
        return replace(self, **changes)

    def freeze_point(self, name: str) -> str:
        """The layer that `--freeze name` freezes through: a layer is itself; a block (the
        dotted prefix of its layers' names: 'layer3') is its last layer, so the whole block and
        everything it reads freeze. Unknown: a SpecError with the closest layer or block."""
        if name in self.graph:
            return name
        inside = [n for n in self.graph if n.startswith(name + ".")]
        if inside:
            return inside[-1]  # insertion order is topological: the block's output
        blocks = {n.rsplit(".", i)[0] for n in self.graph for i in range(1, n.count(".") + 1)}
        hint = did_you_mean(name, blocks | set(self.graph))
        count = len(self.graph)
        listed = f"layers: {', '.join(self.graph)}" if count <= 20 else \
            f"{count:,} layers; 'archcalc analyze' lists their names"
        raise SpecError(f"cannot freeze through unknown layer or block '{name}'", None,
                        (hint or listed,))
