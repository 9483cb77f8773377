"""Fuzz every public endpoint of a real server with malformed input that this test makes itself.

Every bad input must be refused with a clear message (no result, no traceback text, not Gradio's
hidden "Error"), must leak no file contents and run no code, and the server must keep serving:
after every few bad inputs the coffee photo must still come back as "espresso".
"""
import io
import json
import os
import pickle
import random
import stat
import struct
import time
import zipfile
import zlib
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

MIN_FILES = 30         # the corpus of bad files must not shrink silently
CHECK_EVERY = 10       # a valid request after this many bad calls (and after the last)
HIDDEN = "show_error"  # in gradio_client's message when the server hid an unexpected exception
ROOT = Path(__file__).resolve().parent.parent


# --- the corpus --------------------------------------------------------------------------------

class Payload:
    """Unpickling this runs `touch marker`: it must never be unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header (correct CRCs) claiming width x height, with almost no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def zipped(members: list[tuple[str, bytes]], symlink: tuple[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink[0])
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, symlink[1])
    return buf.getvalue()


def flipped(data: bytes, start: int, step: int) -> bytes:
    out = bytearray(data)
    for i in range(start, len(out), step):
        out[i] ^= 0xFF
    return bytes(out)


def bad_files(folder: Path, photo: str, marker: Path) -> list[Path]:
    """Write the malformed files into `folder` (deterministic) and return their paths."""
    rng = random.Random(1234)
    noise = rng.randbytes
    small = Image.open(photo).convert("RGB").resize((160, 120))

    def encoded(fmt: str) -> bytes:
        buf = io.BytesIO()
        small.save(buf, fmt)
        return buf.getvalue()

    png, jpeg, gif, webp, ico = (encoded(f) for f in ("PNG", "JPEG", "GIF", "WEBP", "ICO"))
    huge_jpeg = bytearray(jpeg)
    sof = huge_jpeg.find(b"\xff\xc0")
    huge_jpeg[sof + 5:sof + 9] = struct.pack(">HH", 65000, 65000)
    huge_gif = (b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\0\0\0"
                + b"\x2c" + struct.pack("<HHHH", 0, 0, 65535, 65535) + b"\0\x02\x02\x44\x01\0\x3b")
    huge_bmp = (b"BM" + struct.pack("<IHHI", 54, 0, 0, 54)
                + struct.pack("<IiiHHIIiiII", 40, 100000, 100000, 1, 24, 0, 0, 0, 0, 0, 0))
    files = {
        # corrupt: random bytes behind a real signature, real images with bytes flipped
        "random_after_jpeg_header.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + noise(4000),
        "random_after_png_signature.png": b"\x89PNG\r\n\x1a\n" + noise(4000),
        "random_after_gif_header.gif": b"GIF89a" + noise(4000),
        "random_after_webp_header.webp": b"RIFF" + struct.pack("<I", 4012) + b"WEBPVP8 " + noise(4000),
        "byte_flipped.png": flipped(png, 60, 50),
        "byte_flipped.jpg": flipped(jpeg, 2, 7),
        "byte_flipped.gif": flipped(gif, 6, 5),
        "byte_flipped.webp": flipped(webp, 30, 9),
        # truncated
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": png[: len(png) // 2],
        "truncated.gif": gif[: len(gif) // 3],
        "truncated.webp": webp[: len(webp) // 2],
        "truncated_in_header.png": png[:20],
        "zero_bytes.png": b"",
        "one_byte.jpg": b"\xff",
        # headers claiming huge (or no) dimensions
        "png_claims_100000x100000.png": png_claiming(100000, 100000),
        "png_claims_9000x9000.png": png_claiming(9000, 9000),  # 81 MP, over the 40 MP limit
        "png_claims_0x0.png": png_claiming(0, 0),
        "gif_claims_65535x65535.gif": huge_gif,
        "bmp_claims_100000x100000.bmp": huge_bmp,
        "jpeg_claims_65000x65000.jpg": bytes(huge_jpeg),
        # mislabelled: not images, or formats that must not be decoded
        "text.jpg": b"hello, this is just text\n" * 10,
        "zip.png": zipped([("a.txt", b"hi")]),
        "html.png": b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
        "svg.png": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9" height="9">'
                   b"<script>alert(1)</script></svg>",
        "pdf.jpg": b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
        "postscript.jpg": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n(pwned) print\n",
        "heic.jpg": b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + noise(100),
        "icon_format.png": ico,
        # archives and pickles
        "zip_bomb_like.jpg": zipped([(f"zeros{i}.bin", bytes(20 << 20)) for i in range(3)]),
        "hostile_zip.png": zipped([("../../evil.txt", b"x"), ("/etc/evil.txt", b"x")],
                                  symlink=("link", "/etc/passwd")),
        "pickle_payload.png": pickle.dumps(Payload(marker)),
        "pickle_payload.pt": pickle.dumps(Payload(marker)),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in files]


BAD_MODELS = ["../../etc/passwd", "a" * 10000, "hf-hub:../../x", "tf_efficientnet_lite0; rm -rf /",
              "no_such_model_xyz", "tf_efficientnet_lite0\x00", "resnet18"]  # resnet18: real, but offline
BLANK_MODELS = ["", " "]  # mean "the default model": these must work


# --- talking to the server ------------------------------------------------------------------------

def unclear(message) -> str | None:
    """Why `message` is not a clear user message, or None when it is."""
    text = (message or "").strip()
    if not text or text.lower() in ("error", "none", "null"):
        return "empty message"
    if "Traceback" in text or 'File "' in text:
        return "traceback text"
    if HIDDEN in text:
        return "an unexpected exception (Gradio hid its message)"
    return None


def call_raw(url: str, api_name: str, data: list) -> tuple[str, object, str]:
    """Gradio's HTTP API: POST /gradio_api/call/<name>, then read the SSE stream of that event.
    Returns (event, data, everything the server sent); event is 'complete', 'error' or 'http <code>'."""
    post = httpx.post(f"{url}gradio_api/call/{api_name}", json={"data": data}, timeout=30)
    if post.status_code != 200:
        return f"http {post.status_code}", post.text, post.text
    event_id = post.json()["event_id"]
    seen, event = [post.text], None
    with httpx.stream("GET", f"{url}gradio_api/call/{api_name}/{event_id}", timeout=60) as stream:
        for line in stream.iter_lines():
            seen.append(line)
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                return event, json.loads(line.removeprefix("data:")), "\n".join(seen)
    return "no answer", None, "\n".join(seen)


def fingerprint(path: str) -> str:
    """A line of the file that would show up verbatim (no quotes to escape) if it leaked."""
    return next(line for line in Path(path).read_text().splitlines()
                if len(line) > 8 and not set(line) & set("\"'\\"))


def upload(url: str, name: str, data: bytes) -> httpx.Response:
    return httpx.post(f"{url}gradio_api/upload", files={"files": (name, data)}, timeout=60)


def file_data(path: str | None, **extra) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, **extra}


def is_file(param: dict) -> bool:
    return "path" in param["type"].get("properties", {})


def is_file_list(param: dict) -> bool:
    return param["type"].get("type") == "array" and "FileData" in str(param["type"].get("items", ""))


# Values that make an endpoint actually read the file parameter being fuzzed.
OVERRIDES = {"/load_dataset": {"source": "zip"}, "/selftrain": {"source": "zip"}}


def valid_value(api_name: str, param: dict, file):
    """A valid value: the photo for a file, no files for a file list, else the parameter's default."""
    if param["parameter_name"] in OVERRIDES.get(api_name, {}):
        return OVERRIDES[api_name][param["parameter_name"]]
    return file if is_file(param) else [] if is_file_list(param) else default(param)


