"""Learning from unlabeled images: pseudo-labels (Lee 2013) and Noisy Student self-training (Xie et al. 2020).

    from cvdemo.selftrain import pseudo_label, precision_coverage, self_train
    idx, labels, conf = pseudo_label(model, images, preprocess, threshold=0.9)     # confident predictions
    rows = precision_coverage(conf_all, pred_all, hidden, thresholds=(0.5, 0.9))   # how good are they?
    for row in self_train(labelled_fraction=0.05, rounds=3, seed=0): print(row)   # one dict per round

Command line: `python -m cvdemo.selftrain digits [--seeds 3] [--rounds 3] [--threshold 0.9]` prints a table.

How `self_train` works on scikit-learn's digits (8x8 grey):
- the held-out test split is `distill.digits_split()`'s fixed third; of the training split, a stratified
  `labelled_fraction` keeps its labels (5%: 60 images), the rest is "unlabeled" (its labels are hidden,
  used only to report the pseudo-labels' precision).
- round 0: a small CNN (`SelfTrainCNN`) is trained on the labelled images only: the supervised-only
  baseline, and the first teacher.
- each round: the teacher (eval mode, no noise) predicts every unlabeled image; the predictions at or
  above `threshold` confidence become pseudo-labels. A fresh student of the same architecture (equal
  size) is trained, NOISED (dropout and random shifts of the input by up to 1 pixel, with `noise`), on
  labelled + pseudo-labelled images, and becomes the next teacher.
- every training runs through `cvdemo.train.fit` for the same number of optimiser steps (`epochs` passes
  over the whole training split's size), on the CPU, on one thread (`one_thread`: the models are tiny).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .distill import _pick_labelled, digits_split, digits_student_input
from .errors import LimitError
from .train import MAX_EPOCHS, StopFlag, TrainConfig, fit, one_thread

__all__ = ["SelfTrainCNN", "format_table", "main", "precision_coverage", "predict", "pseudo_label", "self_train"]

Preprocess = Callable[[Any], torch.Tensor]


class SelfTrainCNN(nn.Module):
    """The digits self-training model on the 8x8 input: conv16, conv32, pool to 4x4, dropout, linear (~10k
    parameters). Teacher and students share it (the student is as large as the teacher)."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.3) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1),
                                      nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(32 * 4 * 4, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@torch.no_grad()
def predict(model: nn.Module, images: Sequence[Any], preprocess: Preprocess,
            batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, softmax confidence) of `model` in eval mode for every image."""
    model.eval()
    device = next(model.parameters()).device
    preds, confs = [], []
    for start in range(0, len(images), batch_size):
        x = torch.stack([preprocess(im) for im in images[start:start + batch_size]]).to(device)
        conf, pred = F.softmax(model(x).float(), dim=1).max(1)
        preds.append(pred.cpu().numpy())
        confs.append(conf.cpu().numpy())
    if not preds:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(preds).astype(np.int64), np.concatenate(confs).astype(np.float32)


def _check_threshold(threshold: float) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise LimitError(f"threshold must be a number from 0 to 1, got {threshold!r}", code="limit.threshold",
                         value=threshold)


def pseudo_label(model: nn.Module, images: Sequence[Any], preprocess: Preprocess, threshold: float,
                 class_balanced: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pseudo-labels (Lee 2013): the model's (eval mode) predictions on unlabeled `images` whose softmax
    confidence is at least `threshold`. Returns (indices into `images`, labels, confidences), by index.

    class_balanced: the same number per predicted class: k = the smallest count above the threshold among
    the classes that have any, and each of those classes keeps its k most confident images (classes with
    no confident prediction get none)."""
    _check_threshold(threshold)
    pred, conf = predict(model, images, preprocess)
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


def _train(x: torch.Tensor, y: torch.Tensor, *, seed: int, steps: int, batch_size: int, lr: float, noise: bool,
           num_classes: int, stop: StopFlag | None) -> nn.Module:
    torch.manual_seed(seed)
    model = SelfTrainCNN(num_classes, dropout=0.3 if noise else 0.0)
    epochs = min(MAX_EPOCHS, max(1, round(steps / math.ceil(len(x) / batch_size))))
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=5e-4, seed=seed, device="cpu")
    data = torch.utils.data.TensorDataset(x, y)
    for _ in fit(model, data, None, config=config, batch_transform=_shift_noise(seed) if noise else None, stop=stop,
                 step_events=False):
        pass
    return model.eval()


