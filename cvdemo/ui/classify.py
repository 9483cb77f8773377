"""Classify tab: an image in, the top-5 classes, the model's milliseconds, and Grad-CAM on request."""
from __future__ import annotations

import gradio as gr

from ..errors import ImageError
from ..inference import get_classifier
from ..models import DEFAULT_MODEL, OFFLINE_WEIGHTS
from .common import RawImage, example_images, user_errors
from .i18n import _
from .session import Workspace

HUB_SUGGESTIONS = ["resnet50.a1_in1k", "convnext_tiny.fb_in22k_ft_in1k", "mobilenetv3_large_100.ra_in1k"]


def pick(model: str | None, workspace: Workspace | None):
    """The classifier for a model name: this session's own first, else a shared pretrained one."""
    return workspace.classifier(model) if workspace else get_classifier(model or None)


def require(image):
    if image is None:
        raise ImageError("Add an image first: upload, webcam or paste.", code="image.missing")
    return image


@user_errors
def classify_image(image, model: str | None = None, workspace: Workspace | None = None):
    """Top-5 as a Label payload; the state keeps what the info line shows. `model` may name one
    of this session's fine-tuned models."""
    classifier = pick(model, workspace)
    top, ms = classifier.classify(require(image), top_k=5)
    return dict(top), {"model": classifier.name, "runtime": classifier.runtime, "ms": ms, "image": image,
                       "top": top[:2]}


def classify_if_image(image, model, workspace, shown):
    """Classify as soon as an image arrives; clearing the image clears the result. Gradio fires
    `change` twice for one upload: the second time the same image is already shown, so skip it."""
    if image is None:
        return None, None
    if shown and shown.get("image") == image and shown.get("model") == pick(model, workspace).name:
        return gr.skip(), gr.skip()
    return classify_image(image, model, workspace)


def describe(info, workspace: Workspace):
    """The info line under the result, and what this run showed for the lesson panel."""
    if not info:
        return "", gr.skip()
    (first, p1), (second, p2) = (info["top"] + [("-", 0.0)])[:2]
    line = workspace.tr("classify.info", model=info["model"], runtime=info["runtime"], ms=f"{info['ms']:.1f}")
    return line, workspace.show("classify", "classify.your_run", first=first, p1=f"{p1:.1%}", second=second,
                                p2=f"{p2:.1%}", ms=f"{info['ms']:.1f}")


@user_errors
def explain(image, model: str | None = None, workspace: Workspace | None = None):
    """Grad-CAM heatmap for the top class, over the crop the model saw."""
    return pick(model, workspace).explain(require(image))[0]


def model_choices(workspace: Workspace | None = None) -> list[str]:
    """Offline model first, this session's fine-tuned models, then Hub suggestions."""
    return list(OFFLINE_WEIGHTS) + (list(workspace.models) if workspace else []) + HUB_SUGGESTIONS


def build(workspace: gr.State, lesson: gr.Markdown) -> gr.Dropdown:
    """The tab; returns the model dropdown (the Transfer tab adds this session's models to it).
    `lesson` is the tab's "your run" panel."""
    with gr.Row():
        with gr.Column():
            image = RawImage(label=_("app.image"), type="filepath", sources=["upload", "webcam", "clipboard"],
                             height=320)
            model = gr.Dropdown(choices=model_choices(), value=DEFAULT_MODEL, allow_custom_value=True,
                                label=_("app.model"), info=_("classify.model_info"))
            with gr.Row():
                run = gr.Button(_("classify.run"), variant="primary")
                cam = gr.Button(_("classify.explain"))
            gr.Examples(example_images(), inputs=image, label=_("classify.examples"))
        with gr.Column():
            label = gr.Label(num_top_classes=5, label=_("classify.top5"))
            info = gr.Markdown()
            heatmap = gr.Image(label=_("classify.gradcam"), interactive=False, height=320)
    info_state = gr.State()
    run.click(classify_image, [image, model, workspace], [label, info_state], api_name="classify",
              concurrency_id="inference").success(describe, [info_state, workspace], [info, lesson],
                                                  api_visibility="private")
    image.change(lambda: ("", None), None, [info, heatmap], api_visibility="private", queue=False)  # no stale results
    image.change(classify_if_image, [image, model, workspace, info_state], [label, info_state], api_visibility="private",
                 concurrency_id="inference").success(describe, [info_state, workspace], [info, lesson],
                                                     api_visibility="private")
    cam.click(explain, [image, model, workspace], heatmap, api_name="explain", concurrency_id="inference")
    return model
