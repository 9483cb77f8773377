"""Issue 18: what a public Space gets from hostile traffic is refused clearly (a message that names the problem,
never Gradio's bare error or the app's "something went wrong"), through a real server and raw API calls."""
import json
import urllib.request
import zipfile

import pytest
from gradio_client import Client
from PIL import Image

from cvdemo.ui.session import Workspace

GENERIC = ("Something went wrong", "has not enabled verbose error reporting")


def raw_call(server: str, api: str, data: list, session: str | None = None) -> tuple[str, dict | list | None]:
    """One call through Gradio's REST queue, with JSON a client library would not send (NaN, a bare URL string):
    ("complete" or "error", its payload)."""
    body = json.dumps({"data": data, **({"session_hash": session} if session else {})}).encode()
    request = urllib.request.Request(f"{server}gradio_api/call/{api}", body, {"Content-Type": "application/json"})
    event = json.load(urllib.request.urlopen(request, timeout=60))["event_id"]
    lines = urllib.request.urlopen(f"{server}gradio_api/call/{api}/{event}", timeout=300).read().decode().splitlines()
    kind = [line.split(": ", 1)[1] for line in lines if line.startswith("event: ")][-1]
    payload = [line.split(": ", 1)[1] for line in lines if line.startswith("data: ")][-1]
    return kind, json.loads(payload)


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
    ("selftrain", ["builtin", "digits", 0.05, None, 0.9, False, False, "three", 0], "Rounds"),
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
