"""The one training loop: transfer learning, distillation and self-training all run `fit`.

    from cvdemo.train import TrainConfig, fit, progress_bar
    for event in fit(model, train_data, val_data, config=TrainConfig(epochs=5)):
        ...                                   # "step" / "epoch" events, then "done" or "stopped"
    final = progress_bar(fit(model, train_data, val_data, config=TrainConfig()))   # the CLI's tqdm bar

`fit` is a generator: nothing runs until it is iterated, and it yields `Event`s as it goes, so the UI
turns them into a progress bar and live plots and the CLI into a tqdm bar. Read it top to bottom:

- data: `train_data` / `val_data` are torch Datasets of `(x, y)` (or `(x, y, extra...)`, e.g. a
  teacher's logits), x a float tensor (C, H, W), y a class index or a soft-label vector (N classes,
  rows summing to 1). The DataLoaders are built here; the training one shuffles from a generator
  seeded with `config.seed`. A training Dataset with `set_epoch(epoch)` is told each epoch before its
  batches load (its workers are then not persistent, so they see it): that is how augmentation draws
  per (seed, epoch, image) from `keyed_generator(seed, epoch, index)`.
- seeds: the same seed gives the same weights (on a CPU, with num_workers=0). Build every model a run
  trains inside `with seeded(config.seed):` (new heads, from-scratch networks: torch's CPU RNG from the
  seed, put back afterwards); `fit` itself seeds torch's global RNG with `config.seed` at the start, for
  what can only draw from it (dropout, stochastic depth). Training jobs in the app run one at a time.
- loss: `compute_loss(model, batch) -> (loss, logits, hard_labels or None)`, by default
  `classification_loss` (cross-entropy with label smoothing; class indices or soft labels). Accuracy is
  counted against `hard_labels` (for soft labels: their argmax). Validation always uses
  `classification_loss` on `(x, y)` with no smoothing, so val_loss / val_acc mean the same thing in
  transfer learning, distillation and self-training.
- optimiser: AdamW over `params` (default: the model's parameters with requires_grad) unless an
  `optimizer` is given (`adamw` builds one with per-group learning rates); its weight decay skips biases and normalisation weights (parameters with ndim <= 1,
  as timm and nanoGPT do). Either way every parameter group's learning rate follows a cosine from its
  own starting value to 0 over all steps (no warm-up); the starting values are put back at the end.
- budget: `config.epochs` passes over the training data, or fewer with `config.max_steps`: training then
  ends ("done", not "stopped") after that many optimiser steps, the last epoch cut short (its metrics and
  validation as for any epoch); the events' `epochs` / `steps` and the cosine count what will really run.
- `batch_transform(x, y) -> (x, y)` runs on each training batch (on the device) before the loss:
  this is where `Pipeline.mix_batch` (CutMix / MixUp) plugs in.
- the model left in `model` at the end is the best one seen: highest val_acc (train_acc without
  validation data; ties go to the later epoch). A CPU copy of its state_dict is kept and loaded back
  at the end, when stopped (StopFlag or `max_seconds`, checked before every step) and when an
  exception (e.g. out of memory) propagates. Stopped before the first epoch finished: the weights
  stay as they are and the "stopped" event has `best=None`.
- `model` is moved to the device (and stays there). CUDA: bf16 autocast and channels_last when
  `config.amp`; elsewhere plain float32. A last training batch of a single image (which BatchNorm
  refuses in train mode) is dropped: a different image each epoch.
- DDP: under `torchrun` (one process or more) the process group is initialised if needed (nccl on CUDA,
  else gloo; destroyed at the end only if `fit` created it), the model is wrapped in
  DistributedDataParallel, training data is split by a DistributedSampler and validation data by
  rank; loss sums and correct/total counts are all-reduced, so metrics and the best-model choice are
  global. DDP keeps the parameters equal; the floating-point buffers (BatchNorm running mean / var, which
  each rank updates from its own batches) are averaged over the ranks after every epoch's training,
  before validation and before the best state is kept, so every rank ends with the same weights and
  buffers. Only rank 0 yields events; use `is_main_process()` to save once.

Outside training, `predict(model, data)` (the model's outputs, in chunks, on its own device) and
`evaluate(model, data)` (loss and accuracy as `fit` validates; all-reduced under a process group) are the
one door for running a trained model over a data set.
"""
from __future__ import annotations

