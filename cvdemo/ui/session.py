"""Per-user workspace: the datasets, fine-tuned models and files of ONE browser session.

Kept in a gr.State, so no other session can list, use or download them. When the session ends (its page
closed or its API client gone: Gradio's unload event), its run stops and its data, models and folder (exports)
go at once (`release`); Gradio drops the Workspace itself an hour later, or after SESSION_TTL idle seconds.

The images every open session keeps (datasets, a Transfer run's split, a self-training pool, webcam shots) share
one budget, IMAGE_BUDGET bytes: a session that stores images (`Kept`) is counted again (`admit`), and while all of
them hold more, the idlest other session loses its images (`Workspace.evict`; its models stay). Its user is told
at their next request (`Workspace.touch`), and a refusal for want of a dataset or a run says why it is gone."""
from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gradio as gr

from .. import memory
from ..errors import LimitError
from ..inference import Classifier, get_classifier
from ..train import StopFlag
from .i18n import message_text, tr

SESSION_TTL = 2 * 3600   # seconds a workspace lives after its last update
MAX_SESSION_MODELS = 3   # fine-tuned models kept per session (oldest dropped)
MAX_SHOTS = 40           # webcam shots kept per session (all class slots together)
ROOT = Path(tempfile.gettempdir()) / "cvdemo-sessions"
HANDOFF_SECONDS = 120    # a workspace handed to the next page (the language switch reloads) waits this long
MAX_HANDOFFS = 256       # handed-off workspaces waiting at most (the oldest are closed)
# Bytes of images all sessions together keep in memory (Pillow holds 4 bytes a pixel for RGB: a 2,000-image upload
# stored at 288x384 px is 0.9 GB); past it the idlest sessions' images go.
IMAGE_BUDGET = 4 * 2**30
MISSING = ("dataset.missing", "model.missing")  # refusals that, after an eviction, say why the data is gone


class Kept:
    """A Workspace attribute that holds images (its dataset, last Transfer result, last self-training pool):
    storing something there counts the session's images against the budget of all sessions (`admit`)."""

    def __set_name__(self, owner, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, workspace, owner=None):
        return self if workspace is None else getattr(workspace, self.slot, None)

    def __set__(self, workspace, value) -> None:
        setattr(workspace, self.slot, value)
        if value is not None:
            workspace.evicted = None  # new images: the user has moved on from the eviction
            admit(workspace)


