"""Distill tab: knowledge distillation (Hinton, Vinyals & Dean 2015). The temperature explorer, teacher vs
student vs KD student on the built-in digits, the alpha x T sweep, and distilling a Transfer-tab model."""
from __future__ import annotations

import json
import shutil

import gradio as gr
import numpy as np
import pandas as pd
from torch import nn

from .. import distill, images
from ..errors import LimitError
from ..export import export_onnx, save_model
from ..models import DEFAULT_MODEL
from ..train import TrainConfig
from .classify import model_choices, pick, require
from .common import RawImage, example_images, user_errors
from .session import Workspace
from .transfer import MAX_TRAIN_SECONDS

TEMPERATURES = (1, 2, 5, 10, 20)
TOP = 8  # classes shown per temperature
LESSON = ("A big **teacher** network's predictions are softened with a **temperature** T "
          "(softmax(logits / T)), and a small **student** learns to match these **soft targets** with a KL-divergence "
          "loss (weight alpha), plus ordinary cross-entropy on the few labels it has (weight 1 - alpha). The soft "
          "targets say which wrong classes are *almost* right: knowledge the hard labels don't carry.")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def entropy_bits(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


@user_errors
def explore(image, model: str | None, workspace: Workspace):
    """The teacher's softmax at T = 1, 2, 5, 10, 20 for one image: a figure and a line explaining it."""
    classifier = pick(model, workspace)
    logits = classifier.logits(classifier.preprocess(images.load_image(require(image))))[0]
    probs = distill.soft_targets(logits, TEMPERATURES)
    top = np.argsort(-probs[1])[:TOP]  # ordered by T = 1
    names = [classifier.labels[i].split(",")[0][:22] for i in top]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(TEMPERATURES), figsize=(15, 3.3), sharey=True)
    for ax, T in zip(axes, TEMPERATURES):
        p = probs[T][top]
        ax.barh(range(len(top)), p, color="#4f46e5" if T == 1 else "#10b981")
        ax.set_xlim(0, max(p.max() * 1.35, 1e-6))
        for i, v in enumerate(p):
            ax.text(v, i, f" {v:.1%}" if v >= 0.01 else f" {v:.2%}", va="center", fontsize=7)
        ax.set_title(f"T = {T}\nentropy {entropy_bits(probs[T]):.1f} bits", fontsize=9)
        ax.set_xlabel(f"others: {1 - probs[T][top].sum():.0%}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xticks([])
    axes[0].set_yticks(range(len(top)), names)
    axes[0].invert_yaxis()
    fig.tight_layout()
    plt.close(fig)
    rest = len(logits) - len(top)
    line = (f"At T = 1 **{names[0]}** gets {probs[1][top[0]]:.1%}; at T = 20 it gets {probs[20][top[0]]:.1%} and "
            f"the other {rest:,} classes together {1 - probs[20][top].sum():.0%}. Raising T keeps the ranking but "
            "lifts the runners-up: that is the *dark knowledge* a student learns from (entropy in bits, of all "
            f"{len(logits):,} classes).")
    return fig, line


def size(n: int) -> str:
    return f"{n / 1024:,.1f} KB" if n < 2**20 else f"{n / 2**20:,.1f} MB"


@user_errors
def three_way(labelled, T, alpha, seeds, student, transfer_set):
    """Teacher vs student on labels alone vs KD student (digits): a markdown table and the honest sentence."""
    n = int(seeds)
    yield f"Running… training 2 students × {n} seed{'s' if n > 1 else ''} on the digits.", ""
    r = distill.three_way(labelled=int(labelled), seeds=tuple(range(n)), T=float(T), alpha=float(alpha),
                          student=student, transfer_set=bool(transfer_set))
    lines = ["| run | test accuracy | params | size on disk | ms/image | compression | speed-up |",
             "|---|---|---|---|---|---|---|"]
    for name, run in r["runs"].items():
        label = {"teacher": "Teacher", "labels_only": "Student, labels only", "kd": "**KD student**"}[name]
        lines.append(f"| {label}: {run['description']} | {run['acc_mean']:.1%} ± {run['acc_std']:.1%} | "
                     f"{run['params']:,} | {size(run['bytes'])} | {run['latency_ms']:.3f} | "
                     f"{run['compression']:.1f}× | {run['speedup']:.1f}× |")
    lines += ["", f"**{r['honest']}**", "",
              (f"_Held-out test split: {r['test']} images; mean ± std over seeds {r['seeds']}; ms/image: CPU, "
               f"batch 1, one thread, p50._")]
    yield f"Done in {r['seconds']:.1f} s.", "\n".join(lines)


@user_errors
def sweep(alphas, temperatures, epochs, labelled, student, transfer_set):
    """KD student test accuracy over alpha x T (one seed) as an annotated heatmap."""
    if not alphas or not temperatures:
        raise LimitError("Pick at least one alpha and one T.", code="limit.sweep")
    alphas, temperatures = sorted(float(a) for a in alphas), sorted(float(t) for t in temperatures)
    grid = distill.sweep(alphas, temperatures, labelled=int(labelled), epochs=int(epochs), student=student,
                         transfer_set=bool(transfer_set))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(temperatures), 1.2 + 0.7 * len(alphas)))
    ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(temperatures)), [f"{t:g}" for t in temperatures])
    ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set_xlabel("T (temperature)")
    ax.set_ylabel("alpha (weight of the soft targets)")
    ax.set_title(f"{student} student, test accuracy (seed 0, {int(labelled)} labels)", fontsize=10)
    middle = (grid.max() + grid.min()) / 2
    for i in range(len(alphas)):
        for j in range(len(temperatures)):
            ax.text(j, i, f"{grid[i, j]:.1%}", ha="center", va="center", fontsize=9,
                    color="black" if grid[i, j] > middle else "white")
    fig.tight_layout()
    plt.close(fig)
    i, j = np.unravel_index(grid.argmax(), grid.shape)
    return fig, (f"Best: alpha = {alphas[i]:g}, T = {temperatures[j]:g} ({grid[i, j]:.1%}); worst {grid.min():.1%}. "
                 "alpha = 0 ignores the teacher (labels only).")


