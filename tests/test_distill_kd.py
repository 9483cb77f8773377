"""The KD core (cvdemo.distill.kd): the loss against the formula written out by hand, soft targets, and
distill()'s checks, stop flag and one teacher pass."""
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cvdemo import distill as d
from cvdemo.errors import LimitError, ModelError
from cvdemo.train import StopFlag, TrainConfig, one_thread

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def logits():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 5, generator=g) * 3, torch.randn(6, 5, generator=g) * 3, torch.tensor([0, 4, 2, -1, 1, -1])


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


def test_temperatures_fit_the_logits_from_1_to_90_percent_of_the_maximum_entropy():
    assert d.entropy_bits(np.full(8, 1 / 8)) == pytest.approx(3.0) and d.entropy_bits(np.eye(4)[0]) == 0.0
    assert d.entropy_bits([0.5, 0.25, 0.25]) == pytest.approx(1.5)  # by hand: 0.5 * 1 + 2 * 0.25 * 2
    for scale in (3.0, 12.0):  # an unsure and a confident teacher over 1,000 classes
        z = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * scale
        Ts = d.temperatures_for(z)
        assert len(Ts) == 5 and Ts[0] == 1.0 and list(Ts) == sorted(set(Ts))
        bits = [d.entropy_bits(p) for p in d.soft_targets(z, Ts).values()]
        assert bits == sorted(bits)  # flatter with every step
        assert 0.85 * np.log2(1000) <= bits[-1] <= 0.95 * np.log2(1000) or Ts[-1] == 2.0
    assert d.temperatures_for(torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 3)[-1] < \
        d.temperatures_for(torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 12)[-1]
    assert d.temperatures_for(np.zeros(10))[-1] == 2.0  # already uniform: the smallest range


@one_thread()  # tiny models: see one_thread's docstring
def test_distill_trains_checks_and_stops(digits_data, digits_teacher):
    train, test = digits_data
    config = TrainConfig(epochs=3, batch_size=32, lr=1e-2, device="cpu")
    args = (train.images[:50], train.labels[:50], train.images[50:400], d.digits_teacher_input,
            d.digits_student_input)
    student = d.build_student("mlp", seed=1)
    frozen = {k: v.clone() for k, v in digits_teacher.state_dict().items()}
    events = list(d.distill(digits_teacher, student, *args, config, T=4, alpha=0.9, val_images=test.images,
                            val_labels=test.labels))
    done = events[-1]
    assert done.kind == "done" and len(done.history) == 3
    assert {"train_acc", "val_acc"} <= set(done.best) and done.best["val_acc"] > 0.6  # train_acc: agreement
    assert not digits_teacher.training and all(torch.equal(frozen[k], v) for k, v in digits_teacher.state_dict().items())
    # raw images of any kind: uint8 arrays work like PIL images
    raw = [np.asarray(im) for im in train.images[:50]]
    last = list(d.distill(digits_teacher, d.build_student("cnn"), raw, train.labels[:50], [], d.digits_teacher_input,
                          d.digits_student_input, TrainConfig(epochs=1, batch_size=16, device="cpu")))[-1]
    assert last.kind == "done"

    # the stop flag: set after the first step -> "stopped" right after it (no epoch finished: best None)
    stop, student = StopFlag(), d.build_student("mlp", seed=2)
    events = []
    for event in d.distill(digits_teacher, student, *args, config, stop=stop):
        events.append(event)
        stop.set()
    assert [e.kind for e in events] == ["step", "stopped"] and events[-1].best is None and events[-1].step == 1
    # set before the start: nothing trains, the weights stay as they were
    before = {k: v.clone() for k, v in student.state_dict().items()}
    events = list(d.distill(digits_teacher, student, *args, config, stop=stop))
    assert [e.kind for e in events] == ["stopped"] and events[-1].step == 0
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())

    with pytest.raises(LimitError, match="labels"):
        d.distill(digits_teacher, student, train.images[:5], train.labels[:4], [], d.digits_teacher_input,
                  d.digits_student_input)
    with pytest.raises(LimitError, match="class indices"):  # checked at the call, before the teacher runs
        d.distill(digits_teacher, student, train.images[:5], [0, 1, 2, 3, 10], [], d.digits_teacher_input,
                  d.digits_student_input, config)
    with pytest.raises(LimitError, match="class indices"):
        d.distill(digits_teacher, student, *args, config, val_images=test.images[:2], val_labels=np.array([0, -1]))
    with pytest.raises(ModelError, match="3 outputs"):
        d.distill(digits_teacher, d.build_student("mlp", num_classes=3), *args, config)
    with pytest.raises(LimitError):
        d.distill(digits_teacher, student, *args, config, T=0)


def test_teacher_logits_are_computed_once_in_eval_mode(digits_data):
    train, _ = digits_data
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


def test_module_runs_without_gradio():
    code = "import sys, cvdemo.distill; assert 'gradio' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_kd_terms_are_the_loss_apart_and_why_t_squared():
    from cvdemo.distill import kd_loss, kd_terms, t_squared_gradients

    torch.manual_seed(0)
    s, t = torch.randn(6, 10) * 3, torch.randn(6, 10) * 3
    y = torch.tensor([1, 2, -1, 3, -1, 0])
    terms = kd_terms(s, t, y, T=3.0)
    assert torch.allclose(kd_loss(s, t, y, T=3.0, alpha=0.7), 0.7 * terms["soft"] + 0.3 * terms["hard"])
    known = y >= 0
    assert torch.allclose(terms["hard"], torch.nn.functional.cross_entropy(s[known], y[known]))
    grads = t_squared_gradients(s, t, y, (1, 2, 4, 8, 16))
    for T, plain, scaled in zip(grads["T"], grads["plain"], grads["scaled"]):
        # by hand: d KL(t_T || s_T) / d s = (softmax(s/T) - softmax(t/T)) / T, per row
        by_hand = ((torch.softmax(s / T, 1) - torch.softmax(t / T, 1)) / T).norm(dim=1).mean().item()
        assert plain == pytest.approx(by_hand, rel=1e-5) and scaled == pytest.approx(T * T * by_hand, rel=1e-5)
    assert grads["plain"][-1] < grads["plain"][0] / 100  # without T^2 the soft term's pull vanishes
    hard = (torch.softmax(s[known], 1) - torch.nn.functional.one_hot(y[known], 10)).norm(dim=1).mean().item()
    assert grads["hard"] == [pytest.approx(hard, rel=1e-5)] * 5  # the hard term does not depend on T
    # Hinton et al. 2015, eq. 3 (zero-mean logits, T large next to them): T^2 x gradient -> (z - v) / N
    z, v = torch.randn(4, 10) * 0.1, torch.randn(4, 10) * 0.1
    z, v = z - z.mean(1, keepdim=True), v - v.mean(1, keepdim=True)
    limit = ((z - v) / 10).norm(dim=1).mean().item()
    assert t_squared_gradients(z, v, torch.zeros(4), (100,))["scaled"][0] == pytest.approx(limit, rel=1e-2)
