"""Per-session workspaces: each browser session gets its own, and its files go when it ends."""
import copy

import pytest

from cvdemo import ModelError
from cvdemo.datasets import Dataset
from cvdemo.inference import Classifier
from cvdemo.models import create_model
from cvdemo.ui.i18n import tr
from cvdemo.ui.session import MAX_SESSION_MODELS, Workspace, workspace_state


def trained() -> Classifier:
    """Stands in for a fine-tuned model (its own object, as the Transfer tab makes)."""
    return Classifier("tf_efficientnet_lite0", create_model(), runtime="torch")


def test_each_session_gets_a_fresh_workspace_with_its_own_folder():
    state = workspace_state()
    first, second = copy.deepcopy(state.value), copy.deepcopy(state.value)  # what Gradio does per session
    assert first is not second and first.folder != second.folder
    first.add_model(trained(), "x")
    assert list(second.models) == [] and second.dataset is None


def test_closing_a_session_removes_its_files_and_models():
    workspace = Workspace()
    (workspace.files() / "model.safetensors").write_bytes(b"weights")
    workspace.add_model(trained(), "probe")
    workspace.close()
    assert not workspace.folder.exists() and not workspace.models


def test_a_session_keeps_its_last_few_models_under_unique_names():
    workspace = Workspace()
    model = trained()
    names = [workspace.add_model(model, "probe") for _ in range(MAX_SESSION_MODELS + 2)]
    assert len(set(names)) == len(names)
    assert list(workspace.models) == names[-MAX_SESSION_MODELS:]
    assert workspace.classifier(names[-1]) is model
    with pytest.raises(ModelError):  # dropped models are gone, not looked up elsewhere
        workspace.classifier(names[0])
    assert workspace.classifier(None).name == "tf_efficientnet_lite0"  # the shared default


def test_one_run_at_a_time_per_session_and_stop_reaches_the_run():
    from cvdemo import LimitError

    workspace = Workspace()
    with workspace.job() as stop:
        with pytest.raises(LimitError, match="already going"):
            with workspace.job():
                pass
        assert "best model so far" in workspace.request_stop() and stop.is_set()
    with workspace.job() as again:  # the lock was released; a new run gets a fresh flag
        assert not again.is_set()


def test_the_language_switch_hands_the_work_to_the_reloaded_page_once(monkeypatch):
    """The switch reloads the page: this session's models and "your run" go to the new page (once, in time)."""
    from cvdemo.ui import session, set_language, switch_language

    workspace = Workspace()
    name = workspace.add_model(trained(), "probe")
    workspace.show("classify", "app.no_run_yet")
    token, left = switch_language("ko", workspace)
    assert left is not workspace and list(left.models) == []  # the old page keeps nothing
    lang, moved, models, _distill_models, teachers, classify_panel, *_panels = set_language("ko", token, Workspace())
    assert lang == "ko" and moved is workspace and workspace.lang == "ko"
    assert name in [value for _label, value in models.choices] and name in [v for _l, v in teachers.choices]
    assert classify_panel == tr("ko", "app.no_run_yet")  # the lesson panel's last run, in the new language
    assert set_language("ko", token, Workspace())[1] is not workspace  # the token is spent
    token = session.hand_off(workspace)
    monkeypatch.setattr(session, "HANDOFF_SECONDS", -1)
    assert session.take_over(token) is None and not workspace.models  # too late: closed


