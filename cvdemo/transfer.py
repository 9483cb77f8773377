"""Transfer learning on a user's images: linear probe, fine-tune the last stages, full fine-tune,
or the same architecture from scratch with the same budget (to show what pretraining buys).

    from cvdemo.transfer import transfer
    for event in transfer(dataset, mode="probe"): ...   # Events from cvdemo.train; the last carries .result

All four modes run through the one training loop (`cvdemo.train.fit`). The probe computes backbone
features once (ONNX on a CPU) and caches them, so retraining the head takes well under a second.

`config.seed` fixes the run (on a CPU): the train/validation split, the new head (or the whole network
from scratch, built inside `cvdemo.train.seeded`), every augmentation draw (the probe's copies from one
seeded generator; fine-tuning's per (seed, epoch, image)), the shuffling and dropout. The same seed writes
the same weights.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
from PIL import Image

from .augment import Pipeline, build_pipeline
from .datasets import Dataset, check_trainable, split
from .errors import LimitError, Note
from .inference import Classifier, extract_features, get_classifier
from .models import DEFAULT_MODEL, create_model
from .train import (MAX_EPOCHS, Event, StopFlag, TrainConfig, adamw, fit, keyed_generator, one_thread, predict,
                    seeded)

MODES = ("probe", "finetune", "full", "scratch")
FINETUNE_FRACTION = 0.25  # "last stages": the last quarter of the backbone's parameter tensors, plus the head
# Training through the backbone on a CPU takes at most this many images a batch: a Lite0 trained whole (full, or
# from scratch) took 1.7 GB more at batch 16 and 0.9 GB at 8, at about the same speed; a fine-tune 0.5 GB at 16 and
# 1.2 GB at 64 (the tab's slider goes to 256).
CPU_MAX_BATCH = 8
HEAD_LR_SCALE = 10.0  # fine-tune / full: the new head's learning rate over the backbone's (the probe's 1e-2 at 1e-3)
MIN_SCRATCH_SECONDS = 20.0  # the from-scratch comparison gets at least this (a few steps would say nothing)


# The training defaults of each mode, read by `default_config`, the command line and the Transfer tab: the probe
# trains a linear head on cached features (many cheap epochs, big batches); the others train through the backbone
# (few epochs, small batches).
DEFAULTS: dict[str, dict] = {
    "probe": {"epochs": 100, "batch_size": 128, "lr": 1e-2, "weight_decay": 1e-4},
    **{mode: {"epochs": 5, "batch_size": CPU_MAX_BATCH, "lr": 1e-3, "weight_decay": 1e-4}
       for mode in ("finetune", "full", "scratch")},
}


def default_config(mode: str, seed: int = 0, **overrides) -> TrainConfig:
    """`mode`'s DEFAULTS, with `overrides` (any TrainConfig field) on top."""
    return TrainConfig(**{**DEFAULTS[mode], "seed": seed, **overrides})


def scratch_config(pretrained_seconds: float, seed: int = 0, epochs: int = MAX_EPOCHS) -> TrainConfig:
    """The from-scratch comparison: the same architecture for the pretrained run's `epochs`, within the time the
    pretrained run took (at least MIN_SCRATCH_SECONDS); see `scratch_comparison`."""
    return default_config("scratch", seed, epochs=epochs, max_seconds=max(MIN_SCRATCH_SECONDS, pretrained_seconds))


def scratch_comparison(pretrained: TransferResult, scratch: TransferResult) -> dict:
    """Whether the from-scratch run (`scratch_config`) makes a fair comparison with the pretrained one, and on what:
    basis "epochs" (it finished as many epochs as the pretrained run), "time" (fewer epochs, but at least the
    pretrained run's time and one full epoch: equal compute, unequal epochs) or None (it never finished an
    epoch: its accuracy is an untrained network's, so there is no comparison). `gain`: what pretraining bought,
    in accuracy points (None without a comparison)."""
    done, wanted = len(scratch.history), len(pretrained.history)
    basis = "epochs" if done >= wanted else "time" if done >= 1 else None
    return {"basis": basis, "epochs": done, "pretrained_epochs": wanted,
            "gain": 100 * (pretrained.val_acc - scratch.val_acc) if basis else None}


@dataclass
class TransferResult:
    """What a run produced: the model (as a Classifier ready for the Classify tab) and its report."""

    classifier: Classifier
    mode: str
    arch: str
    classes: list[str]
    history: list[dict]
    val_acc: float
    per_class_acc: dict[str, float]
    confusion: np.ndarray  # rows: true class, columns: predicted
    misclassified: list[tuple[Image.Image, str, str, float]]  # image, true, predicted, confidence
    seconds: float
    stopped: bool = False
    notes: list[str] = field(default_factory=list)
    # the run's own split of the dataset: what it trained on and the held-out images every score above is
    # measured on (distilling this model reuses it, so its "validation" images stay unseen)
    train_data: Dataset | None = None
    val_data: Dataset | None = None


