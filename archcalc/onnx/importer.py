"""ONNX -> Network: the same value `lang.build` makes from a spec, so `analyze`,
the reports and the executor work on it unchanged.

What a model's tensors become:
- a graph input (N, C, H, W) is an `input` layer of shape (H, W, C); the batch N is dropped
  (a layer's figures are per image) and a named dimension ('height') becomes a free symbol.
  An input (N, H, W, C) that goes straight into a Transpose to NCHW (TensorFlow's exports) is
  taken as it is; a 2-D input (N, n) is the vector (1, 1, n);
- each operator node becomes zero, one or a few layers, by the operator tables: `handlers`
  (HANDLERS, with `reshapes`) for nodes on activations, `functions` (ARCHCALC) for archcalc's
  own domain; constant sub-graphs are folded by `fold` (FOLD) before any layer is matched,
  and the shape arithmetic exporters compute from `Shape(x)` (around Reshape, 'same' padding)
  as soon as x's shape is known, so a reshape by `x.size(0), -1` is read as what it is: a
  flatten. A node it cannot read poisons what it makes, and the import goes on, so that one
  error (`diagnose`) names every node at fault;
- the initializers a layer uses become its weights, in the executor's layouts (NHWC kernels
  (f, f, n_C_prev/groups, n_C), fc (n_in, n_out)), kept in `Network.weights`.

The model's own layout is kept for `archcalc run`: `Network.layout` says how each input
and output is laid out (NCHW, NHWC or a vector, and the order of a flattened map's elements:
PyTorch flattens (C, H, W), archcalc (H, W, C), so an fc reading a flattened map gets its
weight rows reordered, and an output vector is reordered back); `layout.model_input` and
`layout.model_output` convert arrays with it.

Counting: params are the weights and biases the layers use; BatchNorm's running statistics
are state. A tensor that several layers read is counted once in the totals (each of those
layers still shows it in its own row); `Network.shared` holds how many numbers.

Why this module is long: the Importer is one pass over the model whose state (tensors,
constants, names, weights, layout) every step reads; the operator tables live apart.
"""
from __future__ import annotations

import re
from pathlib import Path

import networkx as nx
import numpy as np
import sympy

from .. import kinds
from ..errors import RuleError, Span, SpecError
from ..network import Layer, Network, Shared, Symbol
from ..sizes import is_int, product, ratio, show, symbol
from . import channels_last
from .check import check_model
from .common import Dynamic, ModelWeights, Tensor, Unsupported, clean_name, escaped, need_onnx, \
    symbol_name
from .diagnose import constant_as_data, dynamic, failure, shape_paths
from .fold import FOLD, SIZES, fold_node
from .functions import ARCHCALC
from .handlers import HANDLERS
from .notes import folded_batchnorm

MAX_TEXT = 160  # the node description shown under an error


def load_onnx(path) -> Network:
    onnx = need_onnx()
    path = Path(path)
    try:  # external data is read only once check_model has seen its files are long enough
        model = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise SpecError(f"cannot read model '{escaped(path)}': no such file") from None
    except OSError as e:
        raise SpecError(f"cannot read model '{escaped(path)}': {e.strerror or e}") from None
    except Exception as e:  # protobuf's DecodeError and friends
        raise SpecError(escaped(f"'{path}' is not a readable ONNX model: {e}")) from None
    check_model(onnx, model, str(path), path.parent)
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    except Exception as e:  # a missing file, a location outside the model's folder
        raise SpecError(f"cannot read the external data of model '{escaped(path)}': {escaped(e)}") from None
    return from_model(model, str(path))


def from_model(model, file: str = "<onnx>") -> Network:
    """An onnx.ModelProto -> Network (with the model's weights and layout)."""
    check_model(need_onnx(), model, file)
    return Importer(model, file).run()


# ---------------------------------------------------------------- which table reads a node

