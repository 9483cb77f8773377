"""classify() in Python: inputs, ordering, the fast runtime against eager timm, Grad-CAM."""
import numpy as np
import pytest
import timm.data
import torch
from PIL import Image

from cvdemo import LimitError, classify
from cvdemo.inference import PooledFeatures, extract_features, get_classifier


def test_classify_takes_path_pil_and_numpy_alike(examples):
    by_path = classify(examples["coffee"])
    pil = Image.open(examples["coffee"])
    assert classify(pil) == by_path  # same pixels, same answer
    by_array = classify(np.asarray(pil.convert("RGB")))
    assert [label for label, _ in by_array] == [label for label, _ in by_path]
    assert len(by_path) == 5
    probs = [p for _, p in by_path]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9


def test_top_k_is_honoured_and_checked(examples):
    assert len(classify(examples["cat"], top_k=1)) == 1
    assert len(classify(examples["cat"], top_k=20)) == 20
    for bad in (0, -1, 21, 2.5, "5", True):
        with pytest.raises(LimitError):
            classify(examples["cat"], top_k=bad)


def test_fast_path_matches_timm_eager_end_to_end(examples):
    """onnxruntime + cvdemo preprocessing vs plain timm (its transform, eager torch)."""
    fast = get_classifier()
    assert fast.runtime == "onnxruntime"  # CPU machine
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=fast.model))
    for path in examples.values():
        image = Image.open(path).convert("RGB")
        with torch.no_grad():
            eager = fast.model(transform(image)[None]).softmax(-1)[0].numpy()
        ours = fast.probabilities([image])[0]
        assert list(np.argsort(-eager)[:5]) == list(np.argsort(-ours)[:5]), path
        assert np.abs(eager - ours).max() < 1e-3, path
        # same input tensor: the runtimes agree to float precision
        x = transform(image)[None]
        with torch.no_grad():
            assert np.abs(fast.model(x).numpy() - fast.logits(x.numpy())).max() < 1e-3


def test_classify_reports_the_models_own_milliseconds(examples):
    top, ms = get_classifier().classify(examples["rocket"])
    assert top[0][0] in {"missile", "projectile, missile"}
    assert 0 < ms < 10_000


def test_gradcam_points_at_the_object(examples):
    """A cat pasted on the left of a grey canvas: the cat class lights up the left half."""
    cat = Image.open(examples["cat"]).convert("RGB").resize((224, 224))
    canvas = Image.new("RGB", (448, 448), (128, 128, 128))
    canvas.paste(cat, (0, 112))
    classifier = get_classifier()
    cam, crop, label = classifier.gradcam(canvas)
    assert "cat" in label
    assert cam.shape == (224, 224) and crop.size == (224, 224)
    assert 0 <= cam.min() and cam.max() <= 1
    assert cam[:, :112].mean() > 2 * cam[:, 112:].mean()
    overlay, _ = classifier.explain(canvas)
    assert overlay.size == (224, 224) and overlay.mode == "RGB"


CATS = {"tabby, tabby cat", "tiger cat", "Persian cat", "Siamese cat, Siamese", "Egyptian cat"}  # ImageNet 281-285


def test_compare_puts_the_cat_through_the_three_offline_sizes(examples):
    from cvdemo.inference import compare
    from cvdemo.models import OFFLINE_WEIGHTS

    rows = compare(examples["cat"], runs=2)
    assert [r["name"] for r in rows] == list(OFFLINE_WEIGHTS)
    assert [r["input_size"] for r in rows] == [(224, 224), (240, 240), (260, 260)]  # each its own preprocessing
    params = [r["params"] for r in rows]
    assert params == sorted(params) and len(set(params)) == 3 and 4e6 < params[0] < params[2] < 7e6
    for row in rows:
        assert row["top"][0][0] in CATS, row["name"]
        assert len(row["top"]) == 5 and row["ms"] > 0
        assert row["params"] * 4 / 2**20 <= row["mb"] < row["params"] * 4.1 / 2**20  # + BatchNorm statistics
    assert rows[0]["top"] == get_classifier().classify(examples["cat"])[0]  # the same answer as Classify
    with pytest.raises(LimitError):
        compare(examples["cat"], runs=0)
    with pytest.raises(LimitError):
        compare(examples["cat"], top_k=0)


@pytest.fixture
def fake_loading(monkeypatch):
    """get_classifier with cheap stand-ins for building: {name: Event} makes that name's load wait for the event;
    `built` lists the names built, in order."""
    from collections import OrderedDict
    from types import SimpleNamespace

    from cvdemo import inference

    gates, built = {}, []

    def create_model(name):
        if name in gates:
            gates[name].wait()
        built.append(name)
        return name

    monkeypatch.setattr(inference, "_loaded", OrderedDict())
    monkeypatch.setattr(inference, "_name_locks", {})
    monkeypatch.setattr(inference, "_used", {})
    monkeypatch.setattr(inference, "create_model", create_model)
    monkeypatch.setattr(inference, "Classifier",
                        lambda name, model: SimpleNamespace(name=name, device=inference.pick_device()))
    return SimpleNamespace(module=inference, gates=gates, built=built)


