"""Self-train tab (being built)."""
from __future__ import annotations

import gradio as gr


def build(workspace: gr.State, lesson: gr.Markdown) -> None:
    gr.Markdown("TODO")
