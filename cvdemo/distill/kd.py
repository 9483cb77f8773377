"""The knowledge-distillation core (Hinton, Vinyals & Dean 2015): the loss, soft targets, and `distill`,
which trains any student on any frozen teacher's softened predictions.

- `kd_loss` is the loss: alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels),
  where _T means softmax(logits / T). T^2 keeps the soft term's gradients the same size as T changes.
  Rows labelled -1 (unlabeled transfer images) count in the KL term only.
- Teacher and student may want different inputs (size, normalisation): the data are RAW images (PIL,
  uint8 arrays or tensors) and each model comes with its own `preprocess(image) -> (C, H, W)`. The
  teacher (frozen, eval mode) runs ONCE over every image; its logits are cached, and the student trains
  through `cvdemo.train.fit` on batches of (student input, label or -1, teacher logits).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LimitError, ModelError
from ..train import Event, StopFlag, TrainConfig, fit, predict

__all__ = ["Preprocess", "TransferSet", "as_input", "check_T_alpha", "distill", "entropy_bits", "kd_loss", "kd_terms",
           "soft_targets", "t_squared_gradients", "teacher_logits", "temperatures_for"]

Preprocess = Callable[[Any], Any]  # raw image -> model input (C, H, W) (a leading batch dim of 1 is dropped)


# --- the loss ---------------------------------------------------------------------------------

def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None = None,
            T: float = 4.0, alpha: float = 0.9) -> torch.Tensor:
    """alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, labels).

    The KL term averages over all rows; the CE term over the labelled rows only (label < 0 means
    unlabeled) and is 0 when there are none or `labels` is None."""
    check_T_alpha(T, alpha)
    terms = kd_terms(student_logits, teacher_logits, labels, T)
    return alpha * terms["soft"] + (1 - alpha) * terms["hard"]


def kd_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None = None,
             T: float = 4.0) -> dict[str, torch.Tensor]:
    """kd_loss's two terms apart (kd_loss = alpha * soft + (1 - alpha) * hard): "soft" = T^2 * KL(teacher_T ||
    student_T), the mean over all rows; "hard" = CE(student at T = 1, labels), the mean over the labelled rows
    (label >= 0; 0 when there are none or `labels` is None)."""
    check_T_alpha(T)
    s, t = student_logits.float(), teacher_logits.float()
    kd = F.kl_div(F.log_softmax(s / T, dim=1), F.log_softmax(t / T, dim=1), log_target=True, reduction="batchmean")
    if labels is None:
        return {"soft": T * T * kd, "hard": s.new_zeros(())}
    labels = labels.long()
    known = labels >= 0
    ce_sum = F.cross_entropy(s, labels.clamp_min(0), reduction="none").mul(known).sum()
    return {"soft": T * T * kd, "hard": ce_sum / known.sum().clamp_min(1)}  # no host sync: 0 / 1 with no labels


def t_squared_gradients(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                        temperatures: Sequence[float] = (1, 2, 4, 8, 16)) -> dict[str, list[float]]:
    """Why kd_loss multiplies the soft term by T^2 (Hinton et al. 2015, section 2): the KL term's gradient with
    respect to the student's logits, (softmax(z/T) - softmax(v/T)) / T, shrinks like 1/T^2 once T is large
    next to the logits, while the hard term's does not depend on T; times T^2 it keeps its size. Measured with
    autograd on these logits: for each T the mean over rows of the norm of one row's gradient, of the KL
    term alone ("plain") and times T^2 ("scaled"); "hard" is the CE term's (the labelled rows, label >= 0)."""
    z = student_logits.detach().float().clone().requires_grad_(True)
    v, y = teacher_logits.detach().float(), labels.long()
    out: dict[str, list[float]] = {"T": [float(T) for T in temperatures], "plain": [], "scaled": []}
    for T in temperatures:
        check_T_alpha(T)
        kl = F.kl_div(F.log_softmax(z / T, dim=1), F.log_softmax(v / T, dim=1), log_target=True, reduction="sum")
        norm = torch.autograd.grad(kl, z)[0].norm(dim=1).mean().item()  # sum over rows: each row its own gradient
        out["plain"].append(norm)
        out["scaled"].append(T * T * norm)
    known = y >= 0
    ce = F.cross_entropy(z[known], y[known], reduction="sum")
    out["hard"] = [torch.autograd.grad(ce, z)[0][known].norm(dim=1).mean().item()] * len(temperatures)
    return out