def replaced(values: list, index: int, bad) -> list:
    """Valid `values` for every parameter but `index`, which gets `bad`."""
    return values[:index] + [bad] + values[index + 1:]


def default(param: dict):
    return param["parameter_default"] if param["parameter_has_default"] else param["example_input"]


class Fuzzer:
    """Sends bad inputs, records what was wrong with each answer, checks the server stays healthy."""

    def __init__(self, client: Client, url: str, photo: str):
        self.client, self.url, self.photo = client, url, photo
        self.inputs: set[str] = set()  # distinct malformed inputs
        self.calls = 0
        self.problems: list[str] = []

    def tried(self, what: str) -> None:
        self.inputs.add(what)
        self.calls += 1
        if self.calls % CHECK_EVERY == 0:
            self.check_alive(what)

    def check_alive(self, after: str) -> None:
        try:
            label = self.client.predict(handle_file(self.photo), api_name="/classify")["label"]
        except Exception as err:  # noqa: BLE001 - any failure here is the finding
            label = f"{type(err).__name__}: {err}"
        if label != "espresso":
            self.problems.append(f"after {after}: the valid request gave {label!r}")

    def expect_error(self, what: str, api_name: str, *args) -> None:
        """Through gradio_client: an AppError with a clear message."""
        try:
            result = self.client.predict(*args, api_name=api_name)
            self.problems.append(f"{api_name} {what}: a result instead of an error: {str(result)[:200]}")
        except AppError as err:
            if why := unclear(str(err)):
                self.problems.append(f"{api_name} {what}: {why}: {str(err)[:300]!r}")
        except Exception as err:  # noqa: BLE001
            self.problems.append(f"{api_name} {what}: {type(err).__name__} instead of AppError: {err}")
        self.tried(what)

    def expect_raw_error(self, what: str, api_name: str, data: list, *, secret: str | None = None,
                         message_required: bool = True) -> None:
        """Through the HTTP API: an error (or HTTP 4xx) that contains no file contents. Where app code
        ran, its message must be clear; where Gradio refuses a payload before any app code runs,
        it hides its reason (message null), which is accepted (message_required=False)."""
        event, data_back, text = call_raw(self.url, api_name.lstrip("/"), data)
        if secret and secret in text:
            self.problems.append(f"{api_name} {what}: the answer contains the file's contents")
        if event == "error":
            message = data_back.get("error") if isinstance(data_back, dict) else data_back
            if (message_required or message is not None) and (why := unclear(message)):
                self.problems.append(f"{api_name} {what}: {why}: {str(message)[:300]!r}")
        elif not event.startswith("http 4"):
            self.problems.append(f"{api_name} {what}: {event} instead of an error: {text[:200]}")
        self.tried(what)


