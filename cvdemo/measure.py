"""How big and how fast a model is: the one place the lessons measure it (Distill's teacher vs students,
Architectures' latency of the classics), and how a measure spreads over seeds (`mean_std`, `seed_verdict`).

    from cvdemo.measure import disk_bytes, latency_ms, mean_std, params
    params(model), disk_bytes(model), latency_ms(model, example)   # example: one input (C, H, W), no batch dim

Latency is timed by `torch.utils.benchmark.Timer` (it synchronises CUDA around each timed block and turns the
garbage collector off while timing), at torch's current thread count (not the Timer's default of one thread),
as the median over short timed blocks: one slow block on a shared machine doesn't move it.
Its own module because distillation and the lessons both need it and it needs nothing of theirs.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from .errors import LimitError

if TYPE_CHECKING:
    from torch.utils.benchmark import Measurement

MAX_RUNS = 1000
# Timed blocks: ~BLOCK_SECONDS of passes (at least one), SLOW_BLOCK passes for models slower than SLOW_SECONDS
# (the Timer runs 2 untimed passes before each block). Short blocks keep the median steady on a busy CPU: an
# interrupted block is an outlier. blocked_autorange's blocks (10 ms or more) were not: docs/decisions.md.
BLOCK_SECONDS, SLOW_SECONDS, SLOW_BLOCK = 1e-3, 1e-2, 8


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value) of a measure over seeds."""
    a = np.asarray(values, np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def seed_verdict(a: Sequence[float], b: Sequence[float]) -> str:
    """Whether two variants' results over the same seeds differ clearly: "one_seed" (no spread to judge by),
    "clear" (the means differ by more than twice the larger standard deviation) or "unclear"."""
    if min(len(a), len(b)) < 2:
        return "one_seed"
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    return "clear" if abs(ma - mb) > 2 * max(sa, sb) else "unclear"


def params(model: nn.Module) -> int:
    """Parameters of `model` (a tensor shared by two layers counted once)."""
    return sum(p.numel() for p in model.parameters())


def disk_bytes(model: nn.Module) -> int:
    """Bytes of the model's safetensors file (weights + buffers such as BatchNorm statistics), as
    `cvdemo.distill.make_teacher` and the exports write it."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return len(safetensors_bytes(state, metadata={"format": "pt"}))


@torch.no_grad()
def latency(model: nn.Module, example: torch.Tensor, *, runs: int = 20, warmup: int = 2) -> Measurement:
    """Time `runs` forward passes of `example` as a batch of 1 (torch eager, eval mode, no gradients) on the
    model's own device with `torch.utils.benchmark.Timer`, after `warmup` passes (the Timer's own 2 untimed ones
    first; the rest timed, to size the blocks): `Timer.timeit` in blocks (see BLOCK_SECONDS), merged into one
    Measurement: its `.median` (seconds per pass, the median block) is the figure, `.times` holds every
    block's. The model's train/eval mode is put back afterwards."""
    from torch.utils import benchmark  # imported when measuring: it imports torch.utils.cpp_extension

    if isinstance(runs, bool) or not isinstance(runs, int) or not 1 <= runs <= MAX_RUNS:
        raise LimitError(f"runs must be from 1 to {MAX_RUNS}, got {runs!r}", code="limit.runs", value=runs,
                         limit=MAX_RUNS)
    first = next(model.parameters(), None)
    x = example[None].to(first.device if first is not None else "cpu")
    was_training = model.training
    model.eval()
    try:
        timer = benchmark.Timer("model(x)", globals={"model": model, "x": x}, num_threads=torch.get_num_threads())
        per_pass = timer.timeit(max(warmup - 2, 1)).median
        number = SLOW_BLOCK if per_pass >= SLOW_SECONDS else max(1, round(BLOCK_SECONDS / per_pass))
        blocks = [timer.timeit(min(number, runs - done)) for done in range(0, runs, number)]
        return benchmark.Measurement.merge(blocks)[0]
    finally:
        model.train(was_training)


def latency_ms(model: nn.Module, example: torch.Tensor, *, runs: int = 20, warmup: int = 2) -> float:
    """`latency`'s median in milliseconds per pass."""
    return latency(model, example, runs=runs, warmup=warmup).median * 1000
