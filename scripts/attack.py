"""Hostile traffic against a loopback cvdemo server (issue 18): per attack, whether the app held and what it cost.

    python scripts/attack.py [--settle 60] [--only NAME ...]

Starts `python app.py` on a free 127.0.0.1 port (offline; its own temporary folders for Gradio's uploads and for
the sessions' files; the weights/ONNX cache of CVDEMO_CACHE, default artifacts/test-cache), then runs the attacks
one after another while an innocent client classifies a photo over and over. Per attack it prints:

- held, or BROKEN with why: the server died, a refusal came back generic ("Something went wrong", Gradio's bare
  error) or empty, or the attack's own check failed (markup rendered, a job not dropped...);
- the server's RSS (MiB) when the attack began, at its peak, and --settle seconds after it ended (the goal: back
  within 300 MB of where it began, one minute after);
- disk (MiB: the ONNX/weights cache + Gradio's uploads + the sessions' files) before and after;
- the slowest innocent /classify that ran during the attack (the goal: within 5 s).

Only 127.0.0.1 is contacted. Nothing here asserts: it prints figures (tests/test_hostile.py holds the fast,
deterministic parts as tests).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import struct
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from gradio_client import Client, handle_file
from PIL import Image

from load import PHOTOS, ROOT, memory, start_server, stop_server

GENERIC = ("Something went wrong", "has not enabled verbose error reporting")  # the app's and Gradio's bare errors
EMPTY = ("", "None", "null", "Error")
QUEUE_SIZE = 64  # cvdemo.ui.QUEUE_SIZE: the flood sends one more job than that from as many sessions
GOAL_RSS_MB, GOAL_CLASSIFY_S = 300, 5.0


# --- talking to the server ---------------------------------------------------------------------

class Call:
    """One job through Gradio's REST queue, with JSON a client library would not send (NaN, a bare URL string) and
    any session hash: `events` reads its stream ("generating", "complete", "error" with their payloads), `close`
    hangs up as a client that went away does."""

    def __init__(self, server: str, api: str, data: list, session: str | None = None) -> None:
        body = json.dumps({"data": data, **({"session_hash": session} if session else {})}).encode()
        request = urllib.request.Request(f"{server}gradio_api/call/{api}", body, {"Content-Type": "application/json"})
        event = json.load(urllib.request.urlopen(request, timeout=60))["event_id"]
        self.stream = urllib.request.urlopen(f"{server}gradio_api/call/{api}/{event}", timeout=600)

    def events(self):
        kind = None
        for line in self.stream:
            line = line.decode().strip()
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind != "heartbeat":
                yield kind, json.loads(line[6:])
                if kind in ("complete", "error"):
                    return

    def result(self) -> tuple[str, dict | list | None]:
        """("complete" or "error", its payload)."""
        *_, last = self.events()
        self.close()
        return last

    def close(self) -> None:
        self.stream.close()


class Outcomes:
    """What each request of an attack got: an answer, a refusal (its message) or a generic/empty error."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []  # (what was sent, "answered" | "refused" | "GENERIC", text)
        self.failed: list[str] = []  # the attack's own checks that failed

    def add(self, what: str, ok: bool, text: str) -> None:
        generic = text.strip() in EMPTY or any(words in text for words in GENERIC)
        kind = "answered" if ok else "GENERIC" if generic else "refused"
        self.rows.append((what, kind, " ".join(str(text).split())[:110]))

    def client(self, what: str, fn: Callable[[], object]) -> object:
        """A gradio_client call: its answer, or its refusal's message."""
        try:
            result = fn()
        except Exception as err:  # noqa: BLE001 - any error is an outcome to judge
            self.add(what, False, str(err))
            return None
        self.add(what, True, str(result))
        return result

    def raw(self, what: str, call: Call) -> object:
        kind, payload = call.result()
        if kind == "complete":
            self.add(what, True, str(payload))
            return payload
        self.add(what, False, str((payload or {}).get("error") or "") if isinstance(payload, dict) else "")
        return None

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failed.append(what)


