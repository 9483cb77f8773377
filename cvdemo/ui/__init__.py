"""The web app: one module per tab. Only app.py imports this package."""
from __future__ import annotations

import threading

import gradio as gr

from .. import images
from ..inference import get_classifier
from . import architectures, augment, classify, distill, transfer
from .common import example_images
from .session import workspace_state

QUEUE_SIZE = 64             # requests waiting at most; more get "queue full" at once
INFERENCE_CONCURRENCY = 2   # classifications at a time (each uses the CPU's cores)


def build_demo() -> gr.Blocks:
    """The whole page: a tab per capability that works (no placeholders)."""
    with gr.Blocks(title="cvdemo: a computer-vision lab") as demo:
        gr.Markdown("# cvdemo\nA computer-vision lab with real pretrained models, offline.")
        workspace = workspace_state()  # this browser session's datasets, models and files
        with gr.Tab("Classify"):
            classify_model = classify.build(workspace)
        with gr.Tab("Augment"):
            augment_spec = augment.build()
        with gr.Tab("Transfer"):
            transfer.build(workspace, classify_model, augment_spec)
        with gr.Tab("Distill"):
            distill.build(workspace, classify_model)
        with gr.Tab("Architectures"):
            architectures.build()
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=INFERENCE_CONCURRENCY)
    # Load the default model (and export its ONNX copy on a first run) while the page comes up,
    # so the first user doesn't wait for it.
    threading.Thread(target=get_classifier, name="warm-up", daemon=True).start()
    return demo


def launch_options() -> dict:
    """Arguments for `demo.launch`: upload limit and the only extra files served (the examples).
    Host and port come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default 127.0.0.1:7860)."""
    return {"max_file_size": images.MAX_BYTES, "allowed_paths": example_images()}