# --- the tests: one per endpoint, against one server per worker -------------------------------------

# Each endpoint's image, file and model parameters (what this fuzzer knows to send), a test each; the first test
# checks that these are all such parameters the server has, so the list cannot drift.
FUZZED = [("/classify", "image"), ("/classify", "model"), ("/explain", "image"), ("/explain", "model"),
          ("/compare", "image"), ("/mix_up_close", "image"), ("/mix_up_close", "mix_image"), ("/augment", "image"),
          ("/augment", "mix_image"), ("/load_dataset", "zip_file"), ("/soft_targets", "image"),
          ("/soft_targets", "model"), ("/selftrain", "zip_file"), ("/feature_maps", "image")]


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False)


@pytest.fixture(scope="module")
def endpoints(client) -> dict:
    return client.view_api(print_info=False, return_format="dict")["named_endpoints"]


def test_every_image_and_model_input_is_fuzzed(endpoints):
    assert {"/classify", "/explain"} <= set(endpoints)
    assert sorted((name, p["parameter_name"]) for name, info in endpoints.items() for p in info["parameters"]
                  if is_file(p) or p["parameter_name"] == "model") == sorted(FUZZED)


@pytest.mark.parametrize("api_name, fuzzed", FUZZED)
def test_fuzz_an_input_with_malformed_values(api_name, fuzzed, client, server, endpoints, examples, tmp_path,
                                             record_property):
    started = time.monotonic()
    photo = examples["coffee"]
    marker = tmp_path / "pwned"
    fuzz = Fuzzer(client, server, photo)
    uploaded = upload(server, "coffee.png", Path(photo).read_bytes()).json()[0]
    files = bad_files(tmp_path, photo, marker)
    assert len(files) >= MIN_FILES, f"only {len(files)} bad files; the corpus shrank"
    params = endpoints[api_name]["parameters"]
    valid = [valid_value(api_name, p, handle_file(photo)) for p in params]
    valid_raw = [valid_value(api_name, p, file_data(uploaded)) for p in params]

    for i, param in enumerate(params):
        if param["parameter_name"] != fuzzed:
            continue
        if is_file(param):
            for path in files:
                fuzz.expect_error(f"file {path.name}", api_name, *replaced(valid, i, handle_file(str(path))))
            if not (param["parameter_has_default"] and param["parameter_default"] is None):
                fuzz.expect_error("missing image (None)", api_name, *replaced(valid, i, None))
            for url in ("data:image/png;base64,abc", "data:no-comma"):
                # our image input explains a broken data URL; Gradio's own gr.File refuses it silently
                fuzz.expect_raw_error(f"data URL {url!r}", api_name, replaced(valid_raw, i, file_data(None, url=url)),
                                      message_required=param.get("component") == "Image")
            for target in ("/etc/passwd", str(ROOT / "app.py")):
                secret = fingerprint(target)
                relative = os.path.relpath(target, ROOT)
                for path in (target, relative, "file://" + target, f"{server}gradio_api/file={target}"):
                    fuzz.expect_raw_error(f"image path {path!r}", api_name, replaced(valid_raw, i, file_data(path)),
                                          secret=secret, message_required=False)
                fuzz.expect_raw_error(f"image as a bare string {target!r}", api_name,
                                      replaced(valid_raw, i, target), secret=secret, message_required=False)
        if param["parameter_name"] == "model":
            for name in BAD_MODELS:
                fuzz.expect_error(f"model {name[:40]!r}", api_name, *replaced(valid, i, name))
            for value in (123, 1.5, ["tf_efficientnet_lite0"], {"name": "tf_efficientnet_lite0"}):
                fuzz.expect_raw_error(f"model of type {type(value).__name__}", api_name,
                                      replaced(valid_raw, i, value))
            for name in BLANK_MODELS:  # blank means the default model: a real answer
                result = client.predict(*replaced(valid, i, name), api_name=api_name)
                if api_name == "/classify" and result["label"] != "espresso":
                    fuzz.problems.append(f"{api_name} model {name!r}: {result['label']!r}")
                fuzz.tried(f"model {name!r}")
    fuzz.check_alive("the last input")

    assert not marker.exists(), "a pickle payload was unpickled: it ran code on the server"
    for escaped in (Path("/etc/evil.txt"), ROOT.parent.parent / "evil.txt"):
        assert not escaped.exists(), f"a zip member was extracted to {escaped}"
    print(f"\nfuzz {api_name} {fuzzed}: {len(fuzz.inputs)} malformed inputs, {fuzz.calls} calls in "
          f"{time.monotonic() - started:.1f} s, {len(fuzz.problems)} problems")
    record_property("malformed_inputs", len(fuzz.inputs))
    assert not fuzz.problems, "\n".join(fuzz.problems)


def test_an_upload_over_the_size_limit_is_refused(client, server, examples):
    too_big = upload(server, "too_big.png", b"\x89PNG\r\n\x1a\n" + bytes(21 << 20))  # over the 20 MB limit
    assert too_big.status_code == 413 and "size" in too_big.text, too_big.text[:200]
    assert client.predict(handle_file(examples["coffee"]), api_name="/classify")["label"] == "espresso"
