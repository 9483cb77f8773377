"""Pieces every tab shares: the input doors (raw images, files without URLs, finite numbers), the gate of heavy
jobs, the model lists, error translation and escaping, live-update throttling, Hangul-capable figures."""
from __future__ import annotations

import base64
import binascii
import contextvars
import functools
import html
import inspect
import json
import logging
import math
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import gradio as gr
import pandas as pd
from gradio import processing_utils
from gradio.data_classes import ImageData
from gradio_client.utils import is_http_url_like
from huggingface_hub import constants as hub_constants
from pydantic import ConfigDict, model_validator

from .. import datasets, gpu, memory
from ..cache import atomic_write
from ..errors import CvdemoError, ImageError, LimitError
from ..inference import get_classifier
from ..models import OFFLINE_WEIGHTS
from ..train import Event
from .i18n import _, message_text, tr
from .session import MISSING, Workspace

log = logging.getLogger("cvdemo.ui")

# wall-clock limit of one training run in the app. On ZeroGPU its GPU call reserves this + gpu.SETUP_SECONDS = 80 s
# of the visitor's daily quota (120 s on GPUs where spaces counts 1.5x): a visitor without an account has 2 minutes
MAX_TRAIN_SECONDS = 50 if gpu.ZERO_GPU else 300
HUB_SUGGESTIONS = ["resnet50.a1_in1k", "convnext_tiny.fb_in22k_ft_in1k", "mobilenetv3_large_100.ra_in1k"]


def refusal(key: str, label=None, **params) -> gr.Error:
    """A refusal made before any handler runs, where no session tells the language: said in both. `label` (a
    component's label, gr.I18n text) is said in each language too."""
    def said(lang: str) -> str:
        named = {} if label is None else {"label": label_text(label, lang)}
        return html.escape(tr(lang, key, **named, **params), quote=False)

    log.warning("refused before any handler: %s %r", key, params)  # one line, no traceback
    title = f"{tr('en', 'app.error_title')} / {tr('ko', 'app.error_title')}"
    return gr.Error(f"{said('en')} / {said('ko')}", title=title, print_exception=False)


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


