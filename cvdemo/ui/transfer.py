"""Transfer tab: a dataset (built-in, a zip of class folders, or images per class), a pretrained
backbone trained as a linear probe / fine-tuned / fully fine-tuned (and from scratch beside it),
live curves, per-class accuracy, confusion matrix, misclassified images, and exports."""
from __future__ import annotations

import shutil

import gradio as gr
import pandas as pd

from .. import datasets
from ..errors import LimitError
from ..export import export_onnx, push_to_hub, save_model
from ..models import DEFAULT_MODEL
from ..train import TrainConfig
from ..transfer import default_config, scratch_config, transfer
from .classify import model_choices
from .common import user_errors
from .session import Workspace

SLOTS = 4                  # classes that can be filled by upload/webcam in the page (more: use a zip)
MAX_TRAIN_SECONDS = 300    # wall-clock limit of one run in the app
SOURCES = ["Built-in dataset", "Zip of class folders", "Images per class"]


@user_errors
def load_dataset(workspace: Workspace, source: str, builtin: str, zip_file, *slots):
    """Build the session's dataset from the chosen source; report counts and what was skipped."""
    if source == SOURCES[0]:
        data, skipped = datasets.load_builtin(builtin), []
    elif source == SOURCES[1]:
        if not zip_file:
            raise LimitError("Choose a .zip file whose folders are the classes.", code="dataset.no_zip")
        data, skipped = datasets.from_zip(zip_file)
    else:
        names, files = slots[:SLOTS], slots[SLOTS:2 * SLOTS]
        shots = workspace.shots
        by_class = {}
        for i, (name, paths) in enumerate(zip(names, files)):
            images = list(paths or []) + shots.get(i, [])
            if (name or "").strip() or images:
                by_class[name or ""] = images
        data, skipped = datasets.from_class_files(by_class)
    datasets.check_trainable(data)
    workspace.dataset = data
    counts = " · ".join(f"**{c}** {n}" for c, n in data.counts().items())
    notes = "\n".join(f"- {m}" for m in skipped[:20]) + (f"\n- … and {len(skipped) - 20} more" if len(skipped) > 20 else "")
    return f"{len(data)} images in {len(data.classes)} classes: {counts}" + (f"\n\nSkipped:\n{notes}" if skipped else "")


@user_errors
def add_shot(workspace: Workspace, shot, slot: int):
    """Add a webcam shot to a class slot of this session."""
    if shot is None:
        raise LimitError("Take a webcam shot first.", code="dataset.no_shot")
    workspace.shots.setdefault(int(slot), []).append(shot)
    return ", ".join(f"class {i + 1}: {len(v)} shots" for i, v in sorted(workspace.shots.items()))


