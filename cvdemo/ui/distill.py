"""Distill tab: knowledge distillation (Hinton, Vinyals & Dean 2015). The temperature explorer, teacher vs
student vs KD student on the built-in digits (with live curves), the alpha x T sweep, and distilling a model
(this session's Transfer-tab model or any classifier the factory builds) into a small student."""
from __future__ import annotations

import shutil
import time

import gradio as gr
import numpy as np
import pandas as pd
from matplotlib.ticker import PercentFormatter

from .. import distill, images, jobs
from ..errors import LimitError
from ..models import DEFAULT_MODEL, OFFLINE_WEIGHTS
from ..train import TrainConfig
from .common import (MAX_TRAIN_SECONDS, TRAINING, Curve, RawImage, Slider, call, escape, expected, figure_lang,
                     finished, gated, heartbeat, left, model_choices, pick, pyplot, require, throttle, training_job,
                     user_errors, working)
from .i18n import _, tr
from .session import Workspace

TOP = 8  # classes shown per temperature
TRANSFER = "transfer"  # the teacher choice "this session's Transfer-tab model" (the default)


@user_errors
def explore(image, model: str | None, workspace: Workspace):
    """The teacher's softmax at five temperatures fitted to this image's logits (`distill.temperatures_for`), on
    one shared scale with the uniform distribution's line: a figure and a line saying what rises."""
    classifier = pick(model, workspace)
    logits = classifier.logits(classifier.preprocess(images.load_image(require(image))))[0]
    temperatures = distill.temperatures_for(logits)
    probs = distill.soft_targets(logits, temperatures)
    first, last = temperatures[0], temperatures[-1]
    top = np.argsort(-probs[first])[:TOP]  # ordered by T = 1
    names = [classifier.labels[i].split(",")[0][:22] for i in top]
    uniform = 1 / len(logits)
    plt, lang = pyplot(), figure_lang(workspace)
    fig, axes = plt.subplots(1, len(temperatures), figsize=(15, 3.3), sharey=True, sharex=True)
    for ax, T in zip(axes, temperatures):
        p = probs[T][top]
        ax.barh(range(len(top)), p, color="#4f46e5" if T == first else "#10b981")
        ax.axvline(uniform, color="#ef4444", linestyle="--", linewidth=1)
        for i, v in enumerate(p):
            ax.text(v, i, f" {v:.1%}" if v >= 0.01 else f" {v:.2%}", va="center", fontsize=7)
        ax.set_title(tr(lang, "distill.fig_entropy", T=f"{T:g}", bits=f"{distill.entropy_bits(probs[T]):.1f}"),
                     fontsize=9)
        ax.set_xlabel(tr(lang, "distill.fig_others", share=f"{1 - probs[T][top].sum():.0%}"), fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_xlim(0, min(1.0, max(probs[first][top].max() * 1.3, 1e-6)))  # one scale for every panel (sharex)
    axes[0].xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes[-1].legend([tr(lang, "distill.fig_uniform", classes=f"{len(logits):,}")], fontsize=7, loc="lower right")
    axes[0].set_yticks(range(len(top)), names)
    axes[0].invert_yaxis()
    fig.tight_layout()
    plt.close(fig)
    a, b = top[0], top[1]
    return fig, workspace.tr(
        "distill.explore_line", name=escape(names[0]), runner=escape(names[1]), T=f"{last:g}",
        p1=f"{probs[first][a]:.1%}", q1=f"{probs[first][b]:.1%}", r1=f"{probs[first][b] / probs[first][a]:.2f}",
        p2=f"{probs[last][a]:.1%}", q2=f"{probs[last][b]:.1%}", r2=f"{probs[last][b] / probs[last][a]:.2f}",
        h1=f"{distill.entropy_bits(probs[first]):.1f}", h2=f"{distill.entropy_bits(probs[last]):.1f}",
        hmax=f"{np.log2(len(logits)):.1f}", classes=f"{len(logits):,}")


def size(n: int) -> str:
    return f"{n / 1024:,.1f} KB" if n < 2**20 else f"{n / 2**20:,.1f} MB"


def run_names(workspace: Workspace) -> dict[str, str]:
    return {"teacher": workspace.tr("distill.run_teacher"), "labels_only": workspace.tr("distill.run_labels_only"),
            "kd": workspace.tr("distill.run_kd")}


def held_out_curves(points: list[dict], names: dict[str, str], seeds: int, workspace: Workspace) -> gr.LinePlot:
    """The three-way run's held-out accuracy per epoch: one line per run (and seed, with several)."""
    rows = [{"epoch": p["epoch"], "accuracy": p["test_acc"],
             "run": names[p["run"]] if p["run"] == "teacher" or seeds == 1 else
             workspace.tr("distill.series_seed", run=names[p["run"]], seed=p["seed"])} for p in points]
    return redrawn(pd.DataFrame(rows, columns=["epoch", "accuracy", "run"]), "run")


def redrawn(frame: pd.DataFrame, color: str) -> gr.LinePlot:
    """A LinePlot update that lists its series: the page fixes a plot's colours and legend when it first
    draws it and only swaps the data after, so a series that appears later (the next seed, a new run)
    would be left out; a changed legend makes it draw the plot again. (Undimmed: ui.common.stale.)"""
    return gr.LinePlot(value=frame, colors_in_legend=list(dict.fromkeys(frame[color])), elem_classes=[])


def kd_verdict(r: dict, workspace: Workspace) -> str:
    """Whether KD helped, by how many points, on how many seeds (and why not, when it didn't)."""
    c, tr = r["comparison"], workspace.tr
    numbers = {"gain": f"{c['gain']:+.1f}", "lab": f"{c['labels_only']:.1%}", "kd": f"{c['kd']:.1%}",
               "better": c["better"], "n": c["n"]}
    why = tr("distill.why_transfer") if r["transfer"] else tr("distill.why_no_transfer", labelled=r["labelled"])
    if r["verdict"] == "helped":
        source = (tr("distill.source_transfer", n=f"{r['transfer']:,}") if r["transfer"] else
                  tr("distill.source_labelled", labelled=r["labelled"]))
        closed = "" if c["closed"] is None else " " + tr("distill.gap_closed", closed=f"{c['closed']:.0%}")
        return tr("distill.helped", **numbers, source=source) + closed
    if r["verdict"] == "hurt":
        return tr("distill.hurt", **numbers) + " " + why
    return tr("distill.no_difference", **numbers) + " " + why


def three_way_table(r: dict, workspace: Workspace) -> str:
    tr, names = workspace.tr, run_names(workspace)
    models = {"student": r["student"], "labelled": r["labelled"], "T": f"{r['T']:g}", "alpha": f"{r['alpha']:g}"}
    descriptions = {
        "teacher": tr("distill.desc_teacher", n=f"{r['train']:,}"),
        "labels_only": tr("distill.desc_labels_only", student=r["student"], labelled=r["labelled"]),
        "kd": tr("distill.desc_kd", **models, transfer=f"{r['transfer']:,}") if r["transfer"] else
        tr("distill.desc_kd_alone", **models)}
    lines = [tr("distill.three_way_head"), "|---|---|---|---|---|---|---|"]
    for name, run in r["runs"].items():
        label = f"**{names[name]}**" if name == "kd" else names[name]
        lines.append(f"| {label}: {descriptions[name]} | {run['acc_mean']:.1%} ± {run['acc_std']:.1%} | "
                     f"{run['params']:,} | {size(run['bytes'])} | {run['latency_ms']:.3f} | "
                     f"{run['compression']:.1f}× | {run['speedup']:.1f}× |")
    return "\n".join(lines + ["", f"**{kd_verdict(r, workspace)}**", "",
                              tr("distill.three_way_note", test=r["test"], seeds=r["seeds"])])


@user_errors
@gated(TRAINING)
def three_way(labelled, T, alpha, seeds, student, transfer_set, workspace: Workspace):
    """Teacher vs student on labels alone vs KD student (digits), streaming each run's held-out accuracy
    per epoch; the last update adds the results table and what the run showed (for the lesson panel)."""
    n, skip = int(seeds), gr.skip()
    names, points, due = run_names(workspace), [], throttle()
    yield workspace.tr("distill.three_way_running", n=n), held_out_curves([], names, n, workspace), "", skip
    for event in jobs.three_way_live(labelled=int(labelled), seeds=tuple(range(n)), T=float(T),
                                     alpha=float(alpha), student=student, transfer_set=bool(transfer_set)):
        if event.kind != "epoch":
            break
        point = event.metrics
        points.append(point)
        if not due(event):
            continue
        yield (workspace.tr("distill.three_way_epoch", run=names[point["run"]], seed=point["seed"],
                            epoch=event.epoch, epochs=event.epochs, acc=f"{point['test_acc']:.1%}"),
               held_out_curves(points, names, n, workspace), skip, skip)
    r, runs = event.result, event.result["runs"]
    lesson = workspace.show("distill", "distill.your_run_three_way", test=r["test"],
                            teacher=f"{runs['teacher']['acc_mean']:.1%}", labelled=r["labelled"], student=r["student"],
                            lab=f"{runs['labels_only']['acc_mean']:.1%}", T=f"{r['T']:g}", alpha=f"{r['alpha']:g}",
                            kd=f"{runs['kd']['acc_mean']:.1%}", gain=f"{r['kd_gain_points']:+.1f}", n=n,
                            compression=f"{runs['kd']['compression']:.0f}", speedup=f"{runs['kd']['speedup']:.0f}",
                            seconds=f"{r['seconds']:.0f}")
    yield (workspace.tr("distill.three_way_done", seconds=f"{r['seconds']:.1f}"),
           held_out_curves(points, names, n, workspace), three_way_table(r, workspace), lesson)


def sweep_verdict(grid: np.ndarray, alphas: list[float], workspace: Workspace) -> str:
    """`distill.sweep_comparison` said plainly: KD (the best alpha > 0) against labels only (alpha = 0); one seed."""
    c = distill.sweep_comparison(grid, alphas)
    if c is None:
        return workspace.tr("distill.sweep_no_compare")
    numbers = {"kd": f"{c['kd']:.1%}", "gain": f"{c['gain']:+.1f}", "base": f"{c['base']:.1%}"}
    if c["verdict"] == "helped":
        return workspace.tr("distill.sweep_helped", **numbers)
    return workspace.tr("distill.sweep_no_help", **numbers)


@user_errors
@gated(TRAINING)
def sweep(alphas, temperatures, epochs, labelled, student, transfer_set, workspace: Workspace):
    """KD student test accuracy over alpha x T (one seed) as an annotated heatmap, the best and worst cells,
    and whether KD helped at all."""
    if not alphas or not temperatures:
        raise LimitError("Pick at least one alpha and one T.", code="limit.sweep")
    alphas, temperatures = sorted(float(a) for a in alphas), sorted(float(t) for t in temperatures)
    what, start = workspace.tr("distill.sweep_running", cells=len(alphas) * len(temperatures)), time.monotonic()
    for item in heartbeat(call(jobs.sweep, alphas, temperatures, labelled=int(labelled), epochs=int(epochs),
                               student=student, transfer_set=bool(transfer_set))):
        if item is None:
            yield gr.skip(), working(workspace, what, time.monotonic() - start), gr.skip()
        else:
            grid = item
    plt, lang = pyplot(), figure_lang(workspace)
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(temperatures), 1.2 + 0.7 * len(alphas)))
    ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(temperatures)), [f"{t:g}" for t in temperatures])
    ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set_xlabel(tr(lang, "distill.fig_T"))
    ax.set_ylabel(tr(lang, "distill.fig_alpha"))
    ax.set_title(tr(lang, "distill.fig_sweep_title", student=student, labelled=int(labelled)), fontsize=10)
    middle = (grid.max() + grid.min()) / 2
    for i in range(len(alphas)):
        for j in range(len(temperatures)):
            ax.text(j, i, f"{grid[i, j]:.1%}", ha="center", va="center", fontsize=9,
                    color="black" if grid[i, j] > middle else "white")
    fig.tight_layout()
    plt.close(fig)
    i, j = np.unravel_index(grid.argmax(), grid.shape)
    best = {"alpha": f"{alphas[i]:g}", "T": f"{temperatures[j]:g}", "best": f"{grid[i, j]:.1%}",
            "worst": f"{grid.min():.1%}"}
    text = workspace.tr("distill.sweep_best", **best) + "\n\n**" + sweep_verdict(grid, alphas, workspace) + "**"
    yield fig, text, workspace.show("distill", "distill.your_run_sweep", cells=grid.size, labelled=int(labelled),
                                     **best)


