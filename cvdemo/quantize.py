"""Static int8 for the CPU fast path: an onnxruntime QDQ model built once per model and cached beside the fp32 one.

The recipe (figures and the choices behind it: docs/decisions.md, issue 16.1):
- the fp32 export with its TensorFlow "same" pads fixed (`export._fix_same_padding`), then onnxruntime's
  `quant_pre_process` (shape inference; each Pad folded into its Conv);
- `quantize_static` in QDQ format: weights int8 per output channel (symmetric), activations uint8 per tensor with
  MinMax ranges on the CALIBRATION photos, preprocessed exactly as for inference; each ReLU6 becomes its
  activation's [0, 6] range. The pooling and the classifier stay float: quantised logits tie (a step of ~0.1),
  and pooled features on a 6/255 grid would be what the linear probe trains on;
- bias correction (Nagel et al. 2019, "Data-free quantization"): each conv's bias takes back the mean shift its
  rounded weights cause on the calibration images, (W - W_int8) · E[x].
The int8 model has two outputs: "output" (logits) and "features" (the pooled features, for the probe).
int8 needs VNNI (AVX-512 VNNI or AVX-VNNI: 8-bit dot products); without it onnxruntime's int8 is no faster.
"""
from __future__ import annotations

import copy
import importlib.util
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .cache import atomic_write

RECIPE = "int8-v1"  # part of the cache key: a change to the recipe builds new files (and needs AGREEMENT re-measured)
# How often this recipe keeps fp32's top-1 class: `python scripts/agreement.py` on its 330 natural images (photos,
# LFW faces, texture tiles; docs/decisions.md, issue 16.1). int8 is a model's default only from MIN_AGREEMENT up.
AGREEMENT_IMAGES = 330
AGREEMENT = {"tf_efficientnet_lite0": 271 / 330, "tf_efficientnet_lite1": 250 / 330, "tf_efficientnet_lite2": 262 / 330}
MIN_AGREEMENT = 0.99
# The calibration photos (package, path inside it): none of them is in scripts/agreement.py's measuring set.
CALIBRATION = (("skimage", "data/astronaut.png"), ("skimage", "data/hubble_deep_field.jpg"),
               ("skimage", "data/motorcycle_right.png"))
SCALES = (1.0, 0.6, 0.35)  # each photo whole, and crops of these fractions of its sides at three places (21 images)


def package_file(package: str, path: str) -> Path:
    """A data file that an installed package ships."""
    return Path(importlib.util.find_spec(package).origin).parent / path


def calibration_images() -> list[Image.Image]:
    """The images int8 ranges and bias corrections are measured on (deterministic: named photos, fixed crops)."""
    from .images import load_image

    out = []
    for package, path in CALIBRATION:
        photo = load_image(package_file(package, path))
        width, height = photo.size
        for scale in SCALES:
            w, h = int(width * scale), int(height * scale)
            for x, y in dict.fromkeys(((0, 0), ((width - w) // 2, (height - h) // 2), (width - w, height - h))):
                out.append(photo.crop((x, y, x + w, y + h)))
    return out


@lru_cache(maxsize=1)
def cpu_has_vnni() -> bool:
    """Whether this CPU has 8-bit dot products onnxruntime's int8 kernels use on x86 (AVX-512 VNNI or AVX-VNNI),
    read from /proc/cpuinfo; False where that can't be read (other systems: they keep fp32)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_vnni" in flags or "avx_vnni" in flags


def quantize(fp32: Path, path: Path, images: np.ndarray) -> Path:
    """Build the int8 model of the fp32 ONNX `fp32` (`export.export_onnx`: logits, fixed pads) at `path` (written
    atomically); `images` are the calibration images preprocessed as for inference, (N, 3, H, W)."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = [images[i:i + 8] for i in range(0, len(images), 8)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            return next(({"input": b} for b in self.batches), None)

    with tempfile.TemporaryDirectory() as tmp:
        pre, qdq = Path(tmp, "pre.onnx"), Path(tmp, "qdq.onnx")
        quant_pre_process(str(fp32), str(pre))
        float_model = onnx.load(str(pre))
        head = [n.name for n in float_model.graph.node if n.op_type in ("GlobalAveragePool", "Flatten", "Gemm")]
        quantize_static(str(pre), str(qdq), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=head,
                        calibrate_method=CalibrationMethod.MinMax)
        model = onnx.load(str(qdq))
    _correct_biases(model, float_model, batches)
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    model.graph.node.append(onnx.helper.make_node("Identity", [gemm.input[0]], ["features"], name="features"))
    model.graph.output.append(onnx.helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, None))
    atomic_write(Path(path), lambda tmp: onnx.save(model, str(tmp)))
    return Path(path)


def _correct_biases(model, float_model, batches: list[np.ndarray]) -> None:
    """Bias correction in place: for each int8 conv, bias += (W - W_int8) · E[x], with E[x] the per-channel mean of
    its (int8) input over the calibration batches, W its float weights (by node name in `float_model`)."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    init = {i.name: i for i in model.graph.initializer}
    made_by = {out: node for node in model.graph.node for out in node.output}
    float_weights = {n.name: n.input[1] for n in float_model.graph.node if n.op_type == "Conv"}
    float_init = {i.name: i for i in float_model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv" and n.name in float_weights and len(n.input) == 3]
    inputs = list(dict.fromkeys(n.input[0] for n in convs))
    probe = copy.deepcopy(model)
    del probe.graph.output[:]
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in inputs)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the QDQ arithmetic as written
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    means, count = dict.fromkeys(inputs, 0.0), sum(map(len, batches))
    for batch in batches:
        for name, value in zip(inputs, session.run(None, {"input": batch})):
            means[name] = means[name] + value.mean(axis=(2, 3)).sum(0) / count

    def array(name):
        return numpy_helper.to_array(init[name])

    for conv in convs:
        w_dq, b_dq = made_by[conv.input[1]], made_by[conv.input[2]]
        zero = array(w_dq.input[2]).astype(np.float32).reshape(-1, 1, 1, 1)
        w_int8 = (array(w_dq.input[0]).astype(np.float32) - zero) * array(w_dq.input[1]).reshape(-1, 1, 1, 1)
        w_float = numpy_helper.to_array(float_init[float_weights[conv.name]])
        error = (w_float - w_int8).sum(axis=(2, 3))  # (out, in / groups)
        groups = next((a.i for a in conv.attribute if a.name == "group"), 1)
        mean = means[conv.input[0]]
        shift = error @ mean if groups == 1 else error[:, 0] * mean  # dense, or depthwise (one input per output)
        bias = array(b_dq.input[0]).astype(np.int64) + np.round(shift / array(b_dq.input[1]))
        bias = np.clip(bias, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
        init[b_dq.input[0]].CopyFrom(numpy_helper.from_array(bias, b_dq.input[0]))
