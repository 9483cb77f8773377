"""Transfer learning on built-in data through the one engine, exports that plain timm loads, the CLI."""
import json

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from cvdemo import LimitError, ModelError
from cvdemo.datasets import DatasetError
from cvdemo.export import export_onnx, load_model, save_model
from cvdemo.train import StopFlag, TrainConfig
from cvdemo.transfer import build_network, transfer


def run(dataset, **kwargs):
    events = list(transfer(dataset, **kwargs))
    return events, events[-1].result


def test_linear_probe_learns_textures_and_reports(textures):
    events, result = run(textures, mode="probe", config=TrainConfig(epochs=60, lr=1e-2))
    assert [e.kind for e in events].count("epoch") == 60 and events[-1].kind == "done"
    assert result.val_acc > 0.9
    assert set(result.per_class_acc) == {"brick", "grass", "gravel"}
    assert result.confusion.sum() == 30 and np.trace(result.confusion) == round(result.val_acc * 30)
    top, _ = result.classifier.classify(textures.images[0], top_k=3)
    assert top[0][0] == "brick"  # the trained model classifies like any other
    assert len(result.misclassified) == 30 - np.trace(result.confusion)


def test_a_bigger_offline_backbone_probes_a_tiny_dataset(textures):
    """The Transfer tab offers the three offline networks as backbones: Lite1 sees its own 240 px crops."""
    few = textures.subset(range(0, len(textures), 5))  # 30 images, 10 per class
    _, result = run(few, mode="probe", arch="tf_efficientnet_lite1", config=TrainConfig(epochs=30, lr=1e-2))
    assert result.arch == "tf_efficientnet_lite1" and result.classifier.input_size == (240, 240)
    assert result.val_acc > 0.5  # chance is 1/3 (6 validation images)
    assert sum(p.numel() for p in result.classifier.model.parameters()) > 4_000_000  # the Lite1 backbone + head
    top, _ = result.classifier.classify(few.images[0], top_k=3)
    assert {label for label, _ in top} == {"brick", "grass", "gravel"}


def test_probe_head_retrains_on_cached_features(textures, monkeypatch):
    import cvdemo.transfer

    run(textures, mode="probe", config=TrainConfig(epochs=5, lr=1e-2, seed=0))
    calls = []
    monkeypatch.setattr(cvdemo.transfer, "extract_features", lambda *a, **k: calls.append(1))
    _, result = run(textures, mode="probe", config=TrainConfig(epochs=5, lr=5e-3, seed=0))
    assert calls == [] and result.val_acc > 0.5  # same split: features came from the cache


def test_the_features_cache_is_bounded_in_bytes_and_keeps_the_newest(monkeypatch):
    """Issue 16.2: cached feature sets are dropped oldest first past MAX_CACHED_FEATURE_BYTES (and past
    MAX_CACHED_FEATURE_SETS sets), so that many sessions' probes can't grow the cache without end."""
    import cvdemo.transfer as t
    from PIL import Image

    monkeypatch.setattr(t, "_feature_cache", {})
    monkeypatch.setattr(t, "MAX_CACHED_FEATURE_BYTES", 3 * 10 * 1280 * 4)  # three sets of 10 images
    monkeypatch.setattr(t, "extract_features", lambda images, model: np.zeros((len(images), 1280), np.float32))
    sets = [[Image.new("RGB", (8, 8), (i, j, 0)) for j in range(10)] for i in range(5)]
    for images in sets:
        t.cached_features(images, "tf_efficientnet_lite0")
    assert len(t._feature_cache) == 3 and sum(f.nbytes for f in t._feature_cache.values()) <= t.MAX_CACHED_FEATURE_BYTES
    monkeypatch.setattr(t, "extract_features", lambda *a: pytest.fail("the newest set was dropped"))
    t.cached_features(sets[-1], "tf_efficientnet_lite0")


def test_finetune_freezes_all_but_the_last_stages():
    model = build_network("finetune", "tf_efficientnet_lite0", 3)
    flags = [p.requires_grad for p in model.parameters()]
    assert not flags[0] and flags[-1]  # stem frozen, head trains
    assert 0.15 < sum(flags) / len(flags) < 0.35
    assert all(p.requires_grad for p in build_network("full", "tf_efficientnet_lite0", 3).parameters())


