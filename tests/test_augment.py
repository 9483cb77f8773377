"""cvdemo.augment: specs, reproducible captioned samples, CutMix/MixUp weights, torchvision parity."""
import json
import pickle
import re
import threading

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from torchvision.transforms import v2

import cvdemo.augment
from cvdemo.augment import MAX_SAMPLES, OPS, PRESETS, SpecError, build_pipeline, describe_ops
from cvdemo.errors import LimitError

EVERY_OP = {"ops": [
    {"op": "brightness", "brightness": [0.6, 1.4], "contrast": [0.8, 1.2], "saturation": [0.9, 1.1],
     "hue": [-0.05, 0.05]},
    {"op": "rotation", "degrees": 30},
    {"op": "hflip", "p": 0.5},
    {"op": "vflip", "p": 0.5},
    {"op": "crop", "scale": [0.5, 1.0], "ratio": [0.75, 1.333], "size": [64, 80]},
    {"op": "affine", "degrees": 5, "translate": [0.1, 0.1], "scale": [0.9, 1.1], "shear": 10},
    {"op": "randaugment", "num_ops": 2, "magnitude": 9},
    {"op": "cutmix", "alpha": 1.0},
    {"op": "mixup", "alpha": 0.4},
]}


def small(arr: np.ndarray, width: int = 120) -> Image.Image:
    img = Image.fromarray(arr)
    return img.resize((width, round(width * img.height / img.width)), Image.Resampling.BILINEAR)


@pytest.fixture(scope="module")
def cat() -> Image.Image:
    return small(skimage.data.chelsea())


@pytest.fixture(scope="module")
def coffee() -> Image.Image:
    return small(skimage.data.coffee())


def pixels(img) -> np.ndarray:
    return np.asarray(img) if isinstance(img, Image.Image) else img.numpy()


def same_samples(a, b) -> bool:
    return all(np.array_equal(pixels(x.image), pixels(y.image)) and x.caption == y.caption and x.params == y.params
               and x.mix == y.mix for x, y in zip(a, b, strict=True))


def run_code(pipe) -> dict:
    namespace: dict = {}
    exec(pipe.to_code(), namespace)  # noqa: S102 - the snippet is ours, that it runs is the test
    return namespace


# --- reproducibility ---

def test_same_seed_same_samples_other_seed_other_samples(cat, coffee):
    pipe = build_pipeline(EVERY_OP)
    a = pipe.sample(cat, 4, seed=7, mix_with=coffee, labels=("cat", "espresso"))
    b = build_pipeline(EVERY_OP).sample(cat, 4, seed=7, mix_with=coffee, labels=("cat", "espresso"))
    c = pipe.sample(cat, 4, seed=8, mix_with=coffee, labels=("cat", "espresso"))
    assert same_samples(a, b)
    assert all(x.caption != y.caption for x, y in zip(a, c))
    assert len({x.caption for x in a}) == 4  # the k samples differ from each other too
    for s in a:
        assert s.image.mode == "RGB" and s.image.size == (80, 64)  # crop size is (h, w) = (64, 80)
        json.dumps(s.params)
        assert s.caption.startswith("cat: ") and (" | espresso: " in s.caption)
        assert [label for label, _ in s.mix] == ["cat", "espresso"]