def test_the_per_name_locks_do_not_grow_with_every_name_ever_asked_for(fake_loading):
    inference = fake_loading.module
    for i in range(200):
        assert inference.get_classifier(f"model-{i}").name == f"model-{i}"
    assert inference._name_locks == {} and len(inference._loaded) == inference.MAX_LOADED_MODELS


def test_a_loading_model_blocks_only_its_own_name_and_its_lock_goes_with_the_last_request(fake_loading):
    import threading

    inference, gate = fake_loading.module, threading.Event()
    fake_loading.gates["slow"] = gate
    results = []
    threads = [threading.Thread(target=lambda: results.append(inference.get_classifier("slow"))) for _ in range(3)]
    for t in threads:
        t.start()
    while not (fake_loading.built == [] and inference._name_locks.get("slow", [None, 0])[1] == 3):
        threading.Event().wait(0.01)  # until all three hold or await "slow"'s lock
    assert inference.get_classifier("fast").name == "fast"  # not held up by "slow"
    assert list(inference._name_locks) == ["slow"]
    gate.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert fake_loading.built == ["fast", "slow"]  # built once; the other two requests got the same one
    assert len({id(r) for r in results}) == 1 and inference._name_locks == {}


def test_a_blank_model_name_is_the_default_model_not_a_second_copy_named_blank(fake_loading):
    inference = fake_loading.module
    default = inference.get_classifier()
    for blank in ("", "   ", " \t\n"):
        assert inference.get_classifier(blank) is default
    assert fake_loading.built == [inference.DEFAULT_MODEL] and list(inference._loaded) == [inference.DEFAULT_MODEL]


def test_a_classifier_no_request_used_for_a_while_is_dropped_but_the_default_stays(fake_loading):
    """Issue 16.2: a server at rest gives back the networks a user loaded (the Lite1 and Lite2 of "bigger
    networks"), not the default one every page uses."""
    inference = fake_loading.module
    for name in (inference.DEFAULT_MODEL, "lite1", "lite2"):
        inference.get_classifier(name)
    for name in (inference.DEFAULT_MODEL, "lite1"):
        inference._used[name] -= inference.IDLE_SECONDS + 1  # as if no request got them for that long
    assert inference.unload_idle() == ["lite1"] and list(inference._loaded) == [inference.DEFAULT_MODEL, "lite2"]
    inference.get_classifier("lite1")
    assert fake_loading.built.count("lite1") == 2  # built again when asked for again


def test_onnx_features_equal_the_torch_backbone(examples):
    classifier = get_classifier()
    image = Image.open(examples["cat"]).convert("RGB")
    fast = extract_features([image])
    with torch.no_grad():
        eager = PooledFeatures(classifier.model)(torch.from_numpy(classifier.preprocess(image))).numpy()
    assert fast.shape == (1, 1280)
    assert np.abs(fast - eager).max() < 1e-3
    assert not classifier.model.training  # exporting the features must leave the model in eval mode


def test_features_of_drawn_images_hold_one_full_size_image_at_a_time():
    """Issue 18.1: extract_features takes a generator (a probe's augmented copies, a 4096 px crop each) and
    shrinks each image to the model's input as it comes: the earlier full-size images are freed, and the features
    are those of the same images given as a list."""
    import weakref

    from cvdemo.inference import extract_features

    made: list[weakref.ref] = []

    def drawn():
        for i in range(40):
            assert sum(ref() is not None for ref in made) <= 1  # only the one just yielded may still be held
            image = Image.new("RGB", (1024, 768), (6 * i, 255 - 6 * i, 90))
            made.append(weakref.ref(image))
            yield image
            del image

    streamed = extract_features(drawn())
    again = extract_features([Image.new("RGB", (1024, 768), (6 * i, 255 - 6 * i, 90)) for i in range(40)])
    assert streamed.shape == (40, again.shape[1]) and np.allclose(streamed, again, atol=1e-5)


def test_onnxruntime_takes_at_most_a_few_images_a_call():
    """Issue 16.2: a session's arena keeps what its largest call needed (700 MB after 32 images of 224 px), so
    every batch goes to onnxruntime RUNTIME_BATCH images at a time, in order."""
    from cvdemo.inference import RUNTIME_BATCH, _run

    class Session:
        def __init__(self):
            self.calls = []

        def run(self, outputs, feeds):
            self.calls.append(len(feeds["input"]))
            return [feeds["input"].sum(axis=(1, 2, 3))[:, None]]

    session, batch = Session(), np.arange(10 * 3 * 2 * 2, dtype=np.float32).reshape(10, 3, 2, 2)
    out = _run(session, "output", batch)
    assert session.calls == [RUNTIME_BATCH] * (10 // RUNTIME_BATCH) + [10 % RUNTIME_BATCH] and RUNTIME_BATCH <= 8
    assert np.array_equal(out[:, 0], batch.sum(axis=(1, 2, 3)))
