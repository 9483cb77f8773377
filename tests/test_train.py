"""The one training loop (cvdemo.train.fit): learning, events, determinism, soft labels, stopping,
errors, and DDP on two CPU processes (gloo)."""
import itertools
import json
import math
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import free_port
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import TensorDataset

from cvdemo.augment import build_pipeline
from cvdemo.datasets import load_builtin, split
from cvdemo.errors import LimitError
from cvdemo.train import (Event, StopFlag, TrainConfig, classification_loss, evaluate, fit, is_main_process, one_thread,
                          predict, progress_bar, seeded)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def digits() -> tuple[TensorDataset, TensorDataset]:
    """scikit-learn's digits as (1, 8, 8) float tensors in 0..1: 1,437 train / 360 val, stratified."""
    train, val = split(load_builtin("digits"), 0.2, seed=0)

    def tensors(d):
        x = torch.from_numpy(np.stack([np.asarray(im)[..., 0] for im in d.images])).float().div(255)[:, None]
        return TensorDataset(x, torch.from_numpy(d.labels).long())

    return tensors(train), tensors(val)


def cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(16 * 4 * 4, 10))


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def config(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 3, "batch_size": 64, "lr": 1e-2, "device": "cpu", **kw})


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def accuracy(model: nn.Module, data: TensorDataset) -> float:
    x, y = data.tensors
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def best_epoch(history: list[dict], key: str = "val_acc") -> int:
    """The epoch fit should keep: highest `key`, ties to the later epoch."""
    return max(history, key=lambda h: (h[key], h["epoch"]))["epoch"]


def test_learns_and_events_are_well_formed(digits):
    train, val = digits
    model = cnn()
    events = list(fit(model, train, val, config=config(epochs=4)))
    steps_per_epoch = math.ceil(len(train) / 64)
    steps = 4 * steps_per_epoch
    assert all(e.steps == steps and e.epochs == 4 for e in events)
    step_events = [e for e in events if e.kind == "step"]
    assert [e.step for e in step_events] == list(range(1, steps + 1))
    assert [e.epoch for e in step_events] == [1 + i // steps_per_epoch for i in range(steps)]
    assert all(isinstance(e.loss, float) and math.isfinite(e.loss) for e in step_events)
    lrs = [e.metrics["lr"] for e in step_events]  # cosine from lr down towards 0
    assert lrs[0] == pytest.approx(1e-2) and all(a > b for a, b in itertools.pairwise(lrs)) and lrs[-1] < 1e-4
    epochs = [e for e in events if e.kind == "epoch"]
    assert [e.epoch for e in epochs] == [1, 2, 3, 4]
    assert [e.step for e in epochs] == [steps_per_epoch * i for i in (1, 2, 3, 4)]
    assert all(set(e.metrics) == {"train_loss", "train_acc", "val_loss", "val_acc"} for e in epochs)
    elapsed = [e.elapsed for e in events]
    assert elapsed == sorted(elapsed)
    done = events[-1]
    assert done.kind == "done" and [e.kind for e in events].count("done") == 1
    assert done.step == steps and done.epoch == 4
    assert [h["epoch"] for h in done.history] == [1, 2, 3, 4]
    assert [{k: v for k, v in h.items() if k != "epoch"} for h in done.history] == [e.metrics for e in epochs]
    assert done.best["epoch"] == best_epoch(done.history)
    assert done.best["val_acc"] >= 0.9, done.history
    assert done.history[-1]["train_loss"] < done.history[0]["train_loss"]
    assert not model.training
    assert accuracy(model, val) == pytest.approx(done.best["val_acc"], abs=1e-6)  # the kept model is the best


def test_progress_bar_returns_the_final_event(digits, capsys):
    final = progress_bar(fit(mlp(), digits[0], digits[1], config=config(epochs=2)))
    assert isinstance(final, Event) and final.kind == "done" and len(final.history) == 2
    captured = capsys.readouterr()
    assert "46/46" in captured.err  # the bar (stderr)
    assert "epoch 2/2" in captured.out and "val_acc" in captured.out and "kept epoch" in captured.out
    assert is_main_process()  # a plain (non-torchrun) process is the main one


def test_same_seed_same_weights_other_seed_other_weights(digits):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        model = mlp()  # same initial weights every time: only the config's seed (shuffling) differs
        list(fit(model, digits[0], config=config(epochs=2, seed=seed), step_events=False))
        runs[name] = state(model)
    assert same(runs["a"], runs["b"])
    assert not same(runs["a"], runs["c"])


def test_seeded_builds_the_same_model_and_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    with seeded(0):
        a = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.Linear(32, 10))
    assert torch.equal(torch.rand(3), expected)  # the global stream goes on as if nothing had been built
    with seeded(0):
        b = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.Linear(32, 10))
    with seeded(1):
        c = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.Linear(32, 10))
    assert same(state(a), state(b)) and not same(state(a), state(c))