class Innocent(threading.Thread):
    """A user who classifies a photo over and over (a new request as soon as the last one answered): every
    round trip is kept with its start time."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.client, self.done = Client(url, verbose=False), threading.Event()
        self.trips: list[tuple[float, float, bool]] = []  # (start, seconds, answered)

    def run(self) -> None:
        while not self.done.is_set():
            start = time.monotonic()
            try:
                self.client.predict(handle_file(PHOTOS[0]), api_name="/classify")
                ok = True
            except Exception:  # noqa: BLE001 - a refusal ("queue full") counts against the attack
                ok = False
            self.trips.append((start, time.monotonic() - start, ok))
            time.sleep(0.2)

    def slowest(self, since: float, until: float) -> tuple[float, int]:
        """The longest round trip that overlapped [since, until], and how many failed there."""
        during = [(s, ok) for start, s, ok in self.trips if start <= until and start + s >= since]
        return max((s for s, _ in during), default=float("nan")), sum(not ok for _, ok in during)


class Sampler(threading.Thread):
    """The server's RSS, sampled five times a second: the peak since `reset`."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak = pid, 0

    def run(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, memory(self.pid)["VmRSS"])
            except (OSError, KeyError):
                return
            time.sleep(0.2)

    def reset(self) -> None:
        self.peak = memory(self.pid)["VmRSS"]


def du_mib(*folders: Path) -> float:
    return sum(f.stat().st_size for folder in folders if folder.exists() for f in folder.rglob("*")
               if f.is_file()) / 2**20


# --- payloads ----------------------------------------------------------------------------------

