"""Transfer tab: a dataset (built-in, a zip of class folders, or images per class), a pretrained
backbone trained as a linear probe / fine-tuned / fully fine-tuned (and from scratch beside it),
live curves, per-class accuracy, confusion matrix, misclassified images, and exports."""
from __future__ import annotations

import json
import shutil
import time
from functools import partial

import gradio as gr
import pandas as pd

from .. import datasets, images, jobs, uploads
from ..errors import LimitError, Note
from ..export import export_onnx, push_to_hub, save_model
from ..models import DEFAULT_MODEL, OFFLINE_WEIGHTS
from ..train import TrainConfig
from ..transfer import DEFAULTS, scratch_comparison, scratch_config
from .common import (DATASETS, MAX_TRAIN_SECONDS, TRAINING, Curve, File, Number, RawImage, Slider, check_trainable, escape,
                     expected, finished, gated, heartbeat, left, model_choices, pyplot, skipped_text, throttle,
                     training_job, user_errors, working)
from .i18n import _
from .session import Workspace

SLOTS = 4                  # classes that can be filled by upload/webcam in the page (more: use a zip)
SOURCES = ("builtin", "zip", "files")  # the dataset's source: a built-in set, a zip, images per class (slots)
SETTINGS = ("epochs", "batch_size", "lr", "weight_decay")  # the settings transfer.DEFAULTS gives per mode


@user_errors
@gated(DATASETS)
def load_dataset(workspace: Workspace, source: str, builtin: str, zip_file, *slots):
    """Build the session's dataset from the chosen source; report counts and what was skipped."""
    merged = []
    if source == "builtin":
        data, skipped = datasets.load_builtin(builtin), []
    elif source == "zip":
        if not zip_file:
            raise LimitError("Choose a .zip file whose folders are the classes.", code="dataset.no_zip")
        data, skipped = uploads.from_zip(zip_file)
    else:
        by_class, merged = class_files(slots[:SLOTS], slots[SLOTS:2 * SLOTS], workspace.shots)
        data, skipped = uploads.from_class_files(by_class)
    check_trainable(data, skipped)
    workspace.dataset = data
    counts = " · ".join(f"**{escape(c)}** {n}" for c, n in data.counts().items())
    return (workspace.tr("transfer.loaded", images=len(data), classes=len(data.classes), counts=counts)
            + "".join(f"\n\n_{escape(workspace.say(note))}_" for note in merged) + skipped_text(workspace, skipped))


def class_files(names, files, shots: dict[int, list]) -> tuple[dict[str, list], list[Note]]:
    """The slots as {class name: its uploads and webcam shots}, and a note per slot merged into another: slots
    whose names are the same once cleaned (`uploads.class_key`: spaces trimmed, case ignored, as
    `uploads.from_class_files` compares them) are one class, named as in the first of them. Slots with no name
    and no images are left out."""
    by_class, first, merged = {}, {}, []
    for i, (name, paths) in enumerate(zip(names, files)):
        name, images = name or "", list(paths or []) + shots.get(i, [])
        if not (name.strip() or images):
            continue
        key = uploads.class_key(name)
        if not key:
            raise LimitError(f"Slot {i + 1} has {len(images)} images but no class name: type one in its name box.",
                             code="dataset.unnamed_slot", slot=i + 1, n=len(images))
        if key in first:
            slot, kept = first[key]
            by_class[kept] += images
            shown = uploads.clean_class_name(kept)
            merged.append(Note(f"Slots {slot + 1} and {i + 1} are both named '{shown}' (names are compared ignoring "
                               "case and extra spaces): their images were put together in one class.",
                               "transfer.slots_merged", first=slot + 1, second=i + 1, name=shown))
        else:
            first[key] = (i, name)
            by_class[name] = images
    return by_class, merged


@user_errors
def add_shot(workspace: Workspace, shot, slot: int):
    """Add a webcam shot to a class slot of this session: through the image door (formats, pixel limit), stored
    shrunk as a dataset keeps its images, at most MAX_SHOTS per session."""
    if shot is None:
        raise LimitError("Take a webcam shot first.", code="dataset.no_shot")
    if int(slot) not in range(SLOTS):
        raise LimitError(f"Slot must be from 1 to {SLOTS}.", code="limit.slot", limit=SLOTS)
    workspace.add_shot(int(slot), uploads.shrink(images.load_image(shot)))
    return ", ".join(workspace.tr("transfer.shots", slot=i + 1, n=len(v)) for i, v in sorted(workspace.shots.items()))