def known(node) -> bool:
    if node.domain == "archcalc":
        return node.op_type in ARCHCALC
    return node.domain in ("", "ai.onnx") and (node.op_type in HANDLERS or node.op_type in FOLD)


def supported() -> str:
    """The operators read as layers, then those evaluated on constants and shapes only."""
    return (", ".join(sorted(HANDLERS)) + "; on constants and shapes only: " +
            ", ".join(sorted(set(FOLD) - set(HANDLERS))))


def translate(ctx, node):
    """Fold a node on constants (and `Shape`, whose value the analysis knows); hand one on
    activations to its handler."""
    if node.domain == "archcalc":
        channels_last.check(ctx, node)
        return ARCHCALC[node.op_type](ctx, node)
    op = node.op_type
    if op in FOLD and (op in SIZES or all(ctx.is_const(n) for n in node.input)):
        return fold_node(ctx, node)
    if op not in HANDLERS:
        raise Unsupported(f"{op} on activations (archcalc evaluates it only on constants, such "
                          "as the shape arithmetic around a Reshape)")
    channels_last.check(ctx, node)
    return HANDLERS[op](ctx, node)


# ---------------------------------------------------------------- the importer

class Importer:
    def __init__(self, model, file):
        self.onnx = need_onnx()
        self.model, self.file, self.g = model, file, model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.consts: dict = {}     # tensor name -> np.ndarray (object arrays for symbolic shapes)
        self.initializers = {t.name for t in model.graph.initializer}
        self.origins: dict = {}    # folded constant -> the initializers it comes from
        self.tensors: dict = {}    # tensor name -> Tensor
        self.layers: list = []     # Layer, in order
        self.shapes: dict = {}     # layer -> kinds.Shape
        self.weights: dict = {}    # layer -> {key: array}
        self.names: set = set()
        self.users: dict = {}      # initializer -> first layer whose weights hold it
        self.shared = {"params": 0, "state": 0}  # numbers an earlier layer counts already
        self.errors: list = []     # (node index, or -1 for the model's inputs; the reason)
        self.poisoned: set = set()
        self.done: set = set()     # node indices consumed by a pattern of an earlier node
        self.symbols: list = []
        self.layout: dict = {"inputs": {}, "outputs": {}, "tensors": {}}
        self.batch = None
        self.consumers: dict = {}
        for node in self.g.node:
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
        self.index = {id(node): i for i, node in enumerate(self.g.node)}
        self.node = None

    # ------------------------------------------------------------ driving

    def run(self) -> Network:
        for t in self.g.initializer:
            self.consts[t.name] = self.onnx.numpy_helper.to_array(t)
        for t in getattr(self.g, "sparse_initializer", ()):
            self.errors.append((-1, f"sparse initializer '{t.values.name}': sparse tensors are not supported"))
        defaults = self.defaults()
        for value in self.g.input:
            if value.name not in self.consts:
                self.graph_input(value, defaults)
        # every node is looked at, whatever fails first, so that one error names them all
        unknown = [(i, n) for i, n in enumerate(self.g.node) if not known(n)]
        for i, node in unknown:
            self.done.add(i)
            self.poisoned.update(node.output)
        for i, node in enumerate(self.g.node):  # constants first: patterns may look ahead
            if node.op_type in FOLD and i not in self.done and node.domain in ("", "ai.onnx") and \
                    all(self.is_const(n) for n in node.input):
                self.step(i, node, fold_node)
                self.done.add(i)
        unchecked = 0
        for i, node in enumerate(self.g.node):
            if i in self.done:
                continue
            if any(n in self.poisoned for n in node.input if n):
                self.poisoned.update(node.output)
                unchecked += 1
                continue
            self.step(i, node, translate)
        if unknown or self.errors:
            raise failure(self, unknown, self.errors, unchecked, supported())
        return self.finish()

    def step(self, i, node, action):
        """Read one node; a node it cannot read is listed, and what it makes is unknown."""
        self.node = node
        try:
            action(self, node)
        except Dynamic as e:
            self.errors.append((i, f"{self.where(node, i)}: {dynamic(self, node, e, shape_paths(self.g))}"))
            self.poisoned.update(node.output)
        except Unsupported as e:
            self.errors.append((i, f"{self.where(node, i)}: {e}"))
            self.poisoned.update(node.output)
        except SpecError:
            raise
        except Exception as e:  # a malformed node (an attribute missing, a wrong rank)
            self.errors.append((i, f"{self.where(node, i)}: {node.op_type} cannot be read "
                                   f"({type(e).__name__}: {e})"))
            self.poisoned.update(node.output)

    def where(self, node, i=None) -> str:
        i = self.index[id(node)] if i is None else i
        return f"node {i} '{escaped(node.name)}'" if node.name else f"node {i}"

    def defaults(self) -> dict:
        """Defaults of free sizes that archcalc's own export records ('H=224,W=224')."""
        out = {}
        for prop in self.model.metadata_props:
            if prop.key == "archcalc.defaults":
                for pair in prop.value.split(","):
                    name, _, value = pair.partition("=")
                    if value.strip().isdigit():
                        out[name.strip()] = int(value)
        return out

    # ------------------------------------------------------------ inputs and outputs

    def graph_input(self, value, defaults):
        t = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
        if t.elem_type not in (1, 10, 11, 16):  # float, float16, double, bfloat16
            self.errors.append((-1, f"input '{value.name}': archcalc reads real-valued images, not "
                                    f"{self.onnx.TensorProto.DataType.Name(t.elem_type)}"))
            self.poisoned.add(value.name)
            return
        readers = self.consumers.get(value.name, [])
        nhwc = len(dims) == 4 and len(readers) == 1 and readers[0].op_type == "Transpose" and \
            list(self.attrs(readers[0]).get("perm", [])) == [0, 3, 1, 2]
        if len(dims) == 4:
            c, h, w = (dims[3], dims[1], dims[2]) if nhwc else (dims[1], dims[2], dims[3])
        elif len(dims) == 2:
            c, h, w = dims[1], 1, 1
        else:
            self.errors.append((-1, f"input '{value.name}': rank {len(dims)}; archcalc reads images "
                                    "(N, C, H, W) or vectors (N, n)"))
            self.poisoned.add(value.name)
            return
        name = self.unique(clean_name(value.name) or "input")
        span = self.span_of(f"input '{value.name}': {self.shape_text(dims)}", 0)
        if not is_int(c):
            self.errors.append((-1, f"input '{value.name}': the channel count {c or '?'} must be a number"))
            self.poisoned.add(value.name)
            return
        sizes = []
        for letter, d in (("H", h), ("W", w)):
            sizes.append(d if is_int(d) and d > 0 else self.new_symbol(d or f"{letter}_{name}", defaults, span))
        batch = dims[0]
        self.batch = batch if is_int(batch) and batch > 0 else sympy.Symbol("N", integer=True, positive=True)
        op = kinds.Input(shape=(sizes[0], sizes[1], c))
        self.add(Layer(name, op, (), span), op.out(()).shape)
        rank = 4 if len(dims) == 4 else 2
        self.tensors[value.name] = Tensor(name, rank)
        layout = "vector" if rank == 2 else ("NHWC" if nhwc else "NCHW")
        self.layout["inputs"][name] = {"tensor": value.name, "layout": layout}
        if nhwc:
            self.tensors[readers[0].output[0]] = Tensor(name, 4)
            self.done.add(self.index[id(readers[0])])

    def new_symbol(self, text, defaults, span):
        taken = {s.name for s in self.symbols}
        existing = next((s for s in self.symbols if s.name == symbol_name(text, ())), None)
        if existing is not None:  # two inputs naming the same dimension share the symbol
            return symbol(existing.name)
        name = symbol_name(text, taken)
        self.symbols.append(Symbol(name, defaults.get(name), span))
        return symbol(name)

    def finish(self) -> Network:
        outputs = []
        for value in self.g.output:
            t = self.tensors.get(value.name)
            if t is None:
                continue  # a constant output: nothing to analyse
            outputs.append((value.name, t))
        if not self.layers or len(self.layers) == len(self.layout["inputs"]):
            raise SpecError(f"{escaped(self.file)}: the model has no layers to analyse")
        # the model's first output last, so that the executor's result is that output
        if outputs:
            last = outputs[0][1].layer
            readers = {i for layer in self.layers for i in layer.inputs}
            if last not in readers:
                self.layers = [l for l in self.layers if l.name != last] + \
                              [l for l in self.layers if l.name == last]
        graph = nx.DiGraph()
        for layer in self.layers:
            graph.add_node(layer.name, layer=layer)
            for source in layer.inputs:
                graph.add_edge(source, layer.name)
        for name, t in outputs:
            self.layout["outputs"][t.layer] = {"tensor": name, "rank": t.rank, "perm": t.perm} | \
                ({"last": True} if t.last else {})
        return Network(self.network_name(), self.file, tuple(self.symbols), graph,
                       weights=ModelWeights(self.weights), shared=Shared(**self.shared),
                       layout=self.layout, notes=tuple(filter(None, [folded_batchnorm(self.model)])))

    def network_name(self) -> str:
        text = self.g.name
        if not text or text in ("main_graph", "torch_jit", "torch-jit-export", "tf2onnx"):
            text = Path(self.file).stem  # exporters' default names say nothing
        name = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "Model"
        return name if not name[0].isdigit() else "M" + name

    # ------------------------------------------------------------ what handlers use

    def attrs(self, node) -> dict:
        get = self.onnx.helper.get_attribute_value
        out = {}
        for a in node.attribute:
            v = get(a)
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            out[a.name] = v
        return out

    def const(self, name):
        """The constant value of a tensor, or None for an activation or an absent input."""
        if not name:
            return None
        return self.consts.get(name)

    def is_const(self, name) -> bool:
        return not name or name in self.consts

    def weight(self, node, position, what) -> np.ndarray | None:
        """A weight input as float32, or None if absent; an activation there is unsupported."""
        if len(node.input) <= position or not node.input[position]:
            return None
        name = node.input[position]
        a = self.consts.get(name)
        if a is None:
            raise Unsupported(f"{node.op_type} whose {what} '{name}' is computed, not a constant")
        if a.dtype == object or a.dtype.kind not in "fiu":
            raise Unsupported(f"{node.op_type} whose {what} '{name}' is {a.dtype}")
        return np.asarray(a, dtype=np.float32)

    def tensor(self, name) -> Tensor:
        t = self.tensors.get(name)
        if t is None and name in self.consts:
            raise Unsupported(constant_as_data(self, self.node, name))
        if t is None:
            raise Unsupported(f"input '{name}' is neither an activation nor a constant")
        return t

    def shape(self, t: Tensor) -> kinds.Shape:
        return self.shapes[t.layer]

    def dims(self, t: Tensor) -> list:
        """The model's dimensions of an activation: [N, C, H, W], [N, H, W, C] (channels-last),
        [N, n], tokens [N, T, d] or radix splits [N, r, C/r, H, W]."""
        s = self.shape(t)
        if t.rank == 3:  # p*p sequences of a map cut into p x p patches (MobileViT), or tokens
            P = t.patch * t.patch
            return [product(self.batch, P), ratio(product(s.n_H, s.n_W), P), s.n_C]
        if t.rank == 2:
            return [self.batch, product(s.n_H, s.n_W, s.n_C)]
        if t.last:
            return [self.batch, s.n_H, s.n_W, s.n_C]
        if t.rank == 5:
            return [self.batch, t.splits, ratio(s.n_C, t.splits), s.n_H, s.n_W]
        return [self.batch, s.n_C, s.n_H, s.n_W]

    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        return name

    def name_for(self, node, kind, suffix=None) -> str:
        """The node's module path ('features.3.conv.0'), else the kind; a second layer of the
        same node gets '.kind' or '.suffix' after it."""
        base = clean_name(node.name) if node is not None and node.name else ""
        if not base:
            base = kind
        if suffix is not None:
            base = f"{base}.{suffix}"
        elif base in self.names:
            base = f"{base}.{kind}"
        return self.unique(base)

    def span_of(self, text, line) -> Span:
        text = escaped(text)
        text = text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 3] + "..."
        return Span(self.file, line, 1, len(text) + 1, text)

    def node_span(self, node) -> Span:
        i = self.index[id(node)]
        return self.span_of(f"node {i}: {node.op_type} '{node.name}' ({', '.join(node.input)}) -> "
                            f"({', '.join(node.output)})", i + 1)

    def emit(self, node, kind, inputs, rank, weights=None, output=None, perm=None, shared=(),
             state=(), suffix=None, **args) -> Tensor:
        """Add one layer of `kind` for `node`, reading `inputs` (Tensors), with hyperparameters
        `args`, and make it the producer of `output` (the node's first output by default).
        `shared` and `state` name the initializers its params and state came from: one that an
        earlier layer read already counts once in the totals."""
        words = {k: ("on" if v else "off") if isinstance(v, bool) else v for k, v in args.items()}
        try:
            op = kinds.make(kind, [], words)
        except RuleError as e:
            raise Unsupported(f"{node.op_type} as {kind}: {e.message}") from None
        name = self.name_for(node, kind, suffix)
        ins = tuple(self.shapes[t.layer] for t in inputs)
        try:
            shape = op.out(ins).shape
        except RuleError as e:
            detail = "; ".join(e.details)
            raise Unsupported(f"{node.op_type} as {kind}: {e.message}" + (f" ({detail})" if detail else "")) \
                from None
        self.add(Layer(name, op, tuple(t.layer for t in inputs), self.node_span(node)), shape)
        if weights:
            self.weights[name] = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
            for what, sources in (("params", shared), ("state", state)):
                for source in sources:
                    if source in self.users:
                        self.shared[what] += int(self.consts[source].size)
                    else:
                        self.users[source] = name
        last = rank == 4 and bool(inputs) and all(t.last for t in inputs)  # a region goes on
        patch = inputs[0].patch if rank == 3 and inputs and inputs[0].rank == 3 else 1  # per-token layers
        out = Tensor(name, rank, perm, last, inputs[0].splits if rank == 5 else 1, patch)  # keeps its splits
        self.tensors[output or node.output[0]] = out
        self.layout["tensors"][name] = output or node.output[0]
        if patch > 1:  # that tensor is (N*P, N_patches, C) in the model
            self.layout.setdefault("patches", {})[name] = patch
        if last:  # that tensor is (N, H, W, C) in the model
            self.layout.setdefault("channels_last", []).append(name)
        return out

    def add(self, layer: Layer, shape):
        self.layers.append(layer)
        self.names.add(layer.name)
        self.shapes[layer.name] = shape

    def alias(self, name, t: Tensor):
        """A node that changes nothing archcalc sees (a reshape to (N, n, 1, 1), a squeeze)."""
        self.tensors[name] = t

    def skip(self, node):
        self.done.add(self.index[id(node)])

    def readers(self, name) -> list:
        return self.consumers.get(name, [])

    def only_reader(self, name):
        """The one node reading `name`, if it is one and `name` is not a graph output."""
        readers = self.readers(name)
        if len(readers) == 1 and name not in {o.name for o in self.g.output}:
            return readers[0]
        return None

    @staticmethod
    def shape_text(dims) -> str:
        return "(" + ", ".join("?" if d is None else show(d) if not isinstance(d, str) else d
                               for d in dims) + ")"