def png(color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def noise_png(seed: int, size: tuple[int, int] = (96, 72)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header claiming width x height pixels, and no pixels."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))


def repeated_scans(times: int, side: int = 96) -> bytes:
    """A progressive JPEG whose last scan is repeated `times` times (valid, small, slow to decode)."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(noise_png(1, (side, side)))).save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    last, end = data.rfind(b"\xff\xda"), data.rfind(b"\xff\xd9")
    return data[:end] + data[last:end] * times + data[end:]


def broken_tiff(seed: int) -> bytes:
    """A float TIFF (2000 x 2000, flat, deflate: a few KB) whose last strip is garbage: decoding gets that far."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((2000, 2000), 0.1 + seed / 100, np.float32), "F").save(buffer, "TIFF",
                                                                                  compression="tiff_deflate")
    data = bytearray(buffer.getvalue())
    tags = Image.open(io.BytesIO(bytes(data))).tag_v2
    start, length = tags[273][-1], tags[279][-1]  # StripOffsets, StripByteCounts: the last strip
    data[start:start + length] = (b"\x07\x99" * length)[:length]
    return bytes(data)


def zip_file(folder: Path, name: str, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> str:
    path = folder / name
    with zipfile.ZipFile(path, "w", method) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return str(path)


def two_classes(n: int = 6) -> dict[str, bytes]:
    return {f"{c}/{i}.png": noise_png(10 * k + i) for k, c in enumerate(("cat", "dog")) for i in range(n)}


def load_zip(client: Client, path: str):
    return client.predict("zip", "textures", handle_file(path), "", "", "", "", [], [], [], [],
                          api_name="/load_dataset")


def visit(url: str, path: str):
    """A user who loads a zip and leaves (closes the page)."""
    client = Client(url, verbose=False)
    try:
        return load_zip(client, path)
    finally:
        client.close()


TRAIN = ["tf_efficientnet_lite0", "probe", False, 3, 16, 0.01, 0.0, 0.2, 0, False, ""]


# --- the attacks -------------------------------------------------------------------------------

def hostile_images(url: str, work: Path, out: Outcomes) -> None:
    files = {"text.png": b"this is not a picture", "empty.jpg": b"", "cut.png": noise_png(3)[:300],
             "40000001x1.png": png_claiming(40_000_001, 1), "bomb.png": png_claiming(20_000, 20_000),
             "scans.jpg": repeated_scans(2000), "ico.ico": image_bytes("ICO"), "tiny.png": png((1, 2, 3), (1, 1))}
    client = Client(url, verbose=False)
    for name, data in files.items():
        (work / name).write_bytes(data)
        out.client(f"/classify {name}", lambda: client.predict(handle_file(str(work / name)), api_name="/classify"))
    for name in ("scans.jpg", "scans.jpg"):  # two sent and abandoned
        Client(url, verbose=False).submit(handle_file(str(work / name)), api_name="/classify")


def image_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buffer, fmt)
    return buffer.getvalue()


def zip_slip(url: str, work: Path, out: Outcomes) -> None:
    client = Client(url, verbose=False)
    cases = {"dotdot.zip": {"../evil/1.png": png((1, 1, 1)), "cat/1.png": png((2, 2, 2))},
             "absolute.zip": {"/tmp/evil/1.png": png((1, 1, 1)), "cat/1.png": png((2, 2, 2))},
             "ratio.zip": {"cat/big.png": b"\0" * (64 * 2**20), "dog/1.png": png((2, 2, 2))}}
    for name, members in cases.items():
        path = zip_file(work, name, members)
        out.client(f"/load_dataset {name}", lambda: load_zip(client, path))
    link = work / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("cat/passwd.png")
        info.external_attr = (0o120777 << 16)  # a symbolic link to /etc/passwd
        zf.writestr(info, "/etc/passwd")
        zf.writestr("dog/1.png", png((3, 3, 3)))
    out.client("/load_dataset link.zip", lambda: load_zip(client, str(link)))
    out.check(not Path("/tmp/evil").exists(), "nothing written outside")


def big_crop(url: str, work: Path, out: Outcomes) -> None:
    """Issue 18.1: a probe with 'use the Augment pipeline' and a 4096 px crop (allowed), and the preview."""
    spec = json.dumps({"ops": [{"op": "crop", "size": 4096}]})
    client = Client(url, verbose=False)
    out.client("/load_dataset 2x6 photos", lambda: load_zip(client, zip_file(work, "small.zip", two_classes())))
    out.client("/train probe + crop 4096", lambda: client.predict(*TRAIN[:-2], True, spec, api_name="/train")[0])
    out.client("/augment crop 4096, 16 samples",
               lambda: client.predict(handle_file(PHOTOS[1]), spec, 16, 0, None, api_name="/augment")[2])


def queue_flood(url: str, work: Path, out: Outcomes) -> None:
    """Issue 18.2: one training job runs; 65 more from 65 sessions, sent without waiting; then all hang up."""
    running = Call(url, "train_classic", ["small_alexnet", 30])
    out.check(next(running.events())[0] == "generating", "the first job runs")
    with ThreadPoolExecutor(8) as pool:
        flood = list(pool.map(lambda _: Call(url, "train_classic", ["small_alexnet", 30]), range(QUEUE_SIZE + 1)))
    waiting = 0
    for i, call in enumerate(flood):
        kind, payload = next(call.events())
        if kind == "error":
            out.add(f"flood job {i}", False, payload.get("error") or "")
        else:
            waiting += 1
    out.rows.append((f"{waiting} flood jobs waiting", "answered", ""))
    time.sleep(5)  # the innocent user classifies meanwhile
    for call in [running, *flood]:
        call.close()
    deadline, outcome = time.monotonic() + 60, ("error", None)
    while time.monotonic() < deadline and outcome[0] == "error":
        outcome = Call(url, "distill_sweep", [["0.9"], ["4"], 3, 30, "mlp", False]).result()
        time.sleep(1)
    out.check(outcome[0] == "complete", "the abandoned jobs were dropped within 60 s")


def broken_tiffs(url: str, work: Path, out: Outcomes) -> None:
    """Issue 18.3: a zip of 24 float TIFFs with a broken last strip, in three sessions."""
    path = zip_file(work, "tiffs.zip", {f"{c}/{i}.tif": broken_tiff(i) for c in ("a", "b") for i in range(12)})
    for session in range(3):
        out.client(f"/load_dataset tiffs.zip ({Path(path).stat().st_size // 1024} KB), session {session + 1}",
                   lambda: visit(url, path))


def many_pngs(url: str, work: Path, out: Outcomes) -> None:
    """Issue 18.4: a small zip of 2,000 flat PNGs, in three sessions."""
    flat = {f"{c}/{i}.png": png((i % 250, i // 250, 90 * k), (1024, 768)) for k, c in enumerate(("a", "b"))
            for i in range(1000)}
    path = zip_file(work, "flat.zip", flat)
    for session in range(3):
        out.client(f"/load_dataset flat.zip ({Path(path).stat().st_size // 1024} KB), session {session + 1}",
                   lambda: visit(url, path))


def jpeg_scans(url: str, work: Path, out: Outcomes) -> None:
    """Issue 18.5: a zip of small JPEGs with 2,000 repeated scans each (members under 1 MiB)."""
    members = {f"{c}/{i}.jpg": repeated_scans(2000, side=16) for c in ("a", "b") for i in range(6)}
    path = zip_file(work, "scans.zip", members, zipfile.ZIP_STORED)  # stored: no ratio to refuse it by
    out.client(f"/load_dataset scans.zip ({Path(path).stat().st_size // 1024} KB)", lambda: visit(url, path))


def markup_names(url: str, work: Path, out: Outcomes) -> None:
    """Issue 18.7: class folders named with markup."""
    names = ["<img src=x onerror=alert(1)>", "<b>bold", "$$x$$"]
    members = {f"{name}/{i}.png": noise_png(7 * k + i) for k, name in enumerate(names) for i in range(5)}
    text = out.client("/load_dataset markup.zip", lambda: visit(url, zip_file(work, "markup.zip", members)))
    out.check(text is not None and "<img" not in text and "<b>" not in text, "the names are escaped")


def numbers(url: str, work: Path, out: Outcomes) -> None:
    """Issue 18.8: NaN, infinity and text where numbers go."""
    nan, inf = float("nan"), float("inf")
    for api, data in [("train", TRAIN[:5] + [nan] + TRAIN[6:]), ("train", TRAIN[:3] + ["ten"] + TRAIN[4:]),
                      ("augment", [None, "", inf, 0, None]), ("bias_experiment", [nan]),
                      ("layer_table", ["paper_alexnet", "big"]), ("train_classic", ["small_alexnet", None]),
                      ("selftrain", ["builtin", "digits", nan, None, 0.9, False, False, 1, 30, 0]),
                      ("distill", [nan, 4, 0.5, 1, "mlp", False])]:
        out.raw(f"/{api} {json.dumps(data)[:50]}", Call(url, api, data))


def urls(url: str, work: Path, out: Outcomes) -> None:
    """Issue 18.8 and the earlier corpus: web addresses (SSRF) and server paths (file read) as inputs."""
    def file(path: str) -> dict:
        return {"path": path, "meta": {"_type": "gradio.FileData"}}

    for what, image in [("metadata address", file("http://169.254.169.254/latest/meta-data/")),
                        ("loopback address", file("http://127.0.0.1:22/x.png")),
                        ("a bare URL string", "https://example.com/cat.jpg"),
                        ("/etc/passwd", file("/etc/passwd"))]:
        out.raw(f"/classify {what}", Call(url, "classify", [image, "tf_efficientnet_lite0"]))
    out.raw("/load_dataset zip from a URL", Call(url, "load_dataset", ["zip", "textures", file(
        "http://127.0.0.1:9/a.zip"), "", "", "", "", [], [], [], []]))


def emoji_export(url: str, work: Path, out: Outcomes) -> None:
    """Issue 18.8: a dataset named with 60 emoji, exported (the Transfer tab's 'Export dataset' button)."""
    client = Client(url, verbose=False)
    out.client("/load_dataset 😀x60.zip", lambda: load_zip(client, zip_file(work, "😀" * 60 + ".zip", two_classes())))
    config = json.load(urllib.request.urlopen(f"{url}config", timeout=30))
    downloads = next(c["id"] for c in config["components"]
                     if "transfer.downloads" in json.dumps(c.get("props", {}).get("label")))
    exports = [d["id"] for d in config["dependencies"] if d["outputs"] == [downloads]]
    body = json.dumps({"data": [None], "fn_index": exports[2], "session_hash": client.session_hash}).encode()
    try:  # a queue=False event: Gradio's plain /run/predict route, as the page calls it
        answer = json.load(urllib.request.urlopen(urllib.request.Request(
            f"{url}gradio_api/run/predict", body, {"Content-Type": "application/json"}), timeout=120))
        name = Path(answer["data"][0]["path"]).name
        out.add("export dataset", True, name)
        out.check(len(name.encode()) < 100, "a short file name")
    except urllib.error.HTTPError as err:
        out.add("export dataset", False, json.loads(err.read() or b"{}").get("error") or "")


ATTACKS = {"hostile images": hostile_images, "zip slip": zip_slip, "big crop spec": big_crop,
           "queue flood": queue_flood, "broken TIFF zip": broken_tiffs, "many-PNG zip": many_pngs,
           "JPEG scans": jpeg_scans, "markup names": markup_names, "NaN and strings": numbers,
           "URLs and paths": urls, "emoji export": emoji_export}


def warm_up(url: str, work: Path, pid: int) -> None:
    """What the first users do (the first training, augmentation and dataset load of a process build caches and
    load libraries): done before the attacks, so that an attack is not charged for them."""
    client = Client(url, verbose=False)
    load_zip(client, zip_file(work, "warm.zip", two_classes()))
    client.predict(*TRAIN, api_name="/train")
    client.predict(*TRAIN[:-2], True, json.dumps({"ops": [{"op": "crop"}]}), api_name="/train")
    client.predict(handle_file(PHOTOS[1]), '{"ops": [{"op": "crop"}]}', 16, 0, None, api_name="/augment")
    client.predict("small_alexnet", 1, api_name="/train_classic")
    client.predict(["0.9"], ["4"], 3, 30, "mlp", False, api_name="/distill_sweep")
    client.close()
    print(f"warmed up: RSS {memory(pid)['VmRSS']} MiB", flush=True)


def group(rows: list[tuple[str, str, str]]) -> dict[tuple[str, str], list[str]]:
    """Outcomes with the same kind and text, together (a flood's 60 identical refusals are one line)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for what, kind, text in rows:
        groups.setdefault((kind, text), []).append(what)
    return groups


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settle", type=float, default=60, help="seconds to wait after each attack before "
                        "reading RSS (the goal is stated for 60)")
    parser.add_argument("--only", nargs="*", choices=list(ATTACKS), help="run only these attacks")
    parser.add_argument("--verbose", action="store_true", help="print every request's outcome")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cvdemo-attack-"))
    cache = Path(os.environ.get("CVDEMO_CACHE", ROOT / "artifacts" / "test-cache"))
    uploads, tmp = work / "gradio", work / "tmp"
    tmp.mkdir()
    proc, url = start_server(work / "app.log", GRADIO_TEMP_DIR=str(uploads), TMPDIR=str(tmp), CVDEMO_CACHE=str(cache))
    print(f"server {url} (pid {proc.pid}); log {work / 'app.log'}; cache {cache}")
    warm_up(url, work, proc.pid)
    innocent, sampler = Innocent(url), Sampler(proc.pid)
    innocent.start()
    sampler.start()
    time.sleep(3)
    rows, broken = [], 0
    try:
        for name, attack in ATTACKS.items():
            if args.only and name not in args.only:
                continue
            out, files = Outcomes(), work / name.replace(" ", "-")
            files.mkdir()
            rss0, disk0 = memory(proc.pid)["VmRSS"], du_mib(cache, uploads, tmp)
            sampler.reset()
            began = time.monotonic()
            try:
                attack(url, files, out)
            except Exception as err:  # noqa: BLE001 - the harness goes on; the attack counts as broken
                out.failed.append(f"{type(err).__name__}: {err}"[:160])
            ended = time.monotonic()
            slowest, failed = innocent.slowest(began, ended)
            alive = proc.poll() is None
            time.sleep(args.settle if alive else 0)
            rss1 = memory(proc.pid)["VmRSS"] if alive else float("nan")
            disk1 = du_mib(cache, uploads, tmp)
            generic = [r for r in out.rows if r[1] == "GENERIC"]
            why = (["the server died"] if not alive else []) + [f"generic: {w}" for w, _, _ in generic] + out.failed
            why += [f"innocent /classify took {slowest:.1f} s"] if slowest > GOAL_CLASSIFY_S else []
            why += [f"{failed} innocent /classify failed"] if failed else []
            why += [f"RSS +{rss1 - rss0} MB after {args.settle:.0f} s"] if rss1 - rss0 > GOAL_RSS_MB else []
            broken += bool(why)
            rows.append((name, "BROKEN" if why else "held", rss0, sampler.peak, rss1, disk0, disk1, slowest,
                         ended - began, len(out.rows)))
            print(f"\n== {name}: {'BROKEN (' + '; '.join(why) + ')' if why else 'held'}", flush=True)
            shown = out.rows if args.verbose else generic
            for (kind, text), whats in group(shown).items():
                print(f"   {kind:9} {whats[0]}{f' (and {len(whats) - 1} more)' if len(whats) > 1 else ''}: {text}")
            if not alive:
                break
    finally:
        innocent.done.set()
        innocent.join(timeout=60)
        innocent.client.close()
        stop_server(proc)
    print("\nattack             result   RSS MiB start/peak/after  disk MiB before/after  slowest classify  "
          "seconds  requests")
    for name, result, rss0, peak, rss1, disk0, disk1, slowest, seconds, n in rows:
        shown = "-" if slowest != slowest else f"{slowest:.2f} s"  # NaN: no innocent request overlapped
        print(f"{name:18} {result:8} {rss0:6} /{peak:6} /{rss1:6}   {disk0:8.1f} /{disk1:8.1f}   {shown:>11}  "
              f"{seconds:7.1f}  {n:8}")
    print(f"\n{broken} of {len(rows)} attacks broke the app (goals: 0 crashes, 0 generic or empty messages, "
          f"innocent /classify within {GOAL_CLASSIFY_S:.0f} s, RSS within {GOAL_RSS_MB} MB of its start "
          f"{args.settle:.0f} s after)")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
