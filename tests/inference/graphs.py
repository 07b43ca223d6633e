"""Small ONNX graphs with known outputs, built with the `onnx` package: a stand-in for a YOLO or a classifier
export whose output we choose, so the decoders and the import checks are tested through real onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def constant_output_model(
    output: np.ndarray, *, input_name: str = "images", input_shape: tuple[int | str, ...] = (1, 3, 64, 64)
) -> bytes:
    """A graph taking an image tensor and returning `output` whatever the image (plus 0 x the input's mean, so
    the input is really consumed)."""
    zero = helper.make_node("ReduceMean", [input_name], ["mean"], keepdims=0)
    scaled = helper.make_node("Mul", ["mean", "zero"], ["nothing"])
    result = helper.make_node("Add", ["known", "nothing"], ["output0"])
    graph = helper.make_graph(
        [zero, scaled, result],
        "known-output",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))],
        initializer=[
            numpy_helper.from_array(output.astype(np.float32), "known"),
            numpy_helper.from_array(np.zeros((), dtype=np.float32), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
