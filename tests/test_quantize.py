"""The static int8 path (cvdemo.quantize): close to fp32 on photos it was not calibrated on, built once, and fp32
(said on the info line, in both languages) where int8 does not hold."""
import copy

import numpy as np
import pytest

from cvdemo import inference, quantize
from cvdemo.images import load_image
from cvdemo.inference import Classifier, default_precision, get_classifier
from cvdemo.ui.classify import classify_image, describe
from cvdemo.ui.session import Workspace

PHOTOS = (("skimage", "data/coffee.png"), ("skimage", "data/rocket.jpg"), ("gradio", "media_assets/images/lion.jpg"),
          ("gradio", "media_assets/images/cheetah.jpg"), ("sklearn", "datasets/images/china.jpg"))


@pytest.fixture(scope="module")
def fp32_and_int8():
    model = get_classifier().model
    return (Classifier("tf_efficientnet_lite0", model, precision="fp32"),
            Classifier("tf_efficientnet_lite0", model, precision="int8"))


def test_int8_gives_fp32s_answer_on_photos_it_was_not_calibrated_on(fp32_and_int8):
    fp32, int8 = fp32_and_int8
    assert not set(PHOTOS) & set(quantize.CALIBRATION)
    images = [load_image(quantize.package_file(*photo)) for photo in PHOTOS]
    p32, p8 = fp32.probabilities(images), int8.probabilities(images)
    for photo, a, b in zip(PHOTOS, p32, p8):
        assert a.argmax() == b.argmax(), photo
        assert len(set(np.argsort(-a)[:5]) & set(np.argsort(-b)[:5])) >= 4, photo
        assert np.abs(a - b).max() < 0.05, photo
    # the pooled features (what a linear probe trains on) come out of the same int8 model, float and close
    f32, f8 = fp32.features(np.concatenate([fp32.preprocess(im) for im in images])), int8.features(
        np.concatenate([int8.preprocess(im) for im in images]))
    assert f8.shape == f32.shape == (len(images), 1280) and f8.dtype == np.float32
    cosine = (f32 * f8).sum(1) / np.linalg.norm(f32, axis=1) / np.linalg.norm(f8, axis=1)
    assert cosine.min() > 0.97


def test_the_int8_model_is_built_once_and_cached_by_recipe_and_weights(fp32_and_int8, monkeypatch):
    fp32, _ = fp32_and_int8
    files = list(inference.cache_dir().glob(f"tf_efficientnet_lite0-{quantize.RECIPE}-*.onnx"))
    assert len(files) == 1 and not list(inference.cache_dir().glob("*.tmp"))
    monkeypatch.setattr(quantize, "quantize", lambda *a: pytest.fail("rebuilt a cached int8 model"))
    again = Classifier("tf_efficientnet_lite0", fp32.model, precision="int8")
    assert again.runtime_label == "onnxruntime int8"


def test_fp32_where_int8_does_not_hold_and_the_info_line_says_why(monkeypatch, examples):
    name = "tf_efficientnet_lite0"
    monkeypatch.setitem(quantize.AGREEMENT, name, 0.995)
    monkeypatch.setattr(quantize, "cpu_has_vnni", lambda: True)
    assert default_precision(name, "onnxruntime") == ("int8", None)
    assert default_precision(name, "torch") == ("fp32", None)  # a GPU runs torch
    assert default_precision("resnet50.a1_in1k", "onnxruntime") == ("fp32", None)  # only the offline networks

    monkeypatch.setattr(quantize, "cpu_has_vnni", lambda: False)  # a CPU without 8-bit dot products
    precision, note = default_precision(name, "onnxruntime")
    assert precision == "fp32" and note.code == "classify.no_vnni"
    monkeypatch.setattr(quantize, "cpu_has_vnni", lambda: True)
    monkeypatch.setitem(quantize.AGREEMENT, name, 0.824)  # int8 kept fp32's top-1 too rarely
    precision, note = default_precision(name, "onnxruntime")
    assert precision == "fp32" and note.code == "classify.int8_disagrees" and "82.4%" in note

    classifier = Classifier(name, get_classifier().model)
    assert (classifier.precision, classifier.runtime_label) == ("fp32", "onnxruntime fp32")
    ws = Workspace()
    ws.models["mine"] = classifier
    _, info = classify_image(examples["coffee"], "mine", ws)
    info = copy.deepcopy(info)  # as gr.State keeps it
    line, *_ = describe(info, ws)
    assert "onnxruntime fp32" in line and "int8 off: it kept fp32's top-1 class on only 82.4% of 330" in line
    ws.lang = "ko"
    line, *_ = describe(info, ws)
    assert "int8은 쓰지 않습니다" in line and "330장 중 82.4%" in line
