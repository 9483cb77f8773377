"""Benchmarks that print ratios measured side by side in one run (the machine is noisy).

    python -m cvdemo.bench classify [--runs 200] [--image PATH]
    python -m cvdemo.bench augment [--runs 10]

`classify`: the default model, batch 1, fp32: plain timm eager (timm transform + torch forward)
against cvdemo's fast path (fused PIL preprocessing + onnxruntime), alternating call by call so
both see the same load. Ends with the line `ratio <eager/fast>` for the forward pass.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_classify(runs: int, image_path: str | None) -> None:
    import timm.data

    from .images import load_image
    from .inference import get_classifier
    from .ui.common import example_images

    fast = get_classifier()  # onnxruntime on a CPU
    eager = fast.model  # the same timm module with the same weights, run as plain eager torch
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=eager))
    image = load_image(image_path or example_images()[3])  # rocket.jpg, a 640x427 photo
    x_eager = transform(image)[None]
    x_fast = fast.preprocess(image)

    def eager_forward():
        with torch.no_grad():
            return eager(x_eager)

    def fast_forward():
        return fast.logits(x_fast)

    for _ in range(10):  # warm-up
        eager_forward(), fast_forward()
    times: dict[str, list[float]] = {k: [] for k in ("eager_pre", "fast_pre", "eager_fwd", "fast_fwd")}
    for _ in range(runs):
        times["eager_pre"].append(timed(lambda: transform(image)))
        times["fast_pre"].append(timed(lambda: fast.preprocess(image)))
        times["eager_fwd"].append(timed(eager_forward))
        times["fast_fwd"].append(timed(fast_forward))

    p_eager = eager_forward().softmax(-1)[0].numpy()
    p_fast = fast.probabilities([image])[0]  # the fast path end to end
    same_top5 = list(np.argsort(-p_eager)[:5]) == list(np.argsort(-p_fast)[:5])
    med = {k: p50_ms(v) for k, v in times.items()}
    print(f"model {fast.name}, image {image.size[0]}x{image.size[1]}, {runs} runs, "
          f"torch threads {torch.get_num_threads()}, fast runtime {fast.runtime}")
    print(f"preprocess p50   timm {med['eager_pre']:.2f} ms   cvdemo {med['fast_pre']:.2f} ms   "
          f"ratio {med['eager_pre'] / med['fast_pre']:.2f}")
    print(f"end to end p50   eager {med['eager_pre'] + med['eager_fwd']:.2f} ms   "
          f"fast {med['fast_pre'] + med['fast_fwd']:.2f} ms   "
          f"ratio {(med['eager_pre'] + med['eager_fwd']) / (med['fast_pre'] + med['fast_fwd']):.2f}")
    print(f"same top-5 {same_top5}   max |p_eager - p_fast| {np.abs(p_eager - p_fast).max():.2e}")
    print(f"forward p50      eager {med['eager_fwd']:.2f} ms   fast {med['fast_fwd']:.2f} ms")
    print(f"ratio {med['eager_fwd'] / med['fast_fwd']:.2f}")


def bench_augment(runs: int) -> None:
    """Draw 16 RandAugment samples of a 512 px photo and classify them in one batch (goal < 1.5 s)."""
    from .augment import build_pipeline
    from .images import load_image
    from .inference import get_classifier
    from .ui.common import example_images

    image = load_image(example_images()[2])  # astronaut.png, 512x512
    pipeline = build_pipeline({"ops": [{"op": "randaugment", "num_ops": 2, "magnitude": 9}]})
    classifier = get_classifier()
    draw, classify = [], []
    for seed in range(runs):
        start = time.perf_counter()
        samples = pipeline.sample(image, k=16, seed=seed)
        middle = time.perf_counter()
        classifier.probabilities([s.image for s in samples])
        draw.append(middle - start)
        classify.append(time.perf_counter() - middle)
    total = [a + b for a, b in zip(draw, classify)]
    print(f"16 samples of {image.size[0]}x{image.size[1]}, RandAugment N=2 M=9, {runs} runs")
    print(f"draw p50 {p50_ms(draw):.0f} ms   classify (batch 16) p50 {p50_ms(classify):.0f} ms")
    print(f"total p50 {p50_ms(total):.0f} ms   goal 1500 ms   ratio goal/total {1500 / p50_ms(total):.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cvdemo.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("classify", help="eager timm vs the fast path, default model, batch 1")
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--image", default=None, help="photo to use (default: scikit-image's rocket.jpg)")
    a = sub.add_parser("augment", help="16 RandAugment samples of a 512 px image + batched classification")
    a.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    if args.what == "classify":
        bench_classify(args.runs, args.image)
    else:
        bench_augment(args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
