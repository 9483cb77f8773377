"""Pieces every tab shares: the raw image input, the model lists, error translation, live-update throttling,
Hangul-capable figures."""
from __future__ import annotations

import base64
import binascii
import functools
import inspect
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import gradio as gr
import pandas as pd
from huggingface_hub import constants as hub_constants

from ..errors import CvdemoError, ImageError
from ..inference import get_classifier
from ..models import OFFLINE_WEIGHTS
from ..train import Event
from .i18n import _, message_text, tr
from .session import Workspace

log = logging.getLogger("cvdemo.ui")

MAX_TRAIN_SECONDS = 300  # wall-clock limit of one training run in the app
HUB_SUGGESTIONS = ["resnet50.a1_in1k", "convnext_tiny.fb_in22k_ft_in1k", "mobilenetv3_large_100.ra_in1k"]


class RawImage(gr.Image):
    """gr.Image (upload, webcam, paste) that hands the uploaded file to cvdemo.images untouched,
    so every image passes the one door (limits, EXIF, modes) instead of Gradio's own decoding."""

    is_template = True  # rendered by the frontend's Image component

    def preprocess(self, payload):  # -> str | bytes | None
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):
            try:
                return base64.b64decode(payload.url.split(",", 1)[1])
            except (IndexError, binascii.Error):  # no comma, or not base64
                # no session here to tell the language: say it in both
                raise gr.Error(f"{tr('en', 'app.broken_paste')} / {tr('ko', 'app.broken_paste')}",
                               title=f"{tr('en', 'app.error_title')} / {tr('ko', 'app.error_title')}") from None
        return payload.path


def require(image):
    """The handler's image, or a clear error when the input is empty."""
    if image is None:
        raise ImageError("Add an image first: upload, webcam or paste.", code="image.missing")
    return image


def pick(model: str | None, workspace: Workspace | None):
    """The classifier for a model name: this session's own first, else a shared pretrained one."""
    return workspace.classifier(model) if workspace else get_classifier(model or None)


def model_choices(workspace: Workspace | None = None) -> list[tuple[str, str]]:
    """The models every model list offers, as (shown, name): the offline ones first, this session's own, then Hub
    suggestions (marked as needing the network when the Hub is switched off, HF_HUB_OFFLINE=1)."""
    mark = " " + _("app.needs_network") if hub_constants.HF_HUB_OFFLINE else ""
    own = list(OFFLINE_WEIGHTS) + (list(workspace.models) if workspace else [])
    return [(name, name) for name in own] + [(name + mark, name) for name in HUB_SUGGESTIONS]


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
            return gr.Error(message_text(err, lang), title=title)
        log.exception("%s failed", fn.__name__)
        return gr.Error(tr(lang, "app.server_error"), title=title)

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


def heartbeat(items: Iterable, every: float = 1.0) -> Iterator:
    """The items of `items`, made in a worker thread, with a None whenever `every` seconds pass without one: a
    handler can show that a long silent step (a teacher's pass, an experiment) is still going, and for how long.
    Closing this generator (the user left) closes `items` when it hands over its next item."""
    box: queue.Queue = queue.Queue()
    closed, end = threading.Event(), object()

    def work() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if closed.is_set():
                    break
                box.put((item, None))
            box.put((end, None))
        except BaseException as err:  # noqa: BLE001 (raised again in the handler's thread)
            box.put((end, err))
        finally:
            getattr(iterator, "close", lambda: None)()

    threading.Thread(target=work, name="heartbeat", daemon=True).start()
    try:
        while True:
            try:
                item, err = box.get(timeout=every)
            except queue.Empty:
                yield None
                continue
            if item is end:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        closed.set()


def call(fn: Callable, *args, **kwargs) -> Iterator:
    """`fn(*args, **kwargs)` as a one-item iterator, called where it is iterated (in `heartbeat`'s thread)."""
    yield fn(*args, **kwargs)


def working(workspace: Workspace, what: str, seconds: float, expected: float | None = None) -> str:
    """A live status line: what is happening, for how long, and about how long is left when `expected` (the
    seconds the whole job should take) is known."""
    return f"{what} · {workspace.tr('app.so_far', seconds=f'{seconds:.0f}')}" + left(workspace, seconds, expected)


def left(workspace: Workspace, seconds: float, expected: float | None) -> str:
    """" · about 12 s left" while a job that should take `expected` seconds in all has run `seconds`; else ""."""
    if expected is None or expected <= seconds:
        return ""
    return " · " + workspace.tr("app.left", left=f"{expected - seconds:.0f}")


def expected(event: Event) -> float | None:
    """The seconds a run should take in all, from its epochs so far (None before the first ends)."""
    return event.elapsed / event.epoch * event.epochs if event.epoch else None


class Curve(gr.LinePlot):
    """A LinePlot over a whole number (epochs, rounds, pixels of shift): up to FEW values get one tick each (no
    "1.5": a nominal axis, the numbers right-aligned with spaces so that they sort as numbers); a single value is
    drawn as points (a line needs two)."""

    FEW = 20

    def postprocess(self, value):
        if isinstance(value, pd.DataFrame) and pd.api.types.is_integer_dtype(value[self.x]) and \
                value[self.x].nunique() <= self.FEW:
            width = len(str(value[self.x].max()))
            value = value.assign(**{self.x: value[self.x].map(lambda v: f"{v:>{width}}")})
        data = super().postprocess(value)
        if isinstance(value, pd.DataFrame) and value[self.x].nunique() == 1:
            data.mark = "point"
        return data


