"""Load a running cvdemo server (or one this script starts) and print latency, throughput and memory.

    python scripts/load.py [--url URL [--pid PID]] [--users 8] [--trainers 1] [--seconds 30] [--sequential 20]

Without --url it starts `python app.py` on a free 127.0.0.1 port (offline, like the tests) and
stops it at the end. First one client sends --sequential /classify calls one after another (p50
round trip) and goes on to 50 classifications (the server's peak RSS after them); then --users
clients, each in its own thread, loop for --seconds: classify a scikit-image example photo, and
every 5th request /explain, while --trainers clients load the built-in textures and train linear
probes back to back (the Transfer tab's /train, sharing one training slot). Only 127.0.0.1 is ever contacted. Nothing here asserts a timing.
"""
from __future__ import annotations

import argparse
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import skimage
from gradio_client import Client, handle_file

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = [str(Path(skimage.__file__).parent / "data" / name)
          for name in ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg")]
EXPLAIN_EVERY = 5           # every 5th request of a user is /explain
WARM_CLASSIFICATIONS = 50   # the peak RSS is read after this many sequential classifications
REQUEST_TIMEOUT = 120       # seconds one request may take before it counts as an error
MAX_REQUESTS_PER_USER = 10_000


# --- the server --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log_path: Path, **env: str) -> tuple[subprocess.Popen, str]:
    """`python app.py` on a free loopback port, offline (`env`: more environment variables); returns it and its
    URL once it answers."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_TEMP_DIR": tempfile.mkdtemp(prefix="cvdemo-load-"), **env}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_server(proc)
                sys.exit(f"app did not start; its log:\n{log_path.read_text()}")
            time.sleep(0.5)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def memory(pid: int | None) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak since start) of a process in MiB, from /proc/<pid>/status."""
    if pid is None:
        return {}
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) // 1024  # kB -> MiB
    return fields


# --- the load ----------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def request(client: Client, api_name: str, photo: str) -> float:
    """One call; returns its round trip in ms. Raises on an error or after REQUEST_TIMEOUT."""
    started = time.perf_counter()
    client.submit(handle_file(photo), api_name=api_name).result(timeout=REQUEST_TIMEOUT)
    return (time.perf_counter() - started) * 1000


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.ms: dict[str, list[float]] = {"/classify": [], "/explain": [], "/train": []}
        self.errors: dict[str, int] = {"/classify": 0, "/explain": 0, "/train": 0}
        self.first_error = ""

    def add(self, api_name: str, ms: float | None, error: BaseException | None = None) -> None:
        with self.lock:
            if error is None:
                self.ms[api_name].append(ms)
            else:
                self.errors[api_name] += 1
                self.first_error = self.first_error or f"{api_name}: {type(error).__name__}: {error}"


def user(url: str, number: int, deadline: float, results: Results) -> None:
    client = Client(url, verbose=False)
    for i in range(1, MAX_REQUESTS_PER_USER + 1):
        if time.monotonic() >= deadline:
            break
        api_name = "/explain" if i % EXPLAIN_EVERY == 0 else "/classify"
        try:
            results.add(api_name, request(client, api_name, PHOTOS[(number + i) % len(PHOTOS)]))
        except Exception as err:  # noqa: BLE001 - an error is a result here
            results.add(api_name, None, err)


TRAIN_ARGS = ("tf_efficientnet_lite0", "probe", False, 100, 32, 0.01, 1e-4, 0.2, 0, False, "{}")


def trainer(url: str, deadline: float, results: Results) -> None:
    """A user who loads the built-in textures and trains linear probes back to back (Transfer tab)."""
    client = Client(url, verbose=False)
    client.predict("builtin", "textures", None, "", "", "", "", [], [], [], [], api_name="/load_dataset")
    for seed in range(MAX_REQUESTS_PER_USER):
        if time.monotonic() >= deadline:
            break
        started = time.perf_counter()
        try:
            client.submit(*TRAIN_ARGS[:8], seed, *TRAIN_ARGS[9:], api_name="/train").result(timeout=REQUEST_TIMEOUT)
            results.add("/train", (time.perf_counter() - started) * 1000)
        except Exception as err:  # noqa: BLE001 - an error is a result here
            results.add("/train", None, err)


