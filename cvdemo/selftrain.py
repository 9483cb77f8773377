"""Learning from unlabeled images: pseudo-labels (Lee 2013) and Noisy Student self-training (Xie et al. 2020).

    from cvdemo.selftrain import prepare, pseudo_label, precision_coverage, self_train
    pool = prepare("digits", labelled_fraction=0.05, seed=0)  # or "faces", "textures", a Dataset with .unlabeled
    for event in self_train(pool, rounds=3, seed=0): print(event.metrics)   # a "round" per round (0: the baseline)
    row = event.history[-1]                                     # the final "done" event holds every round's report
    rows = precision_coverage(row["confidence"], row["predicted"], pool.hidden, thresholds=(0.5, 0.9))

Command line: `python -m cvdemo selftrain digits|faces|textures|ZIP|FOLDER [--seeds 3] [--rounds 3] [--threshold 0.9]`.
The ablations (`ablation`): the students' noise on / off, hard / soft pseudo-labels, over seeds (mean +- std).

The data (`prepare`): a held-out test split (digits: `datasets.digits_split()`'s fixed third; the others: a
stratified third), and of the training split a stratified `labelled_fraction` keeps its labels; the rest is
"unlabeled" and its labels are hidden (used only to report the pseudo-labels' precision). A user's Dataset whose
`unlabeled` list holds images (a zip with an `unlabeled/` folder) keeps all its labels instead: a quarter of them
is the test split, and the unlabeled images have no hidden labels (precision can't be measured).

The models: digits (8x8 grey) train a small CNN on the pixels (`SelfTrainCNN`); photos train a head
(`FeatureMLP`) on the frozen pretrained EfficientNet-Lite0's pooled features (`inference.extract_features`), the
CPU-sized form of "pretrained backbone" (the backbone is frozen: fine-tuning it every round does not fit a CPU).
A photo student is its backbone and its head: its parameters count both.

The rounds (`self_train`): round 0 trains on the labelled images only: the supervised-only baseline, and the first
teacher. Each round, the teacher (eval mode, no noise) predicts every unlabeled image; the predictions at or above
`threshold` become pseudo-labels; a fresh student of the same architecture (equal size) is trained, NOISED, on
labelled + pseudo-labelled images, and becomes the next teacher. With `larger` (Noisy Student's equal-or-larger
students) each round's student is bigger: on digits a wider CNN; on photos the next bigger pretrained backbone
(`BACKBONES`: round 0 Lite0, round 1 Lite1, round 2 and after Lite2), each model reading its own backbone's features
(the teacher labels the unlabeled images through its own). The noise: dropout, stochastic depth (each model
has one residual block, skipped per example with probability STOCHASTIC_DEPTH), and input noise: random
shifts of up to 1 pixel (digits), or RandAugment (2 ops, magnitude 9, `cvdemo.augment`): the features of `copies`
RandAugment views of each image are computed once and each step draws one view per image.
Every training runs through `cvdemo.train.fit` for the same number of optimiser steps, on the CPU, one thread.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .datasets import BUILTIN, Dataset, digits_split, load, load_builtin, pick_labelled, split
from .distill import digits_student_input
from .errors import CvdemoError, LimitError
from .measure import mean_std
from .models import DEFAULT_MODEL, OFFLINE_WEIGHTS, create_model
from .train import MAX_EPOCHS, Event, StopFlag, TrainConfig, evaluate, fit, last_event, one_thread, predict, seeded

__all__ = ["ABLATIONS", "Pool", "ablation", "copies_for", "format_table", "main", "precision_coverage", "prepare",
           "pseudo_label", "self_train"]

Preprocess = Callable[[Any], torch.Tensor]
RANDAUGMENT = {"ops": [{"op": "randaugment", "num_ops": 2, "magnitude": 9}]}


@dataclass
class Pool:
    """The images of one self-training experiment (see `prepare`)."""

    name: str
    classes: list[str]
    labelled: list[Image.Image]
    labels: np.ndarray
    unlabeled: list[Image.Image]
    hidden: np.ndarray | None  # the unlabeled images' true labels, when known (built-in data)
    test: list[Image.Image]
    test_labels: np.ndarray
    pixels: bool = False  # the built-in digits train on their 8x8 pixels; everything else on pretrained features


def _check_fraction(labelled_fraction: float) -> None:
    if isinstance(labelled_fraction, bool) or not isinstance(labelled_fraction, (int, float)) \
            or not 0 < labelled_fraction < 1:
        raise LimitError(f"labelled_fraction must be between 0 and 1, got {labelled_fraction!r}",
                         code="limit.labelled_fraction", value=labelled_fraction)


def prepare(dataset: str | Dataset = "digits", labelled_fraction: float = 0.05, seed: int = 0) -> Pool:
    """Split `dataset` (a built-in name or a Dataset) into labelled, unlabeled and test images (module docstring)."""
    if isinstance(dataset, Dataset) and dataset.unlabeled:
        train, test = split(dataset, 0.25, seed=seed)
        return Pool(dataset.name, list(dataset.classes), list(train.images), train.labels, list(dataset.unlabeled),
                    None, list(test.images), test.labels)
    _check_fraction(labelled_fraction)
    if dataset == "digits":
        train, test = digits_split()
    else:
        data = load_builtin(dataset) if isinstance(dataset, str) else dataset
        train, test = split(data, 1 / 3, seed=0)
    chosen = pick_labelled(train, max(len(train.classes), round(labelled_fraction * len(train))), seed)
    rest = np.setdiff1d(np.arange(len(train)), chosen)
    return Pool(train.name, list(train.classes), [train.images[i] for i in chosen], train.labels[chosen],
                [train.images[i] for i in rest], train.labels[rest], list(test.images), test.labels,
                pixels=dataset == "digits")


LARGER_STEP = 0.5  # with `larger` on digits, round r's CNN is (1 + LARGER_STEP * r) times as wide as round 0's
BACKBONES = tuple(OFFLINE_WEIGHTS)  # with `larger` on photos, round r's backbone: BACKBONES[min(r, 2)], Lite0 first
STOCHASTIC_DEPTH = 0.2  # a noised student skips its residual block with this probability per example (Huang 2016)
MANY_IMAGES = 600  # above this many labelled + unlabeled images, `copies_for` gives one RandAugment view, not two


def copies_for(pool: Pool) -> int:
    """RandAugment views per image (`self_train`'s `copies`) that keep a run short on a CPU: 2, or 1 when the
    pool holds more than MANY_IMAGES labelled and unlabeled images (each view's features are computed up front)."""
    return 2 if len(pool.labelled) + len(pool.unlabeled) <= MANY_IMAGES else 1


def _top1(model: nn.Module, images: Sequence[Any], preprocess: Preprocess | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, softmax confidence) of `model` (eval mode: `cvdemo.train.predict`) for every image."""
    if not len(images):
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    conf, pred = predict(model, images, preprocess=preprocess).softmax(1).max(1)
    return pred.numpy(), conf.numpy()


def _check_threshold(threshold: float) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise LimitError(f"threshold must be a number from 0 to 1, got {threshold!r}", code="limit.threshold",
                         value=threshold)


def pseudo_label(model: nn.Module, images: Sequence[Any], preprocess: Preprocess | None, threshold: float,
                 class_balanced: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pseudo-labels (Lee 2013): the model's (eval mode) predictions on unlabeled `images` (model inputs after
    `preprocess`; None: they are inputs already) whose softmax confidence is at least `threshold`. Returns
    (indices into `images`, labels, confidences), by index.

    class_balanced: the same number per predicted class: k = the smallest count above the threshold among
    the classes that have any, and each of those classes keeps its k most confident images (classes with
    no confident prediction get none)."""
    _check_threshold(threshold)
    pred, conf = _top1(model, images, preprocess)
    keep = np.flatnonzero(conf >= threshold)
    if class_balanced and len(keep):
        by_class = [keep[pred[keep] == c] for c in np.unique(pred[keep])]
        k = min(len(idx) for idx in by_class)
        keep = np.sort(np.concatenate([idx[np.argsort(-conf[idx], kind="stable")[:k]] for idx in by_class]))
    return keep.astype(np.int64), pred[keep], conf[keep]


def precision_coverage(confidences: Sequence[float], predicted: Sequence[int], hidden_labels: Sequence[int],
                       thresholds: Sequence[float]) -> list[dict]:
    """For each threshold: the pseudo-labels it would accept (confidence >= threshold) — `accepted`,
    `coverage` (their share of all images) and `precision` (the share whose prediction matches the hidden
    label; None when none is accepted). Coverage never rises as the threshold does."""
    conf = np.asarray(confidences, dtype=np.float64)
    right = np.asarray(predicted) == np.asarray(hidden_labels)
    if not conf.shape == right.shape:
        raise ValueError("confidences, predicted and hidden_labels must have the same length")
    rows = []
    for t in thresholds:
        _check_threshold(t)
        mask = conf >= t
        n = int(mask.sum())
        rows.append({"threshold": float(t), "accepted": n, "coverage": n / len(conf) if len(conf) else 0.0,
                     "precision": float(right[mask].mean()) if n else None})
    return rows


def _shift_noise(seed: int) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Input noise for the student: each 8x8 image moved by -1..1 pixels each way (zero background), seeded."""
    generator = torch.Generator().manual_seed(seed)

    def shift(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pad = F.pad(x, (1, 1, 1, 1))
        dx, dy = torch.randint(0, 3, (2, len(x)), generator=generator).tolist()
        h, w = x.shape[-2:]
        return torch.stack([pad[i, :, b:b + h, a:a + w] for i, (a, b) in enumerate(zip(dx, dy))]), y

    return shift


def backbone(pool: Pool, r: int, larger: bool) -> str | None:
    """The pretrained backbone whose features round `r`'s student reads: None for the digits' pixels; Lite0, or
    with `larger` the next bigger one each round (staying at the biggest)."""
    if pool.pixels:
        return None
    return BACKBONES[min(r, len(BACKBONES) - 1)] if larger else DEFAULT_MODEL


def backbone_params(name: str | None) -> int:
    """Parameters of a backbone without its ImageNet classifier (what a head on its pooled features adds to)."""
    if name is None:
        return 0
    from .inference import get_classifier

    model = get_classifier(name).model
    return sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in model.get_classifier().parameters())


def _views(pool: Pool, images: list[Image.Image], copies: int, seed: int, model: str | None = None) -> torch.Tensor:
    """Model inputs of `images`, (N, V, ...): view 0 is the clean image; for photos, views 1..copies are the
    pretrained features (of `model`: the default backbone when None) of RandAugment views (input noise drawn once,
    here; the same views for every backbone). Digits have one view (pixels)."""
    if pool.pixels:
        return torch.stack([digits_student_input(im) for im in images]).unsqueeze(1)
    from .augment import build_pipeline
    from .inference import extract_features

    if not images:
        return torch.zeros(0, 1 + copies, 1)
    pipeline = build_pipeline(RANDAUGMENT)
    views = [[im] + [s.image for s in pipeline.sample(im, k=copies, seed=seed + i)] if copies else [im]
             for i, im in enumerate(images)]
    flat = extract_features([v for group in views for v in group], model)
    return torch.from_numpy(flat).float().view(len(images), 1 + copies, -1)


Batch = tuple[torch.Tensor, torch.Tensor]


def _noise(pool: Pool, seed: int, noise: bool) -> Callable[[torch.Tensor, torch.Tensor], Batch]:
    """The training batches' input: one view per image (a random one with noise, else the clean one),
    then, for digits with noise, a random shift."""
    generator = torch.Generator().manual_seed(seed)
    shift = _shift_noise(seed) if noise and pool.pixels else None

    def transform(x: torch.Tensor, y: torch.Tensor) -> Batch:
        if noise:
            pick = torch.randint(0, x.shape[1], (len(x),), generator=generator)
        else:
            pick = torch.zeros(len(x), dtype=torch.long)
        x = x[torch.arange(len(x)), pick]
        return shift(x, y) if shift else (x, y)

    return transform


def _train(pool: Pool, x: torch.Tensor, y: torch.Tensor, *, seed: int, steps: int, batch_size: int, lr: float,
           noise: bool, stop: StopFlag | None, width: float = 1.0) -> nn.Module:
    classes = len(pool.classes)
    drop_path = STOCHASTIC_DEPTH if noise else 0.0
    with seeded(seed):
        if pool.pixels:
            model = create_model("selftrain_cnn", num_classes=classes, dropout=0.3 if noise else 0.0,
                                 drop_path=drop_path, width=width)
        else:
            model = create_model("selftrain_head", in_features=x.shape[-1], num_classes=classes,
                                 dropout=0.5 if noise else 0.0, drop_path=drop_path, width=width)
    config = TrainConfig(epochs=MAX_EPOCHS, max_steps=steps, batch_size=batch_size, lr=lr, weight_decay=5e-4, seed=seed,
                         device="cpu")
    data = torch.utils.data.TensorDataset(x, y)
    last_event(fit(model, data, None, config=config, batch_transform=_noise(pool, seed, noise), stop=stop,
                   step_events=False))
    return model.eval()


def self_train(data: str | Dataset | Pool = "digits", labelled_fraction: float = 0.05, rounds: int = 3,
               threshold: float = 0.9, seed: int = 0, epochs: int = 30, noise: bool = True, *,
               class_balanced: bool = False, batch_size: int = 32, lr: float = 3e-3, copies: int = 2,
               larger: bool = False, soft: bool = False, teacher_noise: bool | None = None,
               stop: StopFlag | None = None) -> Iterator[Event]:
    """Noisy Student self-training (module docstring) on `data`: a Pool, or what `prepare` takes (with
    `labelled_fraction` and `seed`). Yields `cvdemo.train.Event`s: a "round" event per round (round 0 = the
    supervised-only baseline; `epoch` = the round, `epochs` = `rounds`), then "done" ("stopped" when `stop` was
    set: no further round starts) with `history` = every round's report and `result` = {"pool": the Pool,
    "rounds": the same reports}. A round's report, the "round" event's `metrics`:
    round, accuracy (held-out), baseline, accepted (pseudo-labels this round's student learned from), coverage
    (their share of the unlabeled images), precision (vs the hidden labels; None in round 0 or when unknown),
    class_counts (pseudo-labels per class), labelled, unlabeled, params (of this round's model), seconds (since
    the start), backbone (the pretrained network whose features this round's student read; None for the digits'
    pixels), and this round's model's `predicted` class and `confidence` for every unlabeled image (what the next
    round would accept). `params` counts the whole student: for photos its backbone and its head. `larger`: each
    round's student is bigger than its teacher, as in Noisy Student (module docstring); otherwise equal.
    `soft`: the students learn from the teacher's whole softmax (soft pseudo-labels) instead of its argmax (hard),
    on the same images (those at or above `threshold`). `teacher_noise`: round 0's noise when it should differ
    from the students' (`noise`), so that an ablation of the students' noise keeps the same first teacher."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 0 <= rounds <= 20:
        raise LimitError(f"rounds must be a whole number from 0 to 20, got {rounds!r}", code="limit.rounds",
                         value=rounds)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= MAX_EPOCHS:
        raise LimitError(f"epochs must be a whole number from 1 to {MAX_EPOCHS}, got {epochs!r}", code="limit.epochs",
                         limit=MAX_EPOCHS, value=epochs)
    _check_threshold(threshold)
    if isinstance(copies, bool) or not isinstance(copies, int) or not 0 <= copies <= 8:
        raise LimitError(f"copies must be a whole number from 0 to 8, got {copies!r}", code="limit.copies",
                         value=copies)
    start = time.perf_counter()
    pool = data if isinstance(data, Pool) else prepare(data, labelled_fraction, seed)
    classes = len(pool.classes)
    features: dict[str | None, tuple] = {}

    def inputs(name: str | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(labelled, unlabeled, test, clean unlabeled) inputs through one backbone, computed once."""
        if name not in features:
            with one_thread():
                x_lab = _views(pool, pool.labelled, copies, seed, name)
                x_unl = _views(pool, pool.unlabeled, copies, seed + 10**6, name)
                x_test = _views(pool, pool.test, 0, 0, name)[:, 0]
            features[name] = (x_lab, x_unl, x_test, list(x_unl[:, 0]))
        return features[name]

    y_lab = torch.from_numpy(np.asarray(pool.labels)).long()
    total = len(pool.labelled) + len(pool.unlabeled)
    steps = epochs * math.ceil(total / batch_size)
    common = {"steps": steps, "batch_size": batch_size, "lr": lr, "noise": noise, "stop": stop}

    def report(r: int, model: nn.Module, name: str | None, labels: np.ndarray, idx: np.ndarray,
               baseline: float | None) -> dict:
        _, _, x_test, clean_unl = inputs(name)
        accuracy = evaluate(model, torch.utils.data.TensorDataset(x_test, torch.from_numpy(pool.test_labels)))["acc"]
        predicted, confidence = _top1(model, clean_unl)
        known = pool.hidden is not None and len(idx)
        return {"round": r, "accuracy": accuracy, "baseline": accuracy if baseline is None else baseline,
                "accepted": len(idx), "coverage": len(idx) / len(clean_unl) if clean_unl else 0.0,
                "precision": float((labels == pool.hidden[idx]).mean()) if known else None,
                "class_counts": np.bincount(labels, minlength=classes).tolist(), "labelled": len(pool.labelled),
                "unlabeled": len(pool.unlabeled),
                "params": sum(p.numel() for p in model.parameters()) + backbone_params(name), "backbone": name,
                "seconds": time.perf_counter() - start,
                "predicted": predicted, "confidence": confidence}

    rows: list[dict] = []

    def reported(row: dict) -> Event:
        rows.append(row)
        return Event("round", row["round"], rounds, len(rows), rounds + 1, metrics=row, elapsed=row["seconds"])

    with one_thread():
        teacher_backbone = backbone(pool, 0, larger)
        x_lab = inputs(teacher_backbone)[0]
        teacher = _train(pool, x_lab, y_lab, seed=seed, **{**common, "noise": noise if teacher_noise is None
                                                           else teacher_noise})
        yield reported(report(0, teacher, teacher_backbone, np.zeros(0, np.int64), np.zeros(0, np.int64), None))
        baseline = rows[0]["baseline"]
        for r in range(1, rounds + 1):
            if stop is not None and stop.is_set():
                break
            # the teacher (no noise) labels the clean unlabeled images through its own backbone
            idx, labels, _ = pseudo_label(teacher, inputs(teacher_backbone)[3], None, threshold, class_balanced)
            name = backbone(pool, r, larger)
            x_lab, x_unl, _, _ = inputs(name)
            x = torch.cat([x_lab, x_unl[idx]])
            if soft:  # the teacher's whole softmax for the pseudo-labelled images; one-hot for the labelled ones
                probs = torch.softmax(predict(teacher, inputs(teacher_backbone)[1][:, 0]), 1)[idx]
                y = torch.cat([F.one_hot(y_lab, classes).float(), probs])
            else:
                y = torch.cat([y_lab, torch.from_numpy(labels).long()])
            width = 1 + LARGER_STEP * r if larger and pool.pixels else 1.0
            teacher = _train(pool, x, y, seed=seed + 1000 * r, width=width, **common)  # the next teacher
            teacher_backbone = name
            yield reported(report(r, teacher, name, labels, idx, baseline))
    yield Event("stopped" if stop is not None and stop.is_set() else "done", rows[-1]["round"], rounds, len(rows),
                rounds + 1, elapsed=time.perf_counter() - start, history=rows, result={"pool": pool, "rounds": rows})


# The ablations: factor -> its two variants (code, self_train settings); the first is Noisy Student's choice.
# "noise" keeps the first teacher noised in both (teacher_noise): only the students differ, as in the paper.
ABLATIONS: dict[str, tuple[tuple[str, dict], ...]] = {
    "noise": (("noise", {"noise": True}), ("no_noise", {"noise": False, "teacher_noise": True})),
    "labels": (("hard", {"soft": False}), ("soft", {"soft": True})),
    # the lecture's framing: one round is semi-supervised learning; rounds of larger students, self-training
    "rounds": (("one_round", {"rounds": 1}), ("three_larger", {"rounds": 3, "larger": True})),
}
MAX_ABLATION_SEEDS = 5


def ablation(factor: str = "noise", seeds: int = 3, rounds: int = 1, *, data: str = "digits", epochs: int = 10,
             threshold: float = 0.9, labelled_fraction: float = 0.05, stop: StopFlag | None = None) -> Iterator[Event]:
    """Noisy Student's ablations, measured: `self_train` with each of `factor`'s two variants (ABLATIONS: the
    students' noise on / off, Xie et al. 2020's key ablation; hard / soft pseudo-labels; one round of equal size
    vs three rounds of larger students, which sets its own `rounds`) for seeds 0 .. seeds-1, the same data, seed,
    rounds and steps per round for both. Yields every run's "round" events (metrics += variant, seed),
    then "done" (or "stopped", keeping the seeds both variants finished) with `result` = {"factor", "seeds",
    "rounds", "epochs", "labelled", "unlabeled", "variants": {code: {"rounds", "baseline", "final" (round 0's and
    the last round's held-out accuracy, per seed), "accepted", "precision", "params" (the last round's),
    "baseline_mean", "baseline_std", "final_mean", "final_std", "gain_mean", "gain_std" (final - baseline),
    "curve" (each round's held-out accuracy, mean over seeds)}}}."""
    if factor not in ABLATIONS:
        raise LimitError(f"Unknown factor '{factor}'; choose one of {', '.join(ABLATIONS)}.", code="limit.factor",
                         name=factor, choices=", ".join(ABLATIONS))
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_ABLATION_SEEDS:
        raise LimitError(f"seeds must be from 1 to {MAX_ABLATION_SEEDS}, got {seeds!r}", code="limit.seed_count",
                         value=seeds, limit=MAX_ABLATION_SEEDS)
    runs: dict[str, list[list[dict]]] = {code: [] for code, _ in ABLATIONS[factor]}
    start, stopped, pool = time.perf_counter(), False, None
    for seed in range(seeds):
        for code, settings in ABLATIONS[factor]:
            if stop is not None and stop.is_set():
                stopped = True
                break
            settings = {"rounds": rounds, **settings}
            for event in self_train(data, labelled_fraction, threshold=threshold, seed=seed, epochs=epochs, stop=stop,
                                    **settings):
                if event.kind == "round":
                    yield replace(event, metrics={**event.metrics, "variant": code, "seed": seed},
                                  elapsed=time.perf_counter() - start)
            if event.kind == "stopped" or len(event.history) < settings["rounds"] + 1:
                stopped = True
                break
            runs[code].append(event.history)
            pool = event.result["pool"]
        if stopped:
            break
    done = min(len(r) for r in runs.values())
    variants = {}
    for code, histories in runs.items():
        histories = histories[:done]
        row = {"rounds": len(histories[0]) - 1 if histories else 0,
               "baseline": [h[0]["accuracy"] for h in histories], "final": [h[-1]["accuracy"] for h in histories],
               "params": [h[-1]["params"] for h in histories],
               "accepted": [h[-1]["accepted"] for h in histories], "precision": [h[-1]["precision"] for h in histories]}
        row["gain"] = [f - b for f, b in zip(row["final"], row["baseline"])]
        row["curve"] = np.mean([[r["accuracy"] for r in h] for h in histories], 0).tolist() if histories else []
        for key in ("baseline", "final", "gain"):
            if histories:
                row[f"{key}_mean"], row[f"{key}_std"] = mean_std(row[key])
        variants[code] = row
    result = {"factor": factor, "seeds": done, "rounds": rounds, "epochs": epochs, "variants": variants,
              "labelled": len(pool.labelled) if pool else 0, "unlabeled": len(pool.unlabeled) if pool else 0}
    yield Event("stopped" if stopped else "done", rounds, rounds, 0, 0, elapsed=time.perf_counter() - start,
                result=result)


def format_table(runs: dict[int, list[dict]]) -> str:
    """A table of `self_train` rows per seed, then the mean over seeds of each round's accuracy."""
    lines = [(f"{'seed':>4} {'round':>5} {'accuracy':>9} {'baseline':>9} {'accepted':>9} {'precision':>10} "
             f"{'params':>10} {'backbone':<22} {'seconds':>8}  class counts")]
    for seed, rows in runs.items():
        for row in rows:
            prec = "-" if row["precision"] is None else f"{100 * row['precision']:.1f}%"
            lines.append(f"{seed:>4} {row['round']:>5} {100 * row['accuracy']:8.1f}% {100 * row['baseline']:8.1f}% "
                         f"{row['accepted']:>9} {prec:>10} {row['params']:>10,} {row.get('backbone') or 'pixels':<22} "
                         f"{row['seconds']:8.1f}  {row['class_counts']}")
    rounds = min(len(rows) for rows in runs.values())
    for r in range(rounds):
        mean = np.mean([rows[r]["accuracy"] for rows in runs.values()])
        lines.append(f"mean over {len(runs)} seeds, round {r}: {100 * mean:.1f}%")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cvdemo selftrain",
                                     description="Pseudo-labels and Noisy Student self-training: a table per round.")
    parser.add_argument("data", help="digits, faces, textures, or a zip/folder of class folders (+ unlabeled/)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--labelled-fraction", type=float, default=0.05, help="built-in data: the share keeping labels")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--copies", type=int, default=2, help="photos: RandAugment views per image (student noise)")
    parser.add_argument("--class-balanced", action="store_true")
    parser.add_argument("--larger", action="store_true",
                        help="each round's student larger than its teacher: digits a wider CNN; photos the next "
                        "bigger pretrained backbone (tf_efficientnet_lite0 -> lite1 -> lite2)")
    parser.add_argument("--no-noise", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        data = args.data.removeprefix("builtin:")  # a built-in name as it is (the digits train on their pixels)
        if data not in BUILTIN:
            data, skipped = load(data)
            for message in skipped:
                print(f"skipped: {message}", file=sys.stderr)
        runs = {s: last_event(self_train(data, args.labelled_fraction, args.rounds, args.threshold, s, args.epochs,
                                         not args.no_noise, class_balanced=args.class_balanced, copies=args.copies,
                                         larger=args.larger)).history
                for s in range(args.seeds)}
    except CvdemoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(runs))
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