def curves(history: list[dict], workspace: Workspace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Epoch history -> long tables for the loss and accuracy plots (the splits named in the session's language)."""
    names = {"train": workspace.tr("transfer.split_train"), "val": workspace.tr("transfer.split_val")}
    loss, acc = [], []
    for row in history:
        for split, name in names.items():
            if f"{split}_loss" in row:
                loss.append({"epoch": row["epoch"], "value": row[f"{split}_loss"], "split": name})
                acc.append({"epoch": row["epoch"], "value": row[f"{split}_acc"], "split": name})
    columns = ["epoch", "value", "split"]
    return pd.DataFrame(loss, columns=columns), pd.DataFrame(acc, columns=columns)


def confusion_plot(result):
    """Counts per (true, predicted) class; the component's label says which axis is which (the only words
    drawn are the class names, which may be Korean: `pyplot` draws Hangul where a Korean font is installed)."""
    plt = pyplot()
    n = len(result.classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1 + 0.5 * n))
    ax.imshow(result.confusion, cmap="Blues")
    ax.set_xticks(range(n), result.classes, rotation=45, ha="right")
    ax.set_yticks(range(n), result.classes)
    dark = result.confusion.max() / 2  # cells darker than this get white numbers
    for i in range(n):
        for j in range(n):
            ax.text(j, i, int(result.confusion[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if result.confusion[i, j] > dark else "black")
    fig.tight_layout()
    plt.close(fig)
    return fig


def summary(result, workspace: Workspace, scratch=None, budget: float | None = None) -> str:
    headline = workspace.tr("transfer.result", name=escape(result.classifier.name), acc=f"{result.val_acc:.1%}",
                            seconds=f"{result.seconds:.1f}")
    if result.stopped:
        headline += " " + workspace.tr("transfer.stopped_early")
    lines = [headline, "", workspace.tr("transfer.table_head"), "|---|---|"]
    lines += [f"| {escape(c)} | {a:.0%} |" for c, a in result.per_class_acc.items()]
    if scratch is not None:
        basis, words = scratch_words(result, scratch, budget)
        lines += ["", workspace.tr(SCRATCH_RESULT[basis], **words)]
    lines += [f"\n_{escape(workspace.say(note))}_" for note in result.notes]
    return "\n".join(lines)


SCRATCH_RESULT = {"epochs": "transfer.scratch_result_epochs", "time": "transfer.scratch_result_time",
                  None: "transfer.scratch_result_none"}
YOUR_RUN_SCRATCH = {"epochs": "transfer.your_run_scratch_epochs", "time": "transfer.your_run_scratch_time",
                    None: "transfer.your_run_scratch_none"}


def scratch_words(result, scratch, budget: float) -> tuple[str | None, dict]:
    """The basis of the from-scratch comparison (`transfer.scratch_comparison`: the same epochs, equal time with
    fewer epochs, or None when scratch never finished an epoch) and the figures its texts quote."""
    c = scratch_comparison(result, scratch)
    return c["basis"], {"budget": f"{budget:.0f}", "seconds": f"{result.seconds:.0f}", "done": c["epochs"],
                        "epochs": c["pretrained_epochs"], "scratch_acc": f"{scratch.val_acc:.1%}",
                        "gain": f"{c['gain']:+.1f}" if c["gain"] is not None else ""}


def your_run(workspace: Workspace, result, images: int, scratch=None, budget: float | None = None) -> str:
    """The lesson panel: what this run (on `images` images) measured, and (with a fair comparison) what
    pretraining was worth."""
    val = int(result.confusion.sum())
    numbers = dict(mode=result.mode, arch=escape(result.arch), acc=f"{result.val_acc:.1%}",
                   seconds=f"{result.seconds:.1f}", train=images - val, val=val, classes=len(result.classes))
    if scratch is None:
        return workspace.show("transfer", "transfer.your_run", step=f"{100 / max(val, 1):.1f}", **numbers)
    basis, words = scratch_words(result, scratch, budget)
    return workspace.show("transfer", YOUR_RUN_SCRATCH[basis], chance=f"{1 / len(result.classes):.0%}",
                          **{**words, **numbers})


def progress(text: str, loss=None, acc=None) -> tuple:
    """A streamed update: the status line (and the curves); the other outputs stay as they are."""
    skip = gr.skip()
    return (text, skip if loss is None else loss, skip if acc is None else acc) + (skip,) * 5


@user_errors
@gated(TRAINING)
def train(workspace: Workspace, arch, mode, compare, epochs, batch_size, lr, weight_decay, val_fraction, seed,
          use_augment, spec):
    """Run a transfer-learning job, streaming progress and live curves; the model joins this session's list."""
    data = workspace.dataset  # this run's, even if another is loaded meanwhile
    if data is None:
        raise LimitError("Load a dataset first (step 1).", code="dataset.missing")
    with workspace.job() as stop_flag:
        config = TrainConfig(epochs=int(epochs), batch_size=int(batch_size), lr=float(lr),
                             weight_decay=float(weight_decay), seed=int(seed or 0), max_seconds=MAX_TRAIN_SECONDS)
        history, due, start = [], throttle(), time.monotonic()
        for event in heartbeat(jobs.transfer(data, mode=mode, arch=arch or DEFAULT_MODEL, config=config,
                                             val_fraction=float(val_fraction), augment=spec if use_augment else None,
                                             stop=stop_flag)):
            if event is None:  # a silent stretch: before the first epoch ends, say what is being done
                if not history:
                    yield progress(working(workspace, workspace.tr("transfer.preparing", images=len(data)),
                                           time.monotonic() - start))
                continue
            last = event
            if event.kind == "epoch":
                history.append({"epoch": event.epoch, **event.metrics})
                if due(event):
                    yield progress(workspace.tr("transfer.epoch", epoch=event.epoch, epochs=event.epochs,
                                                acc=f"{event.metrics.get('val_acc', 0):.1%}",
                                                seconds=f"{event.elapsed:.1f}")
                                   + left(workspace, event.elapsed, expected(event)), *curves(history, workspace))
        result = last.result  # the last event: "done" or "stopped"
        scratch = budget = None
        if compare and mode != "scratch" and not stop_flag.is_set():
            scratch_cfg = scratch_config(result.seconds, seed=int(seed or 0), epochs=len(result.history))
            budget, start = scratch_cfg.max_seconds, time.monotonic()
            for event in heartbeat(jobs.transfer(data, mode="scratch", arch=arch or DEFAULT_MODEL, config=scratch_cfg,
                                                 val_fraction=float(val_fraction), stop=stop_flag)):
                if event is None:
                    yield progress(working(workspace, workspace.tr("transfer.scratch_running"),
                                           time.monotonic() - start, budget))
                else:
                    scratch = event.result
        name = workspace.add_model(result.classifier, f"{result.arch} {result.mode} ({len(result.classes)} classes)")
        workspace.result = result
        gallery = [(im, workspace.tr("transfer.wrong", true=t, predicted=p, confidence=f"{c:.0%}"))
                   for im, t, p, c in result.misclassified]
        wrong = gr.Gallery(gallery, label=workspace.tr("transfer.misclassified" if gallery else "transfer.none_wrong",
                                                       n=int(result.confusion.sum())))
        yield (finished(workspace, last) + " " + workspace.tr("transfer.done", name=escape(name)),
               *curves(result.history, workspace),
               summary(result, workspace, scratch, budget), confusion_plot(result), wrong,
               gr.Dropdown(choices=model_choices(workspace)),
               your_run(workspace, result, len(data), scratch, budget))


def mode_defaults(mode: str) -> tuple:
    """The training settings' values for `mode` (transfer.DEFAULTS)."""
    return tuple(DEFAULTS[mode][key] for key in SETTINGS)


# A mode change sets the settings to its defaults in the page itself: the server's answer to a round trip could
# come after the user (or a test) had typed a value, and overwrite it (a 300-epoch run then ran 5).
MODE_DEFAULTS_JS = f"(mode) => ({json.dumps({mode: mode_defaults(mode) for mode in DEFAULTS})})[mode]"


@user_errors
def export_files(workspace: Workspace, what: str):
    """Write the chosen export into this session's folder and hand it to the browser."""
    if what == "dataset":
        if workspace.dataset is None:
            raise LimitError("Load a dataset first.", code="dataset.missing")
        name = uploads.file_stem(workspace.dataset.name)
        return str(uploads.export_zip(workspace.dataset, workspace.files() / f"{name}-dataset.zip"))
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
    return workspace.tr("transfer.pushed", url=url)


def build(workspace: gr.State, lesson: gr.Markdown, classify_model: gr.Dropdown, augment_spec: gr.Code) -> None:
    """The tab. `lesson` is its "your run" panel; a trained model is added to `classify_model`'s choices."""
    gr.Markdown(_("transfer.steps"))
    with gr.Row():
        with gr.Column():
            source = gr.Radio(list(zip((_("transfer.source_builtin"), _("transfer.source_zip"),
                                        _("transfer.source_files")), SOURCES)),
                              value="builtin", label=_("transfer.source"))
            builtin = gr.Dropdown(list(datasets.BUILTIN), value="textures", label=_("transfer.builtin"))
            zip_file = File(label=_("transfer.zip"), file_types=[".zip"], type="filepath", elem_id="transfer-zip")
            with gr.Accordion(_("transfer.per_class"), open=False):
                names, files = [], []
                for i in range(SLOTS):
                    with gr.Row():
                        names.append(gr.Textbox(label=f"{i + 1}. " + _("transfer.class_name"), scale=1,
                                                elem_id=f"class-name-{i}"))
                        files.append(File(label=f"{i + 1}. " + _("transfer.class_images"), file_count="multiple",
                                             type="filepath", scale=2, elem_id=f"class-files-{i}"))
                with gr.Row():
                    shot = RawImage(sources=["webcam"], type="filepath", label=_("transfer.shot"))
                    with gr.Column():
                        slot = gr.Dropdown([(_("transfer.slot") + f" {i + 1}", i) for i in range(SLOTS)], value=0,
                                           label=_("transfer.add_to"))
                        add = gr.Button(_("transfer.add_shot"))
                        shots = gr.Markdown()
            load = gr.Button(_("transfer.load"), variant="secondary")
            counts = gr.Markdown(elem_id="transfer-counts")
        with gr.Column():
            arch = gr.Dropdown(list(OFFLINE_WEIGHTS), value=DEFAULT_MODEL, allow_custom_value=True,
                               label=_("transfer.backbone"), info=_("transfer.backbone_info"))
            mode = gr.Radio([(_("transfer.mode_probe"), "probe"), (_("transfer.mode_finetune"), "finetune"),
                             (_("transfer.mode_full"), "full")], value="probe", label=_("transfer.mode"))
            compare = gr.Checkbox(True, label=_("transfer.compare"))
            start = DEFAULTS["probe"]
            with gr.Row():
                epochs = Slider(1, 300, start["epochs"], step=1, label=_("app.epochs"), elem_id="transfer-epochs")
                batch_size = Slider(4, 256, start["batch_size"], step=4, label=_("transfer.batch_size"))
            with gr.Row():
                lr = Number(start["lr"], label=_("transfer.lr"), info=_("transfer.lr_info"), minimum=1e-6,
                            maximum=1.0)
                weight_decay = Number(start["weight_decay"], label=_("transfer.weight_decay"), minimum=0,
                                         maximum=1.0)
            with gr.Row():
                val_fraction = Slider(0.1, 0.5, 0.2, step=0.05, label=_("transfer.val_fraction"))
                seed = Number(0, precision=0, minimum=0, label=_("app.seed"))
            use_augment = gr.Checkbox(False, label=_("transfer.use_augment"))
            with gr.Row():
                run = gr.Button(_("transfer.train"), variant="primary")
                halt = gr.Button(_("app.stop"), variant="stop", interactive=False, elem_id="transfer-stop")
            status = gr.Markdown()
            with gr.Row():
                axes = dict(x="epoch", y="value", color="split", x_title=_("transfer.epoch_axis"),
                            color_title=_("transfer.split"))
                loss_plot = Curve(label=_("transfer.loss"), y_title=_("transfer.loss"), elem_id="transfer-loss", **axes)
                acc_plot = Curve(label=_("transfer.accuracy"), y_title=_("transfer.accuracy"), y_axis_format=".0%",
                                 **axes)
    with gr.Row():
        report = gr.Markdown()
        confusion = gr.Plot(label=_("transfer.confusion"))
    wrong = gr.Gallery(label=_("transfer.misclassified"), columns=6, height="auto", elem_id="transfer-wrong")
    with gr.Accordion(_("transfer.export"), open=False):
        with gr.Row():
            export_model = gr.Button(_("transfer.export_model"))
            export_onnx_btn = gr.Button(_("transfer.export_onnx"))
            export_data = gr.Button(_("transfer.export_data"))
        downloads = gr.File(label=_("transfer.downloads"), file_count="multiple")
        with gr.Row():
            repo_id = gr.Textbox(label=_("transfer.repo_id"))
            token = gr.Textbox(label=_("transfer.token"), type="password")
            push_btn = gr.Button(_("transfer.push"))
        pushed = gr.Markdown()

    add.click(add_shot, [workspace, shot, slot], shots, api_visibility="private", queue=False)
    load.click(load_dataset, [workspace, source, builtin, zip_file, *names, *files], counts, api_name="load_dataset",
               concurrency_id="datasets", concurrency_limit=None)
    training_job(run, train, [workspace, arch, mode, compare, epochs, batch_size, lr, weight_decay, val_fraction,
                              seed, use_augment, augment_spec],
                 [status, loss_plot, acc_plot, report, confusion, wrong, classify_model, lesson], workspace, status,
                 clear=(loss_plot, acc_plot, report, confusion, wrong), halt=halt, api_name="train")
    halt.click(Workspace.request_stop, workspace, status, api_visibility="private", queue=False)
    mode.change(None, mode, [epochs, batch_size, lr, weight_decay], js=MODE_DEFAULTS_JS, queue=False)
    for button, what in ((export_model, "model"), (export_onnx_btn, "onnx"), (export_data, "dataset")):
        button.click(partial(export_files, what=what), workspace, downloads, api_visibility="private", queue=False)
    push_btn.click(push, [workspace, repo_id, token], pushed, api_visibility="private", queue=False)
