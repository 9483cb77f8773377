"""Where the work runs (cvdemo.gpu, cvdemo.jobs): off ZeroGPU the GPU decorator changes nothing; on ZeroGPU a job
runs in a worker forked from the server, with its arguments and results pickled, and must give what it gives in
process (a stand-in for ZeroGPU's worker below); the Stop button reaches it; the UI calls every job through
cvdemo.jobs."""
import ast
import importlib
import multiprocessing
import pickle
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cvdemo import LimitError, distill, gpu, inference, jobs
from cvdemo.train import StopFlag, TrainConfig
from cvdemo.transfer import transfer

UI = Path(__file__).resolve().parent.parent / "cvdemo" / "ui"


def forked(seconds):
    """spaces.GPU as ZeroGPU runs it, in miniature: the function runs in a process forked from this one (ZeroGPU
    forks its worker from the server), its arguments pickled in and each item it yields pickled back through a fork
    context's SimpleQueues, as spaces does. The worker waits until the last item is read (ZeroGPU's waits for the
    next call): torch hands a tensor over as shared memory that the receiver fetches from the sender."""
    def decorate(fn):
        def call(*args, **kwargs):
            fork = multiprocessing.get_context("fork")
            inbox, outbox = fork.SimpleQueue(), fork.SimpleQueue()
            worker = fork.Process(target=work, args=(fn, inbox, outbox), daemon=True)
            worker.start()
            inbox.put((args, kwargs))
            deadline = time.monotonic() + 60
            while True:
                while outbox.empty():
                    assert worker.is_alive() and time.monotonic() < deadline, "the worker died or hung"
                    time.sleep(0.005)
                kind, value = outbox.get()
                if kind == "end":
                    break
                assert kind == "item", value  # "error": the worker's own failure, as text
                yield value
            inbox.put("done")
            worker.join(10)

        return call

    return decorate


def work(fn, inbox, outbox):
    args, kwargs = inbox.get()
    try:
        for item in fn(*args, **kwargs):
            outbox.put(("item", item))
        outbox.put(("end", None))
    except BaseException as err:  # noqa: BLE001 (reported to the test)
        outbox.put(("error", repr(err)))
    inbox.get()  # until everything sent has been read


@pytest.fixture
def on_zerogpu(monkeypatch):
    """`gpu.streamed` as it makes a job on ZeroGPU, with `forked` standing in for spaces.GPU."""
    monkeypatch.setattr(gpu, "on_gpu", forked)
    return gpu.streamed


def same_answer(one, other, image) -> bool:
    """Whether two classifiers give an image the same top-3, with the same probabilities."""
    (a, _), (b, _) = one.classify(image, top_k=3), other.classify(image, top_k=3)
    return [label for label, _ in a] == [label for label, _ in b] and \
        [p for _, p in a] == pytest.approx([p for _, p in b], abs=1e-6)


def moments(events):
    """What a run reported, without its timings."""
    return [(e.kind, e.epoch, e.epochs, e.step, e.steps, e.loss, e.metrics, e.best, e.history) for e in events]


def test_off_zerogpu_the_gpu_decorator_returns_the_function_itself():
    assert not gpu.ZERO_GPU and gpu.spaces is not None  # the pinned spaces package, as a Space installs it

    def fn():
        pass

    assert gpu.on_gpu(60)(fn) is fn and gpu.on_gpu(gpu.budget_seconds)(fn) is fn
    assert jobs.transfer.__wrapped__ is transfer and jobs.sweep is distill.sweep  # (a job on the CPU: itself)


def test_a_job_gives_the_same_run_in_process_and_in_a_forked_worker(few_textures, on_zerogpu):
    config = TrainConfig(epochs=12, lr=1e-2, seed=3)
    library = list(transfer(few_textures, mode="probe", config=config))
    app = list(jobs.transfer(few_textures, mode="probe", config=config))  # what the page calls, here
    worker = list(on_zerogpu(transfer)(few_textures, mode="probe", config=config))
    assert moments(app) == moments(library) and moments(worker) == moments(library)
    ours, theirs = library[-1].result, worker[-1].result
    assert (theirs.classes, theirs.val_acc, theirs.per_class_acc) == (ours.classes, ours.val_acc, ours.per_class_acc)
    assert np.array_equal(theirs.confusion, ours.confusion) and len(theirs.val_data) == len(ours.val_data)
    weights, back = ours.classifier.model.state_dict(), theirs.classifier.model.state_dict()
    assert weights.keys() == back.keys() and all(torch.equal(weights[k], back[k]) for k in weights)
    assert same_answer(theirs.classifier, ours.classifier, few_textures.images[1])


