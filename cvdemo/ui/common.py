"""Pieces every tab shares: the input doors (raw images, files without URLs, finite numbers), the model lists, error translation, live-update throttling,
Hangul-capable figures."""
from __future__ import annotations

import base64
import binascii
import functools
import html
import inspect
import json
import logging
import math
import re
from collections.abc import Callable
from pathlib import Path

import gradio as gr
from gradio.data_classes import ImageData
from gradio_client.utils import is_http_url_like
from pydantic import ConfigDict, model_validator

from .. import datasets
from ..errors import CvdemoError, ImageError
from ..inference import get_classifier
from ..models import OFFLINE_WEIGHTS
from ..train import Event
from .i18n import message_text, tr
from .session import Workspace

log = logging.getLogger("cvdemo.ui")

MAX_TRAIN_SECONDS = 300  # wall-clock limit of one training run in the app
HUB_SUGGESTIONS = ["resnet50.a1_in1k", "convnext_tiny.fb_in22k_ft_in1k", "mobilenetv3_large_100.ra_in1k"]


def refusal(key: str, label=None, **params) -> gr.Error:
    """A refusal made before any handler runs, where no session tells the language: said in both. `label` (a
    component's label, gr.I18n text) is said in each language too."""
    def said(lang: str) -> str:
        named = {} if label is None else {"label": label_text(label, lang)}
        return html.escape(tr(lang, key, **named, **params), quote=False)

    log.warning("refused before any handler: %s %r", key, params)  # one line, no traceback

    return gr.Error(f"{said('en')} / {said('ko')}", title=f"{tr('en', 'app.error_title')} / {tr('ko', 'app.error_title')}",
                    print_exception=False)


def label_text(label, lang: str) -> str:
    """A component's label (a gr.I18n key, or text with keys in it: '1. ' + _(key)) in `lang`."""
    return re.sub(r"__i18n__(\{.*?\})", lambda m: tr(lang, json.loads(m.group(1))["key"]), str(label))


def no_url(url_or_file_path) -> None:
    """File inputs take uploads only: a URL sent through the API is refused clearly (Gradio would download it, or
    answer a bare error where it can't)."""
    if is_http_url_like(str(url_or_file_path or "")):
        raise refusal("app.url_refused", url=str(url_or_file_path)[:80])


class ImageUpload(ImageData):
    """An image input's payload: an uploaded file's record. Anything else (a bare path or URL string sent through
    the API) becomes a record with no file, which RawImage refuses clearly (Gradio's validation would answer it
    with its own technical text)."""

    model_config = ConfigDict(title="ImageData")  # the API page names it as Gradio's own

    @model_validator(mode="before")
    @classmethod
    def uploaded(cls, value):
        return value if isinstance(value, (dict, ImageData)) else {"orig_name": repr(value)[:80]}


class RawImage(gr.Image):
    """gr.Image (upload, webcam, paste) that hands the uploaded file to cvdemo.images untouched,
    so every image passes the one door (limits, EXIF, modes) instead of Gradio's own decoding. URLs and
    payloads that are not uploads are refused."""

    is_template = True  # rendered by the frontend's Image component
    data_model = ImageUpload

    async def async_move_resource_to_block_cache(self, url_or_file_path):
        no_url(url_or_file_path)
        return await super().async_move_resource_to_block_cache(url_or_file_path)

    def preprocess(self, payload):  # -> str | bytes | None
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):
            try:
                return base64.b64decode(payload.url.split(",", 1)[1])
            except (IndexError, binascii.Error):  # no comma, or not base64
                raise refusal("app.broken_paste") from None
        if payload.path is None:
            raise refusal("app.not_an_upload", value=payload.orig_name)
        return payload.path


class File(gr.File):
    """gr.File that takes uploads only (URLs refused)."""

    is_template = True

    async def async_move_resource_to_block_cache(self, url_or_file_path):
        no_url(url_or_file_path)
        return await super().async_move_resource_to_block_cache(url_or_file_path)


def finite(component: gr.components.Component, payload):
    """A number field's payload as a number: a JSON number, or a string holding one ("0.5", as a form sends it);
    NaN, infinity, text or nothing is refused, naming the field (Gradio's own check would fail with a bare
    error). Its range is checked after, by Gradio."""
    if isinstance(payload, str):
        try:
            payload = float(payload)
        except ValueError:
            pass
    if isinstance(payload, bool) or not isinstance(payload, (int, float)) or not math.isfinite(payload):
        raise refusal("app.not_a_number", label=component.label or "", value=repr(payload)[:40])
    return payload


class Number(gr.Number):
    """gr.Number whose value is a finite number or nothing (`finite`)."""

    is_template = True

    def preprocess(self, payload):
        return None if payload is None else super().preprocess(finite(self, payload))


class Slider(gr.Slider):
    """gr.Slider whose value is a finite number (`finite`)."""

    is_template = True

    def preprocess(self, payload):
        return super().preprocess(finite(self, payload))


# Characters Markdown, HTML or KaTeX read as markup in running text (and the character-reference sign itself): each
# becomes a numeric character reference, which Markdown and HTML show as the character and never read as structure.
# ('(', '!', quotes stay: a link or image needs '[', and no user string goes into an attribute.)
_MARKUP = str.maketrans({ch: f"&#{ord(ch)};" for ch in "&<>`*_[]#|~$\\"})