def outputs_figure(ex: dict, T: float, workspace: Workspace):
    """One held-out digit: the teacher's soft label at T, the student's soft prediction at T and its
    prediction at T = 1, side by side per class."""
    plt, lang = pyplot(), figure_lang(workspace)
    fig, ax = plt.subplots(figsize=(9, 2.8))
    series = (("teacher_T", "distill.fig_teacher_T", "#10b981"), ("student_T", "distill.fig_student_T", "#4f46e5"),
              ("student_1", "distill.fig_student_1", "#f59e0b"))
    for k, (key, text, color) in enumerate(series):
        ax.bar(np.arange(10) + (k - 1) * 0.27, ex[key], width=0.27, color=color, label=tr(lang, text, T=f"{T:g}"))
    ax.set_xticks(range(10))
    ax.set_xlabel(tr(lang, "distill.fig_digit_class", label=ex["label"]))
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


@user_errors
@gated(TRAINING)
def inside_kd(labelled, T, alpha, workspace: Workspace):
    """One KD run opened up: the T^2 gradients, the soft and hard terms per epoch (streamed), the student's two
    outputs for one held-out digit, and what the run showed."""
    T, skip = float(T), gr.skip()
    names = {"soft": workspace.tr("distill.term_soft"), "hard": workspace.tr("distill.term_hard")}
    points: list[dict] = []
    yield workspace.tr("distill.inside_running"), None, skip, skip, skip
    for event in jobs.inside_kd(T=T, alpha=float(alpha), labelled=int(labelled)):
        if event.kind != "epoch":
            break
        m = event.metrics
        points += [{"epoch": m["epoch"], "value": m[k], "term": name} for k, name in names.items()]
        yield (workspace.tr("distill.inside_epoch", epoch=event.epoch, epochs=event.epochs, soft=f"{m['soft']:.3f}",
                            hard=f"{m['hard']:.3f}", acc=f"{m['test_acc']:.1%}"),
               redrawn(pd.DataFrame(points), "term"), skip, skip, skip)
    r = event.result
    g, ex, last = r["gradients"], r["example"], r["curves"][-1]
    rows = [f"| {t:g} | {p:.4f} | {q:.3f} | {h:.3f} |"
            for t, p, q, h in zip(g["T"], g["plain"], g["scaled"], g["hard"])]
    numbers = {"t0": f"{g['T'][0]:g}", "t1": f"{g['T'][-1]:g}", "fall": f"{g['plain'][0] / g['plain'][-1]:.0f}",
               "kept": f"{max(g['scaled']) / min(g['scaled']):.1f}", "hard": f"{g['hard'][0]:.3f}",
               "epochs": r["epochs"], "soft_end": f"{last['soft']:.3f}", "hard_end": f"{last['hard']:.3f}",
               "acc": f"{r['test_acc']:.1%}", "label": ex["label"], "T": f"{T:g}",
               "pT": f"{ex['student_T'][ex['label']]:.1%}", "p1": f"{ex['student_1'][ex['label']]:.1%}",
               "teacher": f"{ex['teacher_T'][ex['label']]:.1%}"}
    text = "\n".join([workspace.tr("distill.grad_head"), *rows, "", workspace.tr("distill.inside_summary", **numbers)])
    yield (workspace.tr("distill.three_way_done", seconds=f"{r['seconds']:.1f}"), redrawn(pd.DataFrame(points), "term"),
           text, outputs_figure(ex, T, workspace), workspace.show("distill", "distill.your_run_inside", **numbers))


