"""The digits lesson ("a big teacher exists"): the shipped teacher, teacher vs student on labels alone vs
student with KD (`three_way`), the alpha x T `sweep`, and the command line.

    python -m cvdemo.distill three-way [--seeds 3] [--labelled 100] [--T 4] [--alpha 0.9] [--no-transfer-set]
    python -m cvdemo.distill sweep                # student accuracy over alpha x T
    python -m cvdemo.distill make-teacher         # writes checkpoints/digits_teacher.{safetensors,json}

The held-out test split is a fixed third of scikit-learn's digits (`digits_split`, stratified, seed 0); the
other 1,198 images are the training split. The shipped teacher is a 4-conv CNN (~75k parameters, 16x16 input)
trained on ALL the training split's labels, by `make-teacher` (seeded: the same command gives the same file on
the same machine). The student (an MLP on the 8x8 pixels, ~2.4k parameters) gets only `labelled` of those
labels (stratified); the rest of the training split is its unlabeled transfer set. So the lesson is: a
teacher trained where labels were plentiful can pass what it knows to a much smaller model through
unlabeled images.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from .. import measure
from ..datasets import Dataset, digits_split, pick_labelled
from ..errors import LimitError, ModelError
from ..export import load_model, save_model
from ..models import create_model
from ..train import MAX_EPOCHS, Event, TrainConfig, evaluate, fit, last_event, one_thread, predict, seeded
from .kd import (Preprocess, as_input, check_T_alpha, distill, kd_terms, soft_targets, t_squared_gradients,
                 teacher_logits)

__all__ = ["CHECKPOINTS", "build_student", "digits_student_input", "digits_teacher_input", "format_table",
           "inside_kd", "load_teacher", "main", "make_teacher", "sweep", "sweep_comparison", "three_way",
           "three_way_live"]

CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"
TEACHER_NAME = "digits_teacher"


# --- the digits models ------------------------------------------------------------------------

def _grey(image: Any) -> np.ndarray:
    """A raw digit image (PIL, uint8 array or tensor; grey or RGB) -> float32 (H, W) in 0..1."""
    a = np.asarray(image.cpu() if isinstance(image, torch.Tensor) else image)
    if a.ndim == 3:
        a = a[..., 0] if a.shape[-1] in (1, 3, 4) else a[0]  # HWC or CHW: the grey channel
    return a.astype(np.float32) / 255.0


DIGITS_MEAN, DIGITS_STD = 0.3, 0.4  # ~ the digits' pixel mean/std (0..1): the teacher's normalisation


def digits_teacher_input(image: Any) -> torch.Tensor:
    """The teacher's preprocessing: grey, normalised by mean/std, upsampled to 16x16 -> (1, 16, 16)."""
    x = torch.from_numpy(_grey(image))[None, None]
    x = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    return ((x - DIGITS_MEAN) / DIGITS_STD)[0]


def digits_student_input(image: Any) -> torch.Tensor:
    """The student's preprocessing: the raw 8x8 grey pixels in 0..1 -> (1, 8, 8)."""
    return torch.from_numpy(_grey(image))[None]


def build_student(kind: str = "mlp", num_classes: int = 10, seed: int = 0) -> nn.Module:
    """A tiny digits student on the 8x8 input: "mlp" (digits_mlp, 64-32-10, ~2.4k parameters) or "cnn"
    (digits_tiny_cnn, one 8-channel conv, ~1.4k parameters). Seeded initialisation."""
    if kind not in ("mlp", "cnn"):
        raise LimitError(f"student must be 'mlp' or 'cnn', got {kind!r}", code="limit.student", value=kind)
    with seeded(seed):
        return create_model("digits_mlp" if kind == "mlp" else "digits_tiny_cnn", num_classes=num_classes)


# --- the shipped teacher ----------------------------------------------------------------------

TEACHER_RECIPE = {"widths": [32, 64], "epochs": 30, "batch_size": 64, "lr": 3e-3, "weight_decay": 5e-4, "seed": 0,
                  "label_smoothing": 0.1}


