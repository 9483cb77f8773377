"""Knowledge distillation (cvdemo.distill): the loss against the formula, soft targets, the shipped
teacher, the three-way lesson (KD beats labels alone), the sweep, distill()'s checks and stop flag, the CLI."""
import hashlib
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cvdemo import datasets
from cvdemo import distill as d
from cvdemo import measure
from cvdemo.errors import LimitError, ModelError
from cvdemo.export import load_model
from cvdemo.train import StopFlag, TrainConfig, evaluate

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def logits():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 5, generator=g) * 3, torch.randn(6, 5, generator=g) * 3, torch.tensor([0, 4, 2, -1, 1, -1])


@pytest.fixture(scope="module")
def teacher():
    return d.load_teacher()


@pytest.fixture(scope="module")
def data():
    return datasets.digits_split()


# --- kd_loss --------------------------------------------------------------------------------------

def by_hand(s, t, y, T, alpha):
    """The formula, written out: alpha T^2 mean_i sum_c p_t log(p_t / p_s) + (1 - alpha) CE over labelled rows."""
    p_t, p_s = np.exp(t / T) / np.exp(t / T).sum(1, keepdims=True), np.exp(s / T) / np.exp(s / T).sum(1, keepdims=True)
    kl = float((p_t * (np.log(p_t) - np.log(p_s))).sum(1).mean())
    known = y >= 0
    q = np.exp(s) / np.exp(s).sum(1, keepdims=True)
    ce = float(-np.log(q[known, y[known]]).mean()) if known.any() else 0.0
    return alpha * T * T * kl + (1 - alpha) * ce


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (4.0, 0.9), (10.0, 0.3), (2.5, 1.0)])
def test_kd_loss_equals_the_formula(logits, T, alpha):
    s, t, y = logits
    got = d.kd_loss(s, t, y, T=T, alpha=alpha).item()
    assert got == pytest.approx(by_hand(s.double().numpy(), t.double().numpy(), y.numpy(), T, alpha), rel=1e-5)


def test_kd_loss_alpha_0_is_cross_entropy_and_alpha_1_ignores_labels(logits):
    s, t, _ = logits
    y = torch.tensor([0, 4, 2, 3, 1, 0])
    assert d.kd_loss(s, t, y, T=4, alpha=0).item() == pytest.approx(F.cross_entropy(s, y).item(), rel=1e-6)
    assert d.kd_loss(s, t, y, T=4, alpha=1).item() == pytest.approx(d.kd_loss(s, t, None, T=4, alpha=1).item())
    assert d.kd_loss(s, s, None, T=3, alpha=1).item() == pytest.approx(0, abs=1e-6)  # KL(p || p) = 0


def test_kd_loss_scales_the_kl_term_by_T_squared(logits):
    s, t, _ = logits
    for T in (1.0, 2.0, 5.0):
        kl = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")
        assert d.kd_loss(s, t, T=T, alpha=1).item() == pytest.approx(T * T * kl.item(), rel=1e-5)
    # softening by T is dividing the logits by T: only the T^2 factor is left
    assert d.kd_loss(s, t, T=4, alpha=1).item() == pytest.approx(16 * d.kd_loss(s / 4, t / 4, T=1, alpha=1).item(),
                                                                 rel=1e-5)


def test_kd_loss_leaves_unlabeled_rows_out_of_the_cross_entropy(logits):
    s, t, y = logits  # rows 3 and 5 are unlabeled (-1)
    known = y >= 0
    assert d.kd_loss(s, t, y, alpha=0).item() == pytest.approx(F.cross_entropy(s[known], y[known]).item(), rel=1e-6)
    moved = s.clone()
    moved[~known] += 100 * torch.randn(int((~known).sum()), 5)  # what unlabeled rows predict doesn't matter to CE
    assert d.kd_loss(moved, t, y, alpha=0).item() == pytest.approx(d.kd_loss(s, t, y, alpha=0).item(), rel=1e-6)
    # ... but they count in the KD term (all rows)
    assert d.kd_loss(moved, t, y, alpha=0.5).item() != pytest.approx(d.kd_loss(s, t, y, alpha=0.5).item())
    # nothing labelled: CE is 0 (not NaN) and gradients are finite
    none = torch.full((6,), -1)
    x = s.clone().requires_grad_()
    loss = d.kd_loss(x, t, none, T=4, alpha=0.9)
    loss.backward()
    assert loss.item() == pytest.approx(d.kd_loss(s, t, None, T=4, alpha=0.9).item(), rel=1e-6)
    assert torch.isfinite(x.grad).all() and d.kd_loss(s, t, none, alpha=0).item() == 0