def curve(history: list[dict], workspace: Workspace, label_free: bool) -> gr.LinePlot:
    """Section 4's curves: agreement with the teacher on the training images, and the held-out score."""
    held_out = workspace.tr("distill.metric_agree") if label_free else workspace.tr("distill.metric_val")
    names = {"train_acc": workspace.tr("distill.curve_train"), "val_acc": held_out}
    rows = [{"epoch": h["epoch"], "value": h[key], "split": split} for h in history
            for key, split in names.items() if key in h]
    return redrawn(pd.DataFrame(rows, columns=["epoch", "value", "split"]), "split")


def ratios(r: dict, workspace: Workspace) -> dict[str, str]:
    """The student against the teacher, said the right way round: "1.4× smaller" (not "1×"), "1.2× slower"."""
    def said(x: float, more: str, less: str) -> str:
        shown, student_less = distill.right_way_round(x)
        return workspace.tr(more if student_less else less, x=shown)

    return {"size": said(r["compression"], "distill.ratio_smaller", "distill.ratio_larger"),
            "speed": said(r["speedup"], "distill.ratio_faster", "distill.ratio_slower")}


def report(r: dict, teacher: str, student: str, source: str, workspace: Workspace) -> str:
    """Teacher and student side by side (each at its own input size), and what that means: validation accuracy
    kept and top-1 agreement (with labels), or agreement against the constant-answer baseline (label-free); size
    and latency as measured, said the right way round."""
    tr, t, s = workspace.tr, r["teacher"], r["student"]
    metric = tr("distill.metric_agree") if r["label_free"] else tr("distill.metric_val")
    how = tr("distill.how_pretrained") if r["pretrained_student"] else tr("distill.how_scratch")
    lines = [tr("distill.report_head", metric=metric), "|---|---|---|---|---|---|---|"]
    for name, row in ((tr("distill.row_teacher", name=teacher, px=t["input_size"][0]), t),
                      (tr("distill.row_student", name=student, how=how, px=s["input_size"][0]), s)):
        score = "—" if row["val_acc"] is None else f"{row['val_acc']:.1%}"
        lines.append(f"| {name} | {score} | {row['params']:,} | {size(row['bytes'])} | {row['latency_ms']:.2f} | "
                     f"{t['bytes'] / row['bytes']:.1f}× | {t['latency_ms'] / row['latency_ms']:.1f}× |")
    numbers = {**ratios(r, workspace), "held_out": r["held_out"], "agreement": f"{r['agreement']:.1%}"}
    if r["label_free"]:
        text = tr("distill.label_free", classes=f"{len(r['classes']):,}", transfer=f"{r['transfer']:,}",
                  source=source, baseline=f"{r['baseline']:.1%}", **numbers)
        if r["kept"] <= r["baseline"]:
            text += " " + tr("distill.no_better")
    else:
        text = tr("distill.kept", kept=f"{r['kept']:.0%}", teacher=f"{t['val_acc']:.1%}",
                  student=f"{s['val_acc']:.1%}", **numbers)
        if r["kept"] < 0.9:
            text += " " + tr("distill.real_loss")
    return "\n".join(lines + ["", f"**{text}**", "",
                              tr("distill.report_note", runs=r["latency_runs"], warmup=r["latency_warmup"],
                                 held_out=r["held_out"])])


