"""Classify tab: an image in, the top-5 classes, the model's milliseconds, and Grad-CAM on request; the same
image through the three offline network sizes side by side."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from ..images import load_image, sample_photos
from ..inference import compare
from ..models import DEFAULT_MODEL
from .common import RawImage, escape, model_choices, pick, require, user_errors
from .i18n import _
from .session import Workspace

@user_errors
def classify_image(image, model: str | None = None, workspace: Workspace | None = None):
    """Top-5 as a Label payload; the state keeps what the info line shows. `model` may name one
    of this session's fine-tuned models."""
    classifier, picture = pick(model, workspace), load_image(require(image))
    top, ms = classifier.classify(picture, top_k=5)
    return dict(top), {"model": classifier.name, "runtime": classifier.runtime_label, "ms": ms, "image": image,
                       "top": top[:2], "note": classifier.precision_note, "classes": len(classifier.labels),
                       "size": picture.size, "box": classifier.crop_box(*picture.size), "crop": classifier.crop(picture)}


def classify_if_image(image, model, workspace, tried: dict):
    """Classify as soon as an image arrives; clearing the image clears the result. Gradio fires `change` twice
    for one upload: an image already tried with this model (`tried`, this session's) is skipped, so that one
    upload gives one result, or one error."""
    if image is None:
        tried.clear()
        return None, None
    if tried == {"image": image, "model": model}:
        return gr.skip(), gr.skip()
    tried.update(image=image, model=model)
    return classify_image(image, model, workspace)


def describe(info, workspace: Workspace):
    """The info line under the result, what this run showed for the lesson panel, the result's heading (the
    model's own classes: a Transfer-tab model has a few, not ImageNet's 1000) and what the model saw (the
    centre crop, in the Grad-CAM box until Explain)."""
    if not info:
        return "", gr.skip(), gr.skip(), gr.skip()
    (first, p1), (second, p2) = (info["top"] + [("-", 0.0)])[:2]
    first, second, name = escape(first), escape(second), escape(info["model"])  # a session model's: the user's names
    line = workspace.tr("classify.info", model=name, runtime=info["runtime"], ms=f"{info['ms']:.1f}")
    if info.get("note"):  # why the model runs in fp32 where int8 was a candidate
        line += f" · {workspace.say(info['note'])}"
    lesson = workspace.show("classify", "classify.your_run", first=first, p1=f"{p1:.1%}", second=second,
                            p2=f"{p2:.1%}", ms=f"{info['ms']:.1f}", classes=f"{info['classes']:,}", model=name)
    heading = workspace.tr("classify.top_of", k=min(5, info["classes"]), n=f"{info['classes']:,}", model=info["model"])
    (left, top, right, bottom), crop = info["box"], info["crop"]
    seen = workspace.tr("classify.seen", w=round(right - left), h=round(bottom - top), width=info["size"][0],
                        height=info["size"][1], cw=crop.width, ch=crop.height)
    return line, lesson, gr.Label(label=heading), gr.Image(crop, label=seen)


@user_errors
def explain(image, model: str | None = None, workspace: Workspace | None = None):
    """Grad-CAM heatmap for the top class, over the crop the model saw."""
    return pick(model, workspace).explain(require(image))[0]


def compare_table(rows: list[dict], workspace: Workspace) -> pd.DataFrame:
    """`inference.compare`'s rows as a table with one column per network (side by side) and one row per measure,
    then the top-k, in the session's language."""
    tr = workspace.tr
    lines = [[tr("classify.row_input")] + [f"{r['input_size'][1]} × {r['input_size'][0]}" for r in rows],
             [tr("classify.row_params")] + [f"{r['params']:,}" for r in rows],
             [tr("classify.row_size")] + [f"{r['mb']:.1f} MB" for r in rows],
             [tr("classify.row_ms")] + [f"{r['ms']:.1f}" for r in rows]]
    lines += [[tr("classify.row_rank", rank=k + 1)] + [f"{r['top'][k][0]} {r['top'][k][1]:.1%}" for r in rows]
              for k in range(min(len(r["top"]) for r in rows))]
    return pd.DataFrame(lines, columns=[tr("classify.row_model")] + [r["name"] for r in rows])


def ratio(x: float) -> str:
    """A ratio as a person reads it: 1.3, 12."""
    return f"{x:.1f}" if x < 10 else f"{x:.0f}"


