"""Distilling a user's classifier into a small image student (cvdemo.distill.image_students): a Transfer model,
an ImageNet teacher label-free, timm and pretrained students each at its own input size, reproducible by seed."""
import html
import json
import re

import pytest
import torch

from cvdemo import distill as d
from cvdemo.errors import ModelError
from cvdemo.export import load_model
from cvdemo.train import TrainConfig, one_thread


@pytest.fixture(autouse=True)
def few_latency_runs(monkeypatch):
    """Each test times its two models in 3 passes after 1 (the app: 30 after 5; test_measure checks the timing)."""
    monkeypatch.setattr(d.image_students, "LATENCY_RUNS", 3)
    monkeypatch.setattr(d.image_students, "LATENCY_WARMUP", 1)


def test_a_transfer_model_distils_into_a_much_smaller_student(textures, textures_probe):
    """Acceptance (textures): a Transfer-tab teacher -> a student >= 5x smaller keeping >= 90% of its accuracy."""
    from cvdemo.distill import distill_classifier

    data, teacher = textures, textures_probe.classifier
    events = list(distill_classifier(teacher, data, config=TrainConfig(epochs=12, batch_size=32, lr=3e-3), copies=0))
    result = events[-1].result
    assert events[-1].kind == "done" and result["compression"] >= 5
    assert result["student"]["val_acc"] >= 0.9 * result["teacher"]["val_acc"]
    top, _ = result["classifier"].classify(data.images[0], top_k=1)  # usable like any classifier
    assert top[0][0] in data.classes
    assert "smaller" in result["honest"]


def test_a_small_timm_model_can_be_the_student(few_textures, textures_probe, tmp_path):
    """The student may be any factory model (here timm's mobilenetv3_small_050, from scratch)."""
    from cvdemo.distill import distill_classifier
    from cvdemo.export import export_onnx, load_model, save_model

    data, teacher = few_textures, textures_probe.classifier
    events = list(distill_classifier(teacher, data, config=TrainConfig(epochs=2, batch_size=32, lr=3e-3), copies=1,
                                     student="mobilenetv3_small_050"))
    result = events[-1].result
    assert result["compression"] > 2 and result["classifier"].name == "mobilenetv3_small_050"
    model, classes = load_model(save_model(result["classifier"].model, tmp_path / "s", result["classes"]))
    assert classes == ["brick", "grass", "gravel"]
    assert export_onnx(model, tmp_path / "s.onnx", (64, 64)).stat().st_size > 0


@one_thread()  # tiny models: see one_thread's docstring
def test_the_same_seed_distils_the_same_student(few_textures):
    """The student's initial weights, the transfer set's augmentation and the training all come from the
    seed: twice seed 0 gives the same student, seed 1 another (a tiny teacher keeps this quick)."""
    from cvdemo.inference import Classifier
    from cvdemo.models import create_model

    torch.manual_seed(0)
    model = create_model("kd_student_cnn", num_classes=3)
    teacher = Classifier("tiny teacher", model, labels=list(few_textures.classes), runtime="torch",
                         data_config=d.student_data_config(model, False))
    students = []
    for seed in (0, 0, 1):
        torch.rand(7)  # whatever the global RNG did in between does not matter
        events = list(d.distill_classifier(teacher, few_textures, copies=1,
                                           config=TrainConfig(epochs=1, batch_size=16, seed=seed, device="cpu")))
        students.append({k: v.detach().cpu().clone() for k, v in events[-1].result["classifier"].model.state_dict()
                         .items()})

    def same(a, b):
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    assert same(students[0], students[1]) and not same(students[0], students[2])