def escape(text) -> str:
    """A user's string (a class, file, model or dataset name, or a library note that quotes one) shown as itself
    in a Markdown or HTML output: no tag, link, emphasis or table cell can come from it, and line breaks become
    spaces. Gallery captions, gr.Label and gr.Dataframe cells are drawn as plain text by the page: they need no
    escaping (they would show the references)."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", str(text)).translate(_MARKUP)


def require(image):
    """The handler's image, or a clear error when the input is empty."""
    if image is None:
        raise ImageError("Add an image first: upload, webcam or paste.", code="image.missing")
    return image


def pick(model: str | None, workspace: Workspace | None):
    """The classifier for a model name: this session's own first, else a shared pretrained one."""
    return workspace.classifier(model) if workspace else get_classifier(model or None)


def model_choices(workspace: Workspace | None = None) -> list[str]:
    """The models every model list offers: the offline ones first, this session's own, then Hub suggestions."""
    return list(OFFLINE_WEIGHTS) + (list(workspace.models) if workspace else []) + HUB_SUGGESTIONS


def user_errors(fn):
    """Turn the library's errors into messages in the page (gr.Error); the server keeps serving.
    Anything else (a bug, or input of a type no handler expects) is logged with its traceback
    and the user gets a plain message instead of Gradio's bare "Error". Works for generators
    (handlers that stream progress) too. The message is in the language of the Workspace among the
    handler's arguments (English if it has none)."""

    def translate(err: Exception, args: tuple, kwargs: dict) -> gr.Error:
        if isinstance(err, gr.Error):
            return err
        lang = next((a.lang for a in (*args, *kwargs.values()) if isinstance(a, Workspace)), "en")
        title = tr(lang, "app.error_title")
        if isinstance(err, CvdemoError):
            log.warning("%s refused: %s %r", fn.__name__, err.code, str(err)[:200])  # one line, no traceback
            # the page shows an error's message as HTML: the names it quotes stay text
            lines = [message_text(err, lang)]
            if getattr(err, "skipped", None):  # check_trainable's refusal: what the reader skipped, and why
                lines += [tr(lang, "app.skipped"), *(f"- {line}" for line in skipped_lines(lang, err.skipped))]
            return gr.Error("<br>".join(html.escape(line, quote=False) for line in lines), title=title,
                            print_exception=False)
        log.exception("%s failed", fn.__name__)
        return gr.Error(tr(lang, "app.server_error"), title=title, print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:
                raise translate(err, args, kwargs) from err

        return stream

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            raise translate(err, args, kwargs) from err

    return wrapper


UPDATES_PER_SECOND = 2  # live progress: page updates at most this often


def throttle(per_second: float = UPDATES_PER_SECOND) -> Callable[[Event], bool]:
    """A gate for a run's live updates: `due(event)` says whether to update the page for this Event: at most
    `per_second` times a second of the run (by `event.elapsed`), but always at its last epoch."""
    shown = 0.0

    def due(event: Event) -> bool:
        nonlocal shown
        if event.elapsed - shown < 1 / per_second and event.epoch < event.epochs:
            return False
        shown = event.elapsed
        return True

    return due


MAX_SKIP_LINES = 20  # a dataset's skip messages listed (the rest are counted)


def skipped_lines(lang: str, skipped: list) -> list[str]:
    """The files a dataset reader skipped (its Notes) in `lang`, as plain text: a line each, the first
    MAX_SKIP_LINES, then how many more."""
    lines = [message_text(m, lang) for m in skipped[:MAX_SKIP_LINES]]
    if len(skipped) > MAX_SKIP_LINES:
        lines.append(tr(lang, "app.skipped_more", n=len(skipped) - MAX_SKIP_LINES))
    return lines


def skipped_text(workspace: Workspace, skipped: list) -> str:
    """The files a dataset reader skipped, as a Markdown list under the result, in the session's language."""
    if not skipped:
        return ""
    return ("\n\n" + workspace.tr("app.skipped") + "\n"
            + "\n".join(f"- {escape(line)}" for line in skipped_lines(workspace.lang, skipped)))


def check_trainable(data, skipped: list) -> None:
    """datasets.check_trainable, whose refusal also lists the files the reader skipped and why (a zip left with
    one class because the other's files were all skipped says which and why): `user_errors` shows them."""
    try:
        datasets.check_trainable(data)
    except CvdemoError as err:
        err.skipped = skipped
        raise


HANGUL_FONTS = ("NanumGothic", "Noto Sans CJK KR", "Noto Sans KR", "UnDotum")  # packages.txt: fonts-nanum


@functools.lru_cache(maxsize=1)
def pyplot():
    """matplotlib's pyplot, headless, that draws text as written (no mathtext) and Hangul (Korean texts, a user's
    Korean class names) with the first Korean font installed, after its default font (a glyph missing from one
    comes from the next)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    def installed() -> list[str]:
        names = {font.name for font in font_manager.fontManager.ttflist}
        return [name for name in HANGUL_FONTS if name in names]

    if not installed():  # matplotlib's font cache may predate the font: look at the system's fonts once
        for path in font_manager.findSystemFonts():
            if any(key in Path(path).name.lower() for key in ("nanum", "notosanscjk", "undotum")):
                font_manager.fontManager.addfont(path)
    plt.rcParams["font.family"] = ["DejaVu Sans", *installed()]
    plt.rcParams["text.parse_math"] = False  # a user's class name with '$' in it is drawn as written, not as TeX
    return plt


def figure_lang(workspace: Workspace) -> str:
    """The language a figure's words are drawn in: the session's, but English where no font here has Hangul
    (boxes are worse than English)."""
    return workspace.lang if workspace.lang == "en" or len(pyplot().rcParams["font.family"]) > 1 else "en"