def soft_targets(logits: Any, temperatures: Sequence[float] = (1, 2, 5, 10, 20)) -> dict[float, np.ndarray]:
    """The teacher's softmax(logits / T) for each T (the temperature explorer): {T: probabilities}, each
    shaped like `logits` ((classes,) for one image, or (N, classes)). Higher T: flatter."""
    z = torch.as_tensor(np.asarray(logits.detach().cpu() if isinstance(logits, torch.Tensor) else logits),
                        dtype=torch.float64)
    out = {}
    for T in temperatures:
        check_T_alpha(T)
        out[T] = torch.softmax(z / T, dim=-1).numpy()
    return out


def entropy_bits(p: np.ndarray) -> float:
    """The entropy of one probability vector, in bits (0 for a certain answer, log2(classes) for uniform)."""
    p = np.asarray(p, dtype=np.float64)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def temperatures_for(logits: Any, count: int = 5, reach: float = 0.9) -> tuple[float, ...]:
    """`count` temperatures that fit these logits (one image): from T = 1 up to the T at which the softmax's
    entropy reaches `reach` of its maximum (log2 of the class count), in geometric steps, rounded to two
    significant figures. A fixed 1..20 wastes most panels on an ImageNet teacher, which is within 0.05 bits of
    uniform by T = 5; a confident digits teacher needs larger Ts. The entropy of softmax(z / T) grows with T,
    so the top T is found by bisection (at least 2, at most 100, the allowed T range)."""
    z = np.asarray(logits.detach().cpu() if isinstance(logits, torch.Tensor) else logits, dtype=np.float64)
    target = reach * math.log2(z.size)

    def entropy_at(T: float) -> float:
        return entropy_bits(soft_targets(z, (T,))[T])

    lo, hi = 1.0, 100.0
    if entropy_at(hi) <= target:
        lo = hi
    for _ in range(40):
        if hi - lo < 1e-3:
            break
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if entropy_at(mid) < target else (lo, mid)
    top = max(2.0, hi)
    steps = [top ** (i / (count - 1)) for i in range(count)]
    return tuple(float(f"{t:.2g}") for t in steps)


def check_T_alpha(T: float, alpha: float | None = None) -> None:
    if isinstance(T, bool) or not isinstance(T, (int, float)) or not 0 < T <= 100 or not math.isfinite(T):
        raise LimitError(f"T (temperature) must be a number above 0 and at most 100, got {T!r}", code="limit.T",
                         value=T)
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1):
        raise LimitError(f"alpha must be a number from 0 to 1, got {alpha!r}", code="limit.alpha", value=alpha)


# --- the general entry ------------------------------------------------------------------------

def as_input(x: Any) -> torch.Tensor:
    """A preprocess result as a float tensor (C, H, W): numpy or torch; a leading batch dim of 1 dropped."""
    x = torch.as_tensor(x)
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    return x.float()


def teacher_logits(teacher: nn.Module, images: Sequence[Any], preprocess: Preprocess, *,
                   batch_size: int = 128) -> torch.Tensor:
    """The frozen teacher's logits (N, classes), float32 on the CPU: one pass in eval mode, on the
    teacher's own device (its train/eval mode is put back afterwards): `cvdemo.train.predict`."""
    return predict(teacher, images, preprocess=lambda im: as_input(preprocess(im)), batch_size=batch_size)