def test_soft_labels_and_mix_batch(digits):
    train, val = digits
    x, y = train.tensors
    one_hot = TensorDataset(x, nn.functional.one_hot(y, 10).float())
    results = {}
    for name, data, transform in (
            ("int", train, None),
            ("soft", one_hot, None),
            ("no-mixer mix_batch", train, lambda xb, yb: build_pipeline({"ops": []}).mix_batch(xb, yb, 10))):
        model = mlp()
        events = list(fit(model, data, val, config=config(epochs=2, label_smoothing=0.1), batch_transform=transform))
        results[name] = (state(model), events[-1].history)
    for name in ("soft", "no-mixer mix_batch"):
        for k, v in results["int"][0].items():
            torch.testing.assert_close(results[name][0][k], v, atol=1e-5, rtol=1e-4)
        for h_int, h_other in zip(results["int"][1], results[name][1]):
            assert h_other == pytest.approx(h_int, abs=1e-4)

    # CutMix / MixUp from the augmentation pipeline plug in as the batch transform
    pipe = build_pipeline({"ops": [{"op": "cutmix"}, {"op": "mixup", "alpha": 0.4}]})
    g = torch.Generator().manual_seed(0)
    seen = []

    def mix(xb, yb):
        xb, soft = pipe.mix_batch(xb, yb, 10, generator=g)
        seen.append(soft)
        return xb, soft

    model = cnn()
    done = list(fit(model, train, val, config=config(epochs=3), batch_transform=mix))[-1]
    assert done.kind == "done" and done.best["val_acc"] > 0.7, done.history
    assert all(s.shape[1] == 10 and torch.allclose(s.sum(1), torch.ones(len(s))) for s in seen)
    assert any((s.max(1).values < 1).any() for s in seen)  # really mixed


def test_distillation_style_loss_with_extra_batch_items(digits):
    """A custom compute_loss on (x, y, teacher_logits) batches that reports no hard labels: train_acc is
    absent, validation still uses plain cross-entropy against y."""
    train, val = digits
    x, y = train.tensors
    teacher = nn.functional.one_hot(y, 10).float() * 5  # a confident "teacher"
    calls = []

    def distill(model, batch):
        xb, _, t = batch
        calls.append(len(batch))
        logits = model(xb)
        loss = nn.functional.kl_div(logits.log_softmax(1), t.softmax(1), reduction="batchmean")
        return loss, logits, None

    done = list(fit(mlp(), TensorDataset(x, y, teacher), val, config=config(epochs=3), compute_loss=distill))[-1]
    assert set(calls) == {3}
    assert all("train_acc" not in h and {"train_loss", "val_loss", "val_acc"} <= set(h) for h in done.history)
    assert done.best["val_acc"] > 0.8
    # the default loss is reusable: same numbers as F.cross_entropy
    model = mlp()
    loss, _, hard = classification_loss(model, [x[:8], y[:8]])
    assert torch.equal(hard, y[:8])
    assert loss.item() == pytest.approx(nn.functional.cross_entropy(model(x[:8]), y[:8]).item(), rel=1e-6)
    soft = torch.softmax(torch.randn(8, 10), 1)
    loss, _, hard = classification_loss(model, [x[:8], soft])
    expected = -(soft * model(x[:8]).log_softmax(1)).sum(1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5) and torch.equal(hard, soft.argmax(1))


