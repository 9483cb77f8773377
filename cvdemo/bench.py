"""Benchmarks that print ratios measured side by side in one run (the machine is noisy).

    python -m cvdemo.bench classify [--runs 200] [--image PATH] [--model tf_efficientnet_lite1]
    python -m cvdemo.bench augment [--runs 10]
    python -m cvdemo.bench transfer [--seeds 3]

`classify`: one model (default: the default model), batch 1, fp32: plain timm eager (timm transform + torch forward)
against cvdemo's fast path (fused PIL preprocessing + onnxruntime), alternating call by call so
both see the same load. Ends with the line `ratio <eager/fast>` for the forward pass.

`transfer`: (a) a linear probe on 3 texture classes x 60 real patches, end to end with an empty
feature cache (goal 6 s), then the head retrained on the cached features (goal 0.5 s); (b) the
pretrained probe against the same architecture trained from scratch with the probe's training time
as its budget (at least 5 s), on the built-in textures and faces sets, per seed and mean +- std.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
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


def bench_classify(runs: int, image_path: str | None, model: str | None = None) -> None:
    import timm.data

    from .images import load_image, sample_photos
    from .inference import get_classifier

    fast = get_classifier(model)  # onnxruntime on a CPU
    eager = fast.model  # the same timm module with the same weights, run as plain eager torch
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=eager))
    image = load_image(image_path or sample_photos()[3])  # rocket.jpg, a 640x427 photo
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
    from .images import load_image, sample_photos
    from .inference import get_classifier

    image = load_image(sample_photos()[2])  # astronaut.png, 512x512
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


PROBE_GOAL_S, RETRAIN_GOAL_S = 6.0, 0.5


def _run_transfer(dataset, mode: str, config) -> tuple[float, object, object]:
    """One transfer() run, every event iterated: (seconds end to end, TransferResult, last Event)."""
    from .transfer import transfer

    start = time.perf_counter()
    last = None
    for last in transfer(dataset, mode=mode, config=config):
        pass
    return time.perf_counter() - start, last.result, last


def _mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} +- {std:.3f}"


def bench_transfer(seeds: int) -> None:
    """Linear-probe timings (a), and pretrained probe vs from scratch on the same time budget (b)."""
    from . import transfer as transfer_module
    from .datasets import faces, textures
    from .inference import get_classifier
    from .transfer import default_config, scratch_config

    start_all = time.perf_counter()
    # once per process, as in the app: the model (loaded at server start) and the ONNX feature session
    setup = time.perf_counter()
    classifier = get_classifier()
    classifier.features(classifier.preprocess(textures().images[0]))
    setup = time.perf_counter() - setup

    # --- (a) 3 classes x 60 real images: texture patches with a smaller stride ---
    patches = textures(patch=128, stride=48)
    data = patches.subset(np.concatenate([np.flatnonzero(patches.labels == c)[:60]
                                          for c in range(len(patches.classes))]))
    counts = ", ".join(f"{c} {n}" for c, n in data.counts().items())
    print(f"model {classifier.name}, runtime {classifier.runtime}, torch threads {torch.get_num_threads()}, "
          f"{seeds} seeds, load average {os.getloadavg()[0]:.2f}; setup once per process (model + feature "
          f"session) {setup:.2f} s, not counted below")
    print(f"(a) linear probe, textures patch 128 stride 48, first 60 per class ({counts}), "
          f"{default_config('probe')}")
    print(f"  {'seed':>4}  {'end to end':>10} {'(train':>7} {'+ report)':>9}  {'retrain':>7} {'(train':>7} "
          f"{'+ report)':>9}  {'val acc':>7}  {'cached':>6}")
    cold, warm = [], []
    for seed in range(seeds):
        transfer_module._feature_cache.clear()
        t1, r1, _ = _run_transfer(data, "probe", default_config("probe", seed))
        # same seed (the split depends on it, so the same images: features from the cache), another lr
        sets_before = len(transfer_module._feature_cache)
        t2, r2, _ = _run_transfer(data, "probe", dataclasses.replace(default_config("probe", seed), lr=3e-3))
        hit = len(transfer_module._feature_cache) == sets_before
        cold.append(t1)
        warm.append(t2)
        print(f"  {seed:>4}  {t1:>9.2f}s {r1.seconds:>6.2f}s {t1 - r1.seconds:>8.2f}s  {t2:>6.2f}s {r2.seconds:>6.2f}s "
              f"{t2 - r2.seconds:>8.2f}s  {r1.val_acc:>3.2f}/{r2.val_acc:.2f}  {'yes' if hit else 'NO':>6}")
    print("  (train: until the head is trained, i.e. TransferResult.seconds; report: validation "
          "probabilities, confusion, misclassified)")
    p_cold, p_warm = statistics.median(cold), statistics.median(warm)
    print(f"  probe end to end, empty feature cache: p50 {p_cold:.2f} s   goal {PROBE_GOAL_S:g} s   "
          f"ratio goal/measured {PROBE_GOAL_S / p_cold:.2f}")
    print(f"  head retrained on cached features:     p50 {p_warm:.2f} s   goal {RETRAIN_GOAL_S:g} s   "
          f"ratio goal/measured {RETRAIN_GOAL_S / p_warm:.2f}")

    # --- (b) pretrained probe vs the same architecture from scratch, same training-time budget ---
    print("(b) pretrained linear probe vs from scratch (tf_efficientnet_lite0; scratch gets the probe's time, at least "
          "transfer.MIN_SCRATCH_SECONDS, as the Transfer tab does), val fraction 0.2")
    print(f"  {'dataset':<9} {'seed':>4}  {'probe acc':>9} {'probe s':>8}  {'budget s':>8}  {'scratch acc':>11} "
          f"{'epochs':>6} {'steps':>6} {'scratch s':>9}")
    summary: dict[tuple[str, str], list[float]] = {}
    for name, make in (("textures", textures), ("faces", faces)):
        dataset = make()
        for seed in range(seeds):
            transfer_module._feature_cache.clear()
            t_probe, probe, _ = _run_transfer(dataset, "probe", default_config("probe", seed))
            budget = scratch_config(probe.seconds, seed).max_seconds
            t_scratch, scratch, last = _run_transfer(dataset, "scratch", scratch_config(probe.seconds, seed))
            summary.setdefault((name, "probe"), []).append(probe.val_acc)
            summary.setdefault((name, "scratch"), []).append(scratch.val_acc)
            print(f"  {name:<9} {seed:>4}  {probe.val_acc:>9.3f} {t_probe:>7.2f}s  {budget:>7.2f}s  "
                  f"{scratch.val_acc:>11.3f} {len(scratch.history):>6} {last.step:>6} {t_scratch:>8.2f}s")
    print(f"  {'dataset':<9} {'mode':<8} {'val acc mean +- std (sample) over ' + str(seeds) + ' seeds'}")
    for (name, mode), accs in summary.items():
        print(f"  {name:<9} {mode:<8} {_mean_std(accs)}")
    for name in ("textures", "faces"):
        gain = statistics.mean(summary[(name, "probe")]) - statistics.mean(summary[(name, "scratch")])
        print(f"  {name}: pretraining bought {gain * 100:+.1f} points (mean)")
    print(f"total {time.perf_counter() - start_all:.0f} s, load average at the end {os.getloadavg()[0]:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cvdemo.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("classify", help="eager timm vs the fast path, batch 1")
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--image", default=None, help="photo to use (default: scikit-image's rocket.jpg)")
    p.add_argument("--model", default=None, help="an offline classifier (default: tf_efficientnet_lite0)")
    a = sub.add_parser("augment", help="16 RandAugment samples of a 512 px image + batched classification")
    a.add_argument("--runs", type=int, default=10)
    t = sub.add_parser("transfer", help="linear-probe timings; pretrained probe vs from scratch, same budget")
    t.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.what == "classify":
        bench_classify(args.runs, args.image, args.model)
    elif args.what == "augment":
        bench_augment(args.runs)
    else:
        if args.seeds < 1:
            parser.error("--seeds must be at least 1")
        bench_transfer(args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
