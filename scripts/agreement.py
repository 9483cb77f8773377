"""Does the int8 fast path give the fp32 answer? Top-1 agreement and top-5 overlap on every natural image offline.

    PYTHONPATH=. python scripts/agreement.py [--models tf_efficientnet_lite0 ...] [--bf16] [--noise] [--list]

Not a test: it prints a table per model size and per source. The images (`natural_images`), each counted once:
- photos: every photograph the installed packages ship (scikit-image, matplotlib, gradio, scikit-learn), except
  the calibration photos (`cvdemo.quantize.CALIBRATION`) and anything of the same scene; copies count once;
- faces: scikit-image's lfw_subset, 100 faces and 100 non-faces (25x25 grey crops of LFW photos);
- textures: scikit-image's brick, grass and gravel photos cut into a 6 x 6 grid of tiles that share no pixel.
None of them is used for calibration. Top-5 overlap: the share of fp32's top 5 classes in int8's top 5.
`--bf16` adds torch eager with bf16 autocast (the other low-precision path this CPU has) against the same fp32.
`--noise` adds fp32 itself on inputs moved by uniform noise in [-0.5, 0.5] of an 8-bit level (three draws, each
counted): pixels that round to the same 8-bit image. How often fp32 keeps its own top-1 there bounds what a path that
perturbs the network by that much can keep.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image

from cvdemo.datasets import faces
from cvdemo.images import load_image
from cvdemo.inference import Classifier
from cvdemo.models import OFFLINE_WEIGHTS, create_model
from cvdemo.quantize import CALIBRATION, package_file

PHOTOS = (  # (package, path): every photograph in the installed packages not among CALIBRATION
    *(("skimage", f"data/{name}") for name in (
        "chelsea.png", "coffee.png", "rocket.jpg", "camera.png", "coins.png", "moon.png", "ihc.png", "retina.jpg",
        "page.png", "text.png", "cell.png", "clock_motion.png", "microaneurysms.png")),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    ("gradio", "media_assets/images/cheetah.jpg"), ("gradio", "media_assets/images/cheetah1.jpg"),
    ("gradio", "test_data/cheetah2.jpg"), ("gradio", "media_assets/images/lion.jpg"),
    ("gradio", "media_assets/images/groot.jpeg"), ("gradio", "media_assets/images/tower.jpg"),
    ("sklearn", "datasets/images/china.jpg"), ("sklearn", "datasets/images/flower.jpg"),
)
# Left out: motorcycle_left.png (the same scene as the calibration's motorcycle_right.png), gradio's
# cheetah1-copy.jpg (a copy), the textures (their tiles below), and drawings, logos, icons and synthetic images.
TEXTURES, GRID = ("brick.png", "grass.png", "gravel.png"), 6


def natural_images() -> dict[str, list[Image.Image]]:
    """{source: images}, every image distinct from the others and from the calibration images."""
    assert not set(PHOTOS) & set(CALIBRATION), "a calibration photo would be measured"
    tiles = []
    for name in TEXTURES:
        photo = load_image(package_file("skimage", f"data/{name}"))
        step = photo.size[0] // GRID
        tiles += [photo.crop((x * step, y * step, (x + 1) * step, (y + 1) * step))
                  for y in range(GRID) for x in range(GRID)]
    return {"photos": [load_image(package_file(p, path)) for p, path in PHOTOS], "faces": faces().images,
            "textures": tiles}


def logits(classifier: Classifier, images: list[Image.Image]) -> np.ndarray:
    return np.concatenate([classifier.logits(classifier.preprocess(im)) for im in images])


def bf16_logits(classifier: Classifier, images: list[Image.Image]) -> np.ndarray:
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        return np.concatenate([classifier.model(torch.from_numpy(classifier.preprocess(im))).float().numpy()
                               for im in images])


def noisy_logits(classifier: Classifier, images: list[Image.Image], seed: int) -> np.ndarray:
    """fp32 logits of each image with U(-0.5, 0.5) added to its 0-255 pixels (after the crop, before normalising)."""
    rng = np.random.default_rng(seed)
    pixels = (np.asarray(classifier.crop(im), dtype=np.float32) for im in images)
    return np.concatenate([classifier.logits(classifier.normalize(p + rng.uniform(-0.5, 0.5, p.shape)))
                           for p in pixels])


def compare(reference: np.ndarray, other: np.ndarray) -> tuple[int, float]:
    """(images with the same top-1, mean share of the reference's top 5 in the other's top 5)."""
    top5_ref, top5_other = np.argsort(-reference, 1)[:, :5], np.argsort(-other, 1)[:, :5]
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top5_ref, top5_other)])
    return int((reference.argmax(1) == other.argmax(1)).sum()), float(overlap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(OFFLINE_WEIGHTS))
    parser.add_argument("--bf16", action="store_true", help="also torch eager with bf16 autocast")
    parser.add_argument("--noise", action="store_true", help="also fp32 on inputs moved within their 8-bit rounding")
    parser.add_argument("--list", action="store_true", help="print each disagreement")
    args = parser.parse_args()
    sources = natural_images()
    print(f"{sum(map(len, sources.values()))} images: " + ", ".join(f"{k} {len(v)}" for k, v in sources.items()))
    for name in args.models:
        model = create_model(name)
        fp32 = Classifier(name, model, precision="fp32")
        int8 = Classifier(name, model, precision="int8")
        print(f"{name}: fp32 onnxruntime against int8" + " and bf16" * args.bf16 + " and noisy fp32" * args.noise)
        totals: dict[str, list] = {}
        for source, images in sources.items():
            reference = logits(fp32, images)
            others = {"int8": logits(int8, images)}
            if args.bf16:
                others["bf16"] = bf16_logits(fp32, images)
            if args.noise:
                others["noise"] = np.concatenate([noisy_logits(fp32, images, seed) for seed in range(3)])
            for kind, out in others.items():
                same, overlap = compare(np.tile(reference, (len(out) // len(reference), 1)), out)
                totals.setdefault(kind, []).append((same, overlap, len(out)))
                print(f"  {kind:<5} {source:<9} top-1 {same:>3}/{len(out):<3} ({same / len(out):6.1%})   "
                      f"top-5 overlap {overlap:.3f}")
                if args.list:
                    labels = fp32.labels
                    for i in np.flatnonzero(reference.argmax(1) != out[:len(images)].argmax(1)):
                        print(f"      #{i}: fp32 {labels[reference[i].argmax()]!r}, {kind} {labels[out[i].argmax()]!r}")
        for kind, rows in totals.items():
            same, n = sum(r[0] for r in rows), sum(r[2] for r in rows)
            overlap = sum(r[1] * r[2] for r in rows) / n
            print(f"  {kind:<5} {'all':<9} top-1 {same:>3}/{n:<3} ({same / n:6.1%})   top-5 overlap {overlap:.3f}")


if __name__ == "__main__":
    main()