def test_no_validation_keeps_best_train_acc_and_custom_optimizer_lrs_come_back(digits):
    model = mlp()
    optimizer = torch.optim.SGD([{"params": model[1].parameters(), "lr": 0.05},
                                 {"params": model[3].parameters(), "lr": 0.5}], momentum=0.9)
    events = list(fit(model, digits[0], config=config(epochs=3), optimizer=optimizer))
    done = events[-1]
    assert all("val_acc" not in h for h in done.history)
    assert done.best["epoch"] == best_epoch(done.history, "train_acc")
    assert events[0].metrics["lr"] == pytest.approx(0.05)
    assert [g["lr"] for g in optimizer.param_groups] == [0.05, 0.5]
    with pytest.raises(ValueError, match="either"):
        fit(model, digits[0], config=config(), optimizer=optimizer, params=model.parameters())


def test_max_steps_ends_training_mid_epoch(digits):
    train, val = digits
    per_epoch = math.ceil(len(train) / 64)  # 23
    events = list(fit(mlp(), train, val, config=config(epochs=10, max_steps=2 * per_epoch + 4)))
    steps = 2 * per_epoch + 4
    assert all(e.steps == steps and e.epochs == 3 for e in events)
    assert [e.step for e in events if e.kind == "step"] == list(range(1, steps + 1))
    assert [e.step for e in events if e.kind == "epoch"] == [per_epoch, 2 * per_epoch, steps]  # the last one cut short
    lrs = [e.metrics["lr"] for e in events if e.kind == "step"]
    assert lrs[-1] == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * (steps - 1) / steps)))  # cosine over the budget
    done = events[-1]
    assert done.kind == "done" and done.step == steps and len(done.history) == 3 and "val_acc" in done.history[-1]
    # a budget larger than the epochs: the epochs decide
    assert list(fit(mlp(), train, config=config(epochs=2, max_steps=10**6), step_events=False))[-1].steps == 2 * per_epoch


def test_weight_decay_skips_biases_and_norm_weights(digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.Linear(16, 10))
    before = state(model)

    def no_gradient(model, batch):  # a loss with zero gradients: AdamW's step is its weight decay alone
        logits = model(batch[0])
        return (logits * 0).sum(), logits, batch[1]

    list(fit(model, digits[0], config=config(epochs=1, weight_decay=0.5), compute_loss=no_gradient))
    after = state(model)
    for name in ("1.weight", "3.weight"):  # matrices decay
        assert (after[name].abs() < before[name].abs()).all()
    for name in ("1.bias", "2.weight", "2.bias", "3.bias"):  # biases and the norm's weight and bias don't
        assert torch.equal(after[name], before[name])


