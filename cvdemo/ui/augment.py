"""Augment tab: build a pipeline, draw K reproducible samples with captions, see what the
classifier makes of each, export the pipeline as JSON and as torchvision code."""
from __future__ import annotations

import json
import time

import gradio as gr
import pandas as pd

from .. import images, jobs
from ..augment import OPS, PRESETS, build_pipeline, mix_up_close, robustness, short_label
from ..errors import LimitError
from ..inference import get_classifier
from ..train import one_thread
from .common import (TRAINING, Number, RawImage, Slider, call, gated, heartbeat, require, training_job, user_errors,
                     working)
from .i18n import Phrase, _
from .session import Workspace

MAX_SAMPLES = 16
PREVIEW_SIDE = 768  # images are shrunk to this longest side before augmenting (speed, memory)
BIAS_TOOK: dict[str, float] = {}  # how long the bias experiment last took on this server ("seconds": its time left)


@user_errors
def augment(image, spec: str, k: int = 8, seed: int = 0, mix_image=None, workspace: Workspace | None = None):
    """K samples of the pipeline `spec` (JSON) drawn with `seed`, each captioned with what was drawn
    and the classifier's top-1; returns the gallery, a per-sample list (for the API) and the summary,
    in the session's language. What the run measured goes to the lesson panel (`your_run`)."""
    workspace = workspace or Workspace()
    if not isinstance(k, (int, float)) or not 1 <= int(k) <= MAX_SAMPLES:
        raise LimitError(f"Number of samples must be from 1 to {MAX_SAMPLES}, got {k!r}", code="limit.samples")
    if not isinstance(seed, (int, float)) or not 0 <= int(seed) < 2**31:
        raise LimitError(f"Seed must be a whole number from 0 to {2**31 - 1}, got {seed!r}", code="limit.seed")
    pipeline = build_pipeline(spec).capped(PREVIEW_SIDE)  # a sample is shown, not trained on: no bigger than that
    original, second = images.load_image(require(image)), None
    if mix_image is not None or pipeline.mixes:
        second = images.load_image(mix_image if mix_image is not None else images.sample_photos()[1])
    for picture in (original, second):
        if picture is not None:
            picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    r = robustness(pipeline, original, get_classifier(), k=int(k), seed=int(seed), mix_with=second)
    gallery, rows = [], []
    for sample, (label, conf) in zip(r["samples"], r["top1"]):
        caption = sample.caption if sample.caption not in ("", "unchanged") else workspace.tr("augment.unchanged")
        gallery.append((sample.image, workspace.tr("augment.sample_caption", caption=caption,
                                                   label=short_label(label), conf=f"{conf:.0%}")))
        rows.append({"caption": sample.caption, "mix": sample.mix, "top1": label, "confidence": round(conf, 4)})
    (label, conf), kept = r["original"], r["kept"]
    numbers = {"label": short_label(label), "conf": f"{conf:.0%}", "kept": kept, "k": len(r["samples"])}
    workspace.show("augment", "augment.your_run_samples", mean=f"{r['mean']:.0%}", **numbers)
    return gallery, rows, workspace.tr("augment.summary", **numbers)


@user_errors
@gated(TRAINING)
def run_bias_experiment(seed: int = 0, workspace: Workspace | None = None):
    """Train a linear probe on normally lit faces with and without brightness augmentation; test on dark ones."""
    workspace, start = workspace or Workspace(), time.monotonic()
    for item in heartbeat(call(jobs.bias_experiment, seed=int(seed or 0))):
        if item is None:
            yield working(workspace, workspace.tr("augment.bias_running"), time.monotonic() - start,
                          BIAS_TOOK.get("seconds"))
        else:
            r, BIAS_TOOK["seconds"] = item, item["seconds"]
    plain, aug = r["without_augmentation"], r["with_augmentation"]
    numbers = {"plain_normal": f"{plain['normal']:.0%}", "plain_dark": f"{plain['dark']:.0%}",
               "aug_normal": f"{aug['normal']:.0%}", "aug_dark": f"{aug['dark']:.0%}", "seconds": f"{r['seconds']:.0f}"}
    workspace.show("augment", "augment.your_run_bias", gain=f"{(aug['dark'] - plain['dark']) * 100:+.0f}",
                   dark=r["dark_factor"], **numbers)
    yield workspace.tr("augment.bias_result", train=r["train"], val=r["val"], dark=r["dark_factor"],
                       spec=json.dumps(r["spec"]["ops"][0]), **numbers)