def test_kd_loss_refuses_bad_T_and_alpha(logits):
    s, t, y = logits
    for kw in ({"T": 0}, {"T": -1}, {"T": float("nan")}, {"alpha": 1.5}, {"alpha": -0.1}):
        with pytest.raises(LimitError):
            d.kd_loss(s, t, y, **kw)


def test_soft_targets_sum_to_one_and_flatten_with_T(logits):
    _, t, _ = logits
    temps = (1, 2, 5, 10, 20)
    for z in (t[0], t, t.numpy(), [1.0, 5.0, -2.0]):
        probs = d.soft_targets(z, temps)
        assert list(probs) == list(temps)
        for p in probs.values():
            assert p.shape == np.shape(z) and np.allclose(p.sum(-1), 1) and (p > 0).all()
        entropy = [float(-(p * np.log(p)).sum(-1).mean()) for p in probs.values()]
        assert all(a < b for a, b in itertools.pairwise(entropy)), entropy
    assert np.allclose(d.soft_targets(t[0], (1,))[1], torch.softmax(t[0].double(), 0).numpy())
    with pytest.raises(LimitError):
        d.soft_targets(t[0], (0,))


# --- the shipped teacher --------------------------------------------------------------------------

def test_shipped_teacher_is_small_safetensors_and_accurate(data, teacher, monkeypatch):
    weights, meta_path = d.CHECKPOINTS / "digits_teacher.safetensors", d.CHECKPOINTS / "digits_teacher.json"
    assert weights.stat().st_size < 400_000
    meta = json.loads(meta_path.read_text())
    assert meta["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert meta["command"] == "python -m cvdemo.distill make-teacher" and meta["command"] in d.__doc__
    assert not [p for p in d.CHECKPOINTS.iterdir() if p.suffix in (".pt", ".pth", ".bin", ".pkl")]

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load must not be used")

    monkeypatch.setattr(torch, "load", no_pickle)
    model = d.load_teacher()
    _, test = data
    acc = evaluate(model, d._labelled(test, d.digits_teacher_input))["acc"]
    assert acc > 0.95 and acc == pytest.approx(meta["test_acc"], abs=1e-4)
    assert measure.params(model) == meta["params"] > 20 * measure.params(d.build_student("mlp"))


def test_load_teacher_refuses_missing_or_mismatched_files(tmp_path):
    with pytest.raises(ModelError, match="make-teacher"):
        d.load_teacher(tmp_path / "digits_teacher.safetensors")
    for name in ("digits_teacher.safetensors", "digits_teacher.json"):
        (tmp_path / name).write_bytes((d.CHECKPOINTS / name).read_bytes())
    meta = json.loads((tmp_path / "digits_teacher.json").read_text())
    (tmp_path / "digits_teacher.json").write_text(json.dumps({**meta, "sha256": "0" * 64}))
    with pytest.raises(ModelError, match="sha256"):
        d.load_teacher(tmp_path / "digits_teacher.safetensors")
    (tmp_path / "digits_teacher.json").write_text(json.dumps({**meta, "model_args": {"widths": [16, 32]}}))
    with pytest.raises(ModelError, match="can't be loaded"):
        d.load_teacher(tmp_path / "digits_teacher.safetensors")
    (tmp_path / "digits_teacher.json").write_text(json.dumps({**meta, "architecture": "digits_mlp", "model_args": {}}))
    with pytest.raises(ModelError, match="can't be loaded"):  # a json naming another cvdemo model
        d.load_teacher(tmp_path / "digits_teacher.safetensors")


def test_make_teacher_is_reproducible(tmp_path, monkeypatch):
    """The same recipe (cut to 1 epoch here) writes the same bytes twice; the result loads back."""
    monkeypatch.setitem(d.TEACHER_RECIPE, "epochs", 1)
    a, b = d.make_teacher(tmp_path / "a", quiet=True), d.make_teacher(tmp_path / "b", quiet=True)
    assert a == b and a["recipe"]["epochs"] == 1
    assert (tmp_path / "a" / "digits_teacher.safetensors").read_bytes() == \
        (tmp_path / "b" / "digits_teacher.safetensors").read_bytes()
    assert d.load_teacher(tmp_path / "a" / "digits_teacher.safetensors").widths == a["model_args"]["widths"]


# --- the lesson -----------------------------------------------------------------------------------

def test_three_way_kd_beats_labels_only(teacher):
    result = d.three_way(seeds=(0,), teacher=teacher)
    runs = result["runs"]
    assert list(runs) == ["teacher", "labels_only", "kd"]
    assert result["labelled"] == 100 and result["transfer"] == 1098 and result["test"] == 599
    assert runs["kd"]["acc_mean"] - runs["labels_only"]["acc_mean"] >= 0.03, d.format_table(result)
    assert runs["teacher"]["acc_mean"] > 0.95
    for run in runs.values():
        assert {"description", "acc_mean", "acc_std", "accs", "params", "bytes", "latency_ms", "compression",
                "speedup"} <= set(run)
        assert run["latency_ms"] > 0 and run["bytes"] > 4 * run["params"]
    assert runs["kd"]["params"] == runs["labels_only"]["params"] < runs["teacher"]["params"] / 20
    assert runs["kd"]["compression"] > 20 and runs["teacher"]["compression"] == 1
    assert result["verdict"] == "helped" and result["honest"].startswith("KD helped")
    assert result["kd_gain_points"] == pytest.approx(100 * (runs["kd"]["acc_mean"] - runs["labels_only"]["acc_mean"]))
    table = d.format_table(result)
    assert "KD helped" in table and "wall time" in table and "1,098 unlabeled" in table
    # the curves: the teacher's flat line, then each student after each of the 30 epochs (test split only looked at)
    curves = result["curves"]
    assert [(p["run"], p["epoch"]) for p in curves[:2]] == [("teacher", 0), ("teacher", 30)]
    for run in ("labels_only", "kd"):
        points = [p for p in curves if p["run"] == run]
        assert len(points) == 30 and points[-1]["epoch"] == 30 and all(0 <= p["test_acc"] <= 1 for p in points)
        assert [p["epoch"] for p in points] == sorted(p["epoch"] for p in points)
    kd = [p["test_acc"] for p in curves if p["run"] == "kd"]
    assert kd[-1] > kd[0]


def test_honest_sentence_says_when_kd_did_not_help():
    def runs(lab, kd):
        return {"teacher": {"accs": [0.99] * 3}, "labels_only": {"accs": lab}, "kd": {"accs": kd}}

    verdict, sentence = d._honest(d._compare(runs([0.88, 0.86, 0.92], [0.885, 0.86, 0.91])), 100, 0)
    assert verdict == "no clear difference" and "no transfer set" in sentence and "-0.2 points" in sentence
    verdict, sentence = d._honest(d._compare(runs([0.88, 0.86, 0.92], [0.83, 0.82, 0.85])), 100, 0)
    assert verdict == "hurt" and sentence.startswith("KD hurt here: -5.3 points")
    comparison = d._compare(runs([0.88, 0.86, 0.92], [0.95, 0.95, 0.96]))
    verdict, sentence = d._honest(comparison, 100, 1098)
    assert verdict == "helped" and "+6.7 points" in sentence and "3 of 3 seeds" in sentence
    assert comparison["better"] == 3 and comparison["closed"] == pytest.approx((2.86 - 2.66) / (2.97 - 2.66))


def test_sweep_grid(teacher):
    grid = d.sweep(alphas=(0.0, 0.9), temperatures=(1, 4), epochs=10, teacher=teacher)
    assert grid.shape == (2, 2) and ((grid > 0.5) & (grid <= 1)).all()
    assert grid[0, 0] == grid[0, 1]  # alpha 0: cross-entropy only, T plays no part
    assert grid[1].max() > grid[0, 0]  # the teacher's soft targets help


def test_three_way_refuses_bad_settings(teacher):
    with pytest.raises(LimitError):
        d.three_way(dataset="faces", teacher=teacher)
    with pytest.raises(LimitError):
        d.three_way(labelled=5, seeds=(0,), teacher=teacher)  # fewer than one per class
    with pytest.raises(LimitError):
        d.three_way(student="vit", seeds=(0,), teacher=teacher)


def test_one_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with d.one_thread():
        with d.one_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


# --- distill(): the general entry -----------------------------------------------------------------

@d.one_thread()  # tiny models: see one_thread's docstring
def test_distill_trains_checks_and_stops(data, teacher):
    train, test = data
    config = TrainConfig(epochs=3, batch_size=32, lr=1e-2, device="cpu")
    args = (train.images[:50], train.labels[:50], train.images[50:400], d.digits_teacher_input,
            d.digits_student_input)
    student = d.build_student("mlp", seed=1)
    frozen = {k: v.clone() for k, v in teacher.state_dict().items()}
    events = list(d.distill(teacher, student, *args, config, T=4, alpha=0.9, val_images=test.images,
                            val_labels=test.labels))
    done = events[-1]
    assert done.kind == "done" and len(done.history) == 3
    assert {"train_acc", "val_acc"} <= set(done.best) and done.best["val_acc"] > 0.6  # train_acc: agreement
    assert not teacher.training and all(torch.equal(frozen[k], v) for k, v in teacher.state_dict().items())
    # raw images of any kind: uint8 arrays work like PIL images
    raw = [np.asarray(im) for im in train.images[:50]]
    last = list(d.distill(teacher, d.build_student("cnn"), raw, train.labels[:50], [], d.digits_teacher_input,
                          d.digits_student_input, TrainConfig(epochs=1, batch_size=16, device="cpu")))[-1]
    assert last.kind == "done"

    # the stop flag: set after the first step -> "stopped" right after it (no epoch finished: best None)
    stop, student = StopFlag(), d.build_student("mlp", seed=2)
    events = []
    for event in d.distill(teacher, student, *args, config, stop=stop):
        events.append(event)
        stop.set()
    assert [e.kind for e in events] == ["step", "stopped"] and events[-1].best is None and events[-1].step == 1
    # set before the start: nothing trains, the weights stay as they were
    before = {k: v.clone() for k, v in student.state_dict().items()}
    events = list(d.distill(teacher, student, *args, config, stop=stop))
    assert [e.kind for e in events] == ["stopped"] and events[-1].step == 0
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())

    with pytest.raises(LimitError, match="labels"):
        d.distill(teacher, student, train.images[:5], train.labels[:4], [], d.digits_teacher_input,
                  d.digits_student_input)
    with pytest.raises(LimitError, match="class indices"):  # checked at the call, before the teacher runs
        d.distill(teacher, student, train.images[:5], [0, 1, 2, 3, 10], [], d.digits_teacher_input,
                  d.digits_student_input, config)
    with pytest.raises(LimitError, match="class indices"):
        d.distill(teacher, student, *args, config, val_images=test.images[:2], val_labels=np.array([0, -1]))
    with pytest.raises(ModelError, match="3 outputs"):
        d.distill(teacher, d.build_student("mlp", num_classes=3), *args, config)
    with pytest.raises(LimitError):
        d.distill(teacher, student, *args, config, T=0)