def self_train(labelled_fraction: float = 0.05, rounds: int = 3, threshold: float = 0.9, seed: int = 0,
               epochs: int = 30, noise: bool = True, *, class_balanced: bool = False, batch_size: int = 32,
               lr: float = 3e-3, stop: StopFlag | None = None) -> Iterator[dict]:
    """Noisy Student self-training on the digits (see the module docstring). Yields one dict per round
    (round 0 = the supervised-only baseline): round, accuracy (held-out), baseline, accepted (pseudo-labels),
    coverage (their share of the unlabeled images), precision (vs the hidden labels; None in round 0),
    class_counts (pseudo-labels per class), labelled, unlabeled, seconds (since the start)."""
    if isinstance(labelled_fraction, bool) or not isinstance(labelled_fraction, (int, float)) \
            or not 0 < labelled_fraction < 1:
        raise LimitError(f"labelled_fraction must be between 0 and 1, got {labelled_fraction!r}",
                         code="limit.labelled_fraction", value=labelled_fraction)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 0 <= rounds <= 20:
        raise LimitError(f"rounds must be a whole number from 0 to 20, got {rounds!r}", code="limit.rounds",
                         value=rounds)
    _check_threshold(threshold)
    start = time.perf_counter()
    train, test = digits_split()
    classes = len(train.classes)
    chosen = _pick_labelled(train, max(classes, round(labelled_fraction * len(train))), seed)
    rest = np.setdiff1d(np.arange(len(train)), chosen)
    x_all = torch.stack([digits_student_input(im) for im in train.images])
    x_test = torch.stack([digits_student_input(im) for im in test.images])
    x_lab, y_lab = x_all[chosen], torch.from_numpy(train.labels[chosen]).long()
    x_unl, hidden = x_all[rest], train.labels[rest]
    steps = epochs * math.ceil(len(train) / batch_size)
    common = {"steps": steps, "batch_size": batch_size, "lr": lr, "noise": noise, "num_classes": classes,
              "stop": stop}

    def accuracy(model: nn.Module) -> float:
        return float((predict(model, list(x_test), lambda t: t)[0] == test.labels).mean())

    with one_thread():
        teacher = _train(x_lab, y_lab, seed=seed, **common)
        baseline = accuracy(teacher)
        yield {"round": 0, "accuracy": baseline, "baseline": baseline, "accepted": 0, "coverage": 0.0,
               "precision": None, "class_counts": [0] * classes, "labelled": len(chosen), "unlabeled": len(rest),
               "seconds": time.perf_counter() - start}
        for r in range(1, rounds + 1):
            if stop is not None and stop.is_set():
                return
            idx, labels, _ = pseudo_label(teacher, list(x_unl), lambda t: t, threshold, class_balanced)
            x = torch.cat([x_lab, x_unl[idx]])
            y = torch.cat([y_lab, torch.from_numpy(labels).long()])
            teacher = _train(x, y, seed=seed + 1000 * r, **common)  # the student becomes the next teacher
            yield {"round": r, "accuracy": accuracy(teacher), "baseline": baseline, "accepted": len(idx),
                   "coverage": len(idx) / len(rest) if len(rest) else 0.0,
                   "precision": float((labels == hidden[idx]).mean()) if len(idx) else None,
                   "class_counts": np.bincount(labels, minlength=classes).tolist(), "labelled": len(chosen),
                   "unlabeled": len(rest), "seconds": time.perf_counter() - start}


def format_table(runs: dict[int, list[dict]]) -> str:
    """A table of `self_train` rows per seed, then the mean over seeds of each round's accuracy."""
    lines = [(f"{'seed':>4} {'round':>5} {'accuracy':>9} {'baseline':>9} {'accepted':>9} {'precision':>10} "
             f"{'seconds':>8}  class counts")]
    for seed, rows in runs.items():
        for row in rows:
            prec = "-" if row["precision"] is None else f"{100 * row['precision']:.1f}%"
            lines.append(f"{seed:>4} {row['round']:>5} {100 * row['accuracy']:8.1f}% {100 * row['baseline']:8.1f}% "
                         f"{row['accepted']:>9} {prec:>10} {row['seconds']:8.1f}  {row['class_counts']}")
    rounds = min(len(rows) for rows in runs.values())
    for r in range(rounds):
        mean = np.mean([rows[r]["accuracy"] for rows in runs.values()])
        lines.append(f"mean over {len(runs)} seeds, round {r}: {100 * mean:.1f}%")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cvdemo.selftrain",
                                     description="Noisy Student self-training on the digits, 5% labelled.")
    parser.add_argument("dataset", choices=("digits",))
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--labelled-fraction", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--class-balanced", action="store_true")
    parser.add_argument("--no-noise", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        runs = {s: list(self_train(args.labelled_fraction, args.rounds, args.threshold, s, args.epochs,
                                   not args.no_noise, class_balanced=args.class_balanced))
                for s in range(args.seeds)}
    except LimitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(runs))
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