def images(n: int, side: int = 100) -> Dataset:
    """A two-class dataset of n distinct side x side RGB images (4 bytes a pixel in Pillow)."""
    import numpy as np
    from PIL import Image

    return Dataset("d", ["a", "b"], [Image.new("RGB", (side, side), (i % 256, i // 256, 7)) for i in range(n)],
                   np.arange(n) % 2)


@pytest.fixture
def budget(monkeypatch):
    """A budget of 3 datasets of 10 images of 100x100 (400,000 bytes), over sessions of this test alone."""
    import weakref

    from cvdemo.ui import session

    monkeypatch.setattr(session, "_sessions", weakref.WeakSet())
    monkeypatch.setattr(session, "IMAGE_BUDGET", 3 * 10 * 100 * 100 * 4)
    return session


def test_a_session_counts_each_image_it_keeps_once(budget):
    """Issue 18.4: a session's stored bytes are counted: its dataset, a run's split of it (the same images), the
    run's mistakes (some of them), a self-training pool and webcam shots."""
    from types import SimpleNamespace

    ws, data = Workspace(), images(10)
    ws.dataset = data
    assert ws.stored == 10 * 100 * 100 * 4
    ws.result = SimpleNamespace(train_data=data.subset(range(8)), val_data=data.subset([8, 9]),
                                misclassified=[(data.images[9], "a", "b", 0.9)])
    assert ws.stored == 10 * 100 * 100 * 4  # the same images: counted once
    ws.selftrain = (SimpleNamespace(labelled=images(2).images, unlabeled=[], test=images(1, side=10).images), {})
    ws.add_shot(0, images(1, side=50).images[0])
    assert ws.stored == (10 + 2) * 100 * 100 * 4 + 10 * 10 * 4 + 50 * 50 * 4
    ws.release()
    assert ws.stored == 0 and ws.image_bytes() == 0


def test_a_session_that_kept_something_gives_the_memory_back_when_it_ends(monkeypatch):
    """A session's end trims the heap (a garbage collection, then malloc_trim) when the session kept images or
    models; a page only looked at, or an API call, kept nothing and costs no collection."""
    from cvdemo import memory

    trims = []
    monkeypatch.setattr(memory, "trim", lambda: trims.append(1))
    Workspace().release()
    assert trims == []
    ws = Workspace()
    ws.dataset = images(2)
    ws.release()
    assert trims == [1] and ws.stored == 0


def test_past_the_budget_the_idlest_sessions_images_go_and_its_models_stay(budget):
    """Issue 18.4: one budget over every session: a session that stores images past it evicts the idlest other
    session's (not one with a run going), until all fit."""
    idlest, busy, recent, newcomer = Workspace(), Workspace(), Workspace(), Workspace()
    for ws in (idlest, busy, recent):
        ws.dataset = images(10)
    name = idlest.add_model(trained(), "probe")
    idlest.used, busy.used = 0.0, 1.0  # the longest without a request: idlest, then busy
    with busy.job():  # a run going: never evicted, however idle
        newcomer.dataset = images(10)
    assert idlest.dataset is None and idlest.stored == 0 and list(idlest.models) == [name]
    assert busy.dataset is not None and recent.dataset is not None and newcomer.dataset is not None
    assert sum(ws.stored for ws in budget._sessions) <= budget.IMAGE_BUDGET
    newcomer.dataset = images(20)  # twice as many: the next idlest goes too, the one whose run ended later stays
    assert recent.dataset is None and busy.dataset is not None and newcomer.dataset is not None


def test_an_evicted_user_is_told_once_in_their_language_and_a_refusal_says_why(budget, monkeypatch):
    """Issue 18.4: the user whose images were evicted hears it at their next request (a warning, once, in their
    language), and a job that needs the dataset says why it is gone instead of a bare "load a dataset"."""
    import gradio as gr

    from cvdemo.ui.transfer import load_dataset, train

    warnings = []
    monkeypatch.setattr(gr, "Warning", lambda message, **kw: warnings.append((message, kw.get("title"))))
    ws = Workspace()
    ws.lang = "ko"
    ws.dataset = images(10)
    ws.used -= 600  # ten minutes without a request
    ws.evict()
    settings = ("tf_efficientnet_lite0", "probe", False, 2, 8, 0.01, 0.0, 0.2, 0, False, "")
    with pytest.raises(gr.Error) as refused:
        list(train(ws, *settings))
    assert warnings == [(tr("ko", "error.session.evicted", minutes=10), tr("ko", "app.evicted_title"))]
    assert "10분" in str(refused.value) and "다시 불러오세요" in str(refused.value)
    with pytest.raises(gr.Error, match="10분"):  # told once; every refusal for want of the dataset says why
        list(train(ws, *settings))
    assert len(warnings) == 1
    load_dataset(ws, "builtin", "faces", None)  # the user loads again: the eviction is behind them
    assert ws.evicted is None and ws.dataset is not None