def test_sampling_is_thread_safe_and_leaves_the_global_rng_alone(cat):
    pipe = build_pipeline(PRESETS["randaugment"])
    reference = pipe.sample(cat, 3, seed=1)
    state = torch.get_rng_state()
    pipe.sample(cat, 3, seed=1)
    assert torch.equal(torch.get_rng_state(), state)

    stop, results = threading.Event(), []

    def hammer():  # another thread using (and reseeding) the global RNG all the while
        while not stop.is_set():
            torch.manual_seed(0)
            torch.rand(100)

    def work():
        results.append(pipe.sample(cat, 3, seed=1))

    noise = threading.Thread(target=hammer)
    noise.start()
    workers = [threading.Thread(target=work) for _ in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    noise.join()
    assert len(results) == 4 and all(same_samples(r, reference) for r in results)


def test_draws_are_torchvisions_own(cat):
    """pipe(img, generator seeded s) == torch.manual_seed(s); <the to_code transform>(img), pixel for
    pixel: the recorded parameters are exactly those torchvision draws, and to_code is faithful."""
    spec = {"ops": [op for op in EVERY_OP["ops"] if op["op"] not in ("cutmix", "mixup")]}
    pipe = build_pipeline(spec)
    transform = run_code(pipe)["transform"]
    tensor = v2.functional.pil_to_tensor(cat)
    for seed in range(6):
        for img in (cat, tensor):
            torch.manual_seed(seed)
            expected = transform(img)
            got = pipe(img, generator=torch.Generator().manual_seed(seed))
            assert type(got) is type(img)
            assert np.array_equal(pixels(got), pixels(expected)), seed
    for name in ("cutmix", "mixup"):
        mixer = build_pipeline({"ops": [{"op": name, "alpha": 0.7}]})
        batch, labels = torch.rand(4, 3, 16, 20), torch.tensor([0, 1, 2, 0])
        torch.manual_seed(3)
        expected = getattr(v2, {"cutmix": "CutMix", "mixup": "MixUp"}[name])(alpha=0.7, num_classes=3)(batch, labels)
        got = mixer.mix_batch(batch, labels, 3, generator=torch.Generator().manual_seed(3))
        assert torch.equal(got[0], expected[0]) and torch.allclose(got[1], expected[1])


# --- identities and exact ops ---

@pytest.mark.parametrize("op", [
    {"op": "brightness", "brightness": [1, 1], "contrast": [1, 1], "saturation": [1, 1], "hue": [0, 0]},
    {"op": "rotation", "degrees": 0},
    {"op": "hflip", "p": 0},
    {"op": "vflip", "p": 0},
    {"op": "crop", "scale": [1, 1], "ratio": [1, 1]},  # on a square image: the whole image
    {"op": "affine", "degrees": 0, "translate": [0, 0], "scale": [1, 1], "shear": 0},
    {"op": "randaugment", "num_ops": 0},
], ids=lambda op: op["op"])
def test_identity_settings_are_identities(op, cat):
    square = cat.crop((0, 0, 80, 80))
    pipe = build_pipeline({"ops": [op]})
    for img in (square, v2.functional.pil_to_tensor(square)):
        for seed in range(3):
            assert np.array_equal(pixels(pipe(img, generator=torch.Generator().manual_seed(seed))), pixels(img))
    caption = "crop (x=0, y=0, 80×80)" if op["op"] == "crop" else "unchanged"  # the whole image, drawn
    assert all(s.caption == caption for s in pipe.sample(square, 3, seed=0))


def test_flip_with_p_1_is_an_exact_mirror(cat):
    h = build_pipeline({"ops": [{"op": "hflip", "p": 1}]}).sample(cat, 2, seed=0)
    v = build_pipeline({"ops": [{"op": "vflip", "p": 1}]}).sample(cat, 2, seed=0)
    for s in h:
        assert np.array_equal(np.asarray(s.image), np.fliplr(np.asarray(cat))) and s.caption == "hflip"
    for s in v:
        assert np.array_equal(np.asarray(s.image), np.flipud(np.asarray(cat))) and s.caption == "vflip"


# --- CutMix / MixUp ---

RED, BLUE = (200, 30, 30), (20, 40, 220)


def test_cutmix_weights_equal_the_pasted_area():
    first, second = Image.new("RGB", (90, 60), RED), Image.new("RGB", (45, 30), BLUE)  # second gets resized
    samples = build_pipeline({"ops": [{"op": "cutmix"}]}).sample(first, 12, seed=0, mix_with=second,
                                                                 labels=("cat", "espresso"))
    assert any(0 < s.mix[1][1] < 1 for s in samples)
    for s in samples:
        x1, y1, x2, y2 = s.params["mix"]["box"]
        area = (x2 - x1) * (y2 - y1)
        out = np.asarray(s.image)
        pasted = np.all(out == BLUE, axis=2)
        assert pasted.sum() == area  # from the pixels
        assert np.all(out[~pasted] == RED) and pasted[y1:y2, x1:x2].all()
        (l1, w1), (l2, w2) = s.mix
        assert (l1, l2) == ("cat", "espresso")
        assert w2 == area / (90 * 60) and w1 == pytest.approx(1 - w2, abs=1e-12)  # from the params
        assert f"CutMix box (x={x1}, y={y1}, {x2 - x1}×{y2 - y1}): cat {w1:.2f} + espresso {w2:.2f}" in s.caption


def test_mixup_weights_sum_to_1_and_pixels_are_the_blend():
    first, second = Image.new("RGB", (40, 30), RED), Image.new("RGB", (40, 30), BLUE)
    samples = build_pipeline({"ops": [{"op": "mixup", "alpha": 0.4}]}).sample(first, 8, seed=3, mix_with=second)
    assert len({round(s.mix[0][1], 6) for s in samples}) == 8
    for s in samples:
        (_, w1), (_, w2) = s.mix
        assert w1 + w2 == pytest.approx(1, abs=1e-12) and w1 == s.params["mix"]["lam"]
        blend = w1 * np.array(RED, float) + w2 * np.array(BLUE, float)
        assert np.abs(np.asarray(s.image, float) - blend).max() <= 0.5 + 1e-3
        assert s.caption.endswith(f"MixUp λ={w1:.2f}: image 1 {w1:.2f} + image 2 {w2:.2f}")


def test_mixing_without_a_second_image_says_so(cat):
    s = build_pipeline({"ops": [{"op": "hflip", "p": 1}, {"op": "cutmix"}]}).sample(cat, 1, seed=0)[0]
    assert s.mix is None and s.caption == "hflip · (cutmix needs a second image)"


@pytest.mark.parametrize("ops", [["cutmix"], ["mixup"], ["cutmix", "mixup"], []])
def test_mix_batch_returns_soft_labels(ops):
    pipe = build_pipeline({"ops": [{"op": "hflip"}] + [{"op": op} for op in ops]})
    images, labels = torch.randint(0, 256, (6, 3, 24, 32), dtype=torch.uint8), torch.tensor([0, 1, 2, 3, 4, 0])
    for seed in range(4):
        mixed, soft = pipe.mix_batch(images, labels, 5, generator=torch.Generator().manual_seed(seed))
        assert mixed.shape == images.shape and mixed.dtype == torch.uint8
        assert soft.shape == (6, 5) and soft.dtype == torch.float32
        assert torch.allclose(soft.sum(dim=1), torch.ones(6))
        if not ops:
            assert torch.equal(mixed, images) and torch.equal(soft.argmax(1), labels)
    mixed, soft = pipe.mix_batch(images.float() / 255, labels, 5)  # float batch, global RNG
    assert mixed.dtype == torch.float32 and torch.allclose(soft.sum(dim=1), torch.ones(6))
    with pytest.raises(ValueError, match="labels must be class indices"):
        pipe.mix_batch(images, labels, 3)


# --- RandAugment ---

@pytest.mark.parametrize(("n", "m"), [(1, 9), (3, 30), (4, 0)])
def test_randaugment_honours_n_and_m(n, m, cat):
    pipe = build_pipeline({"ops": [{"op": "randaugment", "num_ops": n, "magnitude": m}]})
    space = v2.RandAugment._AUGMENTATION_SPACE
    img = Image.fromarray(np.minimum(np.asarray(cat), 254))  # Solarize(1.0) would invert 255s
    unchanged_checked = 0
    for s in pipe.sample(img, 12, seed=m):
        chosen = s.params["ops"][0]["chosen"]
        assert len(chosen) == n and len(s.caption.removeprefix("RandAugment: ").split(", ")) == n
        for c in chosen:
            table = space[c["op"]][0](31, img.height, img.width)
            assert abs(c["magnitude"]) == (0.0 if table is None else pytest.approx(float(table[m])))
        if m == 0 and not {c["op"] for c in chosen} & {"AutoContrast", "Equalize"}:
            assert np.array_equal(np.asarray(s.image), np.asarray(img)), s.caption  # magnitude 0: no change
            unchanged_checked += 1
    assert m != 0 or unchanged_checked >= 2


# --- specs ---

@pytest.mark.parametrize(("spec", "field", "words"), [
    ({"ops": [{"op": "blur"}]}, "ops[0].op", "must be one of brightness"),
    ({"ops": [{"p": 0.5}]}, "ops[0].op", "got missing"),
    ({"ops": [{"op": "brightness", "brigthness": [1, 2]}]}, "ops[0].brigthness", "is not a field of 'brightness'"),
    ({"ops": [{"op": "hflip"}, {"op": "hflip"}, {"op": "rotation", "degrees": 400}]}, "ops[2].degrees",
     "ops[2].degrees must be between 0 and 180, got 400"),
    ({"ops": [{"op": "rotation", "degrees": "30"}]}, "ops[0].degrees", "must be a number, got '30'"),
    ({"ops": [{"op": "rotation", "degrees": float("nan")}]}, "ops[0].degrees", "must be a number"),
    ({"ops": [{"op": "hflip", "p": 1.5}]}, "ops[0].p", "between 0 and 1, got 1.5"),
    ({"ops": [{"op": "hflip", "p": True}]}, "ops[0].p", "must be a number"),
    ({"ops": [{"op": "brightness", "brightness": [-0.1, 1]}]}, "ops[0].brightness[0]", "between 0 and 10"),
    ({"ops": [{"op": "brightness", "contrast": [1.4, 0.6]}]}, "ops[0].contrast", "low ≤ high"),
    ({"ops": [{"op": "brightness", "brightness": 0.5}]}, "ops[0].brightness", "list of two numbers"),
    ({"ops": [{"op": "crop", "scale": [0, 1]}]}, "ops[0].scale[0]", "greater than 0 and at most 1"),
    ({"ops": [{"op": "crop", "size": [0, 10]}]}, "ops[0].size[0]", "between 1 and 4096"),
    ({"ops": [{"op": "affine", "translate": [0.1, 2]}]}, "ops[0].translate[1]", "between 0 and 1"),
    ({"ops": [{"op": "randaugment", "num_ops": 15}]}, "ops[0].num_ops", "between 0 and 14, got 15"),
    ({"ops": [{"op": "randaugment", "num_ops": 1.5}]}, "ops[0].num_ops", "whole number"),
    ({"ops": [{"op": "randaugment", "magnitude": 31}]}, "ops[0].magnitude", "between 0 and 30"),
    ({"ops": [{"op": "cutmix", "alpha": 0}]}, "ops[0].alpha", "greater than 0"),
    ({"ops": [{"op": "mixup", "alpha": -1}]}, "ops[0].alpha", "greater than 0"),
    ({"ops": [{"op": "hflip", "enabled": "no"}]}, "ops[0].enabled", "true or false"),
    ({"ops": [{"op": "cutmix"}, {"op": "hflip"}]}, "ops[1]", "put them last"),
    ({"ops": [{"op": "mixup"}, {"op": "mixup"}]}, "ops[1]", "only one mixup"),
    ({"ops": ["hflip"]}, "ops[0]", 'must be an object like {"op": "hflip"}'),
    ({"ops": {"op": "hflip"}}, "ops", "ops must be a list of op objects, got {'op': 'hflip'}"),
    ({"ops": None}, "ops", "got None"),
    ({}, "ops", "got missing"),
    ({"ops": [], "seed": 1}, "spec.seed", "not a known field"),
    ({"ops": [{"op": "hflip"}] * 33}, "ops", "at most 32"),
    ({"ops": [{"op": ["hflip"]}]}, "ops[0].op", "got ['hflip']"),
    ({"ops": [{"op": "rotation", "degrees": 10**5000}]}, "ops[0].degrees", "got a number too large to print"),
    ('{"ops": [{"op": "rotation", "degrees": ' + "9" * 5000 + "}]}", "spec", "spec is not valid JSON"),
    ("[" * 100_000, "spec", "spec is not valid JSON"),
    ([{"op": "hflip"}], "spec", "spec must be an object"),
    ('{"ops": [', "spec", "spec is not valid JSON"),
    (42, "spec", "spec must be an object"),
])
def test_bad_specs_name_the_field(spec, field, words):
    with pytest.raises(SpecError) as info:
        build_pipeline(spec)
    assert info.value.field == field and info.value.code.startswith("augment.") and info.value.code != SpecError.code
    assert isinstance(info.value, ValueError)
    assert words in str(info.value) and field in str(info.value)


def test_defaults_are_filled_in_and_json_round_trips(cat, coffee):
    pipe = build_pipeline(json.dumps(EVERY_OP))
    again = build_pipeline(pipe.to_json())
    assert again == pipe and again.to_json() == pipe.to_json()
    assert same_samples(pipe.sample(cat, 3, 5, mix_with=coffee), again.sample(cat, 3, 5, mix_with=coffee))
    spec = build_pipeline({"ops": [{"op": name} for name in OPS]}).spec
    assert [entry["op"] for entry in spec["ops"]] == list(OPS)
    assert spec["ops"][1] == {"op": "rotation", "degrees": 15.0, "enabled": True}
    assert spec["ops"][4]["size"] is None and spec["ops"][7]["alpha"] == 1.0



def default_text(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:g}" for v in value) + "]"
    return f"{value:g}"


