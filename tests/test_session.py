"""Per-session workspaces: each browser session gets its own, and its files go when it ends."""
import copy

import pytest

from cvdemo import ModelError
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