def save_image_once(image, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """Gradio's `processing_utils.save_pil_to_cache` (every image and gallery image an event returns), made
    safe for the same image twice at once. Gradio names the file by its bytes' hash and rewrote it in place each
    time an event returned that image again (a gallery shown again when its threshold moves), so a browser still
    fetching the first copy could get a truncated file: a broken thumbnail (ERR_CONTENT_LENGTH_MISMATCH). Now a
    file already there is handed out as it is (touched, as Gradio's own `save_file_to_cache` does, so that a
    `delete_cache` schedule ages it from now) and a new one is renamed into place whole."""
    data = processing_utils.encode_pil_to_bytes(image, format)
    path = (Path(cache_dir) / processing_utils.hash_bytes(data) / f"{name}.{format}").resolve()
    if path.exists():
        with suppress(OSError):
            os.utime(path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return str(path)


processing_utils.save_pil_to_cache = save_image_once  # gradio.image_utils and Gallery call it through the module


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
    """The classifier for a model name: this session's own first, else a shared pretrained one. A raw API call's
    number, list or dict is looked up as its text (an unknown model, said so)."""
    if model is not None and not isinstance(model, str):
        model = str(model)
    return workspace.classifier(model) if workspace else get_classifier(model or None)


def model_choices(workspace: Workspace | None = None) -> list[tuple[str, str]]:
    """The models every model list offers, as (shown, name): the offline ones first, this session's own, then Hub
    suggestions (marked as needing the network when the Hub is switched off, HF_HUB_OFFLINE=1)."""
    mark = " " + _("app.needs_network") if hub_constants.HF_HUB_OFFLINE else ""
    own = list(OFFLINE_WEIGHTS) + (list(workspace.models) if workspace else [])
    return [(name, name) for name in own] + [(name + mark, name) for name in HUB_SUGGESTIONS]


TRIM_AFTER = 1.0  # s a job ran before its gate trims the heap after it (a trim's gc.collect costs ~0.3 s of CPU;
#                  a refusal or a quick job frees little, and `tidy` trims every minute anyway)


class Ticket:
    """A job's place in a Gate's line; `started` is when it began to run (time.monotonic())."""
    started = 0.0


class Gate:
    """Heavy jobs of one kind (training) across every session: `slots` run at a time and at most `waiting` more
    wait, one per session (a second from the same session is refused); a job beyond that is refused at once.
    Gradio's queue never holds these jobs (their events have no concurrency limit there: the gate is the limit),
    so no number of sessions can fill it, and classification, which waits in Gradio's queue, never waits behind
    them. Use it through `gated`."""

    def __init__(self, kind: str, slots: int = 1, waiting: int = 4) -> None:
        self.kind, self.slots, self.max_waiting = kind, slots, waiting
        self.changed = threading.Condition()
        self.running = 0
        self.queue: list[object] = []  # the waiting jobs' tickets, first come first
        self.holders: set[int] = set()  # the sessions (id of their Workspace) with a job waiting or running

    @contextmanager
    def ticket(self, workspace: Workspace | None) -> Iterator[object]:
        """A place in the line (refused when the line is full or this session holds one); left on exit."""
        holder = id(workspace) if workspace is not None else None
        with self.changed:
            if holder in self.holders:
                raise LimitError("A job of this kind is already waiting or running in this session: stop it or "
                                 "wait for it.", code="limit.busy")
            if self.running >= self.slots and len(self.queue) >= self.max_waiting:
                raise LimitError(f"{len(self.queue)} {self.kind} jobs are already waiting (the limit is "
                                 f"{self.max_waiting}). Try again in a few minutes.", code="limit.queue_full",
                                 kind=self.kind, waiting=len(self.queue))
            ticket = Ticket()
            self.queue.append(ticket)
            if holder is not None:
                self.holders.add(holder)
        try:
            yield ticket
        finally:
            with self.changed:
                ran = ticket not in self.queue
                if ran:
                    self.running -= 1
                else:
                    self.queue.remove(ticket)
                self.holders.discard(holder)
                self.changed.notify_all()
            if ran and time.monotonic() - ticket.started >= TRIM_AFTER:
                memory.trim()  # what the job freed goes back to the system

    def busy(self) -> bool:
        """Whether a new job would wait (every slot taken)."""
        with self.changed:
            return self.running >= self.slots

    def wait(self, ticket: object, timeout: float | None) -> int | None:
        """Wait up to `timeout` seconds for this ticket's turn: None once its job may run (it holds a slot then),
        else how many jobs are ahead of it."""
        def turn() -> bool:
            return self.running < self.slots and self.queue[0] is ticket

        with self.changed:
            if self.changed.wait_for(turn, timeout):
                self.queue.pop(0).started = time.monotonic()
                self.running += 1
                return None
            return self.queue.index(ticket)


TRAINING = Gate("training", slots=1, waiting=4)  # every lesson that trains a network
DATASETS = Gate("dataset", slots=2, waiting=4)  # reading a user's zip or files into a dataset
LAYER_TABLES = Gate("layer table", slots=1, waiting=4)  # building a network and timing it


def gated(gate: Gate):
    """Run a handler through `gate` (after user_errors, so that its refusals are said). A generator handler waits
    yielding `gr.skip()` every second (Gradio drops a waiting job whose client is gone at a yield) and says once
    how many jobs are ahead; a plain one waits without a word."""
    def wrap(fn):
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def stream(*args, **kwargs):
                workspace = _workspace(args, kwargs)
                with gate.ticket(workspace) as ticket:
                    ahead = gate.wait(ticket, 0)
                    if ahead is not None:
                        gr.Info(tr(workspace.lang if workspace else "en", "app.waiting_turn", ahead=ahead + 1))
                    while ahead is not None:
                        yield gr.skip()
                        ahead = gate.wait(ticket, 1.0)
                    yield from fn(*args, **kwargs)

            return stream

        @functools.wraps(fn)
        def call(*args, **kwargs):
            with gate.ticket(_workspace(args, kwargs)) as ticket:
                gate.wait(ticket, None)
                return fn(*args, **kwargs)

        return call

    return wrap


def _workspace(args: tuple, kwargs: dict) -> Workspace | None:
    """The session's Workspace among a handler's arguments."""
    return next((a for a in (*args, *kwargs.values()) if isinstance(a, Workspace)), None)


def user_errors(fn):
    """Turn the library's errors into messages in the page (gr.Error); the server keeps serving.
    Anything else (a bug, or input of a type no handler expects) is logged with its traceback
    and the user gets a plain message instead of Gradio's bare "Error". Works for generators
    (handlers that stream progress) too. The message is in the language of the Workspace among the
    handler's arguments (English if it has none). The call counts as that session's use (`welcome`)."""

    def translate(err: Exception, args: tuple, kwargs: dict) -> gr.Error:
        if isinstance(err, gr.Error):
            return err
        workspace = _workspace(args, kwargs)
        lang = workspace.lang if workspace else "en"
        title = tr(lang, "app.error_title")
        if isinstance(err, CvdemoError) and err.code in MISSING and workspace and workspace.evicted:
            err = workspace.evicted  # the data is missing because the budget took it: say so
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
            welcome(_workspace(args, kwargs))
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:
                raise translate(err, args, kwargs) from err

        return stream

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        welcome(_workspace(args, kwargs))
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            raise translate(err, args, kwargs) from err

    return wrapper


def welcome(workspace: Workspace | None) -> None:
    """A request from this session (`Workspace.touch`): if its images were evicted while it was away, a warning
    says so in its language, once."""
    news = workspace.touch() if workspace is not None else None
    if news is not None:
        gr.Warning(html.escape(message_text(news, workspace.lang), quote=False), duration=None,
                   title=tr(workspace.lang, "app.evicted_title"))


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
    Closing this generator (the user left) closes `items` when it hands over its next item. The thread runs in a
    copy of the handler's context: Gradio's request is in it, which a ZeroGPU call reads to charge the visitor's
    quota (`cvdemo.gpu`)."""
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

    threading.Thread(target=contextvars.copy_context().run, args=(work,), name="heartbeat", daemon=True).start()
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


def training_job(button: gr.Button, fn: Callable, inputs: list, outputs: list, workspace: gr.State,
                 status: gr.Markdown, clear: tuple = (), halt: gr.Button | None = None, **kwargs):
    """`button` starts the training job `fn` (gated by TRAINING: one at a time on this server). At once, unqueued:
    `status` says it starts, or waits for another user's job; the last run's results (`clear`) go (plots: dimmed
    until drawn again, or until the run ends well); the Stop button `halt` turns on. Then `fn` runs (an update that draws a
    plot is held until the next comes), and `halt` turns off again. Returns `fn`'s event (`kwargs`: its
    api_name...)."""
    def start(ws: Workspace):
        line = ws.tr("app.waiting") if TRAINING.busy() else ws.tr("app.starting")
        return (line, *map(stale, clear)) + ((gr.Button(interactive=True),) if halt else ())

    shown = outputs if isinstance(outputs, list) else [outputs]
    plots = [i for i, component in enumerate(shown)
             if isinstance(component, gr.LinePlot) and any(component is c for c in clear)]

    @functools.wraps(fn)
    def counted(*args, **kwargs):
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
    # `fn` waits its turn in the TRAINING gate (`gated`), not in Gradio's queue (see Gate)
    job = started.then(counted, inputs, outputs, concurrency_id="training", concurrency_limit=None, **kwargs)
    for i in plots:
        job.success(lambda: gr.LinePlot(elem_classes=[]), None, shown[i], queue=False, api_visibility="private")
    if halt:
        job.then(lambda: gr.Button(interactive=False), None, halt, queue=False, api_visibility="private")
    return job


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