def test_predict_and_evaluate_measure_as_fit_validates(digits):
    train, val = digits
    model = cnn()
    done = list(fit(model, train, val, config=config(epochs=2)))[-1]
    best = done.history[done.best["epoch"] - 1]
    scores = evaluate(model, val, batch_size=50)
    assert scores["acc"] == pytest.approx(best["val_acc"], abs=1e-9)
    assert scores["loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    x, y = val.tensors
    model.train()  # predict and evaluate put the model's mode back
    logits = predict(model, val, batch_size=7)  # (x, y) items: the inputs are used
    assert model.training and logits.shape == (len(val), 10) and logits.dtype == torch.float32
    model.eval()
    with torch.no_grad():
        assert torch.allclose(logits, model(x), atol=1e-5)
    assert torch.equal(predict(model, x, batch_size=64), predict(model, list(x[:64]) + list(x[64:]), batch_size=64))
    raw = list(range(10))  # raw items made inputs by `preprocess`
    assert torch.allclose(predict(model, raw, preprocess=lambda i: x[i]), logits[:10], atol=1e-5)
    assert predict(model, []).numel() == 0
    soft = TensorDataset(x, torch.nn.functional.one_hot(y, 10).float())  # soft labels: scored by their argmax
    assert evaluate(model, soft)["acc"] == pytest.approx(scores["acc"])


def test_inference_batches_of_big_inputs_are_bounded_and_small_ones_keep_their_size():
    """Issue 16.2: predict's batches hold at most MAX_BATCH_VALUES input values (16 images of 224 px: a batch of
    256 took 1.5 GB more in a Lite0), whatever batch_size asks; 8x8 inputs keep the batch asked for."""
    from cvdemo.train import MAX_BATCH_VALUES

    sizes = []
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    model.register_forward_hook(lambda module, inputs, out: sizes.append(len(inputs[0])))
    images = torch.zeros(40, 3, 224, 224)
    assert predict(model, images, batch_size=256).shape == (40, 3)
    assert sizes == [16, 16, 8] and 16 * images[0].numel() <= MAX_BATCH_VALUES
    sizes.clear()
    predict(model, torch.zeros(300, 1, 8, 8), batch_size=256)
    assert sizes == [256, 44]


def test_a_last_batch_of_one_is_dropped_for_batchnorm(digits):
    x, y = digits[0].tensors
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10))
    done = list(fit(model, TensorDataset(x[:129], y[:129]), config=config(epochs=2)))[-1]
    assert done.kind == "done" and done.steps == 2 * 2


def test_stop_after_two_epochs_keeps_the_best_so_far(digits):
    train, val = digits
    model = cnn()
    stop = StopFlag()
    snapshots, events = {}, []
    for event in fit(model, train, val, config=config(epochs=10, lr=0.05), stop=stop):
        events.append(event)
        if event.kind == "epoch":
            snapshots[event.epoch] = state(model)
            if event.epoch == 2:
                stop.set()
    final = events[-1]
    assert final.kind == "stopped" and final.epoch == 2 and len(final.history) == 2
    assert final.step == events[-2].step < final.steps  # stopped before the first step of epoch 3
    assert final.best["epoch"] == best_epoch(final.history)
    assert same(state(model), snapshots[final.best["epoch"]])
    assert not same(snapshots[1], snapshots[2])


def test_stop_from_another_thread(digits):
    model = mlp()
    stop, first_epoch = StopFlag(), threading.Event()
    threading.Thread(target=lambda: (first_epoch.wait(30), stop.set()), daemon=True).start()
    snapshots, final = {}, None
    for event in fit(model, digits[0], digits[1], config=config(epochs=200), stop=stop, step_events=False):
        if event.kind == "epoch":
            snapshots[event.epoch] = state(model)
            first_epoch.set()
        final = event
    assert final.kind == "stopped" and 1 <= len(final.history) < 200
    assert same(state(model), snapshots[best_epoch(final.history)])


def test_stopped_before_the_first_epoch_keeps_the_weights(digits):
    model = mlp()
    before = state(model)
    stop = StopFlag()
    stop.set()
    events = list(fit(model, digits[0], digits[1], config=config(), stop=stop))
    assert [e.kind for e in events] == ["stopped"]
    assert events[0].best is None and events[0].history == [] and events[0].step == 0
    assert same(state(model), before)