def curves(history: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Epoch history -> long tables for the loss and accuracy plots."""
    loss, acc = [], []
    for row in history:
        for split in ("train", "val"):
            if f"{split}_loss" in row:
                loss.append({"epoch": row["epoch"], "value": row[f"{split}_loss"], "split": split})
                acc.append({"epoch": row["epoch"], "value": row[f"{split}_acc"], "split": split})
    columns = ["epoch", "value", "split"]
    return pd.DataFrame(loss, columns=columns), pd.DataFrame(acc, columns=columns)


def confusion_plot(result):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(result.classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1 + 0.5 * n))
    ax.imshow(result.confusion, cmap="Blues")
    ax.set_xticks(range(n), result.classes, rotation=45, ha="right")
    ax.set_yticks(range(n), result.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, int(result.confusion[i, j]), ha="center", va="center", fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def summary(result, scratch=None, budget: float | None = None) -> str:
    lines = [f"**{result.classifier.name}**: validation accuracy **{result.val_acc:.1%}** "
             f"in {result.seconds:.1f} s" + (" (stopped early: best epoch kept)" if result.stopped else ""),
             "", "| class | accuracy |", "|---|---|"]
    lines += [f"| {c} | {a:.0%} |" for c, a in result.per_class_acc.items()]
    if scratch is not None:
        lines += ["", f"Same architecture **from scratch**, given {budget:.0f} s of training "
                      f"({len(scratch.history)} full epochs; the pretrained run took {result.seconds:.0f} s): "
                      f"**{scratch.val_acc:.1%}**. Pretraining bought **{(result.val_acc - scratch.val_acc) * 100:+.1f}** points."]
    lines += [f"\n_{note}_" for note in result.notes]
    return "\n".join(lines)


@user_errors
def train(workspace: Workspace, arch, mode, compare, epochs, batch_size, lr, weight_decay, val_fraction, seed,
          use_augment, spec):
    """Run a transfer-learning job, streaming progress and live curves; the model joins this session's list."""
    if workspace.dataset is None:
        raise LimitError("Load a dataset first (step 1).", code="dataset.missing")
    with workspace.job() as stop_flag:
        config = TrainConfig(epochs=int(epochs), batch_size=int(batch_size), lr=float(lr),
                             weight_decay=float(weight_decay), seed=int(seed or 0), max_seconds=MAX_TRAIN_SECONDS)
        skip = gr.skip()
        result, history, shown = None, [], 0.0
        for event in transfer(workspace.dataset, mode=mode, arch=arch or DEFAULT_MODEL, config=config,
                              val_fraction=float(val_fraction), augment=spec if use_augment else None,
                              stop=stop_flag):
            if event.kind == "epoch":
                history.append({"epoch": event.epoch, **event.metrics})
                if event.elapsed - shown < 0.5 and event.epoch < event.epochs:
                    continue  # at most two page updates a second
                shown = event.elapsed
                loss, acc = curves(history)
                yield (f"Epoch {event.epoch}/{event.epochs} · val acc {event.metrics.get('val_acc', 0):.1%} · "
                       f"{event.elapsed:.1f} s", loss, acc, skip, skip, skip, skip)
            result = getattr(event, "result", None) or result
        scratch = None
        if compare and mode != "scratch" and not stop_flag.is_set():
            yield "Training the same architecture from scratch on a time budget…", skip, skip, skip, skip, skip, skip
            budget = scratch_config(result.seconds, seed=int(seed or 0))
            scratch_budget = budget.max_seconds
            for event in transfer(workspace.dataset, mode="scratch", arch=arch or DEFAULT_MODEL, config=budget,
                                  val_fraction=float(val_fraction), stop=stop_flag):
                scratch = getattr(event, "result", None) or scratch
        name = workspace.add_model(result.classifier, f"{result.arch} {result.mode} ({len(result.classes)} classes)")
        workspace.result = result
        loss, acc = curves(result.history)
        gallery = [(im, f"true {t} · predicted {p} ({c:.0%})") for im, t, p, c in result.misclassified]
        yield (f"Done: **{name}** is now in the Classify tab's model list (for you only).", loss, acc,
               summary(result, scratch, scratch_budget if scratch else None), confusion_plot(result), gallery,
               gr.Dropdown(choices=model_choices(workspace), value=name))


def mode_defaults(mode: str) -> tuple[int, int, float]:
    config = default_config(mode)
    return config.epochs, config.batch_size, config.lr


@user_errors
def export_files(workspace: Workspace, what: str):
    """Write the chosen export into this session's folder and hand it to the browser."""
    if what == "dataset":
        if workspace.dataset is None:
            raise LimitError("Load a dataset first.", code="dataset.missing")
        return str(datasets.export_zip(workspace.dataset, workspace.files() / f"{workspace.dataset.name}-dataset.zip"))
    result = workspace.result
    if result is None:
        raise LimitError("Train a model first.", code="model.missing")
    folder = workspace.files() / "model"
    shutil.rmtree(folder, ignore_errors=True)
    if what == "onnx":
        folder.mkdir(parents=True)
        return str(export_onnx(result.classifier.model, folder / "model.onnx", result.classifier.input_size))
    save_model(result.classifier.model, folder, result.classes)
    return [str(folder / "model.safetensors"), str(folder / "config.json")]


@user_errors
def push(workspace: Workspace, repo_id: str, token: str) -> str:
    if workspace.result is None:
        raise LimitError("Train a model first.", code="model.missing")
    url = push_to_hub(workspace.result.classifier.model, workspace.result.classes, repo_id.strip(), token.strip())
    return f"Pushed: {url}"


def build(workspace: gr.State, lesson: gr.Markdown, classify_model: gr.Dropdown, augment_spec: gr.Code) -> None:
    gr.Markdown("**1. Data** → **2. Train** → **3. Use it** in the Classify tab, or export it.")
    with gr.Row():
        with gr.Column():
            source = gr.Radio(SOURCES, value=SOURCES[0], label="Dataset from")
            builtin = gr.Dropdown(list(datasets.BUILTIN), value="textures", label="Built-in dataset")
            zip_file = gr.File(label="Zip of class folders (cat/…, dog/…; an unlabeled/ folder is kept aside)",
                               file_types=[".zip"], type="filepath")
            with gr.Accordion("Images per class (upload several files, or webcam shots)", open=False):
                names, files = [], []
                for i in range(SLOTS):
                    with gr.Row():
                        names.append(gr.Textbox(label=f"Class {i + 1} name", scale=1, elem_id=f"class-name-{i}"))
                        files.append(gr.File(label=f"Class {i + 1} images", file_count="multiple",
                                             type="filepath", scale=2, elem_id=f"class-files-{i}"))
                with gr.Row():
                    shot = gr.Image(sources=["webcam"], type="pil", label="Webcam shot")
                    with gr.Column():
                        slot = gr.Dropdown([(f"class {i + 1}", i) for i in range(SLOTS)], value=0, label="Add to")
                        add = gr.Button("Add shot")
                        shots = gr.Markdown()
            load = gr.Button("Load dataset", variant="secondary")
            counts = gr.Markdown()
        with gr.Column():
            arch = gr.Dropdown([DEFAULT_MODEL], value=DEFAULT_MODEL, allow_custom_value=True, label="Backbone")
            mode = gr.Radio([("Linear probe (frozen backbone)", "probe"), ("Fine-tune last stages", "finetune"),
                             ("Full fine-tune", "full")], value="probe", label="Mode")
            compare = gr.Checkbox(True, label="Also train from scratch on a time budget (at least 20 s)")
            with gr.Row():
                epochs = gr.Slider(1, 300, 100, step=1, label="Epochs")
                batch_size = gr.Slider(4, 256, 128, step=4, label="Batch size")
            with gr.Row():
                lr = gr.Number(0.01, label="Learning rate", minimum=1e-6, maximum=1.0)
                weight_decay = gr.Number(1e-4, label="Weight decay", minimum=0, maximum=1.0)
            with gr.Row():
                val_fraction = gr.Slider(0.1, 0.5, 0.2, step=0.05, label="Validation fraction")
                seed = gr.Number(0, precision=0, minimum=0, label="Seed")
            use_augment = gr.Checkbox(False, label="Use the Augment tab's pipeline")
            with gr.Row():
                run = gr.Button("Train", variant="primary")
                halt = gr.Button("Stop", variant="stop")
            status = gr.Markdown()
            with gr.Row():
                loss_plot = gr.LinePlot(x="epoch", y="value", color="split", label="Loss")
                acc_plot = gr.LinePlot(x="epoch", y="value", color="split", label="Accuracy")
    with gr.Row():
        report = gr.Markdown()
        confusion = gr.Plot(label="Confusion matrix")
    wrong = gr.Gallery(label="Misclassified validation images", columns=6, height="auto")
    with gr.Accordion("Export", open=False):
        with gr.Row():
            export_model = gr.Button("Model: safetensors + config.json (timm)")
            export_onnx_btn = gr.Button("Model: ONNX")
            export_data = gr.Button("Dataset: zip of class folders")
        downloads = gr.File(label="Downloads", file_count="multiple")
        with gr.Row():
            repo_id = gr.Textbox(label="Hub repository (you/name)")
            token = gr.Textbox(label="Hugging Face write token", type="password")
            push_btn = gr.Button("Push to the Hub")
        pushed = gr.Markdown()

    add.click(add_shot, [workspace, shot, slot], shots, api_visibility="private")
    load.click(load_dataset, [workspace, source, builtin, zip_file, *names, *files], counts, api_name="load_dataset")
    run.click(train, [workspace, arch, mode, compare, epochs, batch_size, lr, weight_decay, val_fraction,
                                 seed, use_augment, augment_spec],
                         [status, loss_plot, acc_plot, report, confusion, wrong, classify_model],
                         api_name="train", concurrency_id="training", concurrency_limit=1)
    halt.click(Workspace.request_stop, workspace, status, api_visibility="private", queue=False)
    mode.change(mode_defaults, mode, [epochs, batch_size, lr], api_visibility="private", queue=False)
    export_model.click(lambda ws: export_files(ws, "model"), workspace, downloads, api_visibility="private")
    export_onnx_btn.click(lambda ws: export_files(ws, "onnx"), workspace, downloads, api_visibility="private")
    export_data.click(lambda ws: export_files(ws, "dataset"), workspace, downloads, api_visibility="private")
    push_btn.click(push, [workspace, repo_id, token], pushed, api_visibility="private")
