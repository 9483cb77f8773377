"""Top-1 / top-5 of the offline ImageNet networks on every labelled photo that ships in an installed package.

    python -m scripts.top1_photos      (or PYTHONPATH=. python scripts/top1_photos.py)

Not a test: it prints a table. The photos and their ImageNet labels (a set where several classes name the
same thing) are in PHOTOS; crops or copies of one photo count once. "before" is what cvdemo ran until
2026-11: the same Lite0 tensors in timm's efficientnet_lite0 (PyTorch padding, BN eps 1e-5, ImageNet
mean/std), which takes every tensor but is not the network the weights were trained as.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import timm
from safetensors.torch import load_file

from cvdemo.images import load_image
from cvdemo.inference import Classifier, get_classifier
from cvdemo.models import OFFLINE_WEIGHTS, offline_weights


def package_path(package: str, *parts: str) -> Path:
    return Path(importlib.util.find_spec(package).origin).parent.joinpath(*parts)


CATS = {"tabby, tabby cat", "tiger cat", "Egyptian cat"}
PHOTOS = {  # (package, path inside it) -> accepted ImageNet labels
    ("skimage", "data/chelsea.png"): CATS,
    ("skimage", "data/coffee.png"): {"espresso", "cup", "coffee mug"},
    ("skimage", "data/rocket.jpg"): {"missile", "projectile, missile", "space shuttle"},
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"): {"military uniform"},
    ("gradio", "media_assets/images/cheetah.jpg"): {"cheetah, chetah, Acinonyx jubatus"},
    ("gradio", "media_assets/images/cheetah1.jpg"): {"cheetah, chetah, Acinonyx jubatus"},
    ("gradio", "test_data/cheetah2.jpg"): {"cheetah, chetah, Acinonyx jubatus"},
    ("gradio", "media_assets/images/lion.jpg"): {"lion, king of beasts, Panthera leo"},
    ("sklearn", "datasets/images/china.jpg"): {"palace", "monastery", "stupa, tope"},
}


def before() -> Classifier:
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    model.load_state_dict(load_file(str(offline_weights("tf_efficientnet_lite0"))))
    return Classifier("efficientnet_lite0 (before)", model.eval(), runtime="torch")


def main() -> None:
    images = {path.split("/")[-1]: load_image(package_path(pkg, *path.split("/"))) for pkg, path in PHOTOS}
    labels = dict(zip(images, PHOTOS.values()))
    classifiers = [before()] + [get_classifier(name) for name in OFFLINE_WEIGHTS]
    print(f"{len(images)} labelled photos: " + ", ".join(images))
    for classifier in classifiers:
        hits1 = hits5 = 0
        mass, wrong = 0.0, []
        for name, image in images.items():
            probs = classifier.probabilities([image])[0]
            mass += sum(p for label, p in zip(classifier.labels, probs) if label in labels[name]) / len(images)
            top = [label for label, _p in classifier.top_k(probs, 5)]
            hits1 += top[0] in labels[name]
            hits5 += any(label in labels[name] for label in top)
            if top[0] not in labels[name]:
                wrong.append(f"{name} -> {top[0]}")
        print(f"{classifier.name:<30} top-1 {hits1}/{len(images)}  top-5 {hits5}/{len(images)}  "
              f"mean p(right label) {mass:.3f}  wrong: {'; '.join(wrong) or '-'}")


if __name__ == "__main__":
    main()