def test_an_imagenet_teacher_distils_label_free_into_a_small_student(few_textures, tmp_path):
    """Any factory classifier can teach: tf_efficientnet_lite0's 1000 ImageNet classes are not the dataset's,
    so the student gets those 1000 outputs and learns from the KD term alone; the report measures
    agreement with the teacher on held-out images, size and speed (tiny budget: 1 epoch, no copies)."""
    events = list(d.distill_any("tf_efficientnet_lite0", few_textures, config=TrainConfig(epochs=1, batch_size=16),
                                copies=0))
    result = events[-1].result
    assert events[-1].kind == "done" and result["label_free"] and result["alpha"] == 1.0
    student = result["classifier"]
    assert len(result["classes"]) == 1000 and student.labels[0] == "tench, Tinca tinca"
    assert student.model.head.out_features == 1000 and result["transfer"] == 24 and result["held_out"] == 6
    assert result["teacher"]["val_acc"] is None and 0 <= result["student"]["val_acc"] == result["kept"] <= 1
    assert 0 < result["baseline"] <= 1 and result["compression"] > 20 and result["speedup"] > 0
    assert result["honest"].startswith("No labels exist for the teacher's 1,000 classes")
    top, _ = student.classify(few_textures.images[0], top_k=3)  # a classifier like any other, ImageNet labels
    assert all(label in result["classes"] for label, _ in top)
    files = d.save_student(student, tmp_path / "student")  # through export.save_model, and ONNX
    config = json.loads(files[1].read_text())
    assert config["architecture"] == "kd_student_cnn" and config["label_names"] == result["classes"]
    assert config["pretrained_cfg"]["input_size"] == [3, 64, 64] and all(f.stat().st_size > 0 for f in files)
    reloaded, classes = load_model(tmp_path / "student")  # every exported file loads back through export
    assert classes == result["classes"] and type(reloaded) is type(student.model)
    # label-free only where the classes differ: a teacher of textures' own classes gets their labels
    data, label_free = d.distill_plan(student, few_textures)
    assert data is few_textures and label_free
    data, label_free = d.distill_plan(type("Teacher", (), {"labels": ["brick", "grass", "gravel"]})())
    assert data.name == "textures" and len(data) == 147 and not label_free


def test_a_transfer_teacher_is_scored_on_that_runs_own_held_out_images(few_textures, monkeypatch):
    """Distilling a Transfer run's model reuses that run's split: the teacher's accuracy is its accuracy on
    exactly the run's validation images, and none of them is among the student's training images (a fresh
    split with another seed would put some of the teacher's training images in the "validation" set)."""
    from cvdemo.transfer import transfer

    run = list(transfer(few_textures, mode="probe", config=TrainConfig(epochs=30, lr=1e-2, seed=7)))[-1].result
    train, val = run.train_data, run.val_data
    assert len(train) + len(val) == len(few_textures) and len(val) == 6
    seen, real = {}, d.image_students.distill

    def spy(teacher, student, train_images, labels, unlabeled, *args, **kwargs):
        seen.update(train=list(train_images), unlabeled=list(unlabeled), val=list(kwargs["val_images"]))
        return real(teacher, student, train_images, labels, unlabeled, *args, **kwargs)

    monkeypatch.setattr(d.image_students, "distill", spy)
    events = list(d.distill_any(run, config=TrainConfig(epochs=1, batch_size=32, lr=3e-3), copies=1))
    result = events[-1].result
    expected = float((run.classifier.probabilities(val.images).argmax(1) == val.labels).mean())
    assert result["teacher"]["val_acc"] == expected and result["held_out"] == len(val)
    assert [id(im) for im in seen["val"]] == [id(im) for im in val.images]
    assert [id(im) for im in seen["train"]] == [id(im) for im in train.images]
    assert len(seen["unlabeled"]) == len(train)  # one augmented copy of each training image, none of val's
    held_out = {im.tobytes() for im in val.images}
    assert not any(im.tobytes() in held_out for im in seen["train"])


def test_a_hub_teacher_offline_fails_fast_and_clearly(few_textures):
    import time

    start = time.monotonic()
    with pytest.raises(ModelError, match="can't be reached.*tf_efficientnet_lite0"):
        d.distill_any("resnet50.a1_in1k", few_textures)
    assert time.monotonic() - start < 10