class Workspace:
    """What one user made: models by name, the last run's result and dataset, a Stop flag."""

    dataset, result, selftrain = Kept(), Kept(), Kept()

    def __init__(self) -> None:
        self.used = time.monotonic()  # this session's last request (`touch`): the idlest lose their images first
        self.stored = 0  # bytes of images it keeps, as last counted (`admit`)
        self.evicted: LimitError | None = None  # why its images are gone, while they are
        self.told = True  # whether its user has been told about the eviction
        with _budget_lock:
            _sessions.add(self)
        self.folder = ROOT / uuid.uuid4().hex  # unguessable, one per session
        self.models: OrderedDict[str, Classifier] = OrderedDict()
        self.result = None
        self.dataset = None
        self.selftrain = None  # the Self-train tab's last (pool, final round), for moving the threshold after
        self.shots: dict[int, list] = {}  # webcam shots per class slot, before a dataset is built
        self.stop = StopFlag()
        self.trained = 0  # models trained in this session so far (names stay unique)
        self.lock = threading.Lock()  # one training run per session at a time
        self.lang = "en"  # "en" or "ko": the language switch (and the browser's locale on page load)
        self.showed: dict[str, tuple[str, dict]] = {}  # per tab: what the last run showed (text key, numbers)

    def __deepcopy__(self, memo):  # gr.State copies its initial value for each new session
        return Workspace()

    def files(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder

    def add_model(self, classifier: Classifier, description: str) -> str:
        """Keep a trained model under a new name ("my model N: ..."); returns the name."""
        self.trained += 1
        name = classifier.name = f"my model {self.trained}: {description}"
        self.models[name] = classifier
        self.models.move_to_end(name)
        while len(self.models) > MAX_SESSION_MODELS:
            self.models.popitem(last=False)
        return name

    @contextmanager
    def job(self) -> Iterator[StopFlag]:
        """One training run at a time in this session; yields the run's fresh Stop flag."""
        if not self.lock.acquire(blocking=False):
            raise LimitError("A run is already going in this session: stop it or wait.", code="limit.busy")
        try:
            self.stop = StopFlag()
            yield self.stop
        finally:
            self.used = time.monotonic()  # a long run ends: not idle since it started
            self.lock.release()

    def request_stop(self) -> str:
        """The Stop button: the run ends after its current step and keeps its best model so far."""
        self.stop.set()
        return self.tr("app.stopping")

    def tr(self, key: str, **params) -> str:
        """A text in this session's language."""
        return tr(self.lang, key, **params)

    def say(self, message) -> str:
        """A library error or note (cvdemo.errors.Note: a file skipped...) in this session's language."""
        return message_text(message, self.lang)

    def show(self, tab: str, key: str, **params) -> str:
        """What a run just showed, for the tab's lesson panel ("Your run: ..."), in this session's
        language; kept so that switching the language re-renders it."""
        self.showed[tab] = (key, params)
        return self.tr(key, **params)

    def shown(self, tab: str) -> str | None:
        """The tab's last `show`, in this session's (maybe new) language; None before any run."""
        if tab not in self.showed:
            return None
        key, params = self.showed[tab]
        return self.tr(key, **params)

    def classifier(self, name: str | None) -> Classifier:
        """This session's fine-tuned model of that name, else a shared pretrained one."""
        return self.models.get(name or "") or get_classifier(name or None)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.models.clear()

    def release(self) -> None:
        """The session ended: its run stops after its current step, and its dataset, results, shots, models and
        files go now (a page that comes back starts afresh)."""
        kept = self.models or next(self._images(), None) is not None
        self.stop.set()
        self._forget()
        self.close()
        if kept:  # glibc keeps freed heap pages (RSS stays up) until asked; a page only looked at freed nothing
            memory.trim()

    def _forget(self) -> None:
        """Drop every image this session keeps (its models stay)."""
        self._dataset = self._result = self._selftrain = None
        self.shots.clear()
        self.stored = 0

    def evict(self) -> None:
        """The server is over its image budget and this session is the idlest: its images go; its user is told at
        their next request (`touch`), and `MISSING` refusals say why."""
        minutes = round((time.monotonic() - self.used) / 60)
        self._forget()
        self.evicted = LimitError(
            f"Your images (the dataset, the last training run's images, self-training images, webcam shots) were "
            f"removed from the server's memory to make room for other users, after {minutes} minutes without use. "
            "Your trained models are kept. Load the dataset again to go on.", code="session.evicted", minutes=minutes)
        self.told = False

    def touch(self) -> LimitError | None:
        """A request from this session (it is no longer idle); returns, once, why its images are gone if they
        were evicted."""
        self.used = time.monotonic()
        if self.evicted is None or self.told:
            return None
        self.told = True
        return self.evicted

    def image_bytes(self) -> int:
        """Bytes of the images this session keeps, each image counted once (a run's split shares its dataset's):
        4 a pixel for RGB, as Pillow holds them."""
        images = {id(image): image for image in self._images()}
        return sum(image.width * image.height * (1 if image.mode in ("1", "L", "P") else 4)
                   for image in images.values())

    def _images(self) -> Iterator:
        """The images of its dataset, its last run's split (a TransferResult's) and mistakes, its self-training
        pool (a selftrain.Pool) and its shots."""
        result, pool = self.result, (self.selftrain or (None,))[0]
        for holder in (self.dataset, getattr(result, "train_data", None), getattr(result, "val_data", None), pool):
            for field in ("images", "unlabeled", "labelled", "test"):
                yield from getattr(holder, field, None) or ()
        yield from (wrong[0] for wrong in getattr(result, "misclassified", ()))
        for shots in self.shots.values():
            yield from shots

    def add_shot(self, slot: int, image) -> int:
        """Keep a webcam shot (already through the image door) for a class slot; returns the session's count."""
        count = sum(map(len, self.shots.values()))
        if count >= MAX_SHOTS:
            raise LimitError(f"This session already has {MAX_SHOTS} webcam shots, the limit; build the dataset "
                             "with them, or upload images instead.", code="limit.shots", limit=MAX_SHOTS)
        self.shots.setdefault(slot, []).append(image)
        admit(self)
        return count + 1


_sessions: weakref.WeakSet[Workspace] = weakref.WeakSet()  # every Workspace alive
_budget_lock = threading.Lock()


def admit(workspace: Workspace) -> list[Workspace]:
    """Count `workspace`'s images again; then, while all sessions together keep more than IMAGE_BUDGET bytes, the
    idlest other session with images and no run going loses them (`Workspace.evict`). Returns those evicted."""
    evicted = []
    with _budget_lock:
        workspace.stored = workspace.image_bytes()
        total = sum(ws.stored for ws in _sessions)
        for ws in sorted(_sessions, key=lambda ws: ws.used):
            if total <= IMAGE_BUDGET:
                break
            if ws is not workspace and ws.stored and not ws.lock.locked():
                total -= ws.stored
                ws.evict()
                evicted.append(ws)
    if evicted:
        memory.trim()
    return evicted


def workspace_state() -> gr.State:
    return gr.State(Workspace(), time_to_live=SESSION_TTL, delete_callback=lambda ws: ws.close())


_handoffs: OrderedDict[str, tuple[float, Workspace]] = OrderedDict()
_handoffs_lock = threading.Lock()


def hand_off(workspace: Workspace) -> str:
    """Keep `workspace` for the page that replaces this one (the language switch reloads the page): returns a
    one-time token that `take_over` exchanges for it within HANDOFF_SECONDS; one not taken is closed."""
    token, now = secrets.token_urlsafe(24), time.monotonic()
    with _handoffs_lock:
        while _handoffs and (len(_handoffs) >= MAX_HANDOFFS or now - next(iter(_handoffs.values()))[0]
                             > HANDOFF_SECONDS):
            _handoffs.popitem(last=False)[1][1].close()  # the oldest: not taken in time
        _handoffs[token] = (now, workspace)
    return token


def take_over(token: str | None) -> Workspace | None:
    """The workspace handed off under `token` (once, and only while it waits), else None."""
    with _handoffs_lock:
        since, workspace = _handoffs.pop(token or "", (0.0, None))
    if workspace is not None and time.monotonic() - since > HANDOFF_SECONDS:
        workspace.close()
        return None
    return workspace
