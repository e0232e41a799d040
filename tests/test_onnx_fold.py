"""Folding affine operations into convolutions: same outputs under onnxruntime, fewer nodes, and nothing folded
where it would not be exact."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from htrlab.models.onnx_fold import fold_affine_into_conv, shifts_as_depthwise_conv

C = 4


def _graph() -> onnx.ModelProto:
    """X -> Conv 3x3 -> +bias(Reshape) -> *s1 (constant first) -> +t1 -> HardSwish -> *s2 -> +t2 -> Conv 1x1
    -> *c (per channel) -> HardSwish -> *s3 -> +t3 -> depthwise Conv 3x3 (padded) -> Y1, and a branch: a
    convolution read by two nodes (never folded) -> Y2 = Relu(z) + z * 2."""
    rng = np.random.default_rng(0)
    inits = {
        "W1": rng.normal(0, 0.5, (C, 1, 3, 3)),
        "b1": rng.normal(0, 0.5, (C,)),
        "shape": np.array([1, C, 1, 1], dtype=np.int64),
        "W2": rng.normal(0, 0.5, (C, C, 1, 1)),
        "c": rng.uniform(0.5, 1.5, (1, C, 1, 1)),
        "W3": rng.normal(0, 0.5, (C, 1, 3, 3)),
        "t3": np.array(0.3),
        "W4": rng.normal(0, 0.5, (C, 1, 1, 1)),
        "two": np.array(2.0),
    }
    scalars = {"s1": 1.7, "t1": -0.2, "s2": 0.8, "t2": 0.4, "s3": 1.3}
    const_nodes = [
        helper.make_node("Constant", [], [k], value=numpy_helper.from_array(np.array([v], np.float32), k))
        for k, v in scalars.items()
    ]
    n = helper.make_node
    nodes = [
        *const_nodes,
        n("Conv", ["X", "W1"], ["a"], pads=[1, 1, 1, 1]),
        n("Reshape", ["b1", "shape"], ["b1r"]),
        n("Add", ["a", "b1r"], ["a1"]),
        n("Mul", ["s1", "a1"], ["a2"]),
        n("Add", ["a2", "t1"], ["a3"]),
        n("HardSwish", ["a3"], ["h1"]),
        n("Mul", ["h1", "s2"], ["h2"]),
        n("Add", ["h2", "t2"], ["h3"]),
        n("Conv", ["h3", "W2"], ["d"]),
        n("Mul", ["d", "c"], ["d1"]),
        n("HardSwish", ["d1"], ["h4"]),
        n("Mul", ["h4", "s3"], ["h5"]),
        n("Add", ["h5", "t3"], ["h6"]),
        n("Conv", ["h6", "W3"], ["Y1"], pads=[1, 1, 1, 1], group=C),
        n("Conv", ["X", "W4"], ["z"]),
        n("Relu", ["z"], ["zr"]),
        n("Mul", ["z", "two"], ["z2"]),
        n("Add", ["zr", "z2"], ["Y2"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", 1, 6, "w"])],
        [
            helper.make_tensor_value_info("Y1", TensorProto.FLOAT, ["n", C, 6, "w"]),
            helper.make_tensor_value_info("Y2", TensorProto.FLOAT, ["n", C, 6, "w"]),
        ],
        [
            numpy_helper.from_array(v.astype(np.int64 if v.dtype == np.int64 else np.float32), k)
            for k, v in inits.items()
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": x})


def test_fold_keeps_outputs_and_removes_the_affine_nodes() -> None:
    model = _graph()
    x = np.random.default_rng(1).normal(0, 1, (2, 1, 6, 9)).astype(np.float32)
    before = _run(model, x)
    removed = fold_affine_into_conv(model)
    onnx.checker.check_model(model)
    after = _run(model, x)
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    ops = [nd.op_type for nd in model.graph.node]
    # bias, s1, t1 after conv 1; s2, t2 before the unpadded conv 2; c after it; s3 before the padded conv 3
    assert removed == 7
    assert ops.count("Conv") == 4 and ops.count("HardSwish") == 2
    assert ops.count("Reshape") == 0 and "Constant" not in ops
    # left: Add(t3 / s3) before the padded convolution (zero padding is not shifted) and the shared branch
    assert ops.count("Add") == 2 and ops.count("Mul") == 1 and ops.count("Relu") == 1
    # that shift becomes a 1x1 depthwise convolution (onnxruntime keeps it in its blocked layout); the Add of
    # two tensors stays
    assert shifts_as_depthwise_conv(model) == 1
    onnx.checker.check_model(model)
    for a, b in zip(before, _run(model, x)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    ops = [nd.op_type for nd in model.graph.node]
    assert ops.count("Conv") == 5 and ops.count("Add") == 1


def test_fold_leaves_a_graph_without_the_patterns_alone() -> None:
    n = helper.make_node
    graph = helper.make_graph(
        [n("Conv", ["X", "W"], ["y"], pads=[1, 1, 1, 1]), n("Add", ["y", "X2"], ["Y"])],
        "g",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, 4, 4]),
            helper.make_tensor_value_info("X2", TensorProto.FLOAT, [1, 1, 4, 4]),
        ],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    assert fold_affine_into_conv(model) == 0
    assert shifts_as_depthwise_conv(model) == 0  # the Add reads two tensors
    assert [nd.op_type for nd in model.graph.node] == ["Conv", "Add"]