@one_thread()
def make_teacher(out: Path | str = CHECKPOINTS, *, quiet: bool = False) -> dict:
    """Train the digits teacher on every label of the training split and write
    `<out>/digits_teacher.safetensors` + `.json` (`export.save_model`: architecture and arguments, sha256, then
    the recipe and accuracy). Returns the json's content."""
    r = TEACHER_RECIPE
    start = time.perf_counter()
    train, test = digits_split()
    with seeded(r["seed"]):
        model = create_model("digits_teacher_cnn", widths=r["widths"], num_classes=len(train.classes))
    x = torch.stack([digits_teacher_input(im) for im in train.images])
    data = torch.utils.data.TensorDataset(x, torch.from_numpy(train.labels).long())
    config = TrainConfig(epochs=r["epochs"], batch_size=r["batch_size"], lr=r["lr"], weight_decay=r["weight_decay"],
                         seed=r["seed"], label_smoothing=r["label_smoothing"], device="cpu")
    for event in fit(model, data, None, config=config, batch_transform=_shift_batch(r["seed"])):
        if event.kind == "epoch" and not quiet:
            print(f"epoch {event.epoch}/{event.epochs}  train_loss {event.metrics['train_loss']:.4f}  "
                  f"train_acc {event.metrics.get('train_acc', 0):.4f}", flush=True)
    acc = evaluate(model, _labelled(test, digits_teacher_input))["acc"]
    weights = Path(out) / f"{TEACHER_NAME}.safetensors"
    save_model(model, weights, train.classes, extra={
        "name": TEACHER_NAME,
        "input": {"size": [16, 16], "channels": 1, "mean": DIGITS_MEAN, "std": DIGITS_STD,
                  "preprocess": "cvdemo.distill.digits_teacher_input"},
        "trained_on": f"scikit-learn digits, training split of cvdemo.datasets.digits_split() ({len(train)} images, "
                      f"all labels); held-out test split {len(test)} images",
        "test_acc": round(acc, 4), "params": measure.params(model), "recipe": r,
        "command": "python -m cvdemo.distill make-teacher"})
    if not quiet:
        print(f"test accuracy {acc:.4f}; {time.perf_counter() - start:.1f} s; wrote {weights} "
              f"({weights.stat().st_size:,} bytes) and {weights.with_suffix('.json')}")
    return json.loads(weights.with_suffix(".json").read_text())


