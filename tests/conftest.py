"""Shared fixtures. Tests run offline: no Hub, no analytics, a fresh weights/ONNX cache."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
ROOT = Path(__file__).resolve().parent.parent
# Two pytest-xdist workers on a 2-core machine: one torch/onnxruntime thread each, in the servers and command
# lines they start too (OMP_NUM_THREADS), or the threads of the two wait on each other's cores (a latency
# measurement ran 20x slower so). A run with fewer workers than cores keeps torch's own default.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) >= (os.cpu_count() or 1):
    os.environ["OMP_NUM_THREADS"] = "1"
# The suite starts a dozen Python processes that import the same modules (workers, servers, command lines): where
# the machine forbids bytecode caches (PYTHONDONTWRITEBYTECODE), each compiled cvdemo and the tests anew (~1 s each).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
# One cache for the whole run (conversion and ONNX export happen once, from scratch).
os.environ.setdefault("CVDEMO_CACHE", str(ROOT / "artifacts" / "test-cache"))


def pytest_collection_finish(session):
    """The suite's modules are imported: settle them as a server settles its built app (`memory.settle`), so the
    in-process jobs' and sessions' trims walk only what the tests made (0.3 s of collection each, before)."""
    from cvdemo import memory

    memory.settle()


@pytest.fixture(scope="session")
def examples() -> dict[str, str]:
    """scikit-image's sample photos by short name: cat, coffee, astronaut, rocket."""
    from cvdemo.images import sample_photos

    return dict(zip(("cat", "coffee", "astronaut", "rocket"), sample_photos()))


@pytest.fixture(scope="session")
def textures():
    """The built-in textures (150 patches, 3 classes)."""
    from cvdemo.datasets import load_builtin

    return load_builtin("textures")


@pytest.fixture(scope="session")
def few_textures(textures):
    """Every fifth textures image (30, 10 per class): a tiny training or transfer set."""
    return textures.subset(range(0, len(textures), 5))


@pytest.fixture(scope="session")
def textures_probe(textures):
    """A linear probe trained on all the textures (the Transfer tab's defaults): its TransferResult."""
    from cvdemo.transfer import transfer

    return list(transfer(textures, mode="probe"))[-1].result


@pytest.fixture(scope="session")
def digits_teacher():
    """The shipped digits teacher (checkpoints/digits_teacher.*)."""
    from cvdemo.distill import load_teacher

    return load_teacher()


@pytest.fixture(scope="session")
def digits_data():
    """The digits' fixed (train, test) split."""
    from cvdemo.datasets import digits_split

    return digits_split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Url(str):
    """A server's URL; `.log` is the path of what it writes to stdout and stderr."""

    log: Path
    pid: int


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A real app server (`python app.py`) on 127.0.0.1, offline; yields its URL (`.log`: its output)."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "app.log"
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_TEMP_DIR": str(tmp_path_factory.mktemp("gradio")),
           "GRADIO_HEARTBEAT_INTERVAL": "2"}  # a closed page's session ends within 2 s (Gradio's default: 15)
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = Url(f"http://127.0.0.1:{port}/")
    url.log, url.pid = log, proc.pid
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"app did not start:\n{log.read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A test against the server failed: the report ends with the page's text (browser tests) and the server's
    log, its threads' stacks last (app.py dumps them on SIGUSR1), so a job that hung or waited says where."""
    report = yield
    fixtures = getattr(item, "funcargs", {})
    page, server = fixtures.get("page") or fixtures.get("ko_page"), fixtures.get("server")
    if report.failed and page is not None:
        try:
            report.sections.append(("the page's text", page.locator("body").inner_text(timeout=5_000)))
        except Exception as err:  # the browser is gone
            report.sections.append(("the page's text", f"(not readable: {err})"))
    if report.failed and isinstance(server, Url) and server.log.exists():
        os.kill(server.pid, signal.SIGUSR1)
        time.sleep(1)
        report.sections.append(("server log (last 200 lines)", "\n".join(server.log.read_text().splitlines()[-200:])))
    return report