def test_describe_ops_names_every_op_and_field_with_its_default_and_range(capsys):
    """The ops table (`python -m cvdemo.augment`; the module docstring points to it) is rendered from OPS: every
    op and every field is in it with its default and allowed values, and the bounds it states are the ones
    build_pipeline enforces, so the text can't drift from the checks."""
    text = describe_ops()
    blocks: dict[str, dict[str, str]] = {}  # op -> {field: the rest of its line}
    for line in text.splitlines()[1:]:
        if line.startswith("  "):
            field, rest = line.split(None, 1)
            blocks[op][field] = rest
        else:
            op = line.split()[0]
            blocks[op] = {}
    assert list(blocks) == list(OPS)
    for name, cls in OPS.items():
        assert cls.summary in text
        assert list(blocks[name]) == list(cls.fields)
        for field, f in cls.fields.items():
            rest, allowed = blocks[name][field], f.check.allowed
            assert rest.startswith(default_text(f.default) + " ") and allowed in rest and f.meaning in rest
            numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", allowed)]
            lo, hi = min(numbers), max(numbers)

            def spec(x, name=name, field=field, pair="[" in allowed):
                return {"ops": [{"op": name, field: [x, x] if pair else x}]}

            build_pipeline(spec(hi))
            if f"{lo:g} < " in allowed:
                with pytest.raises(SpecError):
                    build_pipeline(spec(lo))
            else:
                build_pipeline(spec(lo))
            for outside in (lo - 1, hi + 1):
                with pytest.raises(SpecError):
                    build_pipeline(spec(outside))
    assert re.search(r"^  degrees +15 +0\.\.180 +angle drawn from", text, re.M)
    assert re.search(r"^  ratio +\[0\.75, 1\.33333\] +\[lo, hi\], 0\.1 <= lo <= hi <= 10 ", text, re.M)
    assert "describe_ops()" in cvdemo.augment.__doc__ and "0..180" not in cvdemo.augment.__doc__
    assert cvdemo.augment.main([]) == 0 and capsys.readouterr().out == text