def test_a_pretrained_student_starts_from_imagenet_weights_at_its_own_input_size():
    """A pretrained timm student keeps the ImageNet backbone (a new head for the classes) and sees images at
    the size and normalisation its weights were trained with; a Hub student offline fails at once."""
    from cvdemo.errors import ModelError
    from cvdemo.models import create_model

    student = d.build_image_student("tf_efficientnet_lite0", 3, pretrained=True)
    reference = create_model("tf_efficientnet_lite0")
    assert torch.equal(student.conv_stem.weight, reference.conv_stem.weight)
    assert student.classifier.out_features == 3
    assert d.student_data_config(student, True)["input_size"] == (3, 224, 224)
    # a StudentCNN has no pretrained weights: always 64 px
    assert d.student_data_config(d.build_image_student("kd_student_cnn", 3, pretrained=True), True)["input_size"] == \
        (3, d.image_students.STUDENT_SIZE, d.image_students.STUDENT_SIZE)
    scratch = d.build_image_student("tf_efficientnet_lite0", 3)
    assert not torch.equal(scratch.conv_stem.weight, reference.conv_stem.weight)
    with pytest.raises(ModelError, match="can't be reached"):
        d.build_image_student("mobilenetv3_small_050", 3, pretrained=True)
    # through distill_classifier, the student's Classifier sees 224 px: the next test distils into this student


def test_a_fine_tuned_lite2_teaches_a_pretrained_lite0_each_at_its_own_input_size(few_textures, monkeypatch):
    """The bigger network as teacher: a Lite2 probe (260 px) from the Transfer tab distils into a pretrained Lite0
    student (224 px) on the user's images; the report gives both sizes, both latencies and the agreement. 15 images
    (5 a class: 12 to train on, 3 held out), each through the two big networks."""
    from cvdemo.transfer import transfer
    from cvdemo.ui import distill as ui
    from cvdemo.ui.session import Workspace

    images = few_textures.subset(range(0, len(few_textures), 2))
    result = list(transfer(images, mode="probe", arch="tf_efficientnet_lite2",
                           config=TrainConfig(epochs=20, lr=1e-2)))[-1].result
    assert result.classifier.input_size == (260, 260) and len(result.val_data) == 3
    ws = Workspace()
    ws.result, ws.dataset = result, images
    *_, last = ui.distill_model(ws, 4, 0.9, 1, 0, "tf_efficientnet_lite0", ui.TRANSFER, True)
    status, _, report, lesson, name, _ = last
    report = html.unescape(report)  # names reach the Markdown escaped; the page shows them as they are
    student = ws.models[name]
    assert student.input_size == (224, 224) and student.labels == ["brick", "grass", "gravel"]
    assert "| Teacher: tf_efficientnet_lite2 (probe, 3 classes) (260 px) |" in report
    assert "| Student: tf_efficientnet_lite0 (pretrained on ImageNet, 224 px) |" in report
    sizes = re.findall(r"\| ([\d,]+) \| (\d+\.\d MB) \| (\d+\.\d\d) \|", report)
    assert len(sizes) == 2  # parameters, size on disk, ms/image: teacher, then student
    (tparams, tsize, _), (sparams, ssize, _) = sizes
    assert int(tparams.replace(",", "")) > int(sparams.replace(",", "")) > 3_000_000 and tsize != ssize
    agreement = re.search(r"agrees with the teacher's top-1 on (\d+\.\d%) of 3 held-out images", report).group(1)
    assert re.search(r"it is 1\.\d× smaller \(parameters\) and \d+(\.\d)?× (faster|slower)", report)  # not "1×"
    assert "the median of 3 runs after 1 warm-up ones" in report
    assert lesson.startswith("**Your run:**") and agreement in lesson and "260 px" in lesson and "224 px" in lesson
    ws.lang = "ko"
    assert "일치했습니다" in ws.shown("distill") and agreement in ws.shown("distill")
    ws.close()
