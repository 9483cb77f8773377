"""The digits lesson (cvdemo.distill.digits): the shipped teacher (small, accurate, reproducible, loaded safely),
the three-way lesson (KD beats labels alone), the honest sentence, the sweep and its verdict, the CLI."""
import hashlib
import json

import numpy as np
import pytest
import torch

from cvdemo import distill as d
from cvdemo import measure
from cvdemo.errors import LimitError, ModelError
from cvdemo.train import evaluate


def test_shipped_teacher_is_small_safetensors_and_accurate(digits_data, digits_teacher, monkeypatch):
    weights, meta_path = d.CHECKPOINTS / "digits_teacher.safetensors", d.CHECKPOINTS / "digits_teacher.json"
    assert weights.stat().st_size < 400_000
    meta = json.loads(meta_path.read_text())
    assert meta["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert meta["command"] == "python -m cvdemo.distill make-teacher" and meta["command"] in d.digits.__doc__
    assert not [p for p in d.CHECKPOINTS.iterdir() if p.suffix in (".pt", ".pth", ".bin", ".pkl")]

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load must not be used")

    monkeypatch.setattr(torch, "load", no_pickle)
    model = d.load_teacher()
    _, test = digits_data
    acc = evaluate(model, d.digits._labelled(test, d.digits_teacher_input))["acc"]
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
    monkeypatch.setitem(d.digits.TEACHER_RECIPE, "epochs", 1)
    a, b = d.make_teacher(tmp_path / "a", quiet=True), d.make_teacher(tmp_path / "b", quiet=True)
    assert a == b and a["recipe"]["epochs"] == 1
    assert (tmp_path / "a" / "digits_teacher.safetensors").read_bytes() == \
        (tmp_path / "b" / "digits_teacher.safetensors").read_bytes()
    assert d.load_teacher(tmp_path / "a" / "digits_teacher.safetensors").widths == a["model_args"]["widths"]


def test_three_way_kd_beats_labels_only(digits_teacher):
    result = d.three_way(seeds=(0,), teacher=digits_teacher)
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

    verdict, sentence = d.digits._honest(d.digits._compare(runs([0.88, 0.86, 0.92], [0.885, 0.86, 0.91])), 100, 0)
    assert verdict == "no clear difference" and "no transfer set" in sentence and "-0.2 points" in sentence
    verdict, sentence = d.digits._honest(d.digits._compare(runs([0.88, 0.86, 0.92], [0.83, 0.82, 0.85])), 100, 0)
    assert verdict == "hurt" and sentence.startswith("KD hurt here: -5.3 points")
    comparison = d.digits._compare(runs([0.88, 0.86, 0.92], [0.95, 0.95, 0.96]))
    verdict, sentence = d.digits._honest(comparison, 100, 1098)
    assert verdict == "helped" and "+6.7 points" in sentence and "3 of 3 seeds" in sentence
    assert comparison["better"] == 3 and comparison["closed"] == pytest.approx((2.86 - 2.66) / (2.97 - 2.66))


def test_sweep_grid(digits_teacher):
    grid = d.sweep(alphas=(0.0, 0.9), temperatures=(1, 4), epochs=10, teacher=digits_teacher)
    assert grid.shape == (2, 2) and ((grid > 0.5) & (grid <= 1)).all()
    assert grid[0, 0] == grid[0, 1]  # alpha 0: cross-entropy only, T plays no part
    assert grid[1].max() > grid[0, 0]  # the teacher's soft targets help


def test_three_way_refuses_bad_settings(digits_teacher):
    with pytest.raises(LimitError):
        d.three_way(dataset="faces", teacher=digits_teacher)
    with pytest.raises(LimitError):
        d.three_way(labelled=5, seeds=(0,), teacher=digits_teacher)  # fewer than one per class
    with pytest.raises(LimitError):
        d.three_way(student="vit", seeds=(0,), teacher=digits_teacher)


def test_cli_sweep_and_errors(capsys):
    assert d.main(["sweep", "--alphas", "0.9", "--temperatures", "4", "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("alpha \\ T") and "%" in out
    assert d.main(["three-way", "--labelled", "5", "--seeds", "1"]) == 2
    assert "labelled must be" in capsys.readouterr().err


def test_sweep_comparison_sets_the_best_kd_cell_against_labels_only():
    grid = np.array([[0.900, 0.900], [0.904, 0.893]])  # alpha 0 (T plays no part), then alpha 0.9 at two T
    c = d.sweep_comparison(grid, [0.0, 0.9])
    assert c["verdict"] == "no_help" and c["kd"] == 0.904 and c["base"] == 0.9 and round(c["gain"], 6) == 0.4
    assert d.sweep_comparison(grid + [[0, 0], [0.05, 0]], [0.0, 0.9])["verdict"] == "helped"
    assert d.sweep_comparison(grid, [0.5, 0.9]) is None and d.sweep_comparison(grid[:1], [0.0]) is None


def test_inside_kd_curves_are_the_losss_two_terms_and_the_two_softmaxes_differ(digits_teacher):
    events = list(d.inside_kd(T=4, alpha=0.9, epochs=2, teacher=digits_teacher))
    epochs, final = events[:-1], events[-1]
    assert [e.metrics["epoch"] for e in epochs] == [1, 2] and final.kind == "done"
    r = final.result
    assert r["curves"] == [e.metrics for e in epochs] and r["transfer"] == 1_198 - 100
    assert all(c["soft"] > 0 and c["hard"] > 0 for c in r["curves"]) and r["test_acc"] == r["curves"][-1]["test_acc"]
    g = r["gradients"]
    assert g["T"] == [1, 2, 4, 8, 16] and g["plain"][0] > 50 * g["plain"][-1]  # untrained student vs the teacher
    assert 0.3 < g["scaled"][-1] / g["scaled"][0] < 3  # T^2 keeps the soft pull the same order of size
    ex = r["example"]
    student_1, student_T = np.array(ex["student_1"]), np.array(ex["student_T"])
    assert abs(student_1.sum() - 1) < 1e-6 and abs(student_T.sum() - 1) < 1e-6
    assert student_T.max() < student_1.max() and student_T.argmax() == student_1.argmax()  # softer, same ranking
    # softmax at 1 and at T of the same logits: log p1 = T * log pT + a constant per image
    ratio = np.log(student_1) - 4 * np.log(student_T)
    assert np.allclose(ratio, ratio[0], atol=1e-4)
    with pytest.raises(LimitError):
        next(d.inside_kd(T=0, teacher=digits_teacher))