def test_disabled_ops_are_kept_but_skipped(cat):
    pipe = build_pipeline({"ops": [{"op": "hflip", "p": 1, "enabled": False}, {"op": "vflip", "p": 1}]})
    assert np.array_equal(np.asarray(pipe(cat)), np.flipud(np.asarray(cat)))
    assert json.loads(pipe.to_json())["ops"][0]["enabled"] is False
    assert "HorizontalFlip" not in pipe.to_code()
    assert build_pipeline(pipe.to_json()) == pipe


def test_to_code_runs_and_presets_work(cat, coffee):
    for name, spec in PRESETS.items():
        pipe = build_pipeline(spec)
        namespace = run_code(pipe)
        out = namespace["transform"](cat)
        assert isinstance(out, Image.Image), name
        if "mix" in namespace:
            tensor = v2.functional.to_dtype(v2.functional.pil_to_tensor(out), torch.float32, scale=True)
            batch = torch.stack([tensor] * 4)
            images, labels = namespace["mix"](batch, torch.tensor([0, 1, 2, 3]))
            assert images.shape == batch.shape and labels.shape == (4, namespace["NUM_CLASSES"])
        assert len(pipe.sample(cat, 2, 0, mix_with=coffee)) == 2
    assert "v2.Identity()" in build_pipeline({"ops": []}).to_code()


