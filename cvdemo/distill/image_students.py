"""Distilling a user's classifier (e.g. fine-tuned in the Transfer tab, or the ImageNet network itself) into
a small image student, each model seeing the images its own way; saving the student; the ratios said the
right way round.

    for event in distill_any("tf_efficientnet_lite0", my_dataset): ...   # any classifier -> a small image student
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import measure
from ..datasets import Dataset, load_builtin, split
from ..export import export_onnx, save_model
from ..models import create_model
from ..models.students import StudentCNN
from ..train import Event, StopFlag, TrainConfig, predict, seeded
from .kd import distill

__all__ = ["STUDENTS", "build_image_student", "distill_any", "distill_classifier", "distill_plan", "right_way_round",
           "save_student", "student_data_config"]


LATENCY_RUNS, LATENCY_WARMUP = 30, 5  # a distilled pair's ms/image: 30 timed batch-1 CPU passes after 5
STUDENT_SIZE = 64  # a student from scratch sees 64x64 images (the teacher its own crops: 224 px Lite0, 260 px Lite2)
# Offered in the app (any factory name works): the small CNN, the smallest offline ImageNet network (pretrained: a
# fine-tuned Lite1/Lite2 teacher distils into it), and two small timm models (from scratch offline; pretrained: Hub).
STUDENTS = ("kd_student_cnn", "tf_efficientnet_lite0", "mobilenetv3_small_050", "resnet10t")


def build_image_student(name: str, num_classes: int, pretrained: bool = False) -> nn.Module:
    """"kd_student_cnn" (StudentCNN, always from scratch) or any name the model factory builds: from scratch, or
    `pretrained` (ImageNet weights with a new head: tf_efficientnet_lite0 offline, other names from the Hub,
    which fails at once, clearly, offline). Random layers draw from torch's global RNG: build it inside
    `cvdemo.train.seeded(seed)`."""
    return create_model(name, pretrained=pretrained, num_classes=num_classes)


def student_data_config(student: nn.Module, pretrained: bool) -> dict:
    """How the student sees an image: 64 px from scratch (small and fast); a pretrained student at the size
    and normalisation its weights were trained with."""
    if pretrained and not isinstance(student, StudentCNN):
        import timm.data

        return timm.data.resolve_model_data_config(student)
    return {"input_size": (3, STUDENT_SIZE, STUDENT_SIZE), "crop_pct": 1.0, "interpolation": "bilinear",
            "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


def distill_classifier(teacher, dataset: Dataset, *, T: float = 4.0, alpha: float = 0.9,
                       config: TrainConfig | None = None, copies: int = 3, val_fraction: float = 0.2,
                       stop: StopFlag | None = None, student: str = "kd_student_cnn",
                       label_free: bool = False, pretrained_student: bool = False,
                       val: Dataset | None = None) -> Iterator[Event]:
    """Distill a `cvdemo.inference.Classifier` (e.g. a Transfer-tab model) into a small student
    (`student`: StudentCNN by default, or a small timm model such as mobilenetv3_small_050, from scratch or
    `pretrained_student`) on
    `dataset`: the training split with labels, plus `copies` augmented versions of each training
    image as the unlabeled transfer set. Yields the engine's Events; the last one carries `.result`:
    teacher and student validation accuracy, parameters, bytes on disk, CPU latency (ms per image: batch 1,
    torch, `cvdemo.measure.latency_ms`: LATENCY_RUNS passes after LATENCY_WARMUP) and input size, `agreement`
    (the student's top-1 equal to the teacher's on the held-out images), the student as a Classifier, and an
    honest sentence.

    Each model sees the images its own way: the teacher through its Classifier's preprocessing (e.g. 260 px
    for a fine-tuned Lite2), the student through `student_data_config` (224 px for a pretrained Lite0, 64 px
    from scratch).

    `val`: the held-out images (e.g. a Transfer run's own `val_data`, so that the teacher is scored on images
    it never trained on); `dataset` is then the training split as it is. None: `val_fraction` of `dataset`
    is split off (stratified, seeded with `config.seed`).

    `label_free`: the teacher's classes are not the dataset's (an ImageNet teacher on the user's images),
    so there are no labels for them. The dataset's labels are not used: the student gets the teacher's
    outputs (all its classes, with its labels) and learns from the KD term alone (alpha = 1) on every
    training image and copy; its "val_acc" is then top-1 agreement with the teacher on the held-out split,
    next to `baseline`, the agreement of always answering the teacher's most common class there."""
    from ..augment import build_pipeline
    from ..inference import Classifier
    from ..transfer import ImageSet

    config = config or TrainConfig(epochs=20, batch_size=32, lr=3e-3)
    if val is None:
        train, val = split(dataset, val_fraction, seed=config.seed)
    elif list(val.classes) != list(dataset.classes):
        raise ValueError(f"val's classes {val.classes} are not the dataset's {dataset.classes}")
    else:
        train = dataset
    classes = list(teacher.labels) if label_free else list(dataset.classes)
    with seeded(config.seed):  # the student's initial weights (a pretrained one's new head): fixed by the seed
        student_name, student = student, build_image_student(student, len(classes), pretrained_student)
    student_clf = Classifier(student_name, student, labels=classes, runtime="torch",
                             data_config=student_data_config(student, pretrained_student))
    generator = torch.Generator().manual_seed(config.seed)
    pipeline = build_pipeline({"ops": [{"op": "crop", "scale": [0.5, 1.0]}, {"op": "hflip"}, {"op": "vflip"}]})
    extra = [pipeline(im, generator) for im in train.images for _ in range(copies)]

    def teacher_in(im):
        return teacher.preprocess(im)[0]

    def top1(clf) -> np.ndarray:  # on the held-out images, each model through its own preprocessing
        return predict(clf.model, ImageSet(val, clf), amp=config.amp).argmax(1).numpy()

    predicted = {"teacher": top1(teacher)}  # once: the teacher is never trained
    if label_free:  # what there is to match on held-out images: the teacher's own top-1
        alpha, targets = 1.0, predicted["teacher"]
        labelled, labels, unlabeled = [], [], list(train.images) + extra
    else:
        targets, labelled, labels, unlabeled = val.labels, train.images, train.labels, extra
    last = None
    for last in distill(teacher.model, student, labelled, labels, unlabeled, teacher_in,
                        lambda im: student_clf.preprocess(im)[0], config, T=T, alpha=alpha, stop=stop,
                        val_images=val.images, val_labels=targets):
        if last.kind not in ("done", "stopped"):
            yield last
    student_clf.model = student.eval()
    predicted["student"] = top1(student_clf)

    rows = {}
    for name, clf in (("teacher", teacher), ("student", student_clf)):
        example = torch.from_numpy(clf.preprocess(val.images[0])[0])  # each model at its own input size
        rows[name] = {"val_acc": None if label_free and clf is teacher else  # agreeing with itself: moot
                      float((predicted[name] == targets).mean()),
                      "params": measure.params(clf.model), "bytes": measure.disk_bytes(clf.model),
                      "latency_ms": measure.latency_ms(copy.deepcopy(clf.model).cpu(), example,  # a CPU copy: the
                                                       runs=LATENCY_RUNS, warmup=LATENCY_WARMUP),  # live one stays
                      "input_size": tuple(clf.input_size)}
    t, s = rows["teacher"], rows["student"]
    smaller, faster = t["params"] / s["params"], t["latency_ms"] / s["latency_ms"]
    # top-1 agreement on the held-out images (label-free, the student's score already is that)
    agreement = s["val_acc"] if label_free else float((predicted["student"] == predicted["teacher"]).mean())
    baseline = float(np.bincount(targets).max() / len(targets))
    cost = (f"It is {_times(smaller, 'smaller', 'larger')} (parameters) and {_times(faster, 'faster', 'slower')} "
            f"per image on this CPU (teacher at {t['input_size'][0]} px, student at {s['input_size'][0]} px).")
    if label_free:
        kept = s["val_acc"]
        honest = (f"No labels exist for the teacher's {len(classes):,} classes here, so the student learned from its "
                  f"soft predictions alone (alpha = 1) on {len(unlabeled):,} transfer images; on {len(val)} held-out "
                  f"images it agrees with the teacher's top-1 on {kept:.1%} (always answering the teacher's most "
                  f"common class there: {baseline:.1%}). " + cost)
    else:
        kept = s["val_acc"] / max(t["val_acc"], 1e-9)
        honest = (f"The student keeps {kept:.0%} of the teacher's validation accuracy ({t['val_acc']:.1%} -> "
                  f"{s['val_acc']:.1%}) and agrees with the teacher's top-1 on {agreement:.1%} of {len(val)} held-out "
                  "images. " + cost)
        if kept < 0.9:
            honest += " That is a real loss: try more epochs, more copies, or a bigger student."
    last.result = {"teacher": t, "student": s, "compression": smaller, "speedup": faster, "kept": kept,
                   "agreement": agreement, "honest": honest, "classifier": student_clf, "classes": classes,
                   "label_free": label_free, "alpha": alpha, "transfer": len(unlabeled), "held_out": len(val),
                   "baseline": baseline, "latency_runs": LATENCY_RUNS, "latency_warmup": LATENCY_WARMUP,
                   "pretrained_student": bool(pretrained_student) and not isinstance(student, StudentCNN)}
    yield last


def save_student(student, folder: Path | str) -> list[Path]:
    """Write a distilled student (the Classifier in `distill_classifier`'s result) into `folder`: model.safetensors
    and config.json through `cvdemo.export.save_model` (loads back with `export.load_model`; a timm student with
    plain timm too), and model.onnx. Returns the three paths."""
    folder = Path(folder)
    save_model(student.model, folder, student.labels, data_config=student.data_config)
    export_onnx(student.model, folder / "model.onnx", student.input_size)
    return [folder / name for name in ("model.safetensors", "config.json", "model.onnx")]


def right_way_round(ratio: float) -> tuple[str, bool]:
    """A ratio (teacher / student) said the right way round: the factor as shown (one decimal below 10) and
    whether the student is the smaller/faster one. 1.4 -> ("1.4", True); 1/1.2 -> ("1.2", False); 55 -> ("55", True)."""
    x = ratio if ratio >= 1 else 1 / ratio
    return (f"{x:.1f}" if x < 10 else f"{x:.0f}"), ratio >= 1


def _times(ratio: float, more: str, less: str) -> str:
    """'1.4x smaller', '1.2x larger', '55x smaller'."""
    shown, student_less = right_way_round(ratio)
    return f"{shown}x {more if student_less else less}"


def distill_plan(teacher, dataset: Dataset | None = None) -> tuple[Dataset, bool]:
    """(the images to distill `teacher` on, label_free): `dataset` (the built-in textures when None), and
    whether the teacher's classes differ from its classes, so that there are no labels to learn from."""
    dataset = load_builtin("textures") if dataset is None else dataset
    return dataset, list(teacher.labels) != list(dataset.classes)


def distill_any(teacher=None, dataset: Dataset | None = None, **options) -> Iterator[Event]:
    """Distill any classifier into a small student: a `cvdemo.inference.Classifier`, a
    `cvdemo.transfer.TransferResult` (its model, on that run's own training and held-out images: the
    teacher's score is then on images it never saw) or a name the model factory builds (None:
    tf_efficientnet_lite0, the pretrained ImageNet-1k classifier that works offline; a Hub model offline
    raises ModelError here, at the call). On `dataset` (None: the built-in textures) with its labels when
    they are the teacher's classes, else label-free (see `distill_classifier`, which takes `options`)."""
    from ..inference import get_classifier
    from ..transfer import TransferResult

    if isinstance(teacher, TransferResult):
        dataset, options["val"], teacher = teacher.train_data, teacher.val_data, teacher.classifier
    if teacher is None or isinstance(teacher, str):
        teacher = get_classifier(teacher)
    dataset, label_free = distill_plan(teacher, dataset)
    return distill_classifier(teacher, dataset, label_free=label_free, **options)