def curve(history: list[dict]) -> pd.DataFrame:
    rows = [{"epoch": h["epoch"], "value": h[key], "split": split} for h in history
            for key, split in (("train_acc", "agrees with teacher"), ("val_acc", "val accuracy")) if key in h]
    return pd.DataFrame(rows, columns=["epoch", "value", "split"])


def report(r: dict) -> str:
    t, s = r["teacher"], r["student"]
    lines = ["| model | val accuracy | params | size on disk | ms/image | compression | speed-up |",
             "|---|---|---|---|---|---|---|"]
    for name, row in (("Teacher (your Transfer model)", t), ("Student (small CNN, 64 px)", s)):
        lines.append(f"| {name} | {row['val_acc']:.1%} | {row['params']:,} | {size(row['bytes'])} | "
                     f"{row['latency_ms']:.2f} | {t['bytes'] / row['bytes']:.1f}× | "
                     f"{t['latency_ms'] / row['latency_ms']:.1f}× |")
    return "\n".join(lines + ["", f"**{r['honest']}**"])


@user_errors
def distill_transfer(workspace: Workspace, T, alpha, epochs, copies, student: str = "small_cnn"):
    """Distill the Transfer tab's model into a small CNN, streaming status and the accuracy curve;
    the student joins this session's models (workspace.result stays the Transfer result)."""
    teacher = workspace.result
    if teacher is None or workspace.dataset is None:
        raise LimitError("Train a model in the Transfer tab first: it becomes the teacher.", code="model.missing")
    if list(workspace.dataset.classes) != list(teacher.classes):
        raise LimitError("The dataset loaded now is not the one the Transfer model learned: load it again "
                         "or retrain in the Transfer tab.", code="dataset.mismatch")
    with workspace.job() as stop_flag:
        config = TrainConfig(epochs=int(epochs), batch_size=32, lr=3e-3, max_seconds=MAX_TRAIN_SECONDS)
        skip = gr.skip()
        yield "Running the teacher over the images once (its logits are cached)…", skip, "", skip, skip
        history, shown, result = [], 0.0, None
        for event in distill.distill_classifier(teacher.classifier, workspace.dataset, T=float(T), alpha=float(alpha),
                                                config=config, copies=int(copies), stop=stop_flag,
                                                student=student or "small_cnn"):
            result = getattr(event, "result", None) or result
            if event.kind != "epoch":
                continue
            history.append({"epoch": event.epoch, **event.metrics})
            if event.elapsed - shown < 0.5 and event.epoch < event.epochs:
                continue  # at most two page updates a second
            shown = event.elapsed
            line = (f"Epoch {event.epoch}/{event.epochs} · student val acc {event.metrics.get('val_acc', 0):.1%} · "
                    f"{event.elapsed:.1f} s")
            yield line, curve(history), skip, skip, skip
        name = workspace.add_model(result["classifier"], f"{result['classifier'].name} student of "
                                                         f"{teacher.classifier.name.split(': ', 1)[-1]}")
        yield (f"Done: **{name}** is now in the Classify tab's model list (for you only).", curve(history),
               report(result), name, gr.Dropdown(choices=model_choices(workspace), value=name))


