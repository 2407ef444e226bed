"""models.graph rewrites on the PP-OCR models shipped in the rapidocr-onnxruntime wheel, and on tiny graphs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import rapidocr_onnxruntime
from onnx import TensorProto, helper, numpy_helper

from models.graph import fold_affine_into_conv, fold_conv_affine, fuse_hard_swish, optimize
from models.runtime import create_session

WHEEL_MODELS = Path(rapidocr_onnxruntime.__file__).parent / "models"
# file, input (height, width): RapidOCR normalises det, rec and cls inputs alike, (BGR / 255 - 0.5) / 0.5.
MODELS = {
    "det": ("ch_PP-OCRv4_det_infer.onnx", (384, 480)),
    "rec": ("ch_PP-OCRv4_rec_infer.onnx", (48, 320)),
    "cls": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", (48, 192)),
}


@pytest.fixture(scope="module")
def card(data_dir: Path) -> np.ndarray:
    image = cv2.imread(str(data_dir / "idcard" / "samples" / "card-ocr_test1_fictional.jpg"))
    assert image is not None
    return image


def _blob(image: np.ndarray, height: int, width: int) -> np.ndarray:
    x = (cv2.resize(image, (width, height)).astype(np.float32) / 255.0 - 0.5) / 0.5
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("key", ["det", "rec", "cls"])
def test_every_hard_swish_of_the_wheel_models_is_fused(key: str) -> None:
    model = onnx.load(str(WHEEL_MODELS / MODELS[key][0]))
    nodes = len(model.graph.node)
    clips = sum(node.op_type == "Clip" for node in model.graph.node)
    fused, count = fuse_hard_swish(model)
    assert count == clips > 0  # every Clip in these graphs is part of a hard-swish
    assert not any(node.op_type == "Clip" for node in fused.graph.node)
    rewritten, total = optimize(model)
    assert total > count if key != "cls" else total == count  # cls has BatchNorm, not Conv → Mul → Add
    assert len(model.graph.node) == nodes  # the argument is left alone
    assert rewritten.opset_import == model.opset_import
    onnx.checker.check_model(rewritten, full_check=True)


@pytest.mark.parametrize("key", ["det", "rec", "cls"])
def test_rewritten_sessions_match_the_originals_on_a_real_card(key: str, card: np.ndarray) -> None:
    path = WHEEL_MODELS / MODELS[key][0]
    blob = _blob(card, *MODELS[key][1])
    original, rewritten = create_session(path), create_session(path, optimize_graph=True)
    name = original.get_inputs()[0].name
    expected, actual = original.run(None, {name: blob}), rewritten.run(None, {name: blob})
    assert len(expected) == len(actual)
    for want, got in zip(expected, actual, strict=True):
        assert want.shape == got.shape
        assert float(np.abs(want - got).max()) <= 1e-4
    if key == "det":  # a text detector that sees no text would make the comparison meaningless
        assert float(expected[0].max()) > 0.9


def _const(name: str, value: float | np.ndarray) -> onnx.NodeProto:
    tensor = numpy_helper.from_array(np.asarray(value, dtype=np.float32), f"{name}_value")
    return helper.make_node("Constant", [], [name], value=tensor)


def _graph(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto] | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, "h", "w"])],
        initializer=inits or [],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)], ir_version=8)


def _same(model: onnx.ModelProto, rewritten: onnx.ModelProto) -> None:
    x = np.linspace(-5, 5, 50, dtype=np.float32).reshape(1, 2, 5, 5)
    want, got = _session(model).run(None, {"x": x})[0], _session(rewritten).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)


BOUNDS = [_const("three", 3.0), _const("zero", 0.0), _const("six", 6.0), _const("sixth", 1.0 / 6.0)]
HEAD = [helper.make_node("Add", ["x", "three"], ["a"]), helper.make_node("Clip", ["a", "zero", "six"], ["c"])]


@pytest.mark.parametrize(
    ("tail", "ops"),
    [
        (
            [helper.make_node("Div", ["c", "six"], ["d"]), helper.make_node("Mul", ["x", "d"], ["y"])],
            ["HardSigmoid", "Mul"],
        ),
        (
            [helper.make_node("Mul", ["sixth", "c"], ["d"]), helper.make_node("Mul", ["d", "x"], ["y"])],
            ["HardSigmoid", "Mul"],
        ),
        (
            [helper.make_node("Mul", ["x", "c"], ["d"]), helper.make_node("Div", ["d", "six"], ["y"])],
            ["HardSigmoid", "Mul"],
        ),
        ([helper.make_node("Div", ["c", "six"], ["y"])], ["HardSigmoid"]),
    ],
)
def test_pattern_orders_are_fused_exactly(tail: list[onnx.NodeProto], ops: list[str]) -> None:
    model = _graph([*BOUNDS, *HEAD, *tail])
    rewritten, count = fuse_hard_swish(model)
    assert count == 1
    assert [n.op_type for n in rewritten.graph.node] == ops
    _same(model, rewritten)


def test_near_misses_are_left_alone() -> None:
    wrong_shift = [_const("two", 2.0), *BOUNDS, helper.make_node("Add", ["x", "two"], ["a"]), HEAD[1]]
    model = _graph(
        [*wrong_shift, helper.make_node("Div", ["c", "six"], ["d"]), helper.make_node("Mul", ["x", "d"], ["y"])]
    )
    assert fuse_hard_swish(model)[1] == 0
    # Clip's output is read twice: fusing would have to keep it anyway.
    tail = [helper.make_node("Div", ["c", "six"], ["d"]), helper.make_node("Add", ["c", "d"], ["y"])]
    assert fuse_hard_swish(_graph([*BOUNDS, *HEAD, *tail]))[1] == 0


def _conv(pads: int, inputs: list[str], output: str) -> onnx.NodeProto:
    return helper.make_node("Conv", inputs, [output], kernel_shape=[3, 3], pads=[pads] * 4)


def test_affines_fold_into_convs_only_where_exact() -> None:
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(2, 2, 3, 3)).astype(np.float32), name) for name in ("w1", "w2", "w3")
    ] + [numpy_helper.from_array(np.asarray([0.5, -1.0], np.float32), "b1")]
    nodes = [
        _const("s", 0.7),
        _const("t", -0.3),
        _conv(1, ["x", "w1", "b1"], "c1"),
        helper.make_node("Mul", ["c1", "s"], ["m1"]),
        helper.make_node("Add", ["m1", "t"], ["a1"]),  # Conv → Mul → Add: folds forward
        helper.make_node("Relu", ["a1"], ["r1"]),
        helper.make_node("Mul", ["r1", "s"], ["m2"]),
        helper.make_node("Add", ["m2", "t"], ["a2"]),
        _conv(1, ["a2", "w2"], "c2"),  # padded: its zero padding is not the image of a zero, no backward fold
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Add", ["r2", "t"], ["a3"]),
        helper.make_node("Mul", ["s", "a3"], ["m3"]),
        _conv(0, ["m3", "w3"], "y"),  # unpadded: folds backward
    ]
    model = _graph(nodes, inits)
    forward, folded = fold_conv_affine(model)
    assert folded == 2  # c1's Mul and Add
    backward, folded = fold_affine_into_conv(forward)
    assert folded == 2  # the Mul and Add before the unpadded conv only
    kept = ["Constant", "Constant", "Conv", "Relu", "Mul", "Add", "Conv", "Relu", "Conv"]
    assert [n.op_type for n in backward.graph.node] == kept
    onnx.checker.check_model(backward)
    _same(model, backward)