def test_the_new_head_learns_ten_times_faster_than_the_backbone():
    """Fine-tuning: the head starts random, the backbone is already good; weight decay skips biases and norms."""
    from cvdemo.transfer import HEAD_LR_SCALE, head_faster

    model = build_network("finetune", "tf_efficientnet_lite0", 3)
    optimizer = head_faster(model, TrainConfig(lr=1e-3, weight_decay=0.05))
    head = {id(p) for p in model.get_classifier().parameters()}
    for group in optimizer.param_groups:
        in_head = {id(p) in head for p in group["params"]}
        assert len(in_head) == 1  # a group is all head or all backbone
        assert group["lr"] == pytest.approx(1e-3 * (HEAD_LR_SCALE if in_head.pop() else 1))
        assert group["weight_decay"] == (0.0 if all(p.ndim <= 1 for p in group["params"]) else 0.05)
    trained = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert trained == {id(p) for p in model.parameters() if p.requires_grad} and HEAD_LR_SCALE == 10


CUTMIX = {"ops": [{"op": "hflip"}, {"op": "cutmix", "alpha": 1.0}]}


def few(textures, per_class=3):
    """A tiny slice of the textures (per_class images of each class): one short step of fine-tuning."""
    return textures.subset([i for c in range(3) for i in np.flatnonzero(textures.labels == c)[:per_class]])


def test_finetune_trains_with_cutmix_on_soft_labels(textures, monkeypatch):
    import cvdemo.train
    from cvdemo.augment import Pipeline

    mixed, losses = [], []
    real_mix, real_loss = Pipeline.mix_batch, cvdemo.train.classification_loss

    def mix_spy(self, images, labels, num_classes, generator=None):
        out = real_mix(self, images, labels, num_classes, generator)
        mixed.append(out[1])
        return out

    def loss_spy(model, batch, **kwargs):
        losses.append(batch[1])
        return real_loss(model, batch, **kwargs)

    monkeypatch.setattr(Pipeline, "mix_batch", mix_spy)
    monkeypatch.setattr(cvdemo.train, "classification_loss", loss_spy)
    events, result = run(few(textures), mode="finetune", augment=CUTMIX,
                         config=TrainConfig(epochs=1, batch_size=6, seed=1))
    assert events[-1].kind == "done" and len(mixed) == 1  # one training batch of 6, mixed
    soft = mixed[0]
    assert soft.shape == (6, 3) and torch.allclose(soft.sum(1), torch.ones(6))
    assert losses[0] is soft  # the training loss got the soft labels (validation: class indices)
    assert 0 <= result.history[0]["train_acc"] <= 1 and np.isfinite(result.history[0]["train_loss"])
    assert result.notes == []


def test_the_probe_says_it_did_not_mix(textures, monkeypatch):
    from cvdemo.augment import Pipeline

    monkeypatch.setattr(Pipeline, "mix_batch", lambda *a, **k: pytest.fail("the probe has no images to mix"))
    _, result = run(few(textures), mode="probe", augment=CUTMIX, copies=1, config=TrainConfig(epochs=2, lr=1e-2))
    (note,) = result.notes
    assert note.code == "transfer.mix_not_in_probe" and note.params == {"mixers": "CutMix"}
    assert "not applied" in note and "Fine-tune" in note


def test_stop_keeps_a_usable_model(textures):
    stop = StopFlag()
    events = []
    for event in transfer(textures, mode="probe", config=TrainConfig(epochs=200, lr=1e-2), stop=stop):
        events.append(event)
        if event.kind == "epoch" and event.epoch == 3:
            stop.set()
    assert events[-1].kind == "stopped" and events[-1].result.stopped
    assert len(events[-1].result.history) == 3


def test_bad_requests_are_refused(textures):
    with pytest.raises(LimitError):
        list(transfer(textures, mode="magic"))
    with pytest.raises(DatasetError, match="at least 2 classes"):
        list(transfer(textures.subset([0, 1, 2]), mode="probe"))  # one class only