def your_run(r: dict, teacher: str, student: str, workspace: Workspace) -> str:
    t, s = r["teacher"], r["student"]
    numbers = {"student": student, "teacher": teacher, "sparams": f"{s['params']:,}", "tparams": f"{t['params']:,}",
               "spx": s["input_size"][0], "tpx": t["input_size"][0], "sms": f"{s['latency_ms']:.2f}",
               "tms": f"{t['latency_ms']:.2f}", "agreement": f"{r['agreement']:.1%}", "held_out": r["held_out"],
               **ratios(r, workspace)}
    if r["label_free"]:
        return workspace.show("distill", "distill.your_run_label_free", baseline=f"{r['baseline']:.1%}", **numbers)
    return workspace.show("distill", "distill.your_run_distill", kept=f"{r['kept']:.0%}", tacc=f"{t['val_acc']:.1%}",
                          sacc=f"{s['val_acc']:.1%}", **numbers)


def pick_teacher(workspace: Workspace, teacher: str | None):
    """(teacher Classifier, the images to distill on or None for the built-in textures, the held-out images
    or None to split some off): this session's Transfer-tab model with that run's own training and
    validation images (so the teacher is scored on images it never trained on), or any classifier by name
    (this session's or the factory's) with the dataset loaded now."""
    result = workspace.result
    if (teacher or TRANSFER).strip() != TRANSFER:
        classifier = workspace.classifier(teacher.strip())
        if result is not None and classifier is result.classifier:  # the Transfer-tab model, picked by its name
            return classifier, result.train_data, result.val_data
        return classifier, workspace.dataset, None
    if result is None:
        raise LimitError("Train a model in the Transfer tab first: it becomes the teacher. Or pick a pretrained "
                         "teacher such as tf_efficientnet_lite0.", code="model.missing")
    return result.classifier, result.train_data, result.val_data


