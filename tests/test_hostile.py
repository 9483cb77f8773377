"""Issue 18: what a public Space gets from hostile traffic is refused clearly (a message that names the problem,
never Gradio's bare error or the app's "something went wrong"), through a real server and raw API calls."""
import json
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from PIL import Image

from cvdemo.ui.session import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from attack import GENERIC, Call  # noqa: E402 - the harness's raw client and bare errors (scripts/attack.py)


def raw_call(server: str, api: str, data: list, session: str | None = None) -> tuple[str, dict | list | None]:
    """("complete" or "error", its payload) of one raw call."""
    return Call(server, api, data, session).result()


def refusal(server: str, api: str, data: list) -> str:
    kind, payload = raw_call(server, api, data)
    assert kind == "error" and payload and payload.get("error"), payload
    assert not any(words in payload["error"] for words in GENERIC), payload
    return payload["error"]


TRAIN = ["tf_efficientnet_lite0", "probe", False, 2, 8, 0.01, 0.0, 0.2, 0, False, ""]


@pytest.mark.parametrize("api, data, field", [
    ("train", TRAIN[:5] + [float("nan")] + TRAIN[6:], "Learning rate"),
    ("train", TRAIN[:3] + ["ten"] + TRAIN[4:], "Epochs"),
    ("augment", [None, "", float("inf"), 0, None], "Samples (K)"),
    ("selftrain", ["builtin", "digits", 0.05, None, 0.9, False, False, "three", 30, 0], "Rounds"),
])
def test_a_number_that_is_not_one_is_refused_naming_the_field(server, api, data, field):
    assert f"{field}:" in refusal(server, api, data)


def test_the_refusal_writes_one_line_to_the_log_and_no_traceback(server):
    before = server.log.read_text()
    refusal(server, "bias_experiment", [float("nan")])  # refused at the door
    refusal(server, "classify", [None, "tf_efficientnet_lite0"])  # refused by the handler
    added = server.log.read_text()[len(before):]
    assert "Traceback" not in added and len(added.strip().splitlines()) == 2, added


@pytest.mark.parametrize("image", [
    {"path": "http://127.0.0.1:9/cat.jpg", "meta": {"_type": "gradio.FileData"}},  # gradio_client.handle_file(url)
    "https://example.com/cat.jpg",  # a bare string
])
def test_a_url_as_an_image_is_refused_clearly(server, image):
    assert "web address" in refusal(server, "classify", [image, "tf_efficientnet_lite0"])


def test_the_sweep_takes_the_values_its_api_page_documents(server):
    client = Client(server, verbose=False)
    documented = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/distill_sweep"]
    alphas = documented["parameters"][0]["type"]["items"]["enum"]
    assert "0.9" in alphas  # strings
    _, text, _ = client.predict(["0.0", "0.9"], ["4"], 3, 30, "mlp", False, api_name="/distill_sweep")
    assert "best" in text