def what_bigger_bought(rows: list[dict], workspace: Workspace) -> str:
    """What the biggest network (the last row) bought over the smallest (the first) on this image: the same top-1
    with more or less confidence, or another top-1; at what cost in parameters and model time."""
    small, big = rows[0], rows[-1]
    (small_label, p_small), (big_label, p_big) = small["top"][0], big["top"][0]
    cost = {"small": small["name"], "big": big["name"], "params": ratio(big["params"] / small["params"]),
            "ms": ratio(big["ms"] / max(small["ms"], 1e-9)), "p_small": f"{p_small:.1%}", "p_big": f"{p_big:.1%}"}
    if small_label == big_label:
        key = "classify.bought_same_more" if p_big >= p_small else "classify.bought_same_less"
        text = workspace.tr(key, label=big_label, delta=f"{(p_big - p_small) * 100:+.1f}", **cost)
    else:
        on_small = next((p for label, p in big["top"] if label == small_label), None)
        shown = f"{on_small:.1%}" if on_small is not None else workspace.tr("classify.not_in_top", k=len(big["top"]))
        text = workspace.tr("classify.bought_changed", small_label=small_label, big_label=big_label,
                            p_big_on_small=shown, **cost)
    return text + " " + workspace.tr("classify.bought_caveat")


@user_errors
def compare_sizes(image, workspace: Workspace):
    """The image through the three offline networks (EfficientNet-Lite0/1/2): the side-by-side table, a sentence
    on what the bigger network bought on this image, and the lesson panel's "your run"."""
    rows = compare(require(image))
    small, big = rows[0], rows[-1]
    lesson = workspace.show("classify", "classify.your_run_compare", n=len(rows), small=small["name"],
                            big=big["name"], small_px=small["input_size"][0], big_px=big["input_size"][0],
                            small_params=f"{small['params'] / 1e6:.2f}", big_params=f"{big['params'] / 1e6:.2f}",
                            small_label=small["top"][0][0], big_label=big["top"][0][0],
                            p_small=f"{small['top'][0][1]:.1%}", p_big=f"{big['top'][0][1]:.1%}",
                            small_ms=f"{small['ms']:.1f}", big_ms=f"{big['ms']:.1f}")
    return compare_table(rows, workspace), what_bigger_bought(rows, workspace), lesson


def build(workspace: gr.State, lesson: gr.Markdown) -> gr.Dropdown:
    """The tab; returns the model dropdown (the Transfer and Distill tabs add this session's models to it).
    `lesson` is the tab's "your run" panel."""
    with gr.Row():
        with gr.Column():
            image = RawImage(label=_("app.image"), type="filepath", sources=["upload", "webcam", "clipboard"],
                             height=320, elem_id="classify-image")
            model = gr.Dropdown(choices=model_choices(), value=DEFAULT_MODEL, allow_custom_value=True,
                                label=_("app.model"), info=_("classify.model_info"), elem_id="classify-model")
            with gr.Row():
                run = gr.Button(_("classify.run"), variant="primary")
                cam = gr.Button(_("classify.explain"))
            gr.Examples(sample_photos(), inputs=image, label=_("classify.examples"))
        with gr.Column():
            label = gr.Label(num_top_classes=5, label=_("classify.top5"), elem_id="classify-top")
            info = gr.Markdown()
            heatmap = gr.Image(label=_("classify.gradcam"), interactive=False, height=320)
    with gr.Accordion(_("classify.compare_heading"), open=False):
        gr.Markdown(_("classify.compare_intro"))
        sizes = gr.Button(_("classify.compare"))
        bought = gr.Markdown()
        table = gr.Dataframe(label=_("classify.compare_table"), interactive=False, wrap=True)
    info_state, tried = gr.State(), gr.State({})
    described = [info, lesson, label, heatmap]
    run.click(classify_image, [image, model, workspace], [label, info_state], api_name="classify",
              concurrency_id="inference").success(describe, [info_state, workspace], described,
                                                  api_visibility="private", queue=False)
    image.change(lambda: ("", None, "", None), None, [info, heatmap, bought, table], api_visibility="private",
                 queue=False)  # no stale results (the label too: it is replaced, or cleared when the image goes)
    arrived = image.change(classify_if_image, [image, model, workspace, tried], [label, info_state],
                           api_visibility="private", concurrency_id="inference")
    arrived.success(describe, [info_state, workspace], described, api_visibility="private", queue=False)
    arrived.failure(lambda: None, None, image, api_visibility="private", queue=False)  # not an image: the box empties
    cam.click(explain, [image, model, workspace], heatmap, api_name="explain", concurrency_id="inference").success(
        lambda ws: gr.Image(label=ws.tr("classify.gradcam")), workspace, heatmap, api_visibility="private", queue=False)
    sizes.click(compare_sizes, [image, workspace], [table, bought, lesson], api_name="compare",
                concurrency_id="inference")
    return model