def test_pipeline_is_a_plain_transform_and_pickles(cat):
    pipe = build_pipeline(EVERY_OP)
    tensor = torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8)
    out = pipe(tensor)
    assert out.dtype == torch.uint8 and out.shape == (3, 64, 80)
    assert pipe(cat).size == (80, 64)
    again = pickle.loads(pickle.dumps(pipe))
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert np.array_equal(np.asarray(again(cat, generator=g1)), np.asarray(pipe(cat, generator=g2)))


def test_sample_limits(cat):
    pipe = build_pipeline(PRESETS["light"])
    for bad in ({"k": 0}, {"k": MAX_SAMPLES + 1}, {"k": 2.0}, {"seed": -1}, {"seed": "1"}):
        with pytest.raises(LimitError):
            pipe.sample(cat, **{"k": 1, "seed": 0, **bad})
    with pytest.raises(LimitError, match="labels must be two strings"):
        pipe.sample(cat, 1, 0, labels=("cat",))


def test_robustness_says_how_often_the_top1_survives_the_samples(cat, coffee):
    from cvdemo.augment import robustness
    from cvdemo.inference import get_classifier

    classifier = get_classifier()
    unchanged = robustness(build_pipeline({"ops": [{"op": "hflip", "p": 0.0}]}), cat, classifier, k=3)
    label, p = unchanged["original"]
    assert unchanged["kept"] == 3 and [t[0] for t in unchanged["top1"]] == [label] * 3
    assert abs(unchanged["mean"] - p) < 1e-5 and len(unchanged["samples"]) == 3
    mixed = robustness(build_pipeline({"ops": [{"op": "mixup"}]}), cat, classifier, k=2, seed=1, mix_with=coffee)
    coffee_label = classifier.top_k(classifier.probabilities([coffee])[0], 1)[0][0]
    assert [name for name, _ in mixed["samples"][0].mix] == [label.split(",")[0], coffee_label.split(",")[0]]
    assert 0 <= mixed["kept"] <= 2 and 0 <= mixed["mean"] <= 1