@user_errors
def export_student(workspace: Workspace, name: str | None):
    """The student as weights + config.json (timm's format for timm students) and as ONNX."""
    student = workspace.models.get(name or "")
    if student is None:
        raise LimitError("Distill a student first (it may have been dropped: a session keeps 3 models).",
                         code="model.missing")
    folder = workspace.files() / "student"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if isinstance(student.model, distill.StudentCNN):
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in student.model.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
        widths = [m.out_channels for m in student.model.modules() if isinstance(m, nn.Conv2d)]
        config = {"architecture": "cvdemo.distill.StudentCNN", "widths": widths, "num_classes": len(student.labels),
                  "label_names": list(student.labels), "input_size": [3, *student.input_size], "crop_pct": 1.0,
                  "interpolation": "bilinear", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    else:  # a timm student: the same files the Transfer tab exports, loadable by plain timm
        save_model(student.model, folder, student.labels)
    export_onnx(student.model, folder / "model.onnx", student.input_size)
    return [str(folder / name) for name in ("model.safetensors", "config.json", "model.onnx")]


def build(workspace: gr.State, lesson: gr.Markdown, classify_model: gr.Dropdown) -> None:
    gr.Markdown(LESSON)
    gr.Markdown("### 1. Temperature: the teacher's dark knowledge")
    with gr.Row():
        image = RawImage(value=example_images()[0], label="Image", type="filepath",
                         sources=["upload", "webcam", "clipboard"], height=220, scale=1)
        with gr.Column(scale=2):
            model = gr.Dropdown(model_choices(), value=DEFAULT_MODEL, allow_custom_value=True, label="Teacher")
            show = gr.Button("Show the softened predictions", variant="primary")
            soft_text = gr.Markdown()
    soft_plot = gr.Plot(label="softmax(logits / T) at each temperature", show_label=False)
    gr.Markdown("### 2. Teacher vs student vs KD student (built-in digits)")
    with gr.Row():
        labelled = gr.Slider(30, 500, 100, step=10, label="Labelled images the student gets")
        T = gr.Slider(1, 20, 4, step=0.5, label="T (temperature)")
        alpha = gr.Slider(0, 1, 0.9, step=0.05, label="alpha (weight of the soft targets)")
    with gr.Row(equal_height=True):
        seeds = gr.Slider(1, 3, 3, step=1, label="Seeds")
        student = gr.Radio(["mlp", "cnn"], value="mlp", label="Student")
        transfer_set = gr.Checkbox(True, label="Use the unlabeled rest as transfer set")
        run3 = gr.Button("Run teacher vs student vs KD student", variant="primary")
    status3 = gr.Markdown()
    table3 = gr.Markdown()
    gr.Markdown("### 3. alpha × T sweep (one seed; labels, student and transfer set as in 2.)")
    with gr.Row():
        alphas = gr.CheckboxGroup([0.0, 0.25, 0.5, 0.75, 0.9, 1.0], value=[0.0, 0.5, 0.9], label="alpha")
        temps = gr.CheckboxGroup([1, 2, 4, 8, 16], value=[1, 4, 8], label="T")
        sweep_epochs = gr.Slider(3, 30, 15, step=1, label="Epochs")
        run_sweep = gr.Button("Run the sweep")
    with gr.Row():
        heatmap = gr.Plot(label="KD student test accuracy", show_label=False)
        sweep_text = gr.Markdown()
    gr.Markdown("### 4. Distill your Transfer-tab model into a small CNN")
    with gr.Row():
        T4 = gr.Slider(1, 20, 4, step=0.5, label="T (temperature)")
        alpha4 = gr.Slider(0, 1, 0.9, step=0.05, label="alpha")
        epochs4 = gr.Slider(1, 100, 12, step=1, label="Epochs")
        copies = gr.Slider(0, 8, 2, step=1, label="Augmented copies per image (transfer set)")
        student4 = gr.Dropdown(list(distill.STUDENTS), value="small_cnn", allow_custom_value=True,
                               label="Student (from scratch, 64 px)")
    with gr.Row():
        train = gr.Button("Train the student", variant="primary")
        halt = gr.Button("Stop", variant="stop")
        export = gr.Button("Export the student: safetensors + config.json + ONNX")
    status4 = gr.Markdown()
    with gr.Row():
        acc_plot = gr.LinePlot(x="epoch", y="value", color="split", label="Student accuracy", scale=2)
        downloads = gr.File(label="Student files", file_count="multiple", height=120, scale=1)
    report4 = gr.Markdown()
    student_name = gr.State()

    show.click(explore, [image, model, workspace], [soft_plot, soft_text], api_name="soft_targets",
               concurrency_id="inference")
    run3.click(three_way, [labelled, T, alpha, seeds, student, transfer_set], [status3, table3], api_name="distill",
               concurrency_id="training", concurrency_limit=1)
    run_sweep.click(sweep, [alphas, temps, sweep_epochs, labelled, student, transfer_set], [heatmap, sweep_text],
                    api_name="distill_sweep", concurrency_id="training", concurrency_limit=1)
    train.click(distill_transfer, [workspace, T4, alpha4, epochs4, copies, student4],
                [status4, acc_plot, report4, student_name, classify_model], api_name="distill_transfer",
                concurrency_id="training", concurrency_limit=1).success(
        lambda ws: gr.Dropdown(choices=model_choices(ws)), workspace, model, api_visibility="private")
    halt.click(Workspace.request_stop, workspace, status4, api_visibility="private", queue=False)
    export.click(export_student, [workspace, student_name], downloads, api_visibility="private")