def sequential(url: str, count: int, pid: int | None) -> None:
    client = Client(url, verbose=False)
    ms = [request(client, "/classify", PHOTOS[i % len(PHOTOS)]) for i in range(count)]
    for i in range(count, WARM_CLASSIFICATIONS):
        request(client, "/classify", PHOTOS[i % len(PHOTOS)])
    print(f"sequential: {count} /classify calls from one client, p50 round trip {percentile(ms, 50):.0f} ms "
          f"(min {min(ms):.0f}, max {max(ms):.0f})")
    if pid is not None:
        mem = memory(pid)
        print(f"server after {max(count, WARM_CLASSIFICATIONS)} classifications: RSS {mem['VmRSS']} MiB, "
              f"peak {mem['VmHWM']} MiB")


def concurrent(url: str, users: int, seconds: float, pid: int | None, trainers: int = 0) -> None:
    results = Results()
    before = memory(pid)
    started = time.monotonic()
    threads = [threading.Thread(target=user, args=(url, n, started + seconds, results), daemon=True)
               for n in range(users)]
    threads += [threading.Thread(target=trainer, args=(url, started + seconds, results), daemon=True)
                for _ in range(trainers)]
    for t in threads:
        t.start()
    for t in threads:  # a request started before the deadline may run REQUEST_TIMEOUT more
        t.join(timeout=max(0.0, started + seconds + REQUEST_TIMEOUT + 30 - time.monotonic()))
    elapsed = time.monotonic() - started
    after = memory(pid)

    print(f"concurrent: {users} users classifying, {trainers} training, for {elapsed:.1f} s (asked {seconds:g} s)")
    print(f"  {'endpoint':<10} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'req/s':>7}")
    for api_name, ms in results.ms.items():
        p50, p99 = (f"{percentile(ms, q):.0f}" if ms else "-" for q in (50, 99))
        print(f"  {api_name:<10} {len(ms):>6} {p50:>8} {p99:>8} {results.errors[api_name]:>7} "
              f"{len(ms) / elapsed:>7.2f}")
    total = sum(len(ms) for ms in results.ms.values())
    print(f"  {'all':<10} {total:>6} {'':>8} {'':>8} {sum(results.errors.values()):>7} {total / elapsed:>7.2f}")
    if results.first_error:
        print(f"  first error: {results.first_error[:300]}")
    if any(t.is_alive() for t in threads):
        print("  some users were still waiting at the end (abandoned)")
    if pid is not None:
        print(f"server RSS: before {before['VmRSS']} MiB, after {after['VmRSS']} MiB, "
              f"peak {after['VmHWM']} MiB (VmHWM, since the server started)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server on 127.0.0.1 (default: start one)")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, to read its memory")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--sequential", type=int, default=20, help="sequential /classify calls first (0: skip)")
    parser.add_argument("--trainers", type=int, default=1, help="users training linear probes meanwhile")
    args = parser.parse_args()
    if args.url and urlparse(args.url).hostname not in ("127.0.0.1", "localhost"):
        parser.error("--url must be a server on 127.0.0.1")

    proc = None
    if args.url:
        url, pid = args.url.rstrip("/") + "/", args.pid
    else:
        log = Path(tempfile.mkdtemp(prefix="cvdemo-load-")) / "app.log"
        proc, url = start_server(log)
        pid = proc.pid
        print(f"started python app.py (pid {pid}) at {url}, log {log}")
    try:
        print(f"server RSS at start: {memory(pid).get('VmRSS', '-')} MiB" if pid else "server RSS: not read (no --pid)")
        warm = Client(url, verbose=False)  # the first request builds the model: not measured
        for api_name in ("/classify", "/explain"):
            request(warm, api_name, PHOTOS[1])
        if args.sequential > 0:
            sequential(url, args.sequential, pid)
        concurrent(url, args.users, args.seconds, pid, args.trainers)
    finally:
        if proc is not None:
            stop_server(proc)


if __name__ == "__main__":
    main()
