"""The QONNX importer on graphs amchw did not write: hand-built QONNX with the ops the zoo does
not use, checked against qonnx's own executor; unsupported and malformed graphs; and a fuzz
test that corrupts files. Every failure must be a QonnxImportError naming the file/node."""

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from amchw.ir.interp import run
from amchw.lower.qonnx import QonnxImportError, load_qonnx
from amchw.verify.qonnx import compare_with_qonnx

QD = "qonnx.custom_op.general"


class G:
    """A small QONNX graph builder."""

    def __init__(self, seed=0):
        self.nodes, self.inits, self.rng = [], [], np.random.default_rng(seed)

    def const(self, name, a):
        self.inits.append(numpy_helper.from_array(np.asarray(a, np.float32), name))
        return name

    def node(self, op, ins, out, domain="", **attrs):
        self.nodes.append(helper.make_node(op, ins, [out], name=out + "_n", domain=domain,
                                           **attrs))
        return out

    def quant(self, x, out, scale, bits=8, signed=1, narrow=0, zp=0.0):
        s = self.const(out + "_s", scale)
        z = self.const(out + "_z", zp)
        b = self.const(out + "_b", bits)
        return self.node("Quant", [x, s, z, b], out, QD, signed=signed, narrow=narrow,
                         rounding_mode="ROUND")

    def weight(self, name, shape, scale, bits=8):
        w = self.const(name, self.rng.normal(0, 0.3, shape))
        return self.quant(w, name + "_q", scale, bits, 1, 1)

    def model(self, in_shape, out):
        g = helper.make_graph(self.nodes, "hand", [helper.make_tensor_value_info(
            "x", TensorProto.FLOAT, list(in_shape))],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                                helper.make_opsetid(QD, 1)])
        m.ir_version = 8
        return m


def conv2d_graph():
    """Per-channel weights, float bias, SAME padding, a po2 per-channel Mul, ReLU, average and
    global average pools, Trunc, bipolar weights, a quantized residual Add, Concat, a layout
    Transpose, Reshape, MatMul and a float bias at the output."""
    g = G(1)
    xq = g.quant("x", "xq", 2.0**-5)
    w1 = g.weight("w1", (6, 3, 3, 3), np.array([2.0**-4, 2.0**-5, 2.0**-4, 2.0**-6, 2.0**-5,
                                                2.0**-4]).reshape(6, 1, 1, 1))
    c1 = g.node("Conv", [xq, w1, g.const("b1", g.rng.normal(0, 0.1, 6))], "c1",
                auto_pad="SAME_UPPER", kernel_shape=[3, 3])
    m1 = g.node("Mul", [c1, g.const("k1", np.array([0.5, 2, 1, 0.25, 1, 4]).reshape(1, 6, 1, 1))],
                "m1")
    r1 = g.node("Relu", [m1], "r1")
    a1 = g.quant(r1, "a1", 2.0**-4, signed=0)
    ap = g.node("AveragePool", [a1], "ap", kernel_shape=[2, 2], strides=[2, 2])
    a2 = g.quant(ap, "a2", 2.0**-4, signed=0)
    w2 = g.weight("w2", (4, 6, 1, 1), 2.0**-5)
    a3 = g.quant(g.node("Conv", [a2, w2], "c2"), "a3", 2.0**-3)
    tr = g.node("Trunc", [a2, g.const("ts", 2.0**-4), g.const("tz", 0.0), g.const("tib", 8.0),
                          g.const("tob", 6.0)], "tr", QD, rounding_mode="FLOOR")
    w3 = g.node("BipolarQuant", [g.const("w3", g.rng.normal(0, 1, (4, 6, 1, 1))),
                                 g.const("w3s", 2.0**-3)], "w3q", QD)
    a4 = g.quant(g.node("Conv", [tr, w3], "c3"), "a4", 2.0**-3)
    add = g.quant(g.node("Add", [a3, a4], "sum"), "addq", 2.0**-3)
    cat = g.node("Concat", [a3, add], "cat", axis=1)
    gp = g.quant(g.node("GlobalAveragePool", [cat], "gp"), "gpq", 2.0**-5)
    t = g.node("Transpose", [gp], "t", perm=[0, 2, 3, 1])
    flat = g.node("Reshape", [t, g.const("shp", np.array([1, -1]))], "flat")
    g.inits[-1] = numpy_helper.from_array(np.array([1, -1], np.int64), "shp")
    w4 = g.weight("w4", (8, 5), 2.0**-4)
    mm = g.node("MatMul", [flat, w4], "mm")
    out = g.node("Add", [mm, g.const("b4", g.rng.normal(0, 0.1, 5))], "y")
    return g.model((1, 3, 8, 8), out)


def conv1d_graph():
    """Strided, dilated 1-D conv, padded MaxPool of codes, Sub/Div by constants before the
    quantizer, Flatten, Gemm with transB=0, alpha and beta, and a quantized output."""
    g = G(2)
    xq = g.quant("x", "xq", 2.0**-6)
    w1 = g.weight("w1", (5, 2, 3), 2.0**-4)
    c1 = g.node("Conv", [xq, w1], "c1", strides=[2], dilations=[2], pads=[2, 1])
    s1 = g.node("Sub", [c1, g.const("o1", np.full((5, 1), 0.125))], "s1")
    d1 = g.node("Div", [s1, g.const("k1", 0.5)], "d1")
    a1 = g.quant(g.node("Relu", [d1], "r1"), "a1", 2.0**-4, signed=0)
    mp = g.node("MaxPool", [a1], "mp", kernel_shape=[3], strides=[2], pads=[1, 1])
    fl = g.node("Flatten", [mp], "fl", axis=1)
    w2 = g.weight("w2", (20, 4), 2.0**-5)
    gm = g.node("Gemm", [fl, w2, g.const("b2", g.rng.normal(0, 0.1, 4))], "gm", alpha=0.5,
                beta=2.0, transB=0)
    out = g.quant(gm, "y", 2.0**-3)
    return g.model((1, 2, 16), out)