MIXERS = {"cutmix": "CutMix", "mixup": "MixUp"}


@user_errors
def mix_close(image, mix_image=None, op: str = "cutmix", alpha: float = 1.0, seed: int = 0,
              workspace: Workspace | None = None):
    """Four mixes of the two images (the second: the coffee photo when none is given), each with its box, lambda
    drawn and after clipping, target, and the classifier's probabilities for the two classes."""
    workspace = workspace or Workspace()
    first = images.load_image(require(image))
    second = images.load_image(mix_image if mix_image is not None else images.sample_photos()[1])  # (the coffee)
    for picture in (first, second):
        picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    r = mix_up_close(first, second, get_classifier(), op, float(alpha), k=4, seed=int(seed or 0))
    a, b = r["names"]
    tr = workspace.tr
    rows = [tr("augment.mix_columns", a=a, b=b)]
    for i, s in enumerate(r["samples"], 1):
        target = " + ".join(f"{w:.2f} {name}" for name, w in s["target"])
        p1, p2 = s["probs"]
        rows.append(f"| {i} | {s['lam_drawn']:.2f} | {s['lam']:.2f} | {target} | {p1:.1%} | {p2:.1%} |")
    note = tr("augment.mix_note_cutmix" if op == "cutmix" else "augment.mix_note_mixup", a=a, b=b)
    gallery = [(s["image"], " + ".join(f"{w:.2f} {name}" for name, w in s["target"])) for s in r["samples"]]
    return gallery, "\n".join(rows) + "\n\n" + note


@user_errors
@gated(TRAINING)
def mix_train(op: str, alpha: float, epochs: int, seed: int, workspace: Workspace):
    """The same small CNN on the digits with and without CutMix / MixUp: live curves, then what the run showed."""
    mixed_name = Phrase("augment.run_mixed", op=MIXERS.get(op, op))
    names = {"plain": workspace.tr("augment.run_plain"), "mixed": mixed_name.text(workspace.lang)}
    points: list[dict] = []
    with workspace.job() as stop, one_thread():
        yield workspace.tr("augment.mix_preparing"), None, gr.skip(), gr.skip()
        for event in jobs.mix_training(op, float(alpha), int(epochs), int(seed or 0), stop=stop):
            if event.kind == "epoch":
                points.append({"epoch": event.epoch, "accuracy": event.metrics["val_acc"],
                               "run": names[event.metrics["run"]]})
                yield (workspace.tr("augment.mix_epoch", run=names[event.metrics["run"]], epoch=event.epoch,
                                    epochs=event.epochs, acc=f"{event.metrics['val_acc']:.1%}"),
                       pd.DataFrame(points), gr.skip(), gr.skip())
    runs = event.result["runs"]
    if len(runs) < 2:
        yield workspace.tr("augment.mix_stopped"), gr.skip(), gr.skip(), gr.skip()
        return
    plain, mixed = runs["plain"], runs["mixed"]
    numbers = {"op": mixed_name, "epochs": int(epochs), "plain": f"{plain['val_acc']:.1%}",
               "mixed": f"{mixed['val_acc']:.1%}", "diff": f"{100 * (mixed['val_acc'] - plain['val_acc']):+.1f}",
               "plain_train": f"{plain['train_acc']:.1%}", "mixed_train": f"{mixed['train_acc']:.1%}",
               "seconds": f"{event.elapsed:.0f}", "seed": int(seed or 0)}
    yield (workspace.tr("augment.mix_done", seconds=numbers["seconds"]), pd.DataFrame(points),
           workspace.tr("augment.mix_result", **numbers),
           workspace.show("augment", "augment.your_run_mix", **numbers))


