"""Classify tab: an image in, the top-5 classes, the model's milliseconds, and Grad-CAM on request."""
from __future__ import annotations

import gradio as gr

from ..errors import ImageError
from ..inference import get_classifier
from ..models import DEFAULT_MODEL, OFFLINE_WEIGHTS
from .common import RawImage, example_images, user_errors
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
    return dict(top), {"model": classifier.name, "runtime": classifier.runtime, "ms": ms, "image": image}


def classify_if_image(image, model, workspace, shown):
    """Classify as soon as an image arrives; clearing the image clears the result. Gradio fires
    `change` twice for one upload: the second time the same image is already shown, so skip it."""
    if image is None:
        return None, None
    if shown and shown.get("image") == image and shown.get("model") == pick(model, workspace).name:
        return gr.skip(), gr.skip()
    return classify_image(image, model, workspace)


def describe(info) -> str:
    if not info:
        return ""
    return f"**{info['model']}** · {info['runtime']} · model time **{info['ms']:.1f} ms**"


@user_errors
def explain(image, model: str | None = None, workspace: Workspace | None = None):
    """Grad-CAM heatmap for the top class, over the crop the model saw."""
    return pick(model, workspace).explain(require(image))[0]


def model_choices(workspace: Workspace | None = None) -> list[str]:
    """Offline model first, this session's fine-tuned models, then Hub suggestions."""
    return list(OFFLINE_WEIGHTS) + (list(workspace.models) if workspace else []) + HUB_SUGGESTIONS


def build(workspace: gr.State) -> gr.Dropdown:
    """The tab; returns the model dropdown (the Transfer tab adds this session's models to it)."""
    with gr.Row():
        with gr.Column():
            image = RawImage(label="Image", type="filepath", sources=["upload", "webcam", "clipboard"], height=320)
            model = gr.Dropdown(
                choices=model_choices(), value=DEFAULT_MODEL, allow_custom_value=True,
                label="Model", info="Type any timm model name. Only efficientnet_lite0 works offline; "
                                    "others load from the Hugging Face Hub. Models you train in the "
                                    "Transfer tab appear here for you only.")
            with gr.Row():
                run = gr.Button("Classify", variant="primary")
                cam = gr.Button("Explain (Grad-CAM)")
            gr.Examples(example_images(), inputs=image, label="Example photos (scikit-image)")
        with gr.Column():
            label = gr.Label(num_top_classes=5, label="Top-5 ImageNet classes")
            info = gr.Markdown()
            heatmap = gr.Image(label="Grad-CAM: where the model looked for its top class", interactive=False, height=320)
    info_state = gr.State()
    run.click(classify_image, [image, model, workspace], [label, info_state], api_name="classify",
              concurrency_id="inference").success(describe, info_state, info, api_visibility="private")
    image.change(lambda: ("", None), None, [info, heatmap], api_visibility="private", queue=False)  # no stale results
    image.change(classify_if_image, [image, model, workspace, info_state], [label, info_state], api_visibility="private",
                 concurrency_id="inference").success(describe, info_state, info, api_visibility="private")
    cam.click(explain, [image, model, workspace], heatmap, api_name="explain", concurrency_id="inference")
    return model