class ImageSet(torch.utils.data.Dataset):
    """PIL images -> (normalised tensor, label), with an optional augmentation pipeline first. Image i's
    augmentation in epoch e draws from `keyed_generator(seed, e, i)` (`fit` calls `set_epoch`), never from
    the global RNG: the same seed gives the same images, however and wherever they are loaded."""

    def __init__(self, data: Dataset, classifier: Classifier, pipeline: Pipeline | None = None,
                 seed: int = 0) -> None:
        self.data, self.classifier, self.pipeline, self.seed, self.epoch = data, classifier, pipeline, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next draws belong to (as DistributedSampler.set_epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        image = self.data.images[i]
        if self.pipeline is not None:
            image = self.pipeline(image, keyed_generator(self.seed, self.epoch, i))
        return torch.from_numpy(self.classifier.preprocess(image)[0]), int(self.data.labels[i])


_feature_cache: dict[str, np.ndarray] = {}
_feature_lock = threading.Lock()
MAX_CACHED_FEATURE_SETS = 16
MAX_CACHED_FEATURE_BYTES = 64 * 2**20  # ... and their bytes (2,000 Lite2 features are 10 MB)


def cached_features(images: list[Image.Image], model: str) -> np.ndarray:
    """Backbone features of these exact images, computed once (keyed by a hash of their pixels); the oldest sets
    go first beyond MAX_CACHED_FEATURE_SETS sets or MAX_CACHED_FEATURE_BYTES bytes."""
    digest = hashlib.sha256(model.encode())
    for image in images:
        digest.update(image.tobytes())
    key = digest.hexdigest()
    with _feature_lock:
        if key in _feature_cache:
            return _feature_cache[key]
    features = extract_features(images, model)
    with _feature_lock:
        _feature_cache[key] = features
        while len(_feature_cache) > MAX_CACHED_FEATURE_SETS or (
                len(_feature_cache) > 1 and sum(f.nbytes for f in _feature_cache.values()) > MAX_CACHED_FEATURE_BYTES):
            _feature_cache.pop(next(iter(_feature_cache)))
    return features


def build_network(mode: str, arch: str, num_classes: int) -> torch.nn.Module:
    """The network a mode trains: pretrained with a new head (some layers frozen) or from scratch. Its
    random layers draw from torch's global RNG: build it inside `cvdemo.train.seeded(seed)`."""
    model = create_model(arch, pretrained=mode != "scratch", num_classes=num_classes)
    if mode == "finetune":
        params = list(model.named_parameters())
        head = {id(p) for p in model.get_classifier().parameters()}
        first_trainable = int(len(params) * (1 - FINETUNE_FRACTION))
        for i, (_, p) in enumerate(params):
            p.requires_grad = i >= first_trainable or id(p) in head
    return model


def head_faster(net: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """Fine-tuning's optimiser: the new head (random weights) learns at HEAD_LR_SCALE x `config.lr`, the
    pretrained backbone (already good features) at `config.lr` (`cvdemo.train.adamw`)."""
    head = list(net.get_classifier().parameters())
    ids = {id(p) for p in head}
    return adamw(config, ([p for p in net.parameters() if id(p) not in ids], 1.0), (head, HEAD_LR_SCALE))


class ProbeNet(torch.nn.Module):
    """Features (cached) -> linear head; only the head trains."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.head = torch.nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


def transfer(dataset: Dataset, *, mode: str = "probe", arch: str = DEFAULT_MODEL, config: TrainConfig | None = None,
             val_fraction: float = 0.2, augment: str | dict | None = None, copies: int = 2,
             stop: StopFlag | None = None) -> Iterator[Event]:
    """Train on `dataset` in `mode`; yields training Events, and a final Event whose `.result`
    is a TransferResult. `augment` is an augmentation spec (the Augment tab's JSON): for the probe,
    `copies` augmented versions of each training image are added before features are computed; the
    modes that train through the backbone augment every image as it is loaded, and CutMix/MixUp mix
    each training batch (`Pipeline.mix_batch`: soft labels; train_acc counts the larger share). The
    probe can't mix (its features are computed once per image): a note in the result says so."""
    if mode not in MODES:
        raise LimitError(f"mode must be one of {', '.join(MODES)}, got {mode!r}", code="limit.mode", value=mode,
                         choices=", ".join(MODES))
    if not 0 < copies <= 8:
        raise LimitError(f"copies must be from 1 to 8, got {copies}", code="limit.copies", value=copies)
    check_trainable(dataset)
    config = config or default_config(mode)
    notes = []
    if mode != "probe" and config.batch_size > CPU_MAX_BATCH and get_classifier(arch).device.type == "cpu":
        notes.append(Note(f"Batch size {config.batch_size} lowered to {CPU_MAX_BATCH} to fit in memory on a CPU.",
                          "transfer.batch_lowered", batch=config.batch_size, limit=CPU_MAX_BATCH))
        config = dataclasses.replace(config, batch_size=CPU_MAX_BATCH)
    base = get_classifier(arch)  # preprocessing (and the frozen backbone for the probe)
    pipeline = build_pipeline(augment) if augment else None
    side = 2 * max(base.input_size)  # the model shrinks every image to about its input: larger crops only cost
    if pipeline is not None and pipeline.capped(side) != pipeline:
        notes.append(Note(f"Crops larger than {side} px were made {side} px (the model sees {max(base.input_size)} "
                          "px): the same crops at a bounded cost.", "transfer.crop_capped", side=side,
                          input=max(base.input_size)))
        pipeline = pipeline.capped(side)
    start = time.perf_counter()
    train, val = split(dataset, val_fraction, seed=config.seed)
    n = len(dataset.classes)
    mix = None
    if pipeline is not None and pipeline.mixes:
        mixers = "/".join({"cutmix": "CutMix", "mixup": "MixUp"}[op.name] for op in pipeline.ops
                          if op.enabled and op.mixes)
        if mode == "probe":
            notes.append(Note(f"{mixers} not applied: the linear probe trains on backbone features computed once per "
                              "image, and mixing needs the images themselves (any other augmentation in the pipeline "
                              "was applied). Fine-tune to train with it.", "transfer.mix_not_in_probe", mixers=mixers))
        else:  # fit calls mix(x, y) on every training batch
            mix = partial(pipeline.mix_batch, num_classes=n, generator=torch.Generator().manual_seed(config.seed))
    if mode == "probe":
        x_train, labels = cached_features(train.images, arch), list(train.labels)
        if pipeline is not None:  # each copy featurised as it is drawn: one augmented image in memory at a time
            generator = torch.Generator().manual_seed(config.seed)
            views = (pipeline(im, generator) for im in train.images for _ in range(copies))
            x_train = np.concatenate([x_train, extract_features(views, arch)])
            labels += [label for label in train.labels for _ in range(copies)]
        x_val = cached_features(val.images, arch)
        with seeded(config.seed):  # the new head: the same for the same seed
            net = ProbeNet(x_train.shape[1], n)
        train_set = torch.utils.data.TensorDataset(torch.from_numpy(x_train), torch.tensor(labels))
        val_set = torch.utils.data.TensorDataset(torch.from_numpy(x_val), torch.from_numpy(val.labels))
    else:
        with seeded(config.seed):  # the new head (or, from scratch, every layer): the same for the same seed
            net = build_network(mode, arch, n)
        train_set, val_set = ImageSet(train, base, pipeline, seed=config.seed), ImageSet(val, base)
    last = None
    # The probe's linear head is tiny: one torch thread is faster than two waiting on each other.
    with one_thread() if mode == "probe" else contextlib.nullcontext():
        optimizer = head_faster(net, config) if mode in ("finetune", "full") else None
        for event in fit(net, train_set, val_set, config=config, optimizer=optimizer, batch_transform=mix, stop=stop):
            last = event
            if event.kind in ("done", "stopped"):
                break
            yield event
    if last is None:  # under torchrun, ranks other than 0 see no events and report nothing
        return
    seconds = time.perf_counter() - start
    model = attach_head(base, net) if mode == "probe" else net.eval()
    classifier = Classifier(f"{arch} ({mode}, {n} classes)", model, labels=dataset.classes, runtime="torch")
    # the validation set as fit saw it (the probe's: its cached features, no second pass through the backbone)
    probs = torch.softmax(predict(net, val_set, amp=config.amp), 1).numpy()
    last.result = report(classifier, mode, arch, val, probs, last, seconds)
    last.result.notes, last.result.train_data, last.result.val_data = notes, train, val
    yield last


def attach_head(base: Classifier, probe: ProbeNet) -> torch.nn.Module:
    """The pretrained backbone with the probe's trained head as its classifier."""
    model = create_model(base.name, num_classes=probe.head.out_features)
    model.get_classifier().load_state_dict(probe.head.state_dict())
    return model.eval()


def report(classifier: Classifier, mode: str, arch: str, val: Dataset, probs: np.ndarray, last: Event,
           seconds: float) -> TransferResult:
    """Validation accuracy, per-class accuracy, confusion matrix and the misclassified images."""
    n = len(val.classes)
    pred = probs.argmax(1)
    confusion = np.zeros((n, n), dtype=int)
    np.add.at(confusion, (val.labels, pred), 1)
    per_class = {c: float(confusion[i, i] / max(1, confusion[i].sum())) for i, c in enumerate(val.classes)}
    wrong = [(val.images[i], val.classes[val.labels[i]], val.classes[pred[i]], float(probs[i, pred[i]]))
             for i in np.flatnonzero(pred != val.labels)]
    return TransferResult(classifier, mode, arch, list(val.classes), last.history or [],
                          float((pred == val.labels).mean()), per_class, confusion, wrong[:32], seconds,
                          stopped=last.kind == "stopped")
