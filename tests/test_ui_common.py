"""The tabs' shared pieces for long jobs: live progress during silent steps, the last word of a stopped run,
curves over whole numbers, and a training job that says when it waits for another."""
import os
import threading
import time

import gradio as gr
import pandas as pd
import pytest

from cvdemo import LimitError
from cvdemo.train import Event
from cvdemo.ui.common import TRAINING, Curve, finished, heartbeat, training_job, working
from cvdemo.ui.session import Workspace, workspace_state


def test_a_silent_step_gets_heartbeats_and_its_error_reaches_the_handler():
    def job():
        time.sleep(0.35)
        yield "first"
        raise LimitError("A run is already going in this session: stop it or wait.", code="limit.busy")

    seen = []
    with pytest.raises(LimitError):
        for item in heartbeat(job(), every=0.1):
            seen.append(item)
    assert seen[-1] == "first" and set(seen[:-1]) == {None} and len(seen) >= 3


def test_leaving_the_page_closes_the_job_behind_the_heartbeat():
    closed = threading.Event()

    def job():
        try:
            while True:
                yield 1
        finally:
            closed.set()

    beats = heartbeat(job())
    assert next(beats) == 1
    beats.close()  # what Gradio does when the user leaves
    assert closed.wait(5)


def test_progress_lines_say_how_long_and_how_long_is_left():
    ws = Workspace()
    assert working(ws, "Running the teacher…", 12.3) == "Running the teacher… · 12 s so far"
    assert working(ws, "Epochs", 10, 25) == "Epochs · 10 s so far · about 15 s left"
    ws.lang = "ko"
    assert working(ws, "교사", 10, 25) == "교사 · 지금까지 10초 · 약 15초 남음"


def test_a_stopped_run_says_so_and_which_epochs_model_is_kept():
    ws = Workspace()
    stopped = Event("stopped", 3, 10, 30, 100, best={"epoch": 2, "val_acc": 0.875}, history=[{}, {}, {}])
    assert finished(ws, stopped) == "Stopped after epoch 3 of 10: the model of epoch 2 (87.5%) is kept."
    assert finished(ws, Event("stopped", 0, 10, 2, 100)).startswith("Stopped before the first epoch ended")
    assert finished(ws, Event("done", 10, 10, 100, 100, best={"epoch": 9, "val_acc": 0.9})) == "Done."


def test_curves_over_few_whole_numbers_get_one_tick_each_and_a_single_point_shows():
    plot = Curve(x="epoch", y="value")
    data = plot.postprocess(pd.DataFrame({"epoch": [1, 2, 10], "value": [0.1, 0.2, 0.3]}))
    ticks = [row[0] for row in data.data]
    assert data.datatypes["epoch"] == "nominal" and sorted(ticks) == ticks  # sorted as strings = as numbers
    assert [t.strip() for t in ticks] == ["1", "2", "10"] and data.mark == "line"
    assert plot.postprocess(pd.DataFrame({"epoch": [1, 1], "value": [0.5, 0.6]})).mark == "point"
    many = plot.postprocess(pd.DataFrame({"epoch": range(1, 50), "value": 0.5}))
    assert many.datatypes["epoch"] == "quantitative"  # many epochs: whole-number ticks anyway


def test_a_training_job_dims_the_last_plots_turns_stop_on_and_says_when_it_waits_for_another():
    with gr.Blocks() as demo:
        workspace = workspace_state()
        button, status, halt, plot = gr.Button(), gr.Markdown(), gr.Button(interactive=False), gr.LinePlot()
        training_job(button, lambda ws: "done", [workspace], status, workspace, status, clear=(plot,), halt=halt)
    start = next(fn.fn for fn in demo.fns.values() if fn.name == "start")
    line, dimmed, stop = start(Workspace())
    assert line == "Starting…" and dimmed.elem_classes == ["stale"] and stop.interactive is True
    with TRAINING.ticket(Workspace()) as ticket:  # another user's job is running
        assert TRAINING.wait(ticket, 0) is None
        assert start(Workspace())[0].startswith("Waiting: another training job is running")
    assert start(Workspace())[0] == "Starting…"  # and it ended


def test_an_image_shown_again_never_truncates_the_copy_a_browser_is_fetching():
    """A gallery returned again with the same images (the Self-train threshold moved) while the browser still
    fetches the first copies: every read of the file gets the whole image (Gradio rewrote it in place, and a
    read in between got 0 bytes: a broken thumbnail, ERR_CONTENT_LENGTH_MISMATCH in the page)."""
    import numpy as np
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8))
    gallery = gr.Gallery()
    path = gallery.postprocess([image]).root[0].image.path
    size, short, done = os.path.getsize(path), [], threading.Event()

    def fetch():
        while not done.is_set():
            with open(path, "rb") as f:
                if len(f.read()) != size:
                    short.append(path)

    browser = threading.Thread(target=fetch)
    browser.start()
    try:
        paths = {gallery.postprocess([image, image]).root[1].image.path for _ in range(200)}
    finally:
        done.set()
        browser.join()
    assert paths == {path} and short == []