def finished(workspace: Workspace, event: Event, acc: str = "val_acc") -> str:
    """A training run's last word: done, or stopped (after which epoch, and the epoch whose model is kept)."""
    if event.kind != "stopped":
        return workspace.tr("app.done")
    if not event.best:
        return workspace.tr("app.stopped_before")
    return workspace.tr("app.stopped", epoch=len(event.history or []), epochs=event.epochs, best=event.best["epoch"],
                        acc=f"{event.best.get(acc, 0):.1%}")


def stale(component):
    """What a new run does at once to a result of the last run: clears it; a plot is dimmed instead (its "stale"
    class), until the run draws it again: clearing a drawn plot can leave Gradio's resize observers reading a
    plot that is gone (a page error)."""
    return gr.LinePlot(elem_classes=["stale"]) if isinstance(component, gr.LinePlot) else None


def undimmed(update, plots: list[int]):
    """A job's update with each plot it draws (a table at a position in `plots`) undimmed."""
    if not isinstance(update, tuple):
        return update
    return tuple(gr.LinePlot(value=value, elem_classes=[]) if i in plots and isinstance(value, pd.DataFrame)
                 else value for i, value in enumerate(update))


class Running:
    """Training jobs running on this server now, all sessions together (they run one at a time)."""

    def __init__(self) -> None:
        self.now, self.lock = 0, threading.Lock()

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1

    def __exit__(self, *exc) -> None:
        with self.lock:
            self.now -= 1


TRAINING = Running()


def training_job(button: gr.Button, fn: Callable, inputs: list, outputs: list, workspace: gr.State,
                 status: gr.Markdown, clear: tuple = (), halt: gr.Button | None = None, **kwargs):
    """`button` starts the training job `fn` (one at a time on this server). At once, unqueued: `status` says it
    starts, or waits for another user's job; the last run's results (`clear`) go (plots: dimmed until drawn
    again, or until the run ends well); the Stop button `halt` turns on. Then `fn` runs (an update that draws a
    plot is held until the next comes), and `halt` turns off again. Returns `fn`'s event (`kwargs`: its
    api_name...)."""
    def start(ws: Workspace):
        line = ws.tr("app.waiting") if TRAINING.now else ws.tr("app.starting")
        return (line, *map(stale, clear)) + ((gr.Button(interactive=True),) if halt else ())

    shown = outputs if isinstance(outputs, list) else [outputs]
    plots = [i for i, component in enumerate(shown)
             if isinstance(component, gr.LinePlot) and any(component is c for c in clear)]

    @functools.wraps(fn)
    def counted(*args, **kwargs):
        with TRAINING:
            result, held = fn(*args, **kwargs), None
            for update in result if inspect.isgenerator(result) else [result]:
                if held is not None:  # not the last update: a live one, the plots it draws undimmed
                    yield undimmed(held, plots)
                held = None
                if isinstance(update, tuple) and any(isinstance(update[i], pd.DataFrame) for i in plots):
                    held = update  # (held: if it is the last, the API returns it as it is)
                else:
                    yield update
            if held is not None:
                yield held  # the page undims after

    started = button.click(start, workspace, [status, *clear, *([halt] if halt else [])], queue=False,
                           api_visibility="private")
    job = started.then(counted, inputs, outputs, concurrency_id="training", concurrency_limit=1, **kwargs)
    for i in plots:
        job.success(lambda: gr.LinePlot(elem_classes=[]), None, shown[i], queue=False, api_visibility="private")
    if halt:
        job.then(lambda: gr.Button(interactive=False), None, halt, queue=False, api_visibility="private")
    return job


MAX_SKIP_LINES = 20  # a dataset's skip messages listed (the rest are counted)


def skipped_text(workspace: Workspace, skipped: list) -> str:
    """The files a dataset reader skipped (its Notes), as a list under the result, in the session's language."""
    if not skipped:
        return ""
    lines = [f"- {workspace.say(m)}" for m in skipped[:MAX_SKIP_LINES]]
    if len(skipped) > MAX_SKIP_LINES:
        lines.append("- " + workspace.tr("app.skipped_more", n=len(skipped) - MAX_SKIP_LINES))
    return "\n\n" + workspace.tr("app.skipped") + "\n" + "\n".join(lines)


HANGUL_FONTS = ("NanumGothic", "Noto Sans CJK KR", "Noto Sans KR", "UnDotum")  # packages.txt: fonts-nanum


@functools.lru_cache(maxsize=1)
def pyplot():
    """matplotlib's pyplot, headless, that draws Hangul (Korean texts, a user's Korean class names) with the
    first Korean font installed, after its default font (a glyph missing from one comes from the next)."""
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
    return plt


def figure_lang(workspace: Workspace) -> str:
    """The language a figure's words are drawn in: the session's, but English where no font here has Hangul
    (boxes are worse than English)."""
    return workspace.lang if workspace.lang == "en" or len(pyplot().rcParams["font.family"]) > 1 else "en"
