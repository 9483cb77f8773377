"""Pieces every tab shares: the raw image input, error translation, example images."""
from __future__ import annotations

import base64
import functools
import logging
from pathlib import Path

import gradio as gr

from ..errors import CvdemoError

log = logging.getLogger("cvdemo.ui")


class RawImage(gr.Image):
    """gr.Image (upload, webcam, paste) that hands the uploaded file to cvdemo.images untouched,
    so every image passes the one door (limits, EXIF, modes) instead of Gradio's own decoding."""

    is_template = True  # rendered by the frontend's Image component

    def preprocess(self, payload):  # -> str | bytes | None
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):
            return base64.b64decode(payload.url.split(",", 1)[1])
        return payload.path


def user_errors(fn):
    """Turn the library's errors into messages in the page (gr.Error); the server keeps serving."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CvdemoError as err:
            raise gr.Error(str(err), title="Can't do that") from err

    return wrapper


def example_images() -> list[str]:
    """Real photos that ship inside scikit-image (no network needed)."""
    import skimage

    data = Path(skimage.__file__).parent / "data"
    return [str(data / name) for name in ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg")]
