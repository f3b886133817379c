"""Invalid and hostile model and weight files: each is refused with one clear message, before
anything large is read or made (the huge sizes are only claimed, never allocated)."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from archcalc.errors import SpecError

HAVE_ONNX = importlib.util.find_spec("onnx") is not None
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="needs the onnx extra: pip install 'archcalc[onnx]'")


def refusal(model, file="m.onnx") -> str:
    from archcalc.onnx.importer import from_model
    with pytest.raises(SpecError) as e:
        from_model(model, file)
    return str(e.value)


# ---------------------------------------------------------------- invalid ONNX models

@needs_onnx
def test_two_nodes_writing_one_tensor_are_refused():
    from onnx import helper
    from onnx_models import Builder, unchecked
    b = Builder("dup")
    y = b.node("Relu", ["x"])
    b.nodes.append(helper.make_node("Sigmoid", ["x"], [y], name="second"))
    assert refusal(unchecked(b, y)) == (
        "error: m.onnx: the model is invalid: 1 fault(s)\n"
        "  = node 1 'second': writes tensor 'relu_1', which node 0 '/Relu_2' writes already")


@needs_onnx
def test_a_kernel_shape_contradicting_the_weight_is_refused():
    from onnx_models import Builder, unchecked
    b = Builder("ks")
    y = b.node("Conv", ["x", b.weight(4, 3, 3, 3)], kernel_shape=[5, 5])
    assert refusal(unchecked(b, y)) == (
        "error: m.onnx: the model is invalid: 1 fault(s)\n"
        "  = node 0 '/Conv_3': Conv with kernel_shape [5, 5], but its weight 'w_1' has shape "
        "[4, 3, 3, 3] (kernel [3, 3])")


@needs_onnx
@pytest.mark.parametrize("op, inputs", [("Conv", 1), ("MaxPool", 0)])
def test_an_unknown_auto_pad_is_refused(op, inputs):
    from onnx_models import Builder, unchecked
    b = Builder("ap")
    weights = [b.weight(4, 3, 3, 3)] if inputs else []
    y = b.node(op, ["x", *weights], name="n", kernel_shape=[3, 3], auto_pad="SAME")
    assert refusal(unchecked(b, y)) == (
        "error: m.onnx: the model is invalid: 1 fault(s)\n"
        f"  = node 0 'n': {op} with auto_pad 'SAME', not one of NOTSET, SAME_UPPER, "
        "SAME_LOWER, VALID")


@needs_onnx
@pytest.mark.parametrize("shape", [(1, 3, -8, 8), (1, -3, 8, 8)])
def test_a_negative_input_dimension_is_refused(shape):
    from onnx_models import Builder, unchecked
    b = Builder("neg")
    y = b.node("Relu", ["x"])
    assert refusal(unchecked(b, y, shape)) == (
        "error: m.onnx: the model is invalid: 1 fault(s)\n"
        f"  = input 'x': negative dimension in {list(shape)}")


@needs_onnx
def test_initializer_dims_that_disagree_with_the_data_are_refused():
    from onnx import TensorProto
    from onnx_models import Builder, initializer, unchecked
    b = Builder("len")
    b.inits.append(initializer("w", [4, 3, 5, 5], 108))
    b.inits.append(initializer("neg", [2, -2], 4))
    b.inits.append(TensorProto(name="typed", data_type=TensorProto.FLOAT, dims=[3, 4], float_data=[0.0] * 10))
    b.inits.append(initializer("huge", [100000, 100000, 1000], 1))
    y = b.node("Conv", ["x", "w"], kernel_shape=[5, 5])
    assert refusal(unchecked(b, y)) == (
        "error: m.onnx: the model is invalid: 4 fault(s)\n"
        "  = initializer 'w': dims [4, 3, 5, 5] need 1,200 bytes of data, the model holds 432\n"
        "  = initializer 'neg': negative dimension in [2, -2]\n"
        "  = initializer 'typed': dims [3, 4] need 12 values, the model holds 10\n"
        "  = initializer 'huge': dims [100000, 100000, 1000] make 10,000,000,000,000 elements, "
        "over the limit of 2,147,483,648")


@needs_onnx
def test_an_external_data_file_shorter_than_its_tensor_is_refused(tmp_path):
    import onnx
    from onnx_models import Builder, unchecked

    from archcalc.onnx.importer import load_onnx
    b = Builder("ext")
    y = b.node("Conv", ["x", b.weight(4, 3, 3, 3)], kernel_shape=[3, 3])
    path = tmp_path / "m.onnx"
    onnx.save_model(unchecked(b, y), str(path), save_as_external_data=True, location="w.bin",
                    size_threshold=0)
    os.truncate(tmp_path / "w.bin", 100)
    with pytest.raises(SpecError) as e:
        load_onnx(path)
    assert str(e.value) == (
        f"error: {path}: the model is invalid: 1 fault(s)\n"
        "  = initializer 'w_1': the external file 'w.bin' holds 100 bytes; the tensor needs 432 "
        "from offset 0")


@needs_onnx
def test_control_characters_in_names_are_escaped_in_every_message(capsys, tmp_path):
    import onnx
    from onnx_models import Builder, unchecked

    from archcalc.cli import main as cli
    b = Builder("g\x1b[31m")
    y = b.node("Selu", ["x"], name="evil\x1b[2J\nname\u202e")
    assert refusal(unchecked(b, y)).splitlines()[:2] == [
        "error: m.onnx: 1 node(s) use operators archcalc does not support: Selu",
        "  = node 0 'evil\\x1b[2J\\nname\\u202e': Selu"]
    b = Builder("g")
    y = b.node("Conv", ["x", b.weight(4, 3, 3, 3)], name="bad\x07", kernel_shape=[3, 3], strides=[1, 2])
    assert refusal(unchecked(b, y), "m\x1b.onnx") == (
        "error: m\\x1b.onnx: 1 node(s) archcalc cannot import\n"
        "  = node 0 'bad\\x07': Conv with strides 1x2: archcalc's strides are square")
    b = Builder("g")
    y = b.node("Relu", ["x"], name="a\x1bb")
    b.nodes.append(onnx.helper.make_node("Relu", ["x"], [y], name="c\rd"))
    path = tmp_path / "m.onnx"
    onnx.save_model(unchecked(b, y), str(path))
    assert cli(["analyze", str(path)]) == 1
    err = capsys.readouterr().err
    assert err == (f"error: {path}: the model is invalid: 1 fault(s)\n"
                   f"  = node 1 'c\\rd': writes tensor 'relu_1', which node 0 'a\\x1bb' writes already\n")


@needs_onnx
def test_constants_folded_at_import_are_bounded_before_they_are_made():
    """ConstantOfShape [30000, 30000] would fill 3.6 GB; Expand and Range likewise."""
    from onnx_models import Builder, unchecked
    b = Builder("fill")
    b.node("ConstantOfShape", [b.const(np.array([30000, 30000], np.int64))], name="fill")
    b.node("Expand", [b.const(np.float32(1)), b.const(np.array([10**5, 10**5], np.int64))], name="grow")
    b.node("Range", [b.const(np.int64(0)), b.const(np.int64(10**12)), b.const(np.int64(1))], name="count")
    b.node("Range", [b.const(np.int64(0)), b.const(np.int64(5)), b.const(np.int64(0))], name="still")
    y = b.node("Relu", ["x"])
    assert refusal(unchecked(b, y)) == (
        "error: m.onnx: 4 node(s) archcalc cannot import\n"
        "  = node 0 'fill': ConstantOfShape would make a constant of shape [30000, 30000]: "
        "900,000,000 elements, over the limit of 10,000,000 for constants folded at import\n"
        "  = node 1 'grow': Expand would make a constant of shape [100000, 100000]: "
        "10,000,000,000 elements, over the limit of 10,000,000 for constants folded at import\n"
        "  = node 2 'count': Range would make a constant of shape [1000000000000]: "
        "1,000,000,000,000 elements, over the limit of 10,000,000 for constants folded at import\n"
        "  = node 3 'still': Range with a step of 0")


# ---------------------------------------------------------------- hostile weights files

def npy_header(shape, descr="<f4") -> bytes:
    import io
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue()


def forged_npz(path, members: dict, declared=True):
    """An .npz whose members hold only an .npy header claiming `shape` (and 16 bytes); with
    `declared`, the zip's directory claims the size the header implies, as a zip bomb's does."""
    import zipfile
    with zipfile.ZipFile(path, "w") as z:
        for name, shape in members.items():
            z.writestr(name + ".npy", npy_header(shape) + bytes(16))
    if declared:
        data = bytearray(path.read_bytes())
        at = data.find(b"PK\x01\x02")
        for shape in members.values():  # central directory entries, in order: file_size at +24
            size = len(npy_header(shape)) + 4 * int(np.prod(shape, dtype=object))
            data[at + 24:at + 28] = min(size, 2**32 - 1).to_bytes(4, "little")  # zip32's most
            at = data.find(b"PK\x01\x02", at + 4)
        path.write_bytes(bytes(data))
    return path


def test_an_npy_header_claiming_a_trillion_floats_is_not_read(tmp_path):
    from archcalc.executor.weights import read
    path = tmp_path / "w.npy"
    path.write_bytes(npy_header((10**12,)))
    with pytest.raises(SpecError) as e:
        read(path)
    assert str(e.value) == (f"error: weights '{path}' hold a single array, not an .npz archive "
                            "of arrays keyed 'LAYER/KEY'")


def test_a_member_whose_header_disagrees_with_its_size_is_not_read(tmp_path):
    from archcalc.executor.weights import read
    path = forged_npz(tmp_path / "w.npz", {"c1/W": (10**6, 10**6)}, declared=False)
    with pytest.raises(SpecError) as e:
        read(path)
    assert str(e.value) == (f"error: weights '{path}' is not a readable .npz archive: member "
                            "'c1/W.npy' declares 144 bytes, but its header's (1000000, 1000000) "
                            "of float32 needs 4,000,000,000,128")


def test_a_zip_bomb_of_the_wrong_shape_is_never_inflated(tmp_path):
    """4 GB declared in 300 bytes: the header's shape is not the spec's, so the data is not read
    and the message is the usual one for a misshapen array."""
    import archcalc
    path = forged_npz(tmp_path / "w.npz", {"c1/W": (10**9,)})
    with pytest.raises(SpecError) as e:
        archcalc.run(archcalc.load("specs/lenet5.arch"), weights=path)
    assert e.value.message == (f"conv 'c1': weights 'c1/W' in '{path}' have shape (1000000000,), "
                               "the spec expects (5, 5, 1, 6)")


def test_zip_bombs_over_the_limit_are_refused_with_the_figure(tmp_path):
    from archcalc.executor.weights import read
    path = forged_npz(tmp_path / "w.npz", {f"l{i}/W": (10**9,) for i in range(3)})
    with pytest.raises(SpecError) as e:
        read(path)
    assert str(e.value) == (f"error: weights '{path}' hold 12,000,000,000 bytes of arrays, over the "
                            "limit of 8,589,934,592\n"
                            "  = the largest, 'l0/W', is (1000000000,) of float32: 4,000,000,000 bytes")


# ---------------------------------------------------------------- derived sizes
# (the located messages are golden files: tests/errors/derived_*.arch)

def test_a_cost_past_its_bound_is_refused_with_its_digits():
    """No kind multiplies more than six bounded sizes today; the bound stands guard for one
    that would."""
    from archcalc.analysis.analyzer import check_cost
    from archcalc.errors import RuleError
    from archcalc.kinds import Cost
    assert check_cost(Cost(macs=10**239)) is None
    with pytest.raises(RuleError) as e:
        check_cost(Cost(weights=1, macs=10**240))
    assert e.value.message == "its MACs grow too large: 241 digits; a layer's costs have at most 240"


# ---------------------------------------------------------------- found by tests/test_fuzz.py

@needs_onnx
def test_a_name_that_is_not_utf8_is_a_fault_of_the_model():
    """A garbled byte in a name: protobuf hands the name over as bytes, which is refused first."""
    import onnx
    from onnx_models import Builder, unchecked
    b = Builder("garbled")
    y = b.node("Relu", ["x"], name="zz")
    raw = unchecked(b, y).SerializeToString().replace(b"zz", b"\xff\xfe")
    assert refusal(onnx.load_from_string(raw)) == (
        "error: m.onnx: the model is invalid: 1 fault(s)\n"
        "  = node 0: its name is not UTF-8 text")


def test_an_input_array_is_checked_from_its_header(tmp_path, capsys):
    from archcalc.cli import main
    lenet = "specs/lenet5.arch"
    (tmp_path / "x.npy").write_bytes(npy_header((10**6, 32, 32, 1)) + bytes(64))
    np.save(tmp_path / "ok.npy", np.zeros((2, 32, 32, 1), np.float32))  # 8,192 bytes of data
    assert main(["run", lenet, "--input", str(tmp_path / "x.npy")]) == 1
    assert capsys.readouterr().err == (
        f"error: input '{tmp_path / 'x.npy'}' is truncated: its header's (1000000, 32, 32, 1) of "
        "float32 needs 4,096,000,128 bytes, the file holds 192\n")
    assert main(["run", lenet, "--input", str(tmp_path / "ok.npy"), "--max-memory", "0.000001"]) == 1
    assert capsys.readouterr().err == (
        f"error: input '{tmp_path / 'ok.npy'}' holds 8,192 bytes, over the limit of 1,073\n"
        "  = give fewer images, or raise the limit (--max-memory)\n")


def test_a_window_count_past_a_c_size_is_exact():
    """A 1-wide input padded by 10^39 on both sides: 2 * 10^39 + 1 windows of 1."""
    from archcalc.executor.conv import window_count
    assert window_count(1, 1, 1, 10**39) == 2 * 10**39 + 1
    assert window_count(8, 3, 10**8, 0) == 1 and window_count(2, 5, 1, 0) == 0
    assert window_count(5, 2, 2, 0, ceil=True) == 3  # PyTorch's ceil_mode: 5 -> 3