def your_run(workspace: Workspace):
    """The lesson panel after a run: what it measured (kept by `Workspace.show`). A follow-up event,
    so that the public endpoints keep their outputs."""
    return workspace.shown("augment") or gr.skip()


@user_errors
def export(spec: str):
    """The spec back as formatted JSON, and the torchvision.transforms.v2 code it stands for."""
    pipeline = build_pipeline(spec)
    return pipeline.to_json(indent=2), pipeline.to_code()


# What each parameter control edits: (op, field, index in a [lo, hi] field or None; "both": [x, x]).
CONTROLS = (("brightness", "brightness", 0), ("brightness", "brightness", 1), ("brightness", "contrast", 0),
            ("brightness", "contrast", 1), ("rotation", "degrees", None), ("hflip", "p", None), ("vflip", "p", None),
            ("crop", "scale", 0), ("crop", "scale", 1), ("affine", "translate", "both"), ("affine", "scale", 0),
            ("affine", "scale", 1), ("affine", "shear", None), ("randaugment", "num_ops", None),
            ("randaugment", "magnitude", None), ("cutmix", "alpha", None), ("mixup", "alpha", None))
WHOLE = {"degrees", "shear", "num_ops", "magnitude"}  # fields that take whole numbers


def spec_from_controls(spec: str, order, *values) -> str:
    """The pipeline `spec` (JSON) edited by the controls: the ops chosen, in their order (CutMix/MixUp last: batch
    ops), each op's fields the controls show set from them; fields they don't show (a preset's saturation, a
    crop's ratio) kept."""
    try:
        ops = {op["op"]: dict(op) for op in json.loads(spec or "{}").get("ops", []) if isinstance(op, dict)}
    except (ValueError, AttributeError, KeyError, TypeError):  # JSON being typed: the controls start it again
        ops = {}
    for (name, field, index), value in zip(CONTROLS, values):
        op = ops.setdefault(name, {"op": name})
        value = int(value) if field in WHOLE else value
        if index is None:
            op[field] = value
        elif index == "both":
            op[field] = [value, value]
        else:
            op[field] = [value, value] if not isinstance(op.get(field), list) else list(op[field])
            op[field][index] = value
    order = sorted(order or [], key=lambda op: op in ("cutmix", "mixup"))  # stable: keeps the chosen order
    return json.dumps({"ops": [ops[op] for op in order]}, indent=2)


def controls_from_spec(spec: str) -> tuple:
    """A spec (a preset, or JSON typed in) shown by the controls: the ops box lists its ops, each parameter
    control its value (controls whose op isn't in the spec keep theirs). Unreadable JSON leaves them all."""
    try:
        ops = {op["op"]: op for op in json.loads(spec).get("ops", [])}
    except (ValueError, AttributeError, KeyError, TypeError):
        return (gr.skip(),) * (len(CONTROLS) + 1)
    values = []
    for name, field, index in CONTROLS:
        value = ops.get(name, {}).get(field)
        if isinstance(value, list) and index is not None:
            value = value[0 if index == "both" else index]
        values.append(gr.skip() if value is None or isinstance(value, list) else value)
    return [op for op in ops if op in OPS], *values


def preset_js() -> str:
    """Picking a preset sets the pipeline JSON and the controls in the page itself, from each preset's
    `controls_from_spec` (a control whose op the preset leaves out keeps its value): no round trip whose late answer
    could land on a value typed meanwhile (as the Transfer mode's defaults could)."""
    table = {}
    for name, spec in PRESETS.items():
        text = json.dumps(spec, indent=2)
        shown = [text, *controls_from_spec(text)]
        table[name] = [None if value == gr.skip() else value for value in shown]
    return f"(name, ...now) => (({json.dumps(table)})[name] || now).map((value, i) => value === null ? now[i] : value)"