def test_max_seconds(digits):
    model = mlp()
    before = state(model)
    events = list(fit(model, digits[0], digits[1], config=config(max_seconds=1e-9)))
    assert [e.kind for e in events] == ["stopped"] and events[0].best is None
    assert same(state(model), before)

    # a budget of about three epochs, as long as epochs take on this machine now (a busy one is slower)
    epoch = list(fit(mlp(), digits[0], digits[1], config=config(epochs=1), step_events=False))[-1].elapsed
    budget = max(1.0, 3 * epoch)
    start = time.monotonic()
    snapshots, final = {}, None
    for event in fit(model, digits[0], digits[1], config=config(epochs=500, max_seconds=budget), step_events=False):
        if event.kind == "epoch":
            snapshots[event.epoch] = state(model)
        final = event
    assert time.monotonic() - start < 3 * budget + 5  # stops near the budget, not after 500 epochs
    assert final.kind == "stopped" and 1 <= len(final.history) < 500
    assert same(state(model), snapshots[final.best["epoch"]])


@pytest.mark.parametrize("bad", [
    {"epochs": 0}, {"epochs": 501}, {"epochs": 2.5}, {"epochs": True}, {"batch_size": 0}, {"batch_size": 1025},
    {"lr": 0}, {"lr": -1e-3}, {"lr": 11}, {"lr": float("nan")}, {"lr": "0.1"}, {"weight_decay": -0.1},
    {"weight_decay": 2}, {"max_seconds": 0}, {"max_seconds": -5}, {"max_seconds": float("inf")},
    {"label_smoothing": 1.0}, {"num_workers": -1}, {"seed": -1}, {"device": "toaster"}, {"device": 3},
    {"max_steps": 0}, {"max_steps": 2.5}, {"max_steps": True},
])
def test_bad_configs_raise_limit_error(bad):
    with pytest.raises(LimitError) as err:
        TrainConfig(**bad)
    name = next(iter(bad))
    assert err.value.code == f"limit.{name}" and name in str(err.value)


def test_fit_checks_at_the_call(digits):
    cfg = config()
    cfg.epochs = 10_000  # changed after construction: fit checks again, before anything runs
    with pytest.raises(LimitError, match="epochs"):
        fit(mlp(), digits[0], config=cfg)
    with pytest.raises(LimitError, match="no training images"):
        fit(mlp(), TensorDataset(torch.zeros(0, 64), torch.zeros(0).long()), config=config())


def test_error_mid_training_propagates_and_keeps_the_best(digits):
    train, val = digits
    steps_per_epoch = math.ceil(len(train) / 64)
    calls = [0]

    def flaky(model, batch):
        calls[0] += 1
        if calls[0] == 2 * steps_per_epoch + 5:  # in the middle of epoch 3
            raise RuntimeError("CUDA out of memory (pretend)")
        return classification_loss(model, batch)

    model = cnn()
    snapshots, history = {}, []
    with pytest.raises(RuntimeError, match="out of memory"):
        for event in fit(model, train, val, config=config(epochs=5, lr=0.05), compute_loss=flaky):
            if event.kind == "epoch":
                snapshots[event.epoch] = state(model)
                history.append({"epoch": event.epoch, **event.metrics})
    assert len(history) == 2
    assert same(state(model), snapshots[best_epoch(history)])
    assert not model.training


class EpochSet(torch.utils.data.Dataset):
    """Eight 2x2 images whose pixels say the epoch they were loaded in (fit tells it through set_epoch)."""

    def __init__(self) -> None:
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int):
        return torch.full((1, 2, 2), float(self.epoch)), i % 2


@pytest.mark.parametrize("workers", [0, 1])
def test_fit_tells_the_training_data_its_epoch(workers):
    """Per-epoch augmentation (ImageSet) needs the epoch, in the main process and in workers alike."""
    seen = []

    def loss(model, batch):
        seen.extend(batch[0][:, 0, 0, 0].tolist())
        return classification_loss(model, batch)

    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    list(fit(model, EpochSet(), config=config(epochs=3, batch_size=4, num_workers=workers), compute_loss=loss))
    assert seen == [1.0] * 8 + [2.0] * 8 + [3.0] * 8