class TransferSet(torch.utils.data.Dataset):
    """(student input, label or -1, teacher logits) per image; the student's preprocessing runs here,
    once up front for small inputs (the digits' 8x8), on the fly for big ones (224 px) to bound memory."""

    def __init__(self, images: Sequence[Any], labels: torch.Tensor, logits: torch.Tensor,
                 preprocess: Preprocess) -> None:
        self.images, self.labels, self.logits, self.preprocess = images, labels, logits, preprocess
        small = as_input(preprocess(images[0])).numel() * len(images) <= 2**24  # <= 64 MB of float32
        self.inputs = torch.stack([as_input(preprocess(im)) for im in images]) if small else None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x = self.inputs[i] if self.inputs is not None else as_input(self.preprocess(self.images[i]))
        return x, self.labels[i], self.logits[i]


def distill(teacher: nn.Module, student: nn.Module, train_images: Sequence[Any], labels: Sequence[int],
            unlabeled_images: Sequence[Any], teacher_preprocess: Preprocess, student_preprocess: Preprocess,
            config: TrainConfig | None = None, T: float = 4.0, alpha: float = 0.9, stop: StopFlag | None = None, *,
            val_images: Sequence[Any] | None = None, val_labels: Sequence[int] | None = None) -> Iterator[Event]:
    """Train `student` (in place) to match `teacher` on `train_images` (with `labels`) + `unlabeled_images`;
    yields the Events of `cvdemo.train.fit`, ending with "done"/"stopped" (the student then holds the best
    weights seen). Images are raw; each model's `*_preprocess(image)` makes its input (C, H, W).

    The teacher runs once over all images (frozen, eval mode); the student then trains on kd_loss with
    `config`. train_acc counts the student's agreement with the teacher; without validation images the
    best epoch is the one that agrees most, with them (`val_images`, `val_labels`) the highest val_acc.
    Settings, labels and the two models' class counts are checked here, at the call."""
    config = config or TrainConfig(epochs=20)
    config.check()
    check_T_alpha(T, alpha)
    images = list(train_images) + list(unlabeled_images)
    if len(labels) != len(train_images):
        raise LimitError(f"{len(train_images)} labelled images but {len(labels)} labels.", code="limit.labels")
    if not images:
        raise LimitError("There are no images to distill on.", code="limit.no_train_data")
    if (val_images is None) != (val_labels is None):
        raise ValueError("pass both val_images and val_labels, or neither")
    # how many classes each model predicts: one pass over one image
    classes, out = (teacher_logits(model, images[:1], pre).shape[-1] for model, pre in ((teacher, teacher_preprocess),
                                                                                         (student, student_preprocess)))
    if out != classes:
        raise ModelError(f"The student has {out} outputs but the teacher has {classes} classes.",
                         code="model.class_mismatch", student=out, teacher=classes)
    y = torch.tensor([int(v) for v in labels] + [-1] * len(unlabeled_images), dtype=torch.long)
    for given in (y[:len(labels)], torch.tensor([int(v) for v in (val_labels if val_labels is not None else [])])):
        if len(given) and not (0 <= int(given.min()) and int(given.max()) < classes):
            raise LimitError(f"Labels must be class indices from 0 to {classes - 1} (the teacher has {classes} "
                             f"classes); got {int(given.min())}..{int(given.max())}.", code="limit.labels")
    return _distill(teacher, student, images, y, teacher_preprocess, student_preprocess, config, T, alpha, stop,
                    val_images, val_labels)


def _distill(teacher, student, images, y, teacher_preprocess, student_preprocess, config, T, alpha, stop,
             val_images, val_labels) -> Iterator[Event]:
    logits = teacher_logits(teacher, images, teacher_preprocess)  # once; the teacher is never trained
    train_set = TransferSet(images, y, logits, student_preprocess)
    val_set = None
    if val_images is not None and len(val_images):  # (x, y, unused zeros): validation reads (x, y) only
        vy = torch.tensor([int(v) for v in val_labels], dtype=torch.long)
        val_set = TransferSet(list(val_images), vy, torch.zeros(len(vy), logits.shape[1]), student_preprocess)

    def compute_loss(model, batch):
        x, labels, t = batch[0], batch[1], batch[2]
        out = model(x)
        return kd_loss(out, t, labels, T=T, alpha=alpha), out, t.argmax(1)  # "accuracy": agreement with the teacher

    yield from fit(student, train_set, val_set, config=config, compute_loss=compute_loss, stop=stop)