def zip_of(path, classes: dict[str, list]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, files in classes.items():
            for i, content in enumerate(files):
                zf.writestr(f"{name}/{i}.png", content)
    return str(path)


def png(i: int) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (37 * i % 255, 90, 200 - 11 * i)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_dataset_left_with_one_class_says_which_files_were_skipped_and_why(tmp_path):
    import gradio as gr

    from cvdemo.ui.transfer import SOURCES, load_dataset

    data = zip_of(tmp_path / "d.zip", {"cat": [png(i) for i in range(5)], "dog": [b"not a picture"] * 3})
    with pytest.raises(gr.Error) as refused:
        load_dataset(Workspace(), SOURCES[1], "textures", data, *[""] * 4, *[None] * 4)
    message = refused.value.message
    assert "at least 2 classes" in message and "dog/0.png: skipped" in message and "dog/2.png" in message


def test_an_emoji_named_dataset_exports_under_a_short_safe_name(tmp_path):
    from cvdemo import uploads
    from cvdemo.ui.transfer import SOURCES, export_files, load_dataset

    archive = tmp_path / ("😀" * 60 + ".zip")
    zip_of(archive, {"cat": [png(i) for i in range(5)], "dog": [png(i + 9) for i in range(5)]})
    ws = Workspace()
    try:
        load_dataset(ws, SOURCES[1], "textures", str(archive), *[""] * 4, *[None] * 4)
        exported = export_files(ws, "dataset")
        assert exported.endswith("dataset.zip") and len(exported.rsplit("/", 1)[1].encode()) < 100
        back, _ = uploads.from_zip(exported)
        assert back.counts() == {"cat": 5, "dog": 5}
    finally:
        ws.close()


def test_classification_never_waits_behind_training_and_abandoned_jobs_are_dropped(server, examples):
    """Issue 18.2: a training job runs, and sessions without number flood the training endpoints with more jobs
    than the app's whole queue holds. A few wait, the rest are refused at once saying so, and /classify still
    answers. When their clients hang up, the jobs are dropped (within seconds): a fresh job then runs."""
    from cvdemo.ui import QUEUE_SIZE
    from cvdemo.ui.common import TRAINING

    running = Call(server, "train_classic", ["small_alexnet", 30])
    assert next(running.events())[0] == "generating"  # it runs
    with ThreadPoolExecutor(8) as pool:
        flood = list(pool.map(lambda _: Call(server, "train_classic", ["small_alexnet", 30]), range(QUEUE_SIZE + 1)))
    first = [next(call.events()) for call in flood]  # a waiting job's stream says nothing yet ("generating")
    refusals = [payload["error"] for kind, payload in first if kind == "error"]
    assert len(refusals) == len(flood) - TRAINING.max_waiting
    assert all("jobs are already waiting" in text for text in refusals), refusals[0]
    assert Client(server, verbose=False).predict(handle_file(examples["cat"]), api_name="/classify")["label"]
    for call in [running, *flood]:  # every client goes away
        call.close()
    deadline = time.monotonic() + 60
    while (outcome := raw_call(server, "distill_sweep", [["0.9"], ["4"], 3, 30, "mlp", False]))[0] == "error":
        assert time.monotonic() < deadline, outcome  # still refused: the abandoned jobs were kept
        time.sleep(0.25)
    assert outcome[0] == "complete"


def test_the_gate_takes_one_job_per_session_and_a_bounded_line():
    """The training gate: a second job from a session that has one is refused; beyond its waiting places, a job
    is refused at once; jobs run in the order they came."""
    from cvdemo.errors import LimitError
    from cvdemo.ui.common import Gate

    gate, sessions = Gate("training", slots=1, waiting=2), [Workspace() for _ in range(4)]
    with gate.ticket(sessions[0]) as first, gate.ticket(sessions[1]) as second, gate.ticket(sessions[2]) as third:
        assert gate.wait(first, 0) is None  # it runs
        assert (gate.wait(second, 0), gate.wait(third, 0)) == (0, 1)
        with pytest.raises(LimitError, match="this session"):
            gate.ticket(sessions[1]).__enter__()
        with pytest.raises(LimitError, match="2 training jobs are already waiting"):
            gate.ticket(sessions[3]).__enter__()
    assert gate.running == 0 and gate.queue == [] and gate.holders == set()


def test_webcam_shots_pass_the_image_door_and_a_session_keeps_a_bounded_number(tmp_path):
    """Issue 18.4: "Add shot" reads the shot through cvdemo.images (allowed formats, the pixel limit) and keeps it
    shrunk as datasets keep images; a session keeps at most MAX_SHOTS."""
    import gradio as gr

    from attack import image_bytes, png_claiming
    from cvdemo.ui.session import MAX_SHOTS
    from cvdemo.ui.transfer import add_shot

    ws, big = Workspace(), tmp_path / "big.png"
    Image.new("RGB", (4000, 3000), (9, 99, 199)).save(big)
    add_shot(ws, str(big), 0)
    assert max(ws.shots[0][0].size) <= 576
    for name, data, words in (("huge.png", png_claiming(13_000, 13_000), "megapixels"),
                              ("icon.ico", image_bytes("ICO"), "not an image in a supported format")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(gr.Error, match=words):
            add_shot(ws, str(tmp_path / name), 1)
    small = tmp_path / "small.png"
    Image.new("RGB", (40, 30), (1, 2, 3)).save(small)
    for _ in range(MAX_SHOTS - 1):
        add_shot(ws, str(small), 2)
    with pytest.raises(gr.Error, match=f"already has {MAX_SHOTS} webcam shots"):
        add_shot(ws, str(small), 3)


def test_a_session_whose_client_went_away_loses_its_data_and_files(server, tmp_path):
    """Issue 18.4/18.6: when a session's client goes (its page closed: Gradio's unload), its dataset and files go
    at once, not hours later."""
    client = Client(server, verbose=False)
    path = tmp_path / "d.zip"
    zip_of(path, {"cat": [png(i) for i in range(5)], "dog": [png(i + 9) for i in range(5)]})
    client.predict("zip", "textures", handle_file(str(path)), "", "", "", "", [], [], [], [],
                   api_name="/load_dataset")
    session = client.session_hash
    assert raw_call(server, "train", TRAIN, session=session)[0] == "complete"  # the same session, by its hash
    client.close()  # its heartbeat stops
    deadline = time.monotonic() + 30
    while True:
        kind, payload = raw_call(server, "train", TRAIN, session=session)
        if kind == "error" and "Load a dataset first" in payload["error"]:
            break
        assert time.monotonic() < deadline, payload
        time.sleep(0.25)
