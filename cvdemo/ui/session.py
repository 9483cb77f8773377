"""Per-user workspace: the datasets, fine-tuned models and files of ONE browser session.

Kept in a gr.State, so no other session can list, use or download them. When the session ends (its page
closed or its API client gone: Gradio's unload event), its run stops and its data, models and folder (exports)
go at once (`release`); Gradio drops the Workspace itself an hour later, or after SESSION_TTL idle seconds."""
from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
import uuid
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


class Workspace:
    """What one user made: models by name, the last run's result and dataset, a Stop flag."""

    def __init__(self) -> None:
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
        self.stop.set()
        self.dataset = self.result = self.selftrain = None
        self.shots.clear()
        self.close()
        memory.trim()  # glibc keeps freed heap pages (RSS stays up) until asked to give them back

    def add_shot(self, slot: int, image) -> int:
        """Keep a webcam shot (already through the image door) for a class slot; returns the session's count."""
        count = sum(map(len, self.shots.values()))
        if count >= MAX_SHOTS:
            raise LimitError(f"This session already has {MAX_SHOTS} webcam shots, the limit; build the dataset "
                             "with them, or upload images instead.", code="limit.shots", limit=MAX_SHOTS)
        self.shots.setdefault(slot, []).append(image)
        return count + 1


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