@user_errors
@gated(TRAINING)
def distill_model(workspace: Workspace, T, alpha, epochs, copies, student: str = "kd_student_cnn",
                  teacher: str = TRANSFER, pretrained: bool = False):
    """Distill a teacher (`teacher`: this session's Transfer-tab model, or any classifier name) into a small
    student, streaming status and the accuracy curve. With the teacher's classes = the dataset's, on its
    labels too; otherwise label-free (alpha = 1) on the dataset's images or the built-in textures. The
    student joins this session's models (workspace.result stays the Transfer result)."""
    teacher_clf, dataset, val = pick_teacher(workspace, teacher)
    source = workspace.tr("distill.source_textures") if dataset is None else workspace.tr("distill.source_yours")
    dataset, label_free = distill.distill_plan(teacher_clf, dataset)
    student = student or "kd_student_cnn"
    with workspace.job() as stop_flag:
        config = TrainConfig(epochs=int(epochs), batch_size=32, lr=3e-3, max_seconds=MAX_TRAIN_SECONDS)
        skip, start = gr.skip(), time.monotonic()
        metric = workspace.tr("distill.metric_agree") if label_free else workspace.tr("distill.metric_val")
        history, due = [], throttle()
        for event in heartbeat(jobs.distill_classifier(
                teacher_clf, dataset, T=float(T), alpha=float(alpha), config=config, copies=int(copies), stop=stop_flag,
                student=student, label_free=label_free, pretrained_student=bool(pretrained), val=val)):
            if event is None:  # the teacher's pass over the images (before the first epoch), or measuring after
                what = "distill.measuring" if history else "distill.teacher_pass"
                yield working(workspace, workspace.tr(what), time.monotonic() - start), skip, skip, skip, skip, skip
                continue
            last = event
            if event.kind != "epoch":
                continue
            history.append({"epoch": event.epoch, **event.metrics})
            if not due(event):
                continue
            line = workspace.tr("distill.epoch_line", epoch=event.epoch, epochs=event.epochs, metric=metric,
                                acc=f"{event.metrics.get('val_acc', 0):.1%}", seconds=f"{event.elapsed:.1f}")
            yield (line + left(workspace, event.elapsed, expected(event)), curve(history, workspace, label_free),
                   skip, skip, skip, skip)
        result = last.result  # the last event: "done" or "stopped"
        teacher_name = teacher_clf.name.split(": ", 1)[-1]
        name = workspace.add_model(result["classifier"], f"{student} student of {teacher_name}")
        shown = {"teacher": escape(teacher_name), "student": escape(student)}  # Markdown: names as text
        yield (finished(workspace, last) + " " + workspace.tr("distill.done", name=escape(name)),
               curve(history, workspace, label_free),
               report(result, **shown, source=source, workspace=workspace),
               your_run(result, **shown, workspace=workspace), name,
               gr.Dropdown(choices=model_choices(workspace)))


