"""The base of every layer kind: shapes, costs, the Op class and hyperparameter declarations."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple


from ..sizes import (product, show, total)


class Shape(NamedTuple):
    n_H: object
    n_W: object
    n_C: object

    def __str__(self):
        return f"({show(self.n_H)}, {show(self.n_W)}, {show(self.n_C)})"


class Cost(NamedTuple):
    weights: object = 0  # learnable
    fixed: object = 0    # constant parameters, never trained
    state: object = 0    # BatchNorm running statistics
    macs: object = 0
    other: object = 0
    attention_macs: object = 0  # of macs: activation-activation products (attention's QK^T, AV)


class Traffic(NamedTuple):
    """Elements a layer moves through memory, once per image: inputs and weights it reads,
    the output it writes. The analysis multiplies them by the dtype's bytes."""
    inputs: object = 0
    weights: object = 0
    outputs: object = 0


class Out(NamedTuple):
    shape: Shape
    notes: tuple = ()


def arg(kind: str, default=None, positional: int | None = None, required=False):
    """Declares a hyperparameter: its value kind, default and positional slot."""
    return field(default=default, metadata={"kind": kind, "pos": positional, "required": required})


def elements(x: Shape):
    return product(x.n_H, x.n_W, x.n_C)


@dataclass(frozen=True)
class Op:
    kind: ClassVar[str] = ""
    arity: ClassVar[tuple] = (1, 1)      # (fewest, most) inputs; None: no upper bound
    global_view: ClassVar[bool] = False  # output sees the whole input (receptive field 'global')
    weighted: ClassVar[bool] = False     # a layer with weights, counted in a network's depth
    # Traits: what the rest of the package asks of a kind, instead of lists of kind names.
    network_input: ClassVar[bool] = False    # the network's input: its array is fed from outside
    join: ClassVar[bool] = False             # merges branches (a residual add, an Inception concat)
    rectifier: ClassVar[bool] = False        # max(0, x) or a variant: He init for the layer before
    keeps_sign: ClassVar[bool] = False       # between a layer and a rectifier, He init still fits
    folds_into_conv: ClassVar[bool] = False  # an affine map per channel, foldable into a conv's W, b
    runs_in_conv: ClassVar[bool] = False     # max(0, x): the conv before can apply it to each tile
    size_from_last: ClassVar[bool] = False   # a second input gives only its size (a crop's target)
    view: ClassVar[bool] = False             # passes its input on unchanged or reshaped: moves no bytes

    def out(self, ins: tuple[Shape, ...], strict: bool = False) -> Out:
        return Out(ins[0])

    def cost(self, ins: tuple[Shape, ...], out: Shape) -> Cost:
        return Cost()

    def traffic(self, ins: tuple[Shape, ...], out: Shape, cost: Cost) -> Traffic:
        """Each input read once, every weight, bias and state number read once, the output
        written once. A view and the network's input (fed from outside) move nothing."""
        if self.view or self.network_input:
            return Traffic()
        return Traffic(total(elements(x) for x in ins), cost.weights + cost.fixed + cost.state,
                       elements(out))

    def family(self, ins: tuple[Shape, ...]) -> str:
        """The kernel family whose measured efficiency a latency estimate applies to its
        MACs (analysis.latency.FAMILIES)."""
        return "elementwise"

    def weights(self, ins: tuple[Shape, ...]) -> dict[str, tuple]:
        """The arrays the layer reads, key -> shape: together they hold its params and state."""
        return {}

    def takes_fusion(self) -> bool:
        """Whether a layer that folds into a conv (BatchNorm) may fold into this one; by
        default also whether a rectifier may run in its kernel (takes_rectifier)."""
        return False

    def takes_rectifier(self) -> bool:
        """Whether a rectifier that runs in a conv (ReLU) may run in this layer's kernel
        instead, over its output while in cache."""
        return self.takes_fusion()

    def sees_all(self, x: Shape | None) -> bool:
        """Whether each output sees the whole input `x` (the receptive field is 'all')."""
        return self.global_view

    def window(self, x: Shape | None = None):
        """(effective f, s) for windowed kinds, for the receptive field; None otherwise."""
        return None
