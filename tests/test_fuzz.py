"""Fuzz every public endpoint of a real server with malformed input that this test makes itself.

Every bad input must be refused with a clear message (no result, no traceback text, not Gradio's hidden "Error" nor
the app's bare "Something went wrong", no unexpected exception in the server's log), must leak no file contents and
run no code, and the server must keep serving: after every few bad inputs the coffee photo must still come back as
"espresso". The bad files are uploaded once per worker and sent by their server paths through Gradio's HTTP API, each
test as one session over one kept-open connection: the server's work per refusal is small, and so is the test's.
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
from PIL import Image

MIN_FILES = 30         # the corpus of bad files must not shrink silently
CHECK_EVERY = 10       # a valid request after this many bad calls (and after the last)
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
NOT_STRINGS = [123, 1.5, ["tf_efficientnet_lite0"], {"name": "tf_efficientnet_lite0"}]  # what the page never sends


# --- talking to the server ------------------------------------------------------------------------

# The app's own bare error (cvdemo.ui.common.user_errors: a handler raised what it did not expect), in each language,
# and Gradio's when it hides an exception's message: neither says what was wrong with the input.
GENERIC = (*(texts["server_error"] for texts in json.loads((ROOT / "cvdemo/ui/locales/app.json").read_text()).values()),
           "has not enabled verbose error reporting")


def unclear(message) -> str | None:
    """Why `message` is not a clear user message, or None when it is."""
    text = (message or "").strip()
    if not text or text.lower() in ("error", "none", "null"):
        return "empty message"
    if "Traceback" in text or 'File "' in text:
        return "traceback text"
    if any(words in text for words in GENERIC):
        return "an unexpected exception (the app's or Gradio's bare error)"
    return None


def call_raw(http: httpx.Client, url: str, api_name: str, data: list, session: str) -> tuple[str, object, str]:
    """Gradio's HTTP API: POST /gradio_api/call/<name>, then read the SSE stream of that event, as `session` (one
    per test, as gradio_client keeps one per client: a new session per call costs the server three times as much).
    Returns (event, data, everything the server sent); event is 'complete', 'error' or 'http <code>'."""
    post = http.post(f"{url}gradio_api/call/{api_name}", json={"data": data, "session_hash": session})
    if post.status_code != 200:
        return f"http {post.status_code}", post.text, post.text
    event_id = post.json()["event_id"]
    seen, event = [post.text], None
    with http.stream("GET", f"{url}gradio_api/call/{api_name}/{event_id}") as stream:
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


def upload(url: str, name: str, data: bytes, http: httpx.Client | None = None) -> httpx.Response:
    return (http or httpx).post(f"{url}gradio_api/upload", files={"files": (name, data)}, timeout=60)


def file_data(path: str | None, **extra) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, **extra}


def uploaded(http: httpx.Client, url: str, path: Path) -> dict:
    """`path` uploaded as gradio_client.handle_file does it: the FileData that names the server's copy."""
    response = upload(url, path.name, path.read_bytes(), http)
    assert response.status_code == 200, response.text[:200]
    return file_data(response.json()[0], orig_name=path.name)


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


# Tracebacks in the server's log that are refusals: a gr.Error (a message for the user, checked as any other: Gradio
# logs its own, e.g. a file of a type the input does not take), and where Gradio refuses a payload before any app code
# runs, its reasons (a path that was not uploaded, FileData it can't read). Any other is an exception nobody expected.
REFUSAL = ("gradio.exceptions.Error:",)
GRADIO_REFUSALS = (*REFUSAL, "gradio.exceptions.InvalidPathError:", "pydantic_core._pydantic_core.ValidationError:")


def logged_exceptions(text: str) -> list[str]:
    """The exception line of each traceback in a server's log `text`."""
    return [next((line for line in block.splitlines() if line.strip() and not line.startswith(" ")), "?")
            for block in text.split("Traceback (most recent call last):")[1:]]


class Fuzzer:
    """Sends bad inputs as one session, records what was wrong with each answer (and what the server logged while
    answering it), checks the server stays healthy."""

    def __init__(self, http: httpx.Client, server, photo: dict, session: str):
        self.http, self.url, self.photo, self.session = http, server, photo, session
        self.log, self.read_to = server.log, server.log.stat().st_size
        self.inputs: set[str] = set()  # distinct malformed inputs
        self.calls = 0
        self.problems: list[str] = []

    def call(self, api_name: str, data: list) -> tuple[str, object, str]:
        return call_raw(self.http, self.url, api_name.lstrip("/"), data, self.session)

    def logged(self) -> list[str]:
        """The exceptions the server logged with a traceback since the last look (Gradio and the app write them
        before they answer)."""
        with open(self.log, "rb") as log:
            log.seek(self.read_to)
            added = log.read()
        self.read_to += len(added)
        return logged_exceptions(added.decode(errors="replace"))

    def tried(self, what: str) -> None:
        self.inputs.add(what)
        self.calls += 1
        if self.calls % CHECK_EVERY == 0:
            self.check_alive(what)

    def check_alive(self, after: str) -> None:
        """The coffee photo (uploaded once) still comes back from /classify as "espresso"."""
        event, data, text = self.call("/classify", [self.photo, "tf_efficientnet_lite0"])
        label = data[0].get("label") if event == "complete" else f"{event}: {text[-300:]}"
        if label != "espresso":
            self.problems.append(f"after {after}: the valid request gave {label!r}")
        self.problems += [f"after {after}: the valid request logged {line}" for line in self.logged()]

    def expect_error(self, what: str, api_name: str, data: list, *, secret: str | None = None,
                     message_required: bool = True) -> None:
        """An error that contains no file contents. Where app code ran, its message must be clear and the server
        logs no traceback; where Gradio refuses a payload before any app code runs, it may hide its reason
        (message null), answer HTTP 4xx and log its refusal's traceback, which is accepted (message_required=False)."""
        event, data_back, text = self.call(api_name, data)
        if secret and secret in text:
            self.problems.append(f"{api_name} {what}: the answer contains the file's contents")
        if event == "error":
            message = data_back.get("error") if isinstance(data_back, dict) else data_back
            if (message_required or message is not None) and (why := unclear(message)):
                self.problems.append(f"{api_name} {what}: {why}: {str(message)[:300]!r}")
        elif message_required or not event.startswith("http 4"):
            self.problems.append(f"{api_name} {what}: {event} instead of an error: {text[:200]}")
        expected = REFUSAL if message_required else GRADIO_REFUSALS
        self.problems += [f"{api_name} {what}: the server logged {line}" for line in self.logged()
                          if not line.startswith(expected)]
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