import itertools
import math
import os
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, default_collate

from .errors import LimitError
from .gpu import pick_device

__all__ = ["MAX_BATCH_SIZE", "MAX_EPOCHS", "MAX_STEPS", "Event", "StopFlag", "TrainConfig", "classification_loss",
           "evaluate", "fit", "is_main_process", "keyed_generator", "last_event", "predict", "progress_bar", "seeded"]

MAX_EPOCHS = 500
MAX_STEPS = 1_000_000
MAX_BATCH_SIZE = 1024
MAX_WORKERS = 32

Batch = list  # [x, y, *extra] as the DataLoader collated it, on the device
LossFn = Callable[[torch.nn.Module, Batch], tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class TrainConfig:
    """Training settings; absurd values raise LimitError (at construction and again in `fit`)."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str | None = None  # None: cuda > mps > cpu (cvdemo.gpu.pick_device)
    max_seconds: float | None = None  # wall-clock budget; past it training stops cleanly, keeping the best
    num_workers: int = 0
    label_smoothing: float = 0.0
    amp: bool = True  # bf16 autocast + channels_last, on CUDA only
    max_steps: int | None = None  # a step budget: training ends after this many optimiser steps (epochs still cap it)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        def bad(name: str, rule: str, **params: object) -> LimitError:
            value = getattr(self, name)
            return LimitError(f"{name} must be {rule}, got {value!r}", code=f"limit.{name}", value=value, **params)

        if not _whole(self.epochs) or not 1 <= self.epochs <= MAX_EPOCHS:
            raise bad("epochs", f"a whole number from 1 to {MAX_EPOCHS}", limit=MAX_EPOCHS)
        if not _whole(self.batch_size) or not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise bad("batch_size", f"a whole number from 1 to {MAX_BATCH_SIZE}", limit=MAX_BATCH_SIZE)
        if not _number(self.lr) or not 0 < self.lr <= 10:
            raise bad("lr", "a number above 0 and at most 10", limit=10)
        if not _number(self.weight_decay) or not 0 <= self.weight_decay <= 1:
            raise bad("weight_decay", "a number from 0 to 1", limit=1)
        if not _whole(self.seed) or not 0 <= self.seed < 2**63:
            raise bad("seed", "a whole number from 0 to 2**63 - 1")
        if self.max_seconds is not None and (not _number(self.max_seconds) or self.max_seconds <= 0):
            raise bad("max_seconds", "a number of seconds above 0 (or None for no limit)")
        if not _whole(self.num_workers) or not 0 <= self.num_workers <= MAX_WORKERS:
            raise bad("num_workers", f"a whole number from 0 to {MAX_WORKERS}", limit=MAX_WORKERS)
        if not _number(self.label_smoothing) or not 0 <= self.label_smoothing < 1:
            raise bad("label_smoothing", "a number from 0 up to (not including) 1", limit=1)
        if self.max_steps is not None and (not _whole(self.max_steps) or not 1 <= self.max_steps <= MAX_STEPS):
            raise bad("max_steps", f"a whole number from 1 to {MAX_STEPS} (or None for no limit)", limit=MAX_STEPS)
        if not isinstance(self.amp, bool):
            raise bad("amp", "True or False")
        if self.device is not None:
            try:
                torch.device(self.device if isinstance(self.device, str) else "?")
            except RuntimeError:
                raise bad("device", "None or a torch device such as 'cpu', 'cuda' or 'cuda:1'") from None


@dataclass
class Event:
    """What training reports. kind: "step" | "epoch" | "done" | "stopped"; step counters are global
    across epochs (`step` = steps finished, `steps` = epochs * steps per epoch, or `max_steps`; `epochs`:
    the epochs that will run, the last maybe cut short by `max_steps`). At "step": loss (this
    rank's batch) and metrics {"lr"}. At "epoch": metrics train_loss, train_acc, val_loss, val_acc
    (val_* only with validation data; *_acc only when labels are known). At "done"/"stopped": `best`
    = {"epoch", and that epoch's metrics} of the model left in `model` (None: stopped before the
    first epoch finished, weights as they were) and `history` = every finished epoch's metrics.

    The loops built on `fit` stream the same Events: their final "done"/"stopped" event carries `result`,
    what the run produced (transfer: a TransferResult; distill_classifier, three_way_live, self_train: a dict;
    `fit`'s own is None), and on the way they may report their own kinds and measures (three_way_live: "epoch"
    with a curve's point in `metrics`; self_train: "round" with the round's report). `elapsed` is always the
    seconds since the run started."""

    kind: str
    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    best: dict[str, float] | None = None
    history: list[dict] | None = None
    result: Any = None


def last_event(events: Iterable[Event]) -> Event | None:
    """Run an event stream to its end and return its last event (None if it yielded nothing, as on ranks > 0)."""
    last = None
    for last in events:
        pass
    return last


STOP_FOLDER = Path(tempfile.gettempdir()) / "cvdemo-stop"


class StopFlag:
    """Cooperative cancellation: `set()` from any thread or process (the UI's Stop button); `fit` checks it
    before every step, then stops cleanly with the best weights so far.

    The flag is a file, STOP_FOLDER/<random name>, there once set (a stat per check): a copy of the flag pickled
    into another process sees a `set()` made here. That is how the Stop button reaches a training run on ZeroGPU,
    which runs in a worker process that gets its arguments pickled (`cvdemo.gpu`). The file goes when the flag
    that made it does (its pickled copies leave it alone)."""

    def __init__(self) -> None:
        self.path = STOP_FOLDER / uuid.uuid4().hex
        weakref.finalize(self, self.path.unlink, missing_ok=True)

    def set(self) -> None:
        STOP_FOLDER.mkdir(parents=True, exist_ok=True)
        self.path.touch()

    def is_set(self) -> bool:
        return self.path.exists()


def classification_loss(model: torch.nn.Module, batch: Batch,
                        label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The default `compute_loss`: cross-entropy of model(x) against y, where y holds class indices
    (N,) or soft labels (N, classes) (then the loss is -(y * log_softmax(logits)).sum(1).mean()).
    Returns (loss, logits, hard labels: y, or the argmax of soft y). Extra batch items are ignored."""
    x, y = batch[0], batch[1]
    logits = model(x)
    if not y.is_floating_point():
        y = y.long()
    loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    return loss, logits, (y.argmax(1) if y.is_floating_point() else y)


def is_main_process() -> bool:
    """True on rank 0 under torchrun (and in any single-process run): the one process that saves."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


_seed_lock = threading.RLock()


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Build a run's models inside this: torch's CPU RNG starts from `seed` (so new heads and from-scratch
    networks are the same for the same seed) and is put back as it was afterwards. Seeded builds take turns
    (a lock), so two sessions building at once don't draw from each other's stream."""
    with _seed_lock, torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def keyed_generator(seed: int, *keys: int) -> torch.Generator:
    """A CPU generator seeded from (seed, *keys), e.g. (run seed, epoch, image index): the same draws for the
    same keys, independent streams for different ones, without touching the global RNG."""
    state = np.random.SeedSequence([seed, *keys]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def fit(model: torch.nn.Module, train_data: Dataset, val_data: Dataset | None = None, *, config: TrainConfig,
        compute_loss: LossFn | None = None, optimizer: torch.optim.Optimizer | None = None,
        params: Iterable[torch.nn.Parameter] | None = None,
        batch_transform: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
        stop: StopFlag | None = None, step_events: bool = True) -> Iterator[Event]:
    """Train `model` in place; a generator of Events (see the module docstring). Settings and data
    are checked here, at the call, so a bad config raises LimitError before anything runs."""
    config.check()
    if len(train_data) == 0:
        raise LimitError("There are no training images.", code="limit.no_train_data")
    if val_data is not None and len(val_data) == 0:
        raise LimitError("The validation set is empty; pass val_data=None to train without one.",
                         code="limit.no_val_data")
    if optimizer is not None and params is not None:
        raise ValueError("pass either `optimizer` or `params` (the parameters the default AdamW trains), not both")
    return _fit(model, train_data, val_data, config, compute_loss, optimizer, params, batch_transform, stop,
                step_events)


def adamw(config: TrainConfig, *groups: tuple[Iterable[torch.nn.Parameter], float]) -> torch.optim.AdamW:
    """`fit`'s optimiser: AdamW over (parameters, learning-rate scale) groups, each at `config.lr` x its scale,
    trainable parameters only; weight decay skips biases and normalisation weights (ndim <= 1), as timm and
    nanoGPT do."""
    out = []
    for params, scale in groups:
        params = [p for p in params if p.requires_grad]
        out += [{"params": [p for p in params if p.ndim > 1], "lr": config.lr * scale},
                {"params": [p for p in params if p.ndim <= 1], "lr": config.lr * scale, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in out if g["params"]], lr=config.lr, weight_decay=config.weight_decay)


def _fit(model, train_data, val_data, config, compute_loss, optimizer, params, batch_transform, stop,
         step_events) -> Iterator[Event]:
    start = time.monotonic()
    torch.manual_seed(config.seed)

    # --- where: the device, and the process group under torchrun ---
    device = torch.device(config.device) if config.device else pick_device()
    # under torchrun (even with one process: the same DDP path, e.g. nccl on one GPU)
    torchrun = int(os.environ.get("WORLD_SIZE", "1")) > 1 or "TORCHELASTIC_RUN_ID" in os.environ
    if torchrun and device.type == "cuda":  # one GPU per process: this node's rank picks it
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    created_group = False
    if torchrun and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        created_group = True
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    main = rank == 0
    amp = config.amp and device.type == "cuda"
    memory_format = torch.channels_last if amp else torch.preserve_format

    def should_stop() -> bool:
        late = config.max_seconds is not None and time.monotonic() - start > config.max_seconds
        now = late or (stop is not None and stop.is_set())
        if distributed:  # every rank must stop at the same step, or the others wait forever
            flag = torch.tensor([float(now)], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            now = bool(flag.item())
        return now

    best_state, best, history, step, stopped, base_lrs = None, None, [], 0, False, []
    try:
        # --- data ---
        loader_args = {"batch_size": config.batch_size, "num_workers": config.num_workers,
                       "pin_memory": device.type == "cuda"}
        workers = config.num_workers > 0
        if distributed:
            sampler = DistributedSampler(train_data, num_replicas=world, rank=rank, shuffle=True, seed=config.seed)
            shuffle, generator, per_rank = None, None, len(sampler)
        else:
            sampler, shuffle, per_rank = None, True, len(train_data)
            generator = torch.Generator().manual_seed(config.seed)
        # a last batch of one image would break BatchNorm in train mode: drop it (a different one each epoch)
        drop_last = per_rank > config.batch_size and per_rank % config.batch_size == 1
        # a dataset told the epoch (its augmentation draws depend on it) needs fresh workers, which see it
        per_epoch = callable(getattr(train_data, "set_epoch", None))
        train_loader = DataLoader(train_data, sampler=sampler, shuffle=shuffle, generator=generator,
                                  drop_last=drop_last, persistent_workers=workers and not per_epoch, **loader_args)
        val_loader = None
        if val_data is not None:  # each rank validates every world-th image: no padding, exact global counts
            val_loader = DataLoader(Subset(val_data, range(rank, len(val_data), world)) if distributed
                                    else val_data, shuffle=False, persistent_workers=workers, **loader_args)
        # --- the budget: epochs, or fewer with a step budget (the last epoch then cut short) ---
        epochs, steps = config.epochs, config.epochs * len(train_loader)
        if config.max_steps is not None and config.max_steps < steps:
            epochs, steps = math.ceil(config.max_steps / len(train_loader)), config.max_steps

        # --- model, loss, optimiser ---
        model.to(device, memory_format=memory_format)
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=None if device.index is None else [device.index]) if distributed else model
        compute_loss = compute_loss or partial(classification_loss, label_smoothing=config.label_smoothing)
        if optimizer is None:
            optimizer = adamw(config, (model.parameters() if params is None else params, 1.0))
        base_lrs = [group["lr"] for group in optimizer.param_groups]

        for epoch in range(1, epochs + 1):
            # --- train one epoch ---
            model.train()
            if distributed:
                sampler.set_epoch(epoch)
            if per_epoch:
                train_data.set_epoch(epoch)
            sums = torch.zeros(4, dtype=torch.float64, device=device)
            for batch in train_loader:
                if should_stop():
                    stopped = True
                    break
                lr_factor = 0.5 * (1 + math.cos(math.pi * step / steps))  # cosine from the start lr to 0
                for group, base_lr in zip(optimizer.param_groups, base_lrs):
                    group["lr"] = base_lr * lr_factor
                batch = _to_device(batch, device, memory_format)
                if batch_transform is not None:
                    batch = [*batch_transform(batch[0], batch[1]), *batch[2:]]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    loss, logits, hard = compute_loss(net, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                sums += _batch_sums(loss, logits, hard)
                if step_events and main:
                    yield Event("step", epoch, epochs, step, steps, loss=loss.item(),
                                metrics={"lr": base_lrs[0] * lr_factor}, elapsed=time.monotonic() - start)
                if step == steps:  # the step budget is spent (mid-epoch with max_steps)
                    break
            if distributed:  # each rank's BatchNorm statistics saw its own batches: average them
                _average_buffers(model, world)
            if stopped:
                break
            metrics = _metrics("train_", sums, distributed)

            # --- validate (as `evaluate` does) ---
            if val_loader is not None:
                model.eval()  # and it stays so until the next epoch trains
                with _inference(model, config.amp):
                    metrics.update(_metrics("val_", _eval_sums(model, val_loader, device, memory_format), distributed))
            history.append({"epoch": epoch, **metrics})

            # --- keep the best (global metrics, so every rank keeps the same epoch); ties: the later ---
            key = next((k for k in ("val_acc", "train_acc") if k in metrics), None)
            score = metrics[key] if key else -metrics.get("val_loss", metrics["train_loss"])
            if best is None or score >= best["score"]:
                best = {"score": score, "epoch": epoch, **metrics}
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            if main:
                yield Event("epoch", epoch, epochs, step, steps, metrics=metrics,
                            elapsed=time.monotonic() - start)

        # --- the end: the best weights back into `model` ---
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        if main:
            kept = None if best is None else {k: v for k, v in best.items() if k != "score"}
            yield Event("stopped" if stopped else "done", len(history), epochs, step, steps,
                        elapsed=time.monotonic() - start, best=kept, history=history)
    except BaseException:  # an error, or the caller closing the generator: keep the user's best work
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        raise
    finally:
        for group, base_lr in zip(optimizer.param_groups if base_lrs else [], base_lrs):
            group["lr"] = base_lr
        if created_group:
            dist.destroy_process_group()


def _average_buffers(model: torch.nn.Module, world: int) -> None:
    """Average the floating-point buffers (BatchNorm running mean / var) over all ranks, in place. Integer
    buffers (num_batches_tracked) already agree: every rank takes the same number of steps."""
    for buffer in model.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)  # a sum (gloo has no average)
            buffer.div_(world)


def _to_device(batch, device: torch.device, memory_format: torch.memory_format) -> Batch:
    """The collated batch's tensors on the device; image batches (N, C, H, W) in `memory_format`."""
    batch = [b.to(device, non_blocking=True) if isinstance(b, torch.Tensor) else b for b in batch]
    if batch[0].ndim == 4:
        batch[0] = batch[0].contiguous(memory_format=memory_format)
    return batch


def _metrics(prefix: str, sums: torch.Tensor, distributed: bool) -> dict[str, float]:
    """{prefix + loss, prefix + acc} from an epoch's [loss * n, n, correct, labelled] sums (over all ranks)."""
    if distributed:
        dist.all_reduce(sums)
    loss_sum, n, correct, labelled = sums.tolist()
    out = {f"{prefix}loss": loss_sum / max(n, 1)}
    if labelled:
        out[f"{prefix}acc"] = correct / labelled
    return out


def _batch_sums(loss: torch.Tensor, logits: torch.Tensor, hard: torch.Tensor | None) -> torch.Tensor:
    """One batch's [loss * n, n, correct, labelled] as float64, on the loss's device (no host sync)."""
    n = logits.shape[0]
    loss_sum = loss.detach().double() * n
    if hard is None:
        return torch.stack([loss_sum, loss_sum.new_tensor(n), loss_sum.new_zeros(()), loss_sum.new_zeros(())])
    correct = (logits.detach().argmax(1) == hard).sum().double()
    return torch.stack([loss_sum, loss_sum.new_tensor(n), correct, loss_sum.new_tensor(n)])


# --- running a trained model: predict and evaluate ----------------------------------------------

# The input values one inference batch holds at most: 16 images of 3x224x224 (a Lite0's activations for them peak
# near 300 MB; 256 such images, the default batch, took 1.5 GB more). Small inputs (8x8 digits) keep the batch.
MAX_BATCH_VALUES = 16 * 3 * 224 * 224


def predict(model: torch.nn.Module, data, *, preprocess: Callable | None = None, batch_size: int = 256,
            amp: bool = False) -> torch.Tensor:
    """`model`'s outputs (N, classes) for the items of `data` in order, float32 on the CPU, `batch_size` at a
    time (see `_inference`). `data`: a Dataset (a tensor or a list will do) of inputs or of (input, label, ...)
    tuples; `preprocess(item) -> input tensor` first, when given."""
    out = []
    with _inference(model, amp) as (device, memory_format):
        for batch in _loader(data, batch_size, preprocess):
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            out.append(model(_to_device([x], device, memory_format)[0]).float().cpu())
    return torch.cat(out) if out else torch.zeros(0)


def evaluate(model: torch.nn.Module, data: Dataset, *, batch_size: int = 256, amp: bool = False,
             distributed: bool | None = None) -> dict[str, float]:
    """{"loss", "acc"} of `model` on `data`'s (x, y, ...) items as `fit` validates: `classification_loss` without
    smoothing, top-1 against y (soft y: its argmax); see `_inference`. `distributed` (default: when a process
    group is up): each rank takes every world-th item and the sums are all-reduced, so every rank gets the
    global figures (call it on every rank)."""
    distributed = dist.is_available() and dist.is_initialized() if distributed is None else distributed
    with _inference(model, amp) as (device, memory_format):
        sums = _eval_sums(model, _loader(data, batch_size, distributed=distributed), device, memory_format)
    return _metrics("", sums, distributed)


@contextmanager
def _inference(model: torch.nn.Module, amp: bool) -> Iterator[tuple[torch.device, torch.memory_format]]:
    """Eval mode (the model's own mode put back afterwards), no gradients, on the model's own device; bf16
    autocast + channels_last on CUDA with `amp` (as `fit` with `TrainConfig.amp`). Yields (device, format)."""
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    device = tensor.device if tensor is not None else torch.device("cpu")
    amp = amp and device.type == "cuda"
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            yield device, torch.channels_last if amp else torch.preserve_format
    finally:
        model.train(was_training)


def _eval_sums(model: torch.nn.Module, loader: Iterable, device: torch.device,
               memory_format: torch.memory_format) -> torch.Tensor:
    """[loss * n, n, correct, labelled] of `model` over the (x, y, ...) batches (inside `_inference`)."""
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    for batch in loader:
        sums += _batch_sums(*classification_loss(model, _to_device(batch, device, memory_format)))
    return sums


def _loader(data, batch_size: int, preprocess: Callable | None = None, distributed: bool = False) -> Iterator:
    """`data` in order (`preprocess(item)` first, when given), in batches of `batch_size` items, or fewer where their
    inputs would hold more than MAX_BATCH_VALUES values; distributed: this rank's every world-th item (no padding,
    as fit validates: exact global counts once reduced)."""
    if distributed:
        data = Subset(data, range(dist.get_rank(), len(data), dist.get_world_size()))
    batch, values = [], 0
    for i in range(len(data)):
        item = data[i] if preprocess is None else preprocess(data[i])
        x = item[0] if isinstance(item, (list, tuple)) else item
        size = x.numel() if isinstance(x, torch.Tensor) else np.asarray(x).size
        if batch and (len(batch) == batch_size or values + size > MAX_BATCH_VALUES):
            yield default_collate(batch)
            batch, values = [], 0
        batch.append(item)
        values += size
    if batch:
        yield default_collate(batch)


def progress_bar(events: Iterable[Event]) -> Event | None:
    """Drive a tqdm bar (steps, postfix loss / val_acc) from `fit`'s events, print one line per epoch
    and return the final event ("done" / "stopped"; None on ranks > 0, which get no events)."""
    from tqdm import tqdm

    bar, last = None, None
    try:
        for event in events:
            last = event
            if bar is None:
                bar = tqdm(total=event.steps, unit="step", dynamic_ncols=True)
            bar.update(event.step - bar.n)
            if event.kind == "step":
                bar.set_postfix(epoch=f"{event.epoch}/{event.epochs}", loss=f"{event.loss:.4f}")
            elif event.kind == "epoch":
                m = event.metrics
                shown = {k: f"{m[k]:.4f}" for k in ("train_loss", "val_loss", "val_acc") if k in m}
                bar.set_postfix(epoch=f"{event.epoch}/{event.epochs}", **shown)
                bar.write(f"epoch {event.epoch}/{event.epochs}  " + "  ".join(f"{k} {v:.4f}" for k, v in m.items()))
            else:
                kept = "the weights as they were" if event.best is None else \
                    "epoch " + str(event.best["epoch"]) + "".join(
                        f", {k} {event.best[k]:.4f}" for k in ("val_acc", "train_acc") if k in event.best)
                bar.write(f"{event.kind} after {len(event.history or [])} epoch(s), {event.elapsed:.1f} s; kept {kept}")
    finally:
        if bar is not None:
            bar.close()
    return last


# --- threads ----------------------------------------------------------------------------------

_threads_lock = threading.Lock()
_threads_users = [0, 0]  # [runs inside one_thread(), the thread count to restore]


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside (process-wide, restored when the last user leaves). The
    digits models are tiny: on the busy 2-core machine two threads made an MLP step ~50x slower
    (49 ms vs 0.75 ms) and the teacher's batch-1 latency 38 ms vs 0.5 ms, from threads waiting on each other."""
    with _threads_lock:
        if _threads_users[0] == 0:
            _threads_users[1] = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users[0] += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users[0] -= 1
            if _threads_users[0] == 0:
                torch.set_num_threads(_threads_users[1])
