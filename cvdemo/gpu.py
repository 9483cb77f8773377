"""Where the work runs: the CPU, a dedicated GPU, or the GPU that ZeroGPU lends a function for one call.

    from cvdemo import gpu
    transfer = gpu.streamed(cvdemo.transfer.transfer)   # called as the library function is (cvdemo.jobs)

- A CPU (a laptop, a CPU Space): everything on the CPU; classification in onnxruntime (`cvdemo.inference`).
- A dedicated GPU (a GPU Space, a workstation): CUDA directly, wherever torch runs (`pick_device`).
- ZeroGPU (free GPU Spaces: the `spaces` package, SPACES_ZERO_GPU=true). The server's own process has no GPU
  (spaces' torch there only pretends to have one), so `pick_device` says "cpu" there and the server classifies as
  a CPU Space does. A GPU is lent to a function decorated with `spaces.GPU`, for one call, in a worker process
  forked from the server (and kept for later calls): the call's arguments are pickled into it, and its return
  value, or each item it yields, pickled back. So what the function changes in the server's objects stays in the
  worker, and what crosses must pickle: a `cvdemo.train.StopFlag` (a file) and a `cvdemo.inference.Classifier`
  (its model on the CPU) do. A call reserves `seconds` of GPU time from the visitor's daily quota and may be
  aborted past them (`budget_seconds`). Off ZeroGPU, `spaces.GPU` returns the function unchanged.

`streamed(fn)` / `returned(fn)` make a library function such a call: `fn` runs inside the decorated function,
every torch module and tensor it hands back moved to the CPU (`cpu_side`), and a user error (`CvdemoError`) it
raises in there is raised again in the caller as itself, so the page still says it in the user's language
(ZeroGPU would turn it into a bare "worker error"). `cvdemo.jobs` holds the app's jobs made so.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
from collections.abc import Callable, Iterator

import torch

from .errors import CvdemoError

try:
    import spaces
except ImportError:  # not a Space: nothing to lend a GPU
    spaces = None

ZERO_GPU = os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")  # as spaces itself reads it
DEFAULT_SECONDS = 60  # the GPU time a call without a time budget reserves (spaces' own default)
SETUP_SECONDS = 30  # reserved on top of a job's time budget: the worker's CUDA start, models built, a feature pass
Seconds = int | Callable[..., int]  # a ZeroGPU duration: a number, or a function of the call's arguments

_SERVER = os.getpid()  # the process that imported this module; on ZeroGPU its GPU workers are forked from it

# torch's CPU thread pool (GNU OpenMP) is not fork-safe: a process forked from one that used it hangs in its first
# parallel op (here: a 2000 x 2000 matmul never returned). On one thread torch never enters a parallel region, so
# a forked process (a ZeroGPU worker: its CPU work is light, the GPU does the rest) runs torch on one.
os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))


def cuda_usable() -> bool:
    """Whether this process may run CUDA: a GPU is there, and this is not a ZeroGPU server's own process."""
    return torch.cuda.is_available() and (not ZERO_GPU or os.getpid() != _SERVER)


def pick_device() -> torch.device:
    """cuda > mps > cpu (cuda only where `cuda_usable`)."""
    if cuda_usable():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def budget_seconds(*args, **kwargs) -> int:
    """A call's ZeroGPU duration, from its keyword arguments: its time budget (`config.max_seconds`, or
    `max_seconds`) plus SETUP_SECONDS; DEFAULT_SECONDS for a call without one."""
    budget = kwargs.get("max_seconds", getattr(kwargs.get("config"), "max_seconds", None))
    return DEFAULT_SECONDS if budget is None else math.ceil(budget) + SETUP_SECONDS


def on_gpu(seconds: Seconds) -> Callable:
    """`spaces.GPU(duration=seconds)` where the spaces package is installed: it lends a GPU on ZeroGPU and does
    nothing elsewhere. Without spaces: nothing."""
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=seconds)


@dataclasses.dataclass
class Refused:
    """A user error raised inside the GPU function, carried back to be raised again outside it."""

    error: CvdemoError


def cpu_side(value):
    """What a GPU call hands back, on the CPU: torch modules moved and tensors copied there, inside dicts, lists,
    tuples and an Event's `result` too. (A Classifier pickles its model on the CPU itself; other objects, e.g. a
    TransferResult, go as they are.)"""
    if isinstance(value, (torch.nn.Module, torch.Tensor)):
        return value.cpu()
    if isinstance(value, dict):
        return {key: cpu_side(item) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(cpu_side(item) for item in value)
    if dataclasses.is_dataclass(value) and getattr(value, "result", None) is not None:  # an Event
        return dataclasses.replace(value, result=cpu_side(value.result))
    return value


def streamed(fn: Callable[..., Iterator], seconds: Seconds = budget_seconds) -> Callable[..., Iterator]:
    """`fn` (a function that returns an iterator, e.g. of training Events) run as a GPU call (module docstring):
    the same arguments, the same items. Closing the iterator closes the call (ZeroGPU's worker stops at its
    next item)."""
    @on_gpu(seconds)
    def remote(*args, **kwargs):
        try:
            for item in fn(*args, **kwargs):
                yield cpu_side(item)
        except CvdemoError as err:
            yield Refused(err)

    @functools.wraps(fn)
    def local(*args, **kwargs):
        with contextlib.closing(remote(*args, **kwargs)) as items:
            for item in items:
                if isinstance(item, Refused):
                    raise item.error
                yield item

    return local


def returned(fn: Callable, seconds: Seconds = budget_seconds) -> Callable:
    """`fn` (a function that returns its result) run as a GPU call: the same arguments, the same result."""
    stream = streamed(lambda *args, **kwargs: [fn(*args, **kwargs)], seconds)

    @functools.wraps(fn)
    def local(*args, **kwargs):
        (result,) = stream(*args, **kwargs)
        return result

    return local