def test_teacher_logits_are_computed_once_in_eval_mode(data):
    train, _ = data
    teacher = d.load_teacher().train()
    calls = []

    def pre(image):
        calls.append(1)
        return d.digits_teacher_input(image)

    out = d.teacher_logits(teacher, train.images[:70], pre, batch_size=32)
    assert out.shape == (70, 10) and len(calls) == 70 and teacher.training  # mode put back
    teacher.eval()
    with torch.no_grad():
        x = torch.stack([d.digits_teacher_input(im) for im in train.images[:70]])
        assert torch.allclose(out, teacher(x), atol=1e-5)


# --- command line -----------------------------------------------------------------------------------

def test_cli_sweep_and_errors(capsys):
    assert d.main(["sweep", "--alphas", "0.9", "--temperatures", "4", "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("alpha \\ T") and "%" in out
    assert d.main(["three-way", "--labelled", "5", "--seeds", "1"]) == 2
    assert "labelled must be" in capsys.readouterr().err


def test_module_runs_without_gradio():
    code = "import sys, cvdemo.distill; assert 'gradio' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_a_transfer_model_distils_into_a_much_smaller_student():
    """Acceptance (textures): a Transfer-tab teacher -> a student >= 5x smaller keeping >= 90% of its accuracy."""
    from cvdemo.datasets import load_builtin
    from cvdemo.distill import distill_classifier
    from cvdemo.transfer import transfer

    data = load_builtin("textures")
    teacher = list(transfer(data, mode="probe"))[-1].result.classifier
    events = list(distill_classifier(teacher, data, config=TrainConfig(epochs=12, batch_size=32, lr=3e-3), copies=2))
    result = events[-1].result
    assert events[-1].kind == "done" and result["compression"] >= 5
    assert result["student"]["val_acc"] >= 0.9 * result["teacher"]["val_acc"]
    top, _ = result["classifier"].classify(data.images[0], top_k=1)  # usable like any classifier
    assert top[0][0] in data.classes
    assert "smaller" in result["honest"]


def test_a_small_timm_model_can_be_the_student(tmp_path):
    """The student may be any factory model (here timm's mobilenetv3_small_050, from scratch)."""
    from cvdemo.datasets import load_builtin
    from cvdemo.distill import distill_classifier
    from cvdemo.export import export_onnx, load_model, save_model
    from cvdemo.transfer import transfer

    data = load_builtin("textures")
    teacher = list(transfer(data, mode="probe"))[-1].result.classifier
    events = list(distill_classifier(teacher, data, config=TrainConfig(epochs=2, batch_size=32, lr=3e-3), copies=1,
                                     student="mobilenetv3_small_050"))
    result = events[-1].result
    assert result["compression"] > 2 and result["classifier"].name == "mobilenetv3_small_050"
    model, classes = load_model(save_model(result["classifier"].model, tmp_path / "s", result["classes"]))
    assert classes == ["brick", "grass", "gravel"]
    assert export_onnx(model, tmp_path / "s.onnx", (64, 64)).stat().st_size > 0


@pytest.fixture(scope="module")
def few_textures():
    """Every fifth textures image (30, 10 per class): a tiny transfer set."""
    from cvdemo.datasets import load_builtin

    data = load_builtin("textures")
    return data.subset(range(0, len(data), 5))


@d.one_thread()  # tiny models: see one_thread's docstring
def test_the_same_seed_distils_the_same_student(few_textures):
    """The student's initial weights, the transfer set's augmentation and the training all come from the
    seed: twice seed 0 gives the same student, seed 1 another (a tiny teacher keeps this quick)."""
    from cvdemo.inference import Classifier
    from cvdemo.models import create_model

    torch.manual_seed(0)
    model = create_model("kd_student_cnn", num_classes=3)
    teacher = Classifier("tiny teacher", model, labels=list(few_textures.classes), runtime="torch",
                         data_config=d.student_data_config(model, False))
    students = []
    for seed in (0, 0, 1):
        torch.rand(7)  # whatever the global RNG did in between does not matter
        events = list(d.distill_classifier(teacher, few_textures, copies=1,
                                           config=TrainConfig(epochs=1, batch_size=16, seed=seed, device="cpu")))
        students.append({k: v.detach().cpu().clone() for k, v in events[-1].result["classifier"].model.state_dict()
                         .items()})

    def same(a, b):
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    assert same(students[0], students[1]) and not same(students[0], students[2])


def test_an_imagenet_teacher_distils_label_free_into_a_small_student(few_textures, tmp_path):
    """Any factory classifier can teach: tf_efficientnet_lite0's 1000 ImageNet classes are not the dataset's,
    so the student gets those 1000 outputs and learns from the KD term alone; the report measures
    agreement with the teacher on held-out images, size and speed (tiny budget: 1 epoch, no copies)."""
    events = list(d.distill_any("tf_efficientnet_lite0", few_textures, config=TrainConfig(epochs=1, batch_size=16),
                                copies=0))
    result = events[-1].result
    assert events[-1].kind == "done" and result["label_free"] and result["alpha"] == 1.0
    student = result["classifier"]
    assert len(result["classes"]) == 1000 and student.labels[0] == "tench, Tinca tinca"
    assert student.model.head.out_features == 1000 and result["transfer"] == 24 and result["held_out"] == 6
    assert result["teacher"]["val_acc"] is None and 0 <= result["student"]["val_acc"] == result["kept"] <= 1
    assert 0 < result["baseline"] <= 1 and result["compression"] > 20 and result["speedup"] > 0
    assert result["honest"].startswith("No labels exist for the teacher's 1,000 classes")
    top, _ = student.classify(few_textures.images[0], top_k=3)  # a classifier like any other, ImageNet labels
    assert all(label in result["classes"] for label, _ in top)
    files = d.save_student(student, tmp_path / "student")  # through export.save_model, and ONNX
    config = json.loads(files[1].read_text())
    assert config["architecture"] == "kd_student_cnn" and config["label_names"] == result["classes"]
    assert config["pretrained_cfg"]["input_size"] == [3, 64, 64] and all(f.stat().st_size > 0 for f in files)
    reloaded, classes = load_model(tmp_path / "student")  # every exported file loads back through export
    assert classes == result["classes"] and type(reloaded) is type(student.model)
    # label-free only where the classes differ: a teacher of textures' own classes gets their labels
    data, label_free = d.distill_plan(student, few_textures)
    assert data is few_textures and label_free
    data, label_free = d.distill_plan(type("Teacher", (), {"labels": ["brick", "grass", "gravel"]})())
    assert data.name == "textures" and len(data) == 147 and not label_free


def test_a_transfer_teacher_is_scored_on_that_runs_own_held_out_images(few_textures, monkeypatch):
    """Distilling a Transfer run's model reuses that run's split: the teacher's accuracy is its accuracy on
    exactly the run's validation images, and none of them is among the student's training images (a fresh
    split with another seed would put some of the teacher's training images in the "validation" set)."""
    from cvdemo.transfer import transfer

    run = list(transfer(few_textures, mode="probe", config=TrainConfig(epochs=30, lr=1e-2, seed=7)))[-1].result
    train, val = run.train_data, run.val_data
    assert len(train) + len(val) == len(few_textures) and len(val) == 6
    seen, real = {}, d.distill

    def spy(teacher, student, train_images, labels, unlabeled, *args, **kwargs):
        seen.update(train=list(train_images), unlabeled=list(unlabeled), val=list(kwargs["val_images"]))
        return real(teacher, student, train_images, labels, unlabeled, *args, **kwargs)

    monkeypatch.setattr(d, "distill", spy)
    events = list(d.distill_any(run, config=TrainConfig(epochs=1, batch_size=32, lr=3e-3), copies=1))
    result = events[-1].result
    expected = float((run.classifier.probabilities(val.images).argmax(1) == val.labels).mean())
    assert result["teacher"]["val_acc"] == expected and result["held_out"] == len(val)
    assert [id(im) for im in seen["val"]] == [id(im) for im in val.images]
    assert [id(im) for im in seen["train"]] == [id(im) for im in train.images]
    assert len(seen["unlabeled"]) == len(train)  # one augmented copy of each training image, none of val's
    held_out = {im.tobytes() for im in val.images}
    assert not any(im.tobytes() in held_out for im in seen["train"])


def test_the_distill_tab_takes_the_transfer_runs_own_split():
    """The tab's teacher "this session's Transfer-tab model" (or that model picked by its name) brings the run's
    training and validation images, whatever dataset is loaded now; another model gets the loaded dataset."""
    from types import SimpleNamespace

    from cvdemo.datasets import load_builtin
    from cvdemo.ui import distill as ui
    from cvdemo.ui.session import Workspace

    ws = Workspace()
    with pytest.raises(Exception, match="Train a model in the Transfer tab first"):
        ui.pick_teacher(ws, ui.TRANSFER)
    teacher, other, train, val = object(), object(), object(), object()
    ws.result = SimpleNamespace(classifier=teacher, train_data=train, val_data=val)
    ws.dataset = load_builtin("faces")  # loaded after training
    ws.models = {"my model 1: mine": teacher, "my model 2: other": other}
    assert ui.pick_teacher(ws, ui.TRANSFER) == (teacher, train, val)
    assert ui.pick_teacher(ws, "my model 1: mine") == (teacher, train, val)
    assert ui.pick_teacher(ws, "my model 2: other") == (other, ws.dataset, None)


def test_a_hub_teacher_offline_fails_fast_and_clearly(few_textures):
    import time

    start = time.monotonic()
    with pytest.raises(ModelError, match="can't be reached.*tf_efficientnet_lite0"):
        d.distill_any("resnet50.a1_in1k", few_textures)
    assert time.monotonic() - start < 10


def test_three_way_handler_speaks_korean_and_shows_the_measured_numbers():
    """The app's three-way handler in a Korean session: live curves, then the table and the verdict in
    Korean, and the lesson panel's "your run" quoting the measured accuracies."""
    from cvdemo.ui import distill as ui
    from cvdemo.ui.session import Workspace

    ws = Workspace()
    ws.lang = "ko"
    updates = list(ui.three_way(100, 4, 0.9, 1, "mlp", True, ws))
    status, plot, table, lesson = updates[-1]
    assert status.endswith("초 만에 끝났습니다.") and len(updates) >= 3
    epochs, _, runs = zip(*plot.value["data"])
    assert set(runs) == {"교사", "학생, 레이블만", "KD 학생"} and max(epochs) == 30
    assert plot.colors_in_legend == ["교사", "학생, 레이블만", "KD 학생"]  # all lines drawn
    assert "테스트 정확도" in table and "KD가 도움이 되었습니다" in table and "시드 [0]" in table
    kd = re.search(r"KD 학생\*\*: .*? \| (\d+\.\d%)", table).group(1)
    assert lesson.startswith("**내 실행 결과:**") and kd in lesson
    ws.lang = "en"  # the language switch re-renders the same numbers in English
    assert ws.shown("distill").startswith("**Your run:**") and kd in ws.shown("distill")


def test_sweep_comparison_sets_the_best_kd_cell_against_labels_only():
    grid = np.array([[0.900, 0.900], [0.904, 0.893]])  # alpha 0 (T plays no part), then alpha 0.9 at two T
    c = d.sweep_comparison(grid, [0.0, 0.9])
    assert c["verdict"] == "no_help" and c["kd"] == 0.904 and c["base"] == 0.9 and round(c["gain"], 6) == 0.4
    assert d.sweep_comparison(grid + [[0, 0], [0.05, 0]], [0.0, 0.9])["verdict"] == "helped"
    assert d.sweep_comparison(grid, [0.5, 0.9]) is None and d.sweep_comparison(grid[:1], [0.0]) is None


def test_the_sweep_says_plainly_whether_kd_helped():
    from cvdemo.ui.distill import sweep_verdict
    from cvdemo.ui.session import Workspace

    ws = Workspace()
    grid = np.array([[0.900, 0.900], [0.904, 0.893]])  # alpha 0 (T plays no part), then alpha 0.9 at two T
    assert sweep_verdict(grid, [0.0, 0.9], ws).startswith("KD did not help here") and "+0.4 points" in \
        sweep_verdict(grid, [0.0, 0.9], ws)
    assert sweep_verdict(grid + [[0, 0], [0.05, 0]], [0.0, 0.9], ws).startswith("KD helped")
    assert "alpha = 0" in sweep_verdict(grid, [0.5, 0.9], ws)  # nothing to compare with
    ws.lang = "ko"
    assert sweep_verdict(grid, [0.0, 0.9], ws).startswith("여기서는 KD가 도움이 되지 않았습니다")


def test_distill_handler_with_an_imagenet_teacher_adds_an_exportable_student(few_textures):
    from cvdemo.ui import distill as ui
    from cvdemo.ui.session import Workspace

    ws = Workspace()
    ws.lang = "ko"
    ws.dataset = few_textures  # the user's images, but no Transfer model: the teacher is tf_efficientnet_lite0
    *_, last = ui.distill_model(ws, 4, 0.9, 1, 0, "kd_student_cnn", "tf_efficientnet_lite0")
    status, _, report, lesson, name, dropdown = last
    assert name == "my model 1: kd_student_cnn student of tf_efficientnet_lite0" and name in ws.models
    assert "교사의 1,000개 클래스에 대한 레이블이 없으므로" in report and "내 데이터셋" in report
    agreement = re.search(r"\| 학생: kd_student_cnn \(처음부터 학습, 64 px\) \| (\d+\.\d%)", report).group(1)
    assert lesson.startswith("**내 실행 결과:**") and agreement in lesson
    files = ui.export_student(ws, name)
    config = json.loads(Path(files[1]).read_text())
    assert len(config["label_names"]) == 1000 and all(Path(f).stat().st_size > 0 for f in files)
    ws.close()


def test_the_temperature_figure_is_drawn_in_the_sessions_language(examples):
    """Korean words in the figure where a Korean font is installed (CI and the Space install one); else
    English, never boxes."""
    import os

    from cvdemo.ui import distill as ui
    from cvdemo.ui.common import pyplot
    from cvdemo.ui.session import Workspace

    hangul = len(pyplot().rcParams["font.family"]) > 1
    if os.environ.get("CI"):
        assert hangul, "CI must install a Korean font (fonts-nanum, see .ci/run)"
    ws = Workspace()
    ws.lang = "ko"
    fig, line = ui.explore(examples["cat"], None, ws)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("T = 1") and len(titles) == 5
    assert ("엔트로피" if hangul else "entropy") in titles[0]
    ws.lang = "en"
    assert "entropy" in ui.explore(examples["cat"], None, ws)[0].axes[0].get_title()


def test_a_pretrained_student_starts_from_imagenet_weights_at_its_own_input_size(few_textures):
    """A pretrained timm student keeps the ImageNet backbone (a new head for the classes) and sees images at
    the size and normalisation its weights were trained with; a Hub student offline fails at once."""
    from cvdemo.errors import ModelError
    from cvdemo.models import create_model

    student = d.build_image_student("tf_efficientnet_lite0", 3, pretrained=True)
    reference = create_model("tf_efficientnet_lite0")
    assert torch.equal(student.conv_stem.weight, reference.conv_stem.weight)
    assert student.classifier.out_features == 3
    assert d.student_data_config(student, True)["input_size"] == (3, 224, 224)
    assert d.student_data_config(d.build_image_student("kd_student_cnn", 3, pretrained=True), True)["input_size"] == \
        (3, d.STUDENT_SIZE, d.STUDENT_SIZE)  # a StudentCNN has no pretrained weights: always 64 px
    scratch = d.build_image_student("tf_efficientnet_lite0", 3)
    assert not torch.equal(scratch.conv_stem.weight, reference.conv_stem.weight)
    with pytest.raises(ModelError, match="can't be reached"):
        d.build_image_student("mobilenetv3_small_050", 3, pretrained=True)
    # through distill_classifier: the student's Classifier sees 224 px
    events = list(d.distill_any("tf_efficientnet_lite0", few_textures, config=TrainConfig(epochs=1, batch_size=16),
                                copies=0, student="tf_efficientnet_lite0", pretrained_student=True))
    assert events[-1].result["classifier"].input_size == (224, 224)


def test_a_fine_tuned_lite2_teaches_a_pretrained_lite0_each_at_its_own_input_size(few_textures, monkeypatch):
    """The bigger network as teacher: a Lite2 probe (260 px) from the Transfer tab distils into a pretrained Lite0
    student (224 px) on the user's images; the report gives both sizes, both latencies and the agreement."""
    from cvdemo.transfer import transfer
    from cvdemo.ui import distill as ui
    from cvdemo.ui.session import Workspace

    result = list(transfer(few_textures, mode="probe", arch="tf_efficientnet_lite2",
                           config=TrainConfig(epochs=20, lr=1e-2)))[-1].result
    assert result.classifier.input_size == (260, 260)
    ws = Workspace()
    ws.result, ws.dataset = result, few_textures
    monkeypatch.setattr(d, "LATENCY_RUNS", 3)  # the test's budget; the app measures 30
    monkeypatch.setattr(d, "LATENCY_WARMUP", 1)
    *_, last = ui.distill_model(ws, 4, 0.9, 1, 0, "tf_efficientnet_lite0", ui.TRANSFER, True)
    status, _, report, lesson, name, _ = last
    student = ws.models[name]
    assert student.input_size == (224, 224) and student.labels == ["brick", "grass", "gravel"]
    assert "| Teacher: tf_efficientnet_lite2 (probe, 3 classes) (260 px) |" in report
    assert "| Student: tf_efficientnet_lite0 (pretrained on ImageNet, 224 px) |" in report
    sizes = re.findall(r"\| ([\d,]+) \| (\d+\.\d MB) \| (\d+\.\d\d) \|", report)
    assert len(sizes) == 2  # parameters, size on disk, ms/image: teacher, then student
    (tparams, tsize, _), (sparams, ssize, _) = sizes
    assert int(tparams.replace(",", "")) > int(sparams.replace(",", "")) > 3_000_000 and tsize != ssize
    agreement = re.search(r"agrees with the teacher's top-1 on (\d+\.\d%) of 6 held-out images", report).group(1)
    assert re.search(r"it is 1\.\d× smaller \(parameters\) and \d+(\.\d)?× (faster|slower)", report)  # not "1×"
    assert "the median of 3 runs after 1 warm-up ones" in report
    assert lesson.startswith("**Your run:**") and agreement in lesson and "260 px" in lesson and "224 px" in lesson
    ws.lang = "ko"
    assert "일치했습니다" in ws.shown("distill") and agreement in ws.shown("distill")
    ws.close()