def _shift_batch(seed: int) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The teacher's augmentation: each image moved by -1..1 pixels (of 16) each way, seeded."""
    generator = torch.Generator().manual_seed(seed)

    def shift(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pad = F.pad(x, (1, 1, 1, 1), value=float(x.min()))
        dx, dy = torch.randint(0, 3, (2, len(x)), generator=generator).tolist()
        h, w = x.shape[-2:]
        return torch.stack([pad[i, :, b:b + h, a:a + w] for i, (a, b) in enumerate(zip(dx, dy))]), y

    return shift


def load_teacher(path: Path | str | None = None) -> nn.Module:
    """The shipped digits teacher (eval mode), through `export.load_model`: safetensors only, rebuilt from its
    json, whose sha256 the weights must match."""
    weights = Path(path) if path else CHECKPOINTS / f"{TEACHER_NAME}.safetensors"
    if not weights.is_file() or not weights.with_suffix(".json").is_file():
        raise ModelError(f"No teacher checkpoint at {weights} (+ .json). Make it with: "
                         "python -m cvdemo.distill make-teacher", code="model.no_teacher")
    try:
        model, _ = load_model(weights)
        if getattr(model, "built_as", ("",))[0] != "digits_teacher_cnn":
            raise ModelError("its architecture is not digits_teacher_cnn", code="model.bad_teacher")
    except ModelError as err:
        raise ModelError(f"The teacher checkpoint {weights} can't be loaded: {err}", code="model.bad_teacher") from err
    return model


# --- measuring --------------------------------------------------------------------------------

def _labelled(data: Dataset, preprocess: Preprocess) -> TensorDataset:
    """(model input, label) for every image of `data`, preprocessed up front (the digits are small)."""
    return TensorDataset(torch.stack([as_input(preprocess(im)) for im in data.images]), torch.from_numpy(data.labels))


# --- the lesson: three runs side by side ------------------------------------------------------

def _train_student(kind: str, seed: int, train: Dataset, chosen: np.ndarray, teacher: nn.Module | None,
                   epochs: int, batch_size: int, lr: float, T: float, alpha: float,
                   transfer_set: bool) -> tuple[nn.Module, Iterator[Event]]:
    """One student run: cross-entropy on the labelled images alone (teacher None), or `distill` over the
    labelled images (+ the rest of the training split, unlabeled, with `transfer_set`). Every run takes
    the same number of optimiser steps: `epochs` passes over the whole training split. Returns the
    student and its training Events: nothing trains until they are iterated (then it is the best
    epoch's student, in eval mode)."""
    student = build_student(kind, len(train.classes), seed)
    labelled = [train.images[i] for i in chosen]
    rest = [train.images[i] for i in np.setdiff1d(np.arange(len(train)), chosen)] if transfer_set else []
    config = TrainConfig(epochs=MAX_EPOCHS, max_steps=epochs * math.ceil(len(train) / batch_size),
                         batch_size=batch_size, lr=lr, seed=seed, device="cpu")
    if teacher is None:
        x = torch.stack([digits_student_input(im) for im in labelled])
        data = torch.utils.data.TensorDataset(x, torch.from_numpy(train.labels[chosen]).long())
        return student, fit(student, data, None, config=config, step_events=False)
    return student, distill(teacher, student, labelled, train.labels[chosen], rest, digits_teacher_input,
                            digits_student_input, config, T=T, alpha=alpha)


def _trained(run: tuple[nn.Module, Iterator[Event]]) -> nn.Module:
    """`_train_student`'s student, trained."""
    last_event(run[1])
    return run[0]


def three_way(dataset: str = "digits", labelled: int = 100, seeds: Sequence[int] = (0, 1, 2), T: float = 4.0,
              alpha: float = 0.9, epochs: int = 30, student: str = "mlp", *, transfer_set: bool = True,
              batch_size: int = 64, lr: float = 1e-2, teacher: nn.Module | None = None) -> dict:
    """Teacher vs student on `labelled` labels alone vs student with KD, on the digits' held-out test split.

    (1) the teacher: the shipped CNN, trained on all 1,198 training labels ("a big teacher exists");
    (2) the student trained on the `labelled` labels alone (cross-entropy);
    (3) the student trained with kd_loss on those labelled images plus, with `transfer_set`, the rest of
        the training split as unlabeled transfer images (without it: the same few images only).
    Both students take the same number of optimiser steps. Per run: accuracy mean/std over `seeds`,
    parameters, bytes on disk (safetensors), CPU latency (batch 1, `cvdemo.measure.latency_ms`: 300 timed
    passes after 20), compression and speed-up vs the teacher; `comparison`: the numbers behind `honest`, a
    sentence on whether KD helped here, and by how many points; `curves`: the held-out accuracy after each
    epoch (see `three_way_live`)."""
    return last_event(three_way_live(dataset, labelled, seeds, T, alpha, epochs, student, transfer_set=transfer_set,
                                     batch_size=batch_size, lr=lr, teacher=teacher)).result


def three_way_live(dataset: str = "digits", labelled: int = 100, seeds: Sequence[int] = (0, 1, 2), T: float = 4.0,
                   alpha: float = 0.9, epochs: int = 30, student: str = "mlp", *, transfer_set: bool = True,
                   batch_size: int = 64, lr: float = 1e-2, teacher: nn.Module | None = None) -> Iterator[Event]:
    """`three_way` as it runs, as `cvdemo.train.Event`s: an "epoch" event after each epoch of each run, its
    `metrics` the curve's point {"run", "seed", "epoch", "epochs", "test_acc"} (`epoch` / `epochs` the same
    numbers), then a "done" event whose `result` is three_way's result (`history`: every point). An epoch is
    one pass's worth of optimiser steps over the whole training split (both students take `epochs` of them,
    whatever they train on; so an epoch may be fractional), so the curves share their x axis; the teacher's
    (fixed) accuracy comes once, at epochs 0 and `epochs`. The test split is only looked at, never used to
    pick a model: each student is its best epoch by training accuracy (agreement with the teacher for KD), as
    in `three_way`."""
    if dataset != "digits":
        raise LimitError(f"three_way runs on the built-in digits (the shipped teacher knows them), got {dataset!r}",
                         code="limit.dataset", value=dataset)
    check_T_alpha(T, alpha)
    if not seeds:
        raise LimitError("give at least one seed", code="limit.seeds")
    with one_thread():
        start = time.perf_counter()
        train, test = digits_split()
        teacher = teacher or load_teacher()
        test_set, teacher_test = _labelled(test, digits_student_input), _labelled(test, digits_teacher_input)
        per_epoch = math.ceil(len(train) / batch_size)  # optimiser steps in one epoch of the curves
        accs: dict[str, list[float]] = {"teacher": [], "labels_only": [], "kd": []}
        models: dict[str, nn.Module] = {"teacher": teacher}
        curves: list[dict] = []

        def point(run: str, seed: int, epoch: float, acc: float, step: int = 0, steps: int = 0) -> Event:
            curves.append({"run": run, "seed": seed, "epoch": epoch, "epochs": epochs, "test_acc": acc})
            return Event("epoch", epoch, epochs, step, steps, metrics=curves[-1],
                         elapsed=time.perf_counter() - start)

        for seed in seeds:
            chosen = pick_labelled(train, labelled, seed)
            accs["teacher"].append(evaluate(teacher, teacher_test)["acc"])
            if seed == seeds[0]:  # the teacher is not trained: one flat line
                yield point("teacher", seed, 0, accs["teacher"][-1])
                yield point("teacher", seed, epochs, accs["teacher"][-1])
            for name, t in (("labels_only", None), ("kd", teacher)):
                model, events = _train_student(student, seed, train, chosen, t, epochs, batch_size, lr, T, alpha,
                                               transfer_set)
                done = 0
                for event in events:
                    if event.kind == "epoch" and (event.step // per_epoch > done or event.epoch == event.epochs):
                        done = event.step // per_epoch
                        yield point(name, seed, round(event.step / per_epoch, 1), evaluate(model, test_set)["acc"],
                                    event.step, event.steps)
                accs[name].append(evaluate(model, test_set)["acc"])
                models.setdefault(name, model)
        n_transfer = len(train) - labelled if transfer_set else 0
        descriptions = {
            "teacher": f"CNN teacher (shipped), trained on all {len(train):,} training labels",
            "labels_only": f"{student} student, {labelled} labels only",
            "kd": f"{student} student, KD (T={T:g}, alpha={alpha:g}) on {labelled} labelled"
                  + (f" + {n_transfer:,} unlabeled" if n_transfer else ", no transfer set"),
        }
        inputs = {"teacher": teacher_test[0][0], "labels_only": test_set[0][0], "kd": test_set[0][0]}
        runs = {}
        for name, model in models.items():
            a = np.array(accs[name])
            runs[name] = {"description": descriptions[name], "acc_mean": float(a.mean()),
                          "acc_std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
                          "accs": [float(v) for v in a], "params": measure.params(model),
                          "bytes": measure.disk_bytes(model),
                          "latency_ms": measure.latency_ms(model, inputs[name], runs=300, warmup=20)}
        for run in runs.values():
            run["compression"] = runs["teacher"]["bytes"] / run["bytes"]
            run["speedup"] = runs["teacher"]["latency_ms"] / run["latency_ms"]
        comparison = _compare(runs)
        verdict, honest = _honest(comparison, labelled, n_transfer)
        seconds = time.perf_counter() - start
        yield Event("done", epochs, epochs, 0, 0, elapsed=seconds, history=curves, result={
            "dataset": dataset, "train": len(train), "labelled": labelled, "transfer": n_transfer, "test": len(test),
            "seeds": list(seeds), "T": T, "alpha": alpha, "epochs": epochs, "student": student, "runs": runs,
            "kd_gain_points": comparison["gain"], "comparison": comparison, "verdict": verdict, "honest": honest,
            "curves": curves, "seconds": seconds})


# --- inside KD: why T^2, the student's two outputs, the loss's two terms -------------------------------

def inside_kd(T: float = 4.0, alpha: float = 0.9, labelled: int = 100, epochs: int = 20, seed: int = 0,
              student: str = "mlp", *, temperatures: Sequence[float] = (1, 2, 4, 8, 16), batch_size: int = 64,
              lr: float = 1e-2, example: int = 0, teacher: nn.Module | None = None) -> Iterator[Event]:
    """One KD student on the digits (the shipped teacher; `labelled` labels, the rest of the training split
    unlabeled; the same run as `three_way`'s KD student for that seed), opened up. Yields an "epoch" event
    after each epoch with metrics {"epoch", "soft", "hard", "test_acc"}: kd_loss's two terms (`kd_terms`: soft
    = T^2 * KL over all training images, hard = CE over the labelled ones) of the student at that epoch's end,
    and its held-out accuracy; then "done" with `result` = {"gradients": `t_squared_gradients` of the untrained
    student against the teacher on the training images, "example": for held-out image `example`, its "label"
    and the trained student's "student_T" (softmax at T, what the soft term compares with the teacher's
    "teacher_T") and "student_1" (softmax at 1, what it predicts and the hard term scores), "curves" (every
    epoch's metrics), "T", "alpha", "labelled", "transfer", "epochs", "test_acc", "seconds"}."""
    check_T_alpha(T, alpha)
    with one_thread():
        start = time.perf_counter()
        train, test = digits_split()
        if not 0 <= example < len(test):
            raise LimitError(f"example must be from 0 to {len(test) - 1}, got {example!r}", code="limit.example",
                             value=example, limit=len(test) - 1)
        teacher = teacher or load_teacher()
        chosen = pick_labelled(train, labelled, seed)
        rest = np.setdiff1d(np.arange(len(train)), chosen)
        order = np.concatenate([chosen, rest])  # as `distill` sees them: the labelled first, then the unlabeled
        x = torch.stack([digits_student_input(train.images[i]) for i in order])
        y = torch.tensor([int(train.labels[i]) for i in chosen] + [-1] * len(rest))
        t_logits = teacher_logits(teacher, [train.images[i] for i in order], digits_teacher_input)
        test_set = _labelled(test, digits_student_input)
        model, events = _train_student(student, seed, train, chosen, teacher, epochs, batch_size, lr, T, alpha, True)
        gradients = t_squared_gradients(predict(model, x), t_logits, y, temperatures)  # before any training
        curves = []
        for event in events:
            if event.kind == "epoch":
                terms = kd_terms(predict(model, x), t_logits, y, T)
                curves.append({"epoch": event.epoch, "soft": terms["soft"].item(), "hard": terms["hard"].item(),
                               "test_acc": evaluate(model, test_set)["acc"]})
                yield replace(event, metrics=curves[-1], elapsed=time.perf_counter() - start)
        s_logits = predict(model, test_set[example][0][None])[0]
        v = teacher_logits(teacher, [test.images[example]], digits_teacher_input)[0]
        soft_s, soft_t = soft_targets(s_logits, (T, 1)), soft_targets(v, (T,))
        result = {"gradients": gradients, "curves": curves, "T": T, "alpha": alpha, "labelled": labelled,
                  "transfer": len(rest), "epochs": epochs, "test_acc": evaluate(model, test_set)["acc"],
                  "example": {"index": example, "label": int(test.labels[example]), "teacher_T": soft_t[T].tolist(),
                              "student_T": soft_s[T].tolist(), "student_1": soft_s[1].tolist()},
                  "seconds": time.perf_counter() - start}
        yield Event("done", epochs, epochs, 0, 0, elapsed=result["seconds"], history=curves, result=result)


def _compare(runs: dict) -> dict:
    """The numbers behind the verdict on KD: gain in points (KD minus labels only, mean over seeds), the
    two means, on how many of the n seeds KD was better, the margin a difference must pass (>= 1 point
    and >= twice its standard error) and the share of the gap to the teacher KD closed (None: no gap)."""
    lab, kd, teacher = (np.array(runs[k]["accs"]) for k in ("labels_only", "kd", "teacher"))
    diff = 100 * (kd - lab)
    n = len(diff)
    gap = teacher.mean() - lab.mean()
    return {"gain": float(diff.mean()), "labels_only": float(lab.mean()), "kd": float(kd.mean()),
            "better": int((diff > 0).sum()), "n": n,
            "clear": max(1.0, (2 * float(diff.std(ddof=1)) / math.sqrt(n)) if n > 1 else 1.0),
            "closed": float((kd.mean() - lab.mean()) / gap) if gap > 0 else None}


def _honest(c: dict, labelled: int, n_transfer: int) -> tuple[str, str]:
    """(verdict: "helped" | "hurt" | "no clear difference", one plain sentence saying by how many points, on
    how many seeds, and why), from `_compare`'s numbers."""
    gain, n = c["gain"], c["n"]
    over = (f"({100 * c['labels_only']:.1f}% -> {100 * c['kd']:.1f}%, better on {c['better']} of {n} "
            f"seed{'s' if n > 1 else ''})")
    why = (f"With only the same {labelled} labelled images (no transfer set) the teacher has little to say that the "
           "labels did not, and a tiny student gains little from matching it. KD does not need extra images (Hinton "
           f"et al. distil on the original training set too), but it has only these {labelled} here: more images, "
           "even unlabeled ones, may let more of the teacher through."
           if not n_transfer else
           "The teacher's soft targets on the transfer set did not carry over: try another T or alpha, or a "
           "larger student.")
    if gain >= c["clear"]:
        closed = f", closing {100 * c['closed']:.0f}% of the gap to the teacher" if c["closed"] is not None else ""
        source = (f"the teacher's soft targets on {n_transfer:,} unlabeled transfer images" if n_transfer
                  else f"the teacher's soft targets on the same {labelled} labelled images")
        return "helped", f"KD helped: {gain:+.1f} points over the labels-only student {over}{closed}; " + \
            f"it learned from {source}."
    if gain <= -c["clear"]:
        return "hurt", f"KD hurt here: {gain:+.1f} points vs the labels-only student {over}. {why}"
    return "no clear difference", f"KD made no clear difference here: {gain:+.1f} points {over}, " + \
        f"within seed-to-seed noise. {why}"


def format_table(result: dict) -> str:
    """three_way's result as a plain-text table, then the honest sentence and the wall time."""
    runs = result["runs"].values()
    w = max(len(run["description"]) for run in runs)
    head = f"{'run':<{w}}  {'test accuracy':>15} {'params':>8} {'bytes':>9} {'ms/img':>7} {'compr.':>7} {'speedup':>7}"
    lines = [head, "-" * len(head)]
    for run in runs:
        lines.append(f"{run['description']:<{w}}  {100 * run['acc_mean']:7.1f} ± {100 * run['acc_std']:4.1f}% "
                     f"{run['params']:>8,} {run['bytes']:>9,} {run['latency_ms']:>7.3f} "
                     f"{run['compression']:>6.1f}x {run['speedup']:>6.1f}x")
    lines.append(f"held-out test split: {result['test']} images; accuracy: mean ± std over seeds {result['seeds']}; "
                 "bytes: safetensors; ms/img: CPU forward pass, batch 1, one thread, torch.utils.benchmark")
    lines.append(result["honest"])
    lines.append(f"wall time {result['seconds']:.1f} s")
    return "\n".join(lines)


@one_thread()
def sweep(alphas: Sequence[float] = (0.5, 0.9), temperatures: Sequence[float] = (1, 4, 10), *, labelled: int = 100,
          seed: int = 0, epochs: int = 30, student: str = "mlp", transfer_set: bool = True, batch_size: int = 64,
          lr: float = 1e-2, teacher: nn.Module | None = None) -> np.ndarray:
    """KD student test accuracy for each (alpha, T): an array (len(alphas), len(temperatures)) for a heatmap.
    One seed, the same split and labelled images as `three_way`."""
    for a in alphas:
        for t in temperatures:
            check_T_alpha(t, a)
    train, test = digits_split()
    teacher = teacher or load_teacher()
    chosen = pick_labelled(train, labelled, seed)
    test_set = _labelled(test, digits_student_input)
    grid = np.zeros((len(alphas), len(temperatures)))
    for i, a in enumerate(alphas):
        for j, t in enumerate(temperatures):
            model = _trained(_train_student(student, seed, train, chosen, teacher, epochs, batch_size, lr, t, a,
                                            transfer_set))
            grid[i, j] = evaluate(model, test_set)["acc"]
    return grid


SWEEP_HELPED_POINTS = 1.0  # one seed: KD "helped" when its best cell beats labels only by at least this


def sweep_comparison(grid: np.ndarray, alphas: Sequence[float]) -> dict | None:
    """KD against labels only in a `sweep` grid: the best cell with alpha > 0 (`kd`) against the alpha = 0 row
    (`base`, its mean: at alpha = 0 the loss has no T), `gain` in points, and `verdict` "helped" (at least
    SWEEP_HELPED_POINTS) or "no_help". None when the grid has no alpha = 0 row or no alpha > 0 row to compare."""
    alphas = [float(a) for a in alphas]
    kd_rows = [i for i, a in enumerate(alphas) if a > 0]
    if 0.0 not in alphas or not kd_rows:
        return None
    base, kd = float(grid[alphas.index(0.0)].mean()), float(grid[kd_rows].max())
    gain = 100 * (kd - base)
    return {"verdict": "helped" if gain >= SWEEP_HELPED_POINTS else "no_help", "kd": kd, "base": base, "gain": gain}



def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cvdemo.distill", description="Knowledge distillation on the "
                                     "digits: the shipped teacher, teacher vs students, the alpha x T sweep.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make-teacher", help="train the digits teacher; write checkpoints/digits_teacher.*")
    p.add_argument("--out", default=str(CHECKPOINTS))
    for name, help_ in (("three-way", "teacher vs labels-only student vs KD student"),
                        ("sweep", "KD student accuracy over alpha x temperature")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--labelled", type=int, default=100)
        p.add_argument("--epochs", type=int, default=30)
        p.add_argument("--student", choices=("mlp", "cnn"), default="mlp")
        p.add_argument("--no-transfer-set", action="store_true", help="KD on the labelled images only")
        if name == "three-way":
            p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
            p.add_argument("--T", type=float, default=4.0)
            p.add_argument("--alpha", type=float, default=0.9)
            p.add_argument("--json", action="store_true", help="print the whole result as JSON")
        else:
            p.add_argument("--alphas", type=float, nargs="+", default=[0.5, 0.9])
            p.add_argument("--temperatures", type=float, nargs="+", default=[1, 4, 10])
            p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.command == "make-teacher":
            make_teacher(args.out)
        elif args.command == "three-way":
            result = three_way(labelled=args.labelled, seeds=tuple(range(args.seeds)), T=args.T, alpha=args.alpha,
                               epochs=args.epochs, student=args.student, transfer_set=not args.no_transfer_set)
            print(json.dumps(result, indent=2) if args.json else format_table(result))
        else:
            start = time.perf_counter()
            grid = sweep(args.alphas, args.temperatures, labelled=args.labelled, seed=args.seed, epochs=args.epochs,
                         student=args.student, transfer_set=not args.no_transfer_set)
            print("alpha \\ T " + "".join(f"{t:>8g}" for t in args.temperatures))
            for a, row in zip(args.alphas, grid):
                print(f"{a:<10g}" + "".join(f"{100 * v:7.1f}%" for v in row))
            print(f"KD student test accuracy, seed {args.seed}; {time.perf_counter() - start:.1f} s")
    except (LimitError, ModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0