def test_export_loads_back_in_plain_timm(textures, tmp_path):
    _, result = run(textures, mode="probe", config=TrainConfig(epochs=30, lr=1e-2))
    folder = save_model(result.classifier.model, tmp_path / "model", result.classes)
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "tf_efficientnet_lite0" and config["label_names"] == ["brick", "grass", "gravel"]
    plain = timm.create_model("tf_efficientnet_lite0", num_classes=3, checkpoint_path=str(folder / "model.safetensors"))
    x = torch.from_numpy(result.classifier.preprocess(textures.images[60]))
    with torch.no_grad():
        assert torch.allclose(plain.eval()(x), result.classifier.model.cpu()(x.contiguous()), atol=1e-4)
    model, classes = load_model(folder)
    assert classes == result.classes
    onnx_path = export_onnx(result.classifier.model, tmp_path / "model.onnx", (224, 224))
    import onnxruntime

    out = onnxruntime.InferenceSession(str(onnx_path)).run(None, {"input": x.numpy()})[0]
    assert out.shape == (1, 3) and np.abs(out - plain(x).detach().numpy()).max() < 1e-3


def test_untrusted_checkpoints_are_never_unpickled(tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "model.pth").write_bytes(b"not even a pickle")
    (folder / "config.json").write_text(json.dumps({"architecture": "tf_efficientnet_lite0", "num_classes": 3}))
    with pytest.raises(ModelError, match="safetensors"):
        load_model(folder)
    save_file({"x": torch.zeros(2)}, str(folder / "model.safetensors"))  # valid file, wrong tensors
    with pytest.raises(ModelError) as err:
        load_model(folder)
    assert err.value.code == "model.bad_weights"
    (folder / "config.json").write_text('{"architecture": "os.system", "num_classes": 3}')
    with pytest.raises(ModelError, match="config.json"):
        load_model(folder)