@pytest.fixture(scope="module")
def http():
    """One HTTP client for the module's calls (its connections kept open between them)."""
    with httpx.Client(timeout=60) as http:
        yield http


class Corpus:
    """The bad files, each uploaded once: the tests send the server's copies (`sent`, FileData by file name) as
    often as they like, instead of uploading a file again for every call. `zips`: the archives among them uploaded
    again named .zip, which a zip input reads (under their own names Gradio refuses them for their type).
    `marker`: what the pickles would touch."""

    def __init__(self, files: list[Path], sent: dict[str, dict], zips: dict[str, dict], photo: dict, marker: Path):
        self.files, self.sent, self.zips, self.photo, self.marker = files, sent, zips, photo, marker


@pytest.fixture(scope="module")
def corpus(server, http, examples, tmp_path_factory) -> Corpus:
    folder = tmp_path_factory.mktemp("fuzz")
    marker = folder / "pwned"
    files = bad_files(folder, examples["coffee"], marker)
    assert len(files) >= MIN_FILES, f"only {len(files)} bad files; the corpus shrank"
    sent = {path.name: uploaded(http, server, path) for path in files}
    zips = {}
    for path in files:
        if path.read_bytes().startswith(b"PK\x03\x04"):
            renamed = path.with_name(f"{path.stem}.zip")
            renamed.write_bytes(path.read_bytes())
            zips[renamed.name] = uploaded(http, server, renamed)
    assert len(zips) >= 3, f"only {len(zips)} archives; the corpus shrank"
    return Corpus(files, sent, zips, uploaded(http, server, Path(examples["coffee"])), marker)


def test_every_image_and_model_input_is_fuzzed(endpoints):
    assert {"/classify", "/explain"} <= set(endpoints)
    assert sorted((name, p["parameter_name"]) for name, info in endpoints.items() for p in info["parameters"]
                  if is_file(p) or p["parameter_name"] == "model") == sorted(FUZZED)


@pytest.mark.parametrize("api_name, fuzzed", FUZZED)
def test_fuzz_an_input_with_malformed_values(api_name, fuzzed, server, http, endpoints, corpus, record_property):
    started = time.monotonic()
    fuzz = Fuzzer(http, server, corpus.photo, session=f"fuzz-{api_name.lstrip('/')}-{fuzzed}")
    params = endpoints[api_name]["parameters"]
    valid = [valid_value(api_name, p, corpus.photo) for p in params]

    for i, param in enumerate(params):
        if param["parameter_name"] != fuzzed:
            continue
        if is_file(param):
            for path in corpus.files:
                fuzz.expect_error(f"file {path.name}", api_name, replaced(valid, i, corpus.sent[path.name]))
            if fuzzed == "zip_file":
                for name, sent in corpus.zips.items():
                    fuzz.expect_error(f"file {name}", api_name, replaced(valid, i, sent))
            if not (param["parameter_has_default"] and param["parameter_default"] is None):
                fuzz.expect_error("missing image (None)", api_name, replaced(valid, i, None))
            for url in ("data:image/png;base64,abc", "data:no-comma"):
                # our image input explains a broken data URL; Gradio's own gr.File refuses it silently
                fuzz.expect_error(f"data URL {url!r}", api_name, replaced(valid, i, file_data(None, url=url)),
                                  message_required=param.get("component") == "Image")
            for target in ("/etc/passwd", str(ROOT / "app.py")):
                secret = fingerprint(target)
                relative = os.path.relpath(target, ROOT)
                for path in (target, relative, "file://" + target, f"{server}gradio_api/file={target}"):
                    fuzz.expect_error(f"image path {path!r}", api_name, replaced(valid, i, file_data(path)),
                                      secret=secret, message_required=False)
                fuzz.expect_error(f"image as a bare string {target!r}", api_name, replaced(valid, i, target),
                                  secret=secret, message_required=False)
        if param["parameter_name"] == "model":
            for name in BAD_MODELS:
                fuzz.expect_error(f"model {name[:40]!r}", api_name, replaced(valid, i, name))
            for value in NOT_STRINGS:
                fuzz.expect_error(f"model of type {type(value).__name__}", api_name, replaced(valid, i, value))
            for name in BLANK_MODELS:  # blank means the default model: a real answer
                event, result, text = fuzz.call(api_name, replaced(valid, i, name))
                if event != "complete":
                    fuzz.problems.append(f"{api_name} model {name!r}: {event}: {text[-300:]}")
                elif api_name == "/classify" and result[0]["label"] != "espresso":
                    fuzz.problems.append(f"{api_name} model {name!r}: {result[0]['label']!r}")
                fuzz.tried(f"model {name!r}")
    fuzz.check_alive("the last input")

    assert not corpus.marker.exists(), "a pickle payload was unpickled: it ran code on the server"
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
