"""The web app: one module per tab (tabs import ui.common and the library, never each other). Only app.py and
the tests import this package; the library never does."""
from __future__ import annotations

import atexit
import threading
import time

import gradio as gr
from starlette.middleware import Middleware

from .. import images, memory
from ..inference import get_classifier, unload_idle
from . import architectures, augment, classify, distill, selftrain, transfer
from .common import model_choices
from .i18n import DETECT_JS, RELOAD_JS, SWITCH_JS, LanguageFirst, _, i18n, lang_of, lesson_panel
from .session import Workspace, hand_off, take_over, workspace_state

QUEUE_SIZE = 64             # requests waiting at most; more get "queue full" at once
INFERENCE_CONCURRENCY = 2   # classifications at a time (each uses the CPU's cores)


CSS = ".stale { opacity: 0.35; }"  # a result of the last run while a new run starts (ui.common.stale)
TABS = ("classify", "augment", "transfer", "distill", "selftrain", "architectures")


def switch_language(lang: str, workspace: Workspace):
    """The switch: this session's work waits for the reloaded page under a token (this page keeps an empty
    workspace); the page then reloads in the chosen language (i18n.RELOAD_JS)."""
    return hand_off(workspace), Workspace()


def set_language(lang: str, token: str, workspace: Workspace):
    """Page load: the session's language; after the switch, the work handed over (`token`) with its models in
    the model lists and each lesson panel's "your run" again, in that language."""
    moved = take_over(token)
    workspace = moved or workspace
    workspace.lang = lang_of(lang)
    redo = [workspace.shown(tab) or gr.skip() for tab in TABS]
    if moved is None:
        return workspace.lang, gr.skip(), gr.skip(), gr.skip(), gr.skip(), *redo
    models = gr.Dropdown(choices=model_choices(workspace))
    teachers = gr.Dropdown(choices=distill.teacher_choices(workspace))
    return workspace.lang, workspace, models, models, teachers, *redo


def build_demo() -> gr.Blocks:
    """The whole page: a tab per capability that works (no placeholders), each opening with its lesson. The
    server's malloc is tuned first (`memory.tune_malloc`: before its threads start), and what lives as long as the
    process is settled at the end (`memory.settle`)."""
    memory.tune_malloc()
    with gr.Blocks(title="cvdemo: a computer-vision lab") as demo:
        with gr.Row(equal_height=True):
            gr.Markdown(_("app.title"))
            language = gr.Radio([("English", "en"), ("한국어", "ko")], value="en", label=_("app.language"),
                                elem_id="language", scale=0, min_width=220)
        workspace = workspace_state()  # this browser session's datasets, models, files and language
        lessons = {}
        with gr.Tab(_("app.tab_classify")):
            lessons["classify"] = lesson_panel("classify")
            classify_model = classify.build(workspace, lessons["classify"])
        with gr.Tab(_("app.tab_augment")):
            lessons["augment"] = lesson_panel("augment")
            augment_spec = augment.build(workspace, lessons["augment"])
        with gr.Tab(_("app.tab_transfer")):
            lessons["transfer"] = lesson_panel("transfer")
            transfer.build(workspace, lessons["transfer"], classify_model, augment_spec)
        with gr.Tab(_("app.tab_distill")):
            lessons["distill"] = lesson_panel("distill")
            distill_model, teacher = distill.build(workspace, lessons["distill"], classify_model)
        with gr.Tab(_("app.tab_selftrain")):
            lessons["selftrain"] = lesson_panel("selftrain")
            selftrain.build(workspace, lessons["selftrain"])
        with gr.Tab(_("app.tab_architectures")):
            lessons["architectures"] = lesson_panel("architectures")
            architectures.build(workspace, lessons["architectures"])
        panels = [lessons[tab] for tab in TABS]
        token = gr.Textbox(visible=False)  # carries this session's work over the switch's reload
        language.input(switch_language, [language, workspace], [token, workspace], js=SWITCH_JS,
                       api_visibility="private", queue=False).then(None, token, None, js=RELOAD_JS, queue=False)
        demo.load(set_language, [language, token, workspace],
                  [language, workspace, classify_model, distill_model, teacher, *panels], js=DETECT_JS,
                  api_visibility="private", queue=False)

        def end_session(request: gr.Request) -> None:
            """The page closed or the API client went away: the session's run and data go now (Workspace.release)."""
            if request.session_hash in demo.state_holder:
                state = demo.state_holder[request.session_hash]
                if workspace._id in state:
                    state[workspace._id].release()

        demo.unload(end_session)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=INFERENCE_CONCURRENCY)
    memory.settle()  # the app is built: each job's and session's trim no longer walks all of it
    # Load the default model (and export its ONNX copy on a first run) while the page comes up,
    # so the first user doesn't wait for it.
    warm_up = threading.Thread(target=get_classifier, name="warm-up", daemon=True)
    warm_up.start()
    # A process that ends while the warm-up is inside torch or onnxruntime aborts ("terminate called without an
    # active exception"): a script that builds the demo and exits, a server stopped in its first seconds.
    atexit.register(warm_up.join)
    if not any(thread.name == "tidy" for thread in threading.enumerate()):  # one per process
        threading.Thread(target=tidy, name="tidy", daemon=True).start()
    return demo


def tidy(every: float = 60) -> None:
    """For good, every `every` seconds: the classifiers no request used for inference.IDLE_SECONDS go, and what
    they and the quick requests (Grad-CAM, feature maps: no gated job trims after them) freed goes back to the
    system, so that a server at rest comes back near where it started."""
    while True:
        time.sleep(every)
        unload_idle()
        memory.trim()


def launch_options() -> dict:
    """Arguments for `demo.launch`: upload limit, the only extra files served (the examples), the
    translations the browser uses (gr.I18n), the script that starts the page in the chosen language
    (i18n.LanguageFirst), and Gradio's own refusals said (a payload it can't read before any handler runs: a path
    that was not uploaded, a string where a file goes) instead of a bare error.
    Host and port come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default 127.0.0.1:7860)."""
    return {"max_file_size": images.MAX_BYTES, "allowed_paths": images.sample_photos(), "i18n": i18n(),
            "app_kwargs": {"middleware": [Middleware(LanguageFirst)]}, "css": CSS, "show_error": True}
