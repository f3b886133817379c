"""The machinery of an export, apart from what each kind becomes (`export.KINDS`): the
weights, bound to the analysed shapes (drawn, read from an .npz or given); the model,
assembled from the nodes each kind's function emits, with its inputs, outputs, opsets and
archcalc's function domain; and the few calls those functions make (`node`, `init`,
`source`, `sources`, `function`).
"""
from __future__ import annotations


import numpy as np
import sympy

from ..executor import weights as wts
from ..analysis.analyzer import bind_op
from ..errors import SpecError
from ..executor.fusion import fold
from ..sizes import is_int, show

OPSET = 17
IR_VERSION = 8          # onnx 1.12's: read by every onnxruntime since 1.12
LAYOUT = "archcalc: layout (a vector's rank, (N, n) <-> (N, n, 1, 1))"


MAX_MODEL_BYTES = 2**31 - 1  # protobuf's limit for one message: a model without external data


def refuse_large_model(expected: dict) -> None:
    """The weights of a model are counted before any is drawn or read: an ONNX file holds at
    most 2 GiB of them (protobuf's limit), and a 10^5 x 10^5 fc would need 37 GiB first."""
    sizes = {layer: 4 * sum(int(np.prod(s)) for s in shapes.values()) for layer, shapes in expected.items()}
    need = sum(sizes.values())
    if need > MAX_MODEL_BYTES:
        largest = max(sizes, key=sizes.get)
        raise SpecError(f"the model's float32 weights would take {need:,} bytes; an ONNX file holds "
                        f"at most {MAX_MODEL_BYTES:,} (protobuf's limit)", None,
                        (f"the largest layer, '{largest}', holds {sizes[largest]:,} bytes",))


def ref(ex, name, kind, attribute=None):
    """An attribute `attribute` (by default `name`) of a function's node that takes the value
    of the function's attribute `name`."""
    kinds = ex.onnx.AttributeProto
    a = kinds()
    a.name, a.ref_attr_name = attribute or name, name
    a.type = {"ints": kinds.INTS, "int": kinds.INT, "float": kinds.FLOAT}[kind]
    return a


def referred(ex, out, attribute, kind):
    """A Constant whose value is the function's attribute `attribute`."""
    node = ex.h.make_node("Constant", [], [out])
    node.attribute.append(ref(ex, attribute, kind, "value_" + kind))
    return node