def build(workspace: gr.State, lesson: gr.Markdown) -> gr.Code:
    """The tab; returns the pipeline JSON (the Transfer tab trains with it). `lesson` is the tab's
    "your run" panel."""
    gr.Markdown(_("augment.intro"))
    with gr.Row():
        with gr.Column(scale=1):
            image = RawImage(label=_("app.image"), type="filepath", sources=["upload", "webcam", "clipboard"],
                             value=images.sample_photos()[0], height=240)
            mix_image = RawImage(label=_("augment.second_image"), type="filepath", sources=["upload", "clipboard"],
                                 height=160)
            order = gr.Dropdown(list(OPS), value=["crop", "hflip", "brightness"], multiselect=True,
                                label=_("augment.ops"), info=_("augment.ops_info"), elem_id="augment-ops")
            with gr.Accordion(_("augment.parameters"), open=False):
                with gr.Row():
                    b_lo = Slider(0, 3, 0.6, step=0.05, label=_("augment.brightness_from"))
                    b_hi = Slider(0, 3, 1.4, step=0.05, label=_("augment.brightness_to"))
                with gr.Row():
                    c_lo = Slider(0, 3, 0.8, step=0.05, label=_("augment.contrast_from"))
                    c_hi = Slider(0, 3, 1.2, step=0.05, label=_("augment.contrast_to"))
                with gr.Row():
                    degrees = Slider(0, 180, 30, step=1, label=_("augment.rotation"), elem_id="augment-rotation")
                    p_h = Slider(0, 1, 0.5, step=0.05, label=_("augment.hflip_p"))
                    p_v = Slider(0, 1, 0.5, step=0.05, label=_("augment.vflip_p"))
                with gr.Row():
                    s_lo = Slider(0.05, 1, 0.4, step=0.05, label=_("augment.crop_from"))
                    s_hi = Slider(0.05, 1, 1.0, step=0.05, label=_("augment.crop_to"))
                with gr.Row():
                    translate = Slider(0, 0.5, 0.1, step=0.01, label=_("augment.translate"))
                    z_lo = Slider(0.5, 2, 0.9, step=0.05, label=_("augment.scale_from"))
                    z_hi = Slider(0.5, 2, 1.1, step=0.05, label=_("augment.scale_to"))
                    shear = Slider(0, 45, 10, step=1, label=_("augment.shear"))
                with gr.Row():
                    n = Slider(0, 14, 2, step=1, label=_("augment.randaug_n"))
                    m = Slider(0, 30, 9, step=1, label=_("augment.randaug_m"))
                with gr.Row():
                    cut_alpha = Slider(0.1, 5, 1.0, step=0.1, label=_("augment.cutmix_alpha"))
                    mix_alpha = Slider(0.1, 5, 0.4, step=0.1, label=_("augment.mixup_alpha"))
            presets = [(_("augment.preset_light"), "light"), (_("augment.preset_strong"), "strong"),
                       (_("augment.preset_randaugment"), "randaugment")]
            preset = gr.Dropdown(presets, value=None, label=_("augment.preset"), elem_id="augment-preset")
            spec = gr.Code(spec_from_controls("", ["crop", "hflip", "brightness"], 0.6, 1.4, 0.8, 1.2, 30, 0.5, 0.5,
                                              0.4, 1.0, 0.1, 0.9, 1.1, 10, 2, 9, 1.0, 0.4),
                           language="json", label=_("augment.spec"), elem_id="augment-spec")
            with gr.Row():
                k = Slider(1, MAX_SAMPLES, 8, step=1, label=_("augment.samples_k"))
                seed = Number(0, precision=0, minimum=0, label=_("app.seed"))
            with gr.Row():
                draw = gr.Button(_("augment.draw"), variant="primary")
                resample = gr.Button(_("augment.resample"))
        with gr.Column(scale=2):
            summary = gr.Markdown()
            gallery = gr.Gallery(label=_("augment.gallery"), columns=4, height="auto", object_fit="contain")
            per_sample = gr.JSON(label=_("augment.per_sample"), visible=False)
            with gr.Accordion(_("augment.export"), open=False):
                json_out = gr.Code(language="json", label=_("augment.json_label"))
                code_out = gr.Code(language="python", label=_("augment.code_label"))
    with gr.Accordion(_("augment.mix_title"), open=False):
        gr.Markdown(_("augment.mix_intro"))
        with gr.Row():
            mixer = gr.Radio([(name, op) for op, name in MIXERS.items()], value="cutmix", label=_("augment.mixer"))
            mixer_alpha = Slider(0.1, 5, 1.0, step=0.1, label=_("augment.mixer_alpha"))
            mix_epochs = Slider(1, 20, 10, step=1, label=_("app.epochs"), elem_id="mix-epochs")
        with gr.Row():
            mix_show = gr.Button(_("augment.mix_show"), variant="primary")
            mix_run = gr.Button(_("augment.mix_run"))
            mix_halt = gr.Button(_("app.stop"), variant="stop")
        mix_gallery = gr.Gallery(label=_("augment.mix_gallery"), columns=4, height="auto", object_fit="contain")
        mix_table = gr.Markdown(elem_id="mix-table")
        mix_status = gr.Markdown()
        with gr.Row():
            mix_curve = gr.LinePlot(x="epoch", y="accuracy", color="run", y_lim=[0, 1], color_title="",
                                    x_title=_("app.epochs"), y_title=_("augment.val_accuracy"),
                                    label=_("augment.mix_curve"), scale=2)
            mix_result = gr.Markdown()
    with gr.Accordion(_("augment.bias_title"), open=False):
        gr.Markdown(_("augment.bias_intro"))
        bias_seed = Number(0, precision=0, minimum=0, label=_("app.seed"))
        bias_run = gr.Button(_("augment.bias_run"))
        bias_out = gr.Markdown()
    training_job(bias_run, run_bias_experiment, [bias_seed, workspace], bias_out, workspace, bias_out,
                 api_name="bias_experiment").success(your_run, workspace, lesson, api_visibility="private", queue=False)
    values = [b_lo, b_hi, c_lo, c_hi, degrees, p_h, p_v, s_lo, s_hi, translate, z_lo, z_hi, shear, n, m, cut_alpha,
              mix_alpha]
    for control in (order, *values):  # a control edits the pipeline; it is no longer the preset picked
        control.input(lambda *a: (spec_from_controls(*a), None), [spec, order, *values], [spec, preset],
                      api_visibility="private", queue=False)
    preset.select(None, [preset, spec, order, *values], [spec, order, *values], js=preset_js(),
                  queue=False)  # a preset sets the controls
    spec.input(lambda text: (*controls_from_spec(text), None), spec, [order, *values, preset], api_visibility="private",
               queue=False)  # and so does JSON typed in
    mix_show.click(mix_close, [image, mix_image, mixer, mixer_alpha, seed, workspace], [mix_gallery, mix_table],
                   api_name="mix_up_close", concurrency_id="inference")
    mix_run.click(mix_train, [mixer, mixer_alpha, mix_epochs, seed, workspace],
                  [mix_status, mix_curve, mix_result, lesson], api_name="mix_training", concurrency_id="training",
                  concurrency_limit=None)
    mix_halt.click(Workspace.request_stop, workspace, mix_status, api_visibility="private", queue=False)
    inputs = [image, spec, k, seed, mix_image, workspace]
    drawn = draw.click(augment, inputs, [gallery, per_sample, summary], api_name="augment", concurrency_id="inference")
    drawn.success(export, spec, [json_out, code_out], api_visibility="private", queue=False)
    drawn.success(your_run, workspace, lesson, api_visibility="private", queue=False)
    resample.click(lambda s: int(s or 0) + 1, seed, seed, api_visibility="private", queue=False).then(
        augment, inputs, [gallery, per_sample, summary], api_visibility="private", concurrency_id="inference"
    ).success(your_run, workspace, lesson, api_visibility="private", queue=False)
    return spec