def test_the_stop_button_reaches_a_run_in_the_worker_and_the_best_epoch_is_kept(few_textures, on_zerogpu):
    stop, events = StopFlag(), []
    config = TrainConfig(epochs=500, batch_size=4, lr=1e-2)
    for event in on_zerogpu(transfer)(few_textures, mode="probe", config=config, stop=stop):
        events.append(event)
        if event.kind == "epoch" and event.epoch == 2:
            stop.set()  # here, in the server's process: the run is in the worker's
    final = events[-1]
    assert final.kind == "stopped" and 2 <= len(final.history) < 500 and final.result.stopped
    best = max(final.history, key=lambda h: (h["val_acc"], h["epoch"]))  # ties: the later epoch
    assert final.best["epoch"] == best["epoch"]
    assert final.result.val_acc == pytest.approx(best["val_acc"])  # the model that came back is that epoch's


def test_a_user_error_in_the_worker_arrives_as_itself(few_textures, on_zerogpu):
    with pytest.raises(LimitError) as refused:
        list(on_zerogpu(transfer)(few_textures, mode="nonsense"))
    assert refused.value.code == "limit.mode" and refused.value.params["value"] == "nonsense"


def test_closing_a_job_closes_the_run_behind_it():
    """A page that is left closes its job (ui.common.heartbeat): the library's run must end there and then."""
    ended = []

    def run():
        try:
            yield from range(100)
        finally:
            ended.append(True)

    items = gpu.streamed(run)()
    assert next(items) == 0 and ended == []
    items.close()
    assert ended == [True]


def test_on_zerogpu_the_server_uses_the_cpu_and_its_forked_workers_the_gpu(monkeypatch):
    monkeypatch.setattr(gpu, "ZERO_GPU", True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as spaces' torch says in the server
    assert gpu.pick_device().type == "cpu"
    in_worker = list(forked(60)(lambda: [gpu.pick_device().type, torch.get_num_threads()])())
    assert in_worker == ["cuda", 1]  # and one torch thread: OpenMP would hang in a forked process


def test_a_job_behind_the_heartbeat_sees_the_handlers_gradio_request():
    """A ZeroGPU call reads Gradio's request (spaces: LocalContext.request) to charge the visitor's own quota."""
    from gradio.context import LocalContext

    from cvdemo.ui.common import call, heartbeat

    token = LocalContext.request.set("the visitor's request")
    try:
        seen = [item for item in heartbeat(call(LocalContext.request.get, None)) if item is not None]
    finally:
        LocalContext.request.reset(token)
    assert seen == ["the visitor's request"]


def test_a_classifier_built_for_another_device_is_not_reused(monkeypatch):
    monkeypatch.setitem(inference._loaded, "somewhere", SimpleNamespace(device=torch.device("cpu")))
    assert inference._cached("somewhere") is not None
    monkeypatch.setattr(inference, "pick_device", lambda: torch.device("cuda"))  # a ZeroGPU worker's
    assert inference._cached("somewhere") is None


def test_a_classifier_pickles_as_its_model_and_is_built_again(examples):
    classifier = inference.get_classifier()
    copy = pickle.loads(pickle.dumps(classifier))
    assert copy is not classifier and (copy.name, copy.runtime, copy.precision) == (
        classifier.name, classifier.runtime, classifier.precision)
    assert same_answer(copy, classifier, examples["cat"])


def test_a_stop_flag_set_here_is_seen_by_its_pickled_copy():
    flag = StopFlag()
    copy = pickle.loads(pickle.dumps(flag))
    assert not copy.is_set()
    flag.set()
    assert copy.is_set()
    del flag  # the file goes with the flag that made it
    assert not copy.is_set()


def test_budget_seconds_reserves_a_runs_budget_and_its_setup():
    assert gpu.budget_seconds(None, config=TrainConfig(max_seconds=60)) == 60 + gpu.SETUP_SECONDS
    assert gpu.budget_seconds(max_seconds=20.5) == 21 + gpu.SETUP_SECONDS
    assert gpu.budget_seconds("digits", seed=1) == gpu.budget_seconds(config=TrainConfig()) == gpu.DEFAULT_SECONDS


def test_every_training_handler_calls_its_job_through_cvdemo_jobs():
    """The UI never calls a job's library function itself (under any name), and every handler in the TRAINING gate
    calls one of cvdemo.jobs: so jobs.py alone decides where training runs."""
    library = [getattr(job, "__wrapped__", job) for job in map(jobs.__dict__.get, jobs.__all__)]
    handlers = []
    for path in sorted(UI.glob("*.py")):
        module = importlib.import_module(f"cvdemo.ui.{path.stem}")
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                named = getattr(module, node.id, None)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id != "jobs":
                named = getattr(getattr(module, node.value.id, None), node.attr, None)
            else:
                continue
            called = next((fn for fn in library if named is fn), None)
            assert called is None, f"{path.name}:{node.lineno} calls {called.__name__} itself"
        for fn in tree.body:
            if isinstance(fn, ast.FunctionDef) and "gated(TRAINING)" in map(ast.unparse, fn.decorator_list):
                handlers.append(fn.name)
                assert any(isinstance(n, ast.Attribute) and getattr(n.value, "id", None) == "jobs"
                           for n in ast.walk(fn)), f"{path.name}: {fn.name} trains without cvdemo.jobs"
    assert len(handlers) > 10  # the check saw the tabs' training handlers