class Exporter:
    def __init__(self, onnx, net, analysis, subs, fold_bn=False):
        graph = net.graph
        self.onnx, self.h = onnx, onnx.helper
        self.net, self.graph, self.analysis, self.subs = net, graph, analysis, subs
        self.folded = {}  # conv -> the batchnorm folded into it
        for name in graph.nodes if fold_bn else ():
            layer, readers = graph.nodes[name]["layer"], list(graph.successors(name))
            if layer.op.takes_fusion() and len(readers) == 1 and \
                    graph.nodes[readers[0]]["layer"].op.folds_into_conv:
                self.folded[name] = readers[0]
        self.nodes, self.inputs, self.functions = [], [], {}
        self.model = onnx.ModelProto()
        self.out = {}    # layer -> (tensor name, rank)
        self.rows = {r.name: r for r in analysis.rows}
        self.ops = {name: bind_op(graph.nodes[name]["layer"].op, subs) for name in graph.nodes}

    # ------------------------------------------------------------ weights

    def weights(self, weights, seed) -> dict:
        expected = {}
        for name in self.graph.nodes:
            row = self.rows[name]
            rule = self.ops[name].weights(row.in_shapes)
            shapes = {}
            for key, shape in rule.items():
                if not all(is_int(v) for v in shape):
                    raise SpecError(f"{row.kind} '{name}': its weights '{key}' have the symbolic shape "
                                    f"({', '.join(show(v) for v in shape)})", None,
                                    ("bind the symbols to export (--set NAME=VALUE)",))
                shapes[key] = tuple(int(v) for v in shape)
            if shapes:
                expected[name] = shapes
        refuse_large_model(expected)
        return wts.weights_for(self.graph, self.ops, expected, weights, seed, np.float32)

    # ------------------------------------------------------------ the model

    def build(self, params, kinds):
        """The model, each layer made by kinds[its kind] (export.KINDS)."""
        for name in self.graph.nodes:
            layer = self.graph.nodes[name]["layer"]
            handler = kinds.get(layer.kind)
            if handler is None:
                raise SpecError(f"{layer.kind} '{name}': archcalc cannot export this kind to ONNX")
            self.layer = layer
            if layer.op.folds_into_conv and layer.inputs[0] in self.folded:
                self.out[name] = self.out[layer.inputs[0]]  # folded into the conv before it
                continue
            w = params.get(name, {})
            if name in self.folded:
                bn = self.folded[name]
                w = fold(self.ops[name], w, params[bn], self.ops[bn])
            self.out[name] = handler(self, layer, self.ops[name], self.rows[name], w)
        readers = {i for n in self.graph.nodes for i in self.graph.nodes[n]["layer"].inputs}
        last = list(self.graph.nodes)[-1]  # the network's output first, then layers nobody reads
        outputs = [last] + [n for n in self.graph.nodes if n not in readers and n != last]
        value_outputs = []
        for name in outputs:
            tensor, rank = self.out[name]
            value_outputs.append(self.h.make_tensor_value_info(tensor, 1, self.dims_of(name, rank)))
        model = self.model  # filled in place: make_model would copy every weight
        model.graph.name = self.analysis.network
        model.graph.node.extend(self.nodes)
        model.graph.input.extend(self.inputs)
        model.graph.output.extend(value_outputs)
        model.opset_import.append(self.h.make_opsetid("", OPSET))
        if self.functions:
            model.opset_import.append(self.h.make_opsetid("archcalc", 1))
            model.functions.extend(self.functions.values())
        model.producer_name = "archcalc"
        model.ir_version = IR_VERSION
        defaults = [f"{s.name}={s.default}" for s in self.net.symbols
                    if s.default is not None and self.analysis.symbols.get(s.name) is None]
        if defaults:
            self.h.set_model_props(model, {"archcalc.defaults": ",".join(defaults)})
        return model

    def dims_of(self, name, rank):
        s = self.rows[name].out_shape
        size = lambda v: v if is_int(v) else str(v) if isinstance(v, sympy.Symbol) else None
        if rank == 2:
            n = s.n_H * s.n_W * s.n_C
            return ["N", size(n) if is_int(n) else None]
        return ["N", size(s.n_C), size(s.n_H), size(s.n_W)]

    # ------------------------------------------------------------ what kinds use

    def node(self, op_type, inputs, outputs=None, name=None, doc=None, domain=None, **attrs):
        name = name or self.layer.name
        outputs = outputs or [name]
        n = self.h.make_node(op_type, inputs, outputs, name=name, doc_string=doc, domain=domain, **attrs)
        self.nodes.append(n)
        return outputs[0]

    def step(self, op_type, inputs, key, **attrs):
        """A node inside a layer's pattern: output 'LAYER/key', node 'LAYER/OpType_k', which an
        import reads back as the layer's name."""
        name = self.layer.name
        return self.node(op_type, inputs, [f"{name}/{key}"], name=f"{name}/{op_type}_{len(self.nodes)}", **attrs)

    def init(self, key, array, dtype=np.float32):
        """An initializer named 'LAYER.KEY', written straight into its TensorProto (large
        models: one copy of the numbers, not three)."""
        name = f"{self.layer.name}.{key}"
        a = np.asarray(array, dtype=dtype)
        t = self.model.graph.initializer.add()
        t.name, t.data_type = name, self.h.np_dtype_to_tensor_dtype(a.dtype)
        t.dims.extend(a.shape)
        t.raw_data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        return name

    def source(self, k=0, rank=None):
        """The k-th input of the current layer, in the rank asked for (2 or 4)."""
        tensor, have = self.out[self.layer.inputs[k]]
        if rank is None or rank == have:
            return tensor
        name = f"{self.layer.name}/{'to_vector' if rank == 2 else 'to_map'}{k}"
        if rank == 2:
            return self.node("Flatten", [tensor], [name], name=name, doc=LAYOUT, axis=1)
        axes = self.init(f"unsqueeze{k}", [2, 3], np.int64)
        return self.node("Unsqueeze", [tensor, axes], [name], name=name, doc=LAYOUT)

    def sources(self):
        """All inputs, as maps if any input is a map, else as vectors."""
        ranks = [self.out[i][1] for i in self.layer.inputs]
        rank = 4 if 4 in ranks else 2
        return [self.source(k, rank) for k in range(len(ranks))], rank

    def function(self, name, inputs, outputs, nodes, attributes=()):
        if name not in self.functions:
            self.functions[name] = self.h.make_function(
                "archcalc", name, inputs, outputs, nodes,
                [self.h.make_opsetid("", OPSET)], attributes=list(attributes))