def test_cli_train_writes_model_onnx_and_metrics(tmp_path, capsys):
    """`python -m cvdemo train` (its main, in this process; the torchrun test below starts it for real)."""
    from cvdemo.__main__ import main

    out = tmp_path / "run"
    assert main(["train", "--data", "builtin:textures", "--mode", "probe", "--epochs", "30", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "model.onnx", "metrics.json"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val_acc"] > 0.9 and len(metrics["history"]) == 30
    assert "validation accuracy" in capsys.readouterr().out


AUGMENT = {"ops": [{"op": "crop", "scale": [0.5, 1.0]}, {"op": "hflip"}, {"op": "rotation", "degrees": 20},
                   {"op": "brightness", "brightness": [0.7, 1.3]}]}


def test_cli_train_same_seed_writes_the_same_weights(few_textures, tmp_path):
    """A seed fixes the run: twice --seed 0 writes byte-identical weights (the new head included), --seed 1 others."""
    from cvdemo.__main__ import main
    from cvdemo.uploads import export_zip

    data = export_zip(few_textures, tmp_path / "few.zip")
    weights = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        torch.rand(3)  # whatever the global RNG did in between does not matter
        assert main(["train", "--data", str(data), "--mode", "probe", "--epochs", "3", "--seed", str(seed),
                     "--out", str(tmp_path / name)]) == 0
        weights[name] = (tmp_path / name / "model.safetensors").read_bytes()
    assert weights["a"] == weights["b"]
    assert weights["a"] != weights["c"]


@pytest.mark.parametrize("mode, epochs, use_augment", [("probe", 5, False), ("finetune", 1, True)])
def test_the_tab_same_seed_trains_the_same_model(few_textures, mode, epochs, use_augment):
    """The Transfer tab's handler twice with the same seed: the same weights, for the probe and for fine-tuning
    with augmentation (the new head, the augmentation draws, the shuffling all come from the seed)."""
    from cvdemo.ui.session import Workspace
    from cvdemo.ui.transfer import train

    states = []
    for _ in range(2):
        torch.rand(7)  # whatever the global RNG did in between does not matter
        ws = Workspace()
        ws.dataset = few_textures
        *_, last = train(ws, "tf_efficientnet_lite0", mode, False, epochs, 16, 1e-3, 1e-4, 0.2, 3, use_augment,
                         json.dumps(AUGMENT))
        assert ws.result is not None and ws.result.mode == mode
        states.append({k: v.detach().cpu().clone() for k, v in ws.result.classifier.model.state_dict().items()})
    a, b = states
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fine_tuning_augmentation_draws_from_the_seed_epoch_and_image(few_textures):
    """ImageSet's augmentation comes from (seed, epoch, index), never from the global RNG."""
    from cvdemo.augment import build_pipeline
    from cvdemo.inference import get_classifier
    from cvdemo.transfer import ImageSet

    base, pipeline = get_classifier("tf_efficientnet_lite0"), build_pipeline(AUGMENT)

    def image(seed: int, epoch: int, global_seed: int) -> torch.Tensor:
        data = ImageSet(few_textures, base, pipeline, seed=seed)
        data.set_epoch(epoch)
        torch.manual_seed(global_seed)
        return data[0][0]

    first = image(0, 1, global_seed=0)
    assert torch.equal(first, image(0, 1, global_seed=1))  # the global RNG plays no part
    assert not torch.equal(first, image(0, 2, global_seed=0))  # another epoch: other draws
    assert not torch.equal(first, image(1, 1, global_seed=0))  # another seed: other draws
    assert torch.equal(ImageSet(few_textures, base)[0][0], ImageSet(few_textures, base)[0][0])  # no pipeline


def test_cli_train_refuses_bad_data_clearly(tmp_path, capsys):
    from cvdemo.__main__ import main

    assert main(["train", "--data", str(tmp_path / "missing.zip")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_the_from_scratch_comparison_is_shown_only_on_a_fair_budget():
    """Same epochs, or at least the same time with one full epoch; an untrained scratch network is no comparison."""
    from types import SimpleNamespace

    from cvdemo.transfer import scratch_comparison, scratch_config

    pretrained = SimpleNamespace(history=[{}] * 5, val_acc=0.9)
    assert scratch_comparison(pretrained, SimpleNamespace(history=[{}] * 5, val_acc=0.6)) == {
        "basis": "epochs", "epochs": 5, "pretrained_epochs": 5, "gain": pytest.approx(30.0)}
    assert scratch_comparison(pretrained, SimpleNamespace(history=[{}], val_acc=0.4))["basis"] == "time"
    assert scratch_comparison(pretrained, SimpleNamespace(history=[], val_acc=1 / 3)) == {
        "basis": None, "epochs": 0, "pretrained_epochs": 5, "gain": None}
    config = scratch_config(3.0, seed=1, epochs=5)
    assert config.epochs == 5 and config.max_seconds == 20.0 and config.seed == 1  # at least MIN_SCRATCH_SECONDS


def test_the_tab_speaks_korean_and_its_lesson_quotes_the_run():
    """The Transfer tab's handlers for a Korean session: counts, status, report, curves and the lesson panel
    in Korean, the panel with this run's measured accuracy (and, beside a from-scratch run, the gain)."""
    import re
    from types import SimpleNamespace

    from cvdemo.ui.session import Workspace
    from cvdemo.ui.transfer import load_dataset, train, your_run

    hangul = re.compile(r"[\uac00-\ud7a3]")
    ws = Workspace()
    ws.lang = "ko"
    counts = load_dataset(ws, "builtin", "textures", None, "", "", "", "", None, None, None, None)
    assert counts.startswith("이미지 147장, 클래스 3개")
    *_, last = train(ws, "tf_efficientnet_lite0", "probe", False, 20, 128, 0.01, 1e-4, 0.2, 0, False, "{}")
    status, loss, _, report, _, gallery, _, lesson = last
    assert status.startswith("완료") and "| 클래스 | 정확도 |" in report
    assert set(loss["split"]) == {"학습", "검증"} and all(hangul.search(item["caption"]) for item in gallery.value)
    acc = f"{ws.result.val_acc:.1%}"
    assert lesson.startswith("**내 실행 결과:**") and f"검증 정확도가 **{acc}** 나왔습니다" in lesson
    gain = f"**{(ws.result.val_acc - 1 / 3) * 100:+.1f}%p**"
    beside = your_run(ws, ws.result, 147, SimpleNamespace(history=[{}, {}], val_acc=1 / 3), 20.0)
    assert "**33.3%**" in beside and gain in beside and "20 에폭 중 2 에폭" in beside and "시간이 같을 때" in beside
    same = your_run(ws, ws.result, 147, SimpleNamespace(history=[{}] * 20, val_acc=1 / 3), 20.0)
    assert gain in same and "에폭이 같을 때" in same
    never = your_run(ws, ws.result, 147, SimpleNamespace(history=[], val_acc=1 / 3), 20.0)
    assert "비교할 수 없습니다" in never and "%p" not in never  # an untrained network's score is no comparison
    ws.lang = "en"  # the language switch re-renders the panel from the same numbers
    assert ws.shown("transfer").startswith("**Your run:**") and f"reached **{acc}**" in ws.shown("transfer")