def test_mix_up_close_shows_the_box_the_clipped_lambda_and_the_two_classes(cat, coffee):
    from cvdemo.augment import mix_up_close
    from cvdemo.inference import get_classifier

    classifier = get_classifier()
    r = mix_up_close(cat, coffee, classifier, "cutmix", alpha=1.0, k=4, seed=0)
    assert r["names"] == tuple(classifier.labels[i].split(",")[0] for i in r["classes"])
    width, height = cat.size
    for s in r["samples"]:
        x1, y1, x2, y2 = s["box"]
        area = (x2 - x1) * (y2 - y1) / (width * height)
        assert s["lam"] == pytest.approx(1 - area) and s["lam"] >= s["lam_drawn"] - 1e-9  # clipping only shrinks
        assert [w for _, w in s["target"]] == pytest.approx([1 - area, area])
        assert [name for name, _ in s["target"]] == list(r["names"])
        if x2 - x1 > 4 and y2 - y1 > 4:
            assert s["image"].getpixel((x1, y1)) == (255, 0, 0)  # the box, outlined
        assert all(0 <= p <= 1 for p in s["probs"])
    assert any(s["lam"] > s["lam_drawn"] + 0.01 for s in r["samples"])  # a box hit the border at this seed
    mixup = mix_up_close(cat, coffee, classifier, "mixup", alpha=0.4, k=2, seed=0)
    for s in mixup["samples"]:
        assert s["box"] is None and s["lam"] == s["lam_drawn"] and [w for _, w in s["target"]] == pytest.approx(
            [s["lam"], 1 - s["lam"]])
    with pytest.raises(LimitError):
        mix_up_close(cat, coffee, classifier, "crop")


def test_capped_crops_draw_the_same_crops_at_a_bounded_size():
    """Issue 18.1: a spec's 4096 px crop (allowed) is made at most `side` px for training and the preview; the
    crops drawn are the same (the same seed gives the same picture, only smaller); other ops are untouched."""
    import numpy as np
    import torch
    from PIL import Image

    from cvdemo.augment import build_pipeline

    spec = {"ops": [{"op": "crop", "size": [4096, 2048], "scale": [0.3, 0.6]}, {"op": "hflip", "p": 0.5}]}
    pipeline = build_pipeline(spec)
    capped = pipeline.capped(448)
    assert capped.spec["ops"][0]["size"] == [448, 224] and capped.spec["ops"][1] == pipeline.spec["ops"][1]
    assert pipeline.spec["ops"][0]["size"] == [4096, 2048]  # the original is unchanged
    assert build_pipeline({"ops": [{"op": "crop"}]}).capped(448) == build_pipeline({"ops": [{"op": "crop"}]})
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), np.uint8))
    small = capped(image, torch.Generator().manual_seed(3))
    big = pipeline(image, torch.Generator().manual_seed(3))
    assert small.size == (224, 448) and big.size == (2048, 4096)
    assert np.abs(np.asarray(big.resize(small.size, Image.BILINEAR), float) - np.asarray(small, float)).mean() < 8