DDP_SCRIPT = """
import hashlib, json, os, sys
import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch.utils.data import TensorDataset
from cvdemo.train import TrainConfig, evaluate, fit, is_main_process

rank = int(os.environ["RANK"])
g = torch.Generator().manual_seed(1)
x = torch.randn(201, 8, generator=g)
y = (x[:, 0] + x[:, 1] > 0).long()
torch.manual_seed(rank)  # different initial weights per rank: DDP must start every rank from rank 0's
# BatchNorm: each rank's running statistics see its own batches (buffers DDP does not keep equal)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
events = list(fit(model, TensorDataset(x[:150], y[:150]), TensorDataset(x[150:], y[150:]),
                  config=TrainConfig(epochs=8, batch_size=16, lr=0.05, device="cpu")))
save_file({k: v.contiguous() for k, v in model.state_dict().items()},
          os.path.join(sys.argv[1], f"rank{rank}.safetensors"))
digest = hashlib.sha256(b"".join(v.numpy().tobytes() for v in model.state_dict().values())).hexdigest()
with torch.no_grad():
    full_val_acc = (model(x[150:]).argmax(1) == y[150:]).sum().item() / 51
group_left = dist.is_initialized()
# evaluate under a process group: each rank scores its share, the counts reduced. A store of its own: under torchrun
# its store still holds the first group's addresses, which a second group there can read and fail to connect to
dist.init_process_group("gloo", init_method="file://" + os.path.join(sys.argv[1], "store"), rank=rank, world_size=2)
scores = evaluate(model, TensorDataset(x[150:], y[150:]), batch_size=8)
dist.destroy_process_group()
final = events[-1] if events else None
json.dump({"digest": digest, "kinds": [e.kind for e in events], "main": is_main_process(),
           "group_left": group_left, "full_val_acc": full_val_acc, "evaluate": scores,
           "best": final and final.best, "history": final and final.history, "steps": final and final.steps},
          open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w"))
"""


def test_ddp_two_cpu_processes(tmp_path):
    """fit in two real processes (gloo): the two ranks are started here with the environment torchrun gives its
    workers (RANK, WORLD_SIZE, MASTER_ADDR/PORT...), without torchrun's launcher process (its ~2 s of torch
    import); `torchrun -m cvdemo train` itself runs in tests/test_gpu_check.py (gpu_check's train_cli row)."""
    script = tmp_path / "ddp_fit.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)})
             for r in (0, 1)]
    try:
        outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert [proc.returncode for proc in procs] == [0, 0], "\n".join(out[-3000:] for out in outputs)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    s0, s1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1))
    assert "1.running_mean" in s0 and s0.keys() == s1.keys()
    differ = [k for k in s0 if not torch.equal(s0[k], s1[k])]
    assert differ == []  # every parameter AND buffer (BatchNorm running statistics) the same on both ranks
    assert r0["digest"] == r1["digest"]
    assert r0["main"] and not r1["main"]
    assert r1["kinds"] == []  # only rank 0 reports
    assert r0["kinds"].count("epoch") == 8 and r0["kinds"][-1] == "done"
    assert r0["steps"] == 8 * 5  # 150 training images split 75/75: 5 batches of 16 per epoch on each rank
    assert not r0["group_left"] and not r1["group_left"]  # fit created the group, fit destroyed it
    # the metrics are global: 51 validation images split 26/25, reduced, equal the whole set's accuracy
    assert r0["best"]["val_acc"] == pytest.approx(r0["full_val_acc"], abs=1e-9)
    assert r0["best"]["val_acc"] == pytest.approx(r1["full_val_acc"], abs=1e-9)
    assert all(abs(h["val_acc"] * 51 - round(h["val_acc"] * 51)) < 1e-6 for h in r0["history"])
    assert r0["best"]["val_acc"] > 0.8
    assert r0["evaluate"]["acc"] == r1["evaluate"]["acc"] == pytest.approx(r0["full_val_acc"], abs=1e-9)


def test_one_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # whatever the run started with (conftest: 1 per xdist worker)
    try:
        with one_thread():
            with one_thread():
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