@user_errors
def export_student(workspace: Workspace, name: str | None):
    """The student's files (`distill.save_student`): weights + config.json, and ONNX."""
    student = workspace.models.get(name or "")
    if student is None:
        raise LimitError("Distill a student first (it may have been dropped: a session keeps 3 models).",
                         code="model.missing")
    folder = workspace.files() / "student"
    shutil.rmtree(folder, ignore_errors=True)
    return [str(path) for path in distill.save_student(student, folder)]


def teacher_choices(workspace: Workspace | None = None) -> list[tuple]:
    """This session's Transfer-tab model first, then every model the Classify tab offers."""
    return [(_("distill.teacher_transfer"), TRANSFER)] + model_choices(workspace)


def build(workspace: gr.State, lesson: gr.Markdown, classify_model: gr.Dropdown) -> tuple[gr.Dropdown, gr.Dropdown]:
    """The tab; `lesson` is its "your run" panel, `classify_model` the Classify tab's model list (students join it).
    Returns its own model lists (the explorer's model, the teacher)."""
    gr.Markdown(_("distill.explore_heading"))
    with gr.Row():
        image = RawImage(value=images.sample_photos()[0], label=_("app.image"), type="filepath",
                         sources=["upload", "webcam", "clipboard"], height=220, scale=1)
        with gr.Column(scale=2):
            model = gr.Dropdown(model_choices(), value=DEFAULT_MODEL, allow_custom_value=True,
                                label=_("distill.teacher"))
            show = gr.Button(_("distill.show"), variant="primary")
            soft_text = gr.Markdown()
    soft_plot = gr.Plot(label=_("distill.soft_plot"), show_label=False)
    gr.Markdown(_("distill.three_way_heading"))
    with gr.Row():
        labelled = Slider(30, 500, 100, step=10, label=_("distill.labelled"))
        T = Slider(1, 20, 4, step=0.5, label=_("distill.T"))
        alpha = Slider(0, 1, 0.9, step=0.05, label=_("distill.alpha"))
    with gr.Row(equal_height=True):
        seeds = Slider(1, 3, 3, step=1, label=_("distill.seeds"), elem_id="distill-seeds")
        student = gr.Radio(["mlp", "cnn"], value="mlp", label=_("distill.student"))
        transfer_set = gr.Checkbox(True, label=_("distill.transfer_set"))
        run3 = gr.Button(_("distill.run_three_way"), variant="primary")
    status3 = gr.Markdown()
    curves3 = Curve(x="epoch", y="accuracy", color="run", y_lim=[0, 1], label=_("distill.curves"),
                    elem_id="distill-curves", y_axis_format=".0%")
    table3 = gr.Markdown()
    gr.Markdown(_("distill.sweep_heading"))
    with gr.Row():
        # string values: what the API page documents for a CheckboxGroup (the handler reads them as numbers)
        alphas = gr.CheckboxGroup(["0.0", "0.25", "0.5", "0.75", "0.9", "1.0"], value=["0.0", "0.5", "0.9"],
                                  label=_("distill.alpha"))
        temps = gr.CheckboxGroup(["1", "2", "4", "8", "16"], value=["1", "4", "8"], label=_("distill.T"))
        sweep_epochs = Slider(3, 30, 15, step=1, label=_("app.epochs"))
        run_sweep = gr.Button(_("distill.run_sweep"))
    with gr.Row():
        heatmap = gr.Plot(label=_("distill.heatmap"), show_label=False)
        sweep_text = gr.Markdown()
    gr.Markdown(_("distill.inside_heading"))
    with gr.Row():
        run_inside = gr.Button(_("distill.run_inside"), variant="primary", scale=0, min_width=260)
        status_inside = gr.Markdown()
    with gr.Row():
        terms_plot = gr.LinePlot(x="epoch", y="value", color="term", color_title="", x_title=_("app.epochs"),
                                 y_title=_("distill.loss_value"), label=_("distill.terms_plot"), elem_id="kd-terms")
        inside_text = gr.Markdown()
    outputs_plot = gr.Plot(label=_("distill.outputs_plot"), elem_id="kd-outputs")
    gr.Markdown(_("distill.distill_heading"))
    with gr.Row():
        teacher4 = gr.Dropdown(teacher_choices(), value=TRANSFER, allow_custom_value=True, label=_("distill.teacher"),
                               info=_("distill.teacher_info"), scale=2, elem_id="distill-teacher")
        with gr.Column():
            student4 = gr.Dropdown(list(distill.STUDENTS), value="kd_student_cnn", allow_custom_value=True,
                                   label=_("distill.student_image"))
            pretrained4 = gr.Checkbox(False, label=_("distill.pretrained_student"),
                                      info=_("distill.pretrained_student_info"))
    with gr.Row():
        T4 = Slider(1, 20, 4, step=0.5, label=_("distill.T"))
        alpha4 = Slider(0, 1, 0.9, step=0.05, label=_("distill.alpha"))
        epochs4 = Slider(1, 100, 12, step=1, label=_("app.epochs"))
        copies = Slider(0, 8, 2, step=1, label=_("distill.copies"))
    with gr.Row():
        train = gr.Button(_("distill.train"), variant="primary")
        halt = gr.Button(_("app.stop"), variant="stop", interactive=False)
        export = gr.Button(_("distill.export"))
    status4 = gr.Markdown()
    with gr.Row():
        acc_plot = Curve(x="epoch", y="value", color="split", label=_("distill.student_curve"), scale=2,
                         y_axis_format=".0%")
        downloads = gr.File(label=_("distill.files"), file_count="multiple", height=120, scale=1)
    report4 = gr.Markdown()
    student_name = gr.State()

    show.click(explore, [image, model, workspace], [soft_plot, soft_text], api_name="soft_targets",
               concurrency_id="inference")
    training_job(run3, three_way, [labelled, T, alpha, seeds, student, transfer_set, workspace],
                 [status3, curves3, table3, lesson], workspace, status3, clear=(curves3, table3), api_name="distill")
    training_job(run_sweep, sweep, [alphas, temps, sweep_epochs, labelled, student, transfer_set, workspace],
                 [heatmap, sweep_text, lesson], workspace, sweep_text, clear=(heatmap,), api_name="distill_sweep")
    run_inside.click(inside_kd, [labelled, T, alpha, workspace],
                     [status_inside, terms_plot, inside_text, outputs_plot, lesson], api_name="inside_kd",
                     concurrency_id="training", concurrency_limit=None)
    training_job(train, distill_model, [workspace, T4, alpha4, epochs4, copies, student4, teacher4, pretrained4],
                 [status4, acc_plot, report4, lesson, student_name, classify_model], workspace, status4,
                 clear=(acc_plot, report4, downloads), halt=halt, api_name="distill_transfer").success(
        lambda ws: (gr.Dropdown(choices=model_choices(ws)), gr.Dropdown(choices=teacher_choices(ws))), workspace,
        [model, teacher4], api_visibility="private", queue=False)
    halt.click(Workspace.request_stop, workspace, status4, api_visibility="private", queue=False)
    student4.input(lambda name: name in OFFLINE_WEIGHTS, student4, pretrained4, api_visibility="private",
                   queue=False)  # an offline ImageNet network is offered to start from its weights
    export.click(export_student, [workspace, student_name], downloads, api_visibility="private", queue=False)
    return model, teacher4