@pytest.mark.parametrize("make,shape", [(conv2d_graph, (3, 8, 8)), (conv1d_graph, (2, 16))])
def test_hand_built_graph_matches_qonnx_executor(tmp_path, make, shape):
    p = tmp_path / "h.onnx"
    onnx.save(make(), str(p))
    g = load_qonnx(p)
    x = np.random.default_rng(5).normal(0, 0.6, (6, *shape)).astype(np.float32)
    rep = compare_with_qonnx(p, x)
    # every scale and constant is a power of two: float32 is exact, so every code is equal
    assert [pt.mismatches for pt in rep.points] == [0] * len(rep.points)
    assert len(rep.points) >= 3
    assert rep.output_max_abs_diff < 1e-5
    assert np.array_equal(run(g, x, "ref"), run(g, x, "numba"))


def _expect(model, match, tmp_path):
    p = tmp_path / "bad.onnx"
    onnx.save(model, str(p))
    with pytest.raises(QonnxImportError, match=match) as e:
        load_qonnx(p)
    assert "bad.onnx" in str(e.value)


def test_unsupported_graphs_are_named(tmp_path):
    g = G()
    xq = g.quant("x", "xq", 2.0**-5)
    _expect(g.model((1, 4), g.node("Sigmoid", [xq], "sig")), r"node 'sig_n' \(Sigmoid\): op type "
            "'Sigmoid'", tmp_path)
    g = G()  # a float op between quantizers: conv of the float input
    w = g.weight("w", (2, 1, 3), 2.0**-4)
    _expect(g.model((1, 1, 8), g.node("Conv", ["x", w], "c")), "float input, not quantized",
            tmp_path)
    g = G()  # a float ReLU feeding a convolution
    xq = g.quant("x", "xq", 2.0**-5)
    w = g.weight("w", (2, 1, 3), 2.0**-4)
    c = g.node("Conv", [xq, w], "c")
    c2 = g.node("Conv", [g.node("Relu", [c], "r"), w], "c2")
    _expect(g.model((1, 1, 8), c2), "float tensor", tmp_path)
    g = G()
    xq = g.quant("x", "xq", 2.0**-5)
    _expect(g.model((1, 4), g.node("Relu", [g.node("Exp", [xq], "e")], "r")), "'Exp'", tmp_path)
    g = G()  # reads a tensor nobody writes
    _expect(g.model((1, 4), g.node("Relu", ["nowhere"], "r")), "reads \\['nowhere'\\]", tmp_path)
    g = G()  # a cycle
    g.node("Relu", ["b"], "a")
    _expect(g.model((1, 4), g.node("Relu", ["a"], "b")), "cycle", tmp_path)
    g = G()  # an unsupported rounding mode
    g.nodes.append(helper.make_node("Quant", ["x", g.const("s", 1.0), g.const("z", 0.0),
                                              g.const("b", 8.0)], ["y"], name="q", domain=QD,
                                    signed=1, narrow=0, rounding_mode="CEIL"))
    _expect(g.model((1, 4), "y"), "rounding_mode 'CEIL'", tmp_path)
    g = G()  # a symbolic input shape
    xq = g.quant("x", "xq", 2.0**-5)
    _expect(g.model((1, "L"), xq), "static shape", tmp_path)
    g = G()  # a Transpose that moves data
    xq = g.quant("x", "xq", 2.0**-5)
    _expect(g.model((1, 3, 4), g.node("Transpose", [xq], "t", perm=[0, 2, 1])), "moves data",
            tmp_path)


def test_not_a_model_and_missing_file(tmp_path):
    p = tmp_path / "junk.qonnx"
    p.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(QonnxImportError, match="junk.qonnx"):
        load_qonnx(p)
    with pytest.raises(QonnxImportError, match="no such file"):
        load_qonnx(tmp_path / "none.qonnx")
    p.write_bytes(b"")
    with pytest.raises(QonnxImportError, match="junk.qonnx"):
        load_qonnx(p)


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory):
    p = tmp_path_factory.mktemp("fz") / "g.onnx"
    onnx.save(conv1d_graph(), str(p))
    return p.read_bytes()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_corrupted_files_end_in_typed_errors(tmp_path, good_bytes, data):
    b = bytearray(good_bytes)
    how = data.draw(st.sampled_from(["truncate", "flip", "node"]))
    if how == "truncate":
        b = b[:data.draw(st.integers(0, len(b) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(b) - 1))
            b[i] = data.draw(st.integers(0, 255))
    else:  # structural: drop a node, or rename an op or an input
        m = onnx.load_model_from_string(bytes(good_bytes))
        k = data.draw(st.integers(0, len(m.graph.node) - 1))
        act = data.draw(st.sampled_from(["drop", "op", "input"]))
        if act == "drop":
            del m.graph.node[k]
        elif act == "op":
            m.graph.node[k].op_type = data.draw(st.sampled_from(["Foo", "Conv", "Quant", "Gemm"]))
        elif m.graph.node[k].input:
            m.graph.node[k].input[0] = "zz"
        b = bytearray(m.SerializeToString())
    p = tmp_path / "f.onnx"
    p.write_bytes(bytes(b))
    try:
        load_qonnx(p)
    except QonnxImportError as e:
        assert "f.onnx" in str(e)
