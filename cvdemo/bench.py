"""Benchmarks that print ratios measured side by side in one run (the machine is noisy).

    python -m cvdemo.bench classify [--runs 200] [--image PATH] [--model tf_efficientnet_lite1]
    python -m cvdemo.bench features [--batches 4] [--batch-size 32]
    python -m cvdemo.bench augment [--runs 10]
    python -m cvdemo.bench transfer [--seeds 3]

`classify`: one model (default: the default model), batch 1: plain timm eager fp32 (timm transform + torch forward),
the same with bf16 autocast, and cvdemo's fast path (fused PIL preprocessing + onnxruntime) in fp32 and in static int8
(`cvdemo.quantize`), taking turns in blocks of 10 calls so all see the same load; then how far each lands from
onnxruntime fp32 on this photo. Ends with the line `ratio <eager/default path>` for the forward pass.

`features`: pooled features of texture patches in batches (the linear probe's work), fp32 vs int8: images/s.

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


BLOCK = 10  # calls in a row per path before the next path's turn


def bench_classify(runs: int, image_path: str | None, model: str | None = None) -> None:
    """Batch 1, one photo: timm eager fp32 (timm transform + torch forward), eager with bf16 autocast, and cvdemo's
    fused preprocessing + onnxruntime in fp32 and in static int8, taking turns in blocks of BLOCK calls (all see
    the same load). Not call by call: then each runtime's thread pool goes cold or spins while the other runs, and
    eager torch measured 35.9 ms against 16.0 ms alone on a quiet machine (docs/decisions.md, issues 13 and 16.1)."""
    import timm.data

    from .images import load_image, sample_photos
    from .inference import Classifier, default_precision, softmax
    from .models import check_imagenet_classifier, create_model
    from .quantize import cpu_has_vnni

    name = check_imagenet_classifier(model)
    eager = create_model(name).eval()  # plain timm eager torch on the CPU; the same weights run everywhere below
    fast = {p: Classifier(name, eager, runtime="onnxruntime", precision=p) for p in ("fp32", "int8")}
    default, note = default_precision(name, "onnxruntime")
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=eager))
    image = load_image(image_path or sample_photos()[3])  # rocket.jpg, a 640x427 photo
    x_eager = transform(image)[None]
    x_fast = fast["fp32"].preprocess(image)

    def eager_forward(bf16: bool = False):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return eager(x_eager).float()

    forwards = {"eager fp32": eager_forward, "eager bf16": lambda: eager_forward(True),
                "onnxruntime fp32": lambda: fast["fp32"].logits(x_fast),
                "onnxruntime int8": lambda: fast["int8"].logits(x_fast)}
    load = os.getloadavg()[0]  # as the timing starts
    calls = {"timm": lambda: transform(image), "cvdemo": lambda: fast["fp32"].preprocess(image), **forwards}
    times: dict[str, list[float]] = {k: [] for k in calls}
    for round_ in range(-1, max(1, runs // BLOCK)):  # round -1: warm-up, not counted
        for key, call in calls.items():
            block = [timed(call) for _ in range(BLOCK)]
            if round_ >= 0:
                times[key] += block
    med = {k: p50_ms(v) for k, v in times.items()}
    default_key = f"onnxruntime {default}"
    print(f"model {name}, image {image.size[0]}x{image.size[1]}, {runs} runs, torch threads {torch.get_num_threads()}, "
          f"load average {load:.2f} at the start, CPU VNNI {'yes' if cpu_has_vnni() else 'no'}, "
          f"default path {default_key}" + (f" ({note})" if note else ""))
    print(f"preprocess p50   timm {med['timm']:.2f} ms   cvdemo {med['cvdemo']:.2f} ms   "
          f"ratio {med['timm'] / med['cvdemo']:.2f}")
    print("forward p50      " + "   ".join(f"{k} {med[k]:.2f} ms" for k in forwards))
    print("ratio to eager   " + "   ".join(f"{k} {med['eager fp32'] / med[k]:.2f}" for k in list(forwards)[1:])
          + f"   (int8 over fp32 onnxruntime {med['onnxruntime fp32'] / med['onnxruntime int8']:.2f})")

    reference = fast["fp32"].probabilities([image])[0]  # the fp32 fast path end to end
    others = {"eager fp32 (timm transform)": softmax(eager_forward().numpy())[0],
              "eager bf16 (timm transform)": softmax(eager_forward(True).numpy())[0],
              "onnxruntime int8": fast["int8"].probabilities([image])[0]}
    top5 = set(np.argsort(-reference)[:5])
    print("against onnxruntime fp32 on this image: " + ";  ".join(
        f"{k} top-1 {'same' if p.argmax() == reference.argmax() else 'DIFFERENT'}, top-5 overlap "
        f"{len(top5 & set(np.argsort(-p)[:5]))}/5, max |dp| {np.abs(p - reference).max():.1e}"
        for k, p in others.items()))
    print("(top-1 agreement over 330 natural images: python scripts/agreement.py)")
    print(f"end to end p50   eager {med['timm'] + med['eager fp32']:.2f} ms   {default_key} "
          f"{med['cvdemo'] + med[default_key]:.2f} ms   "
          f"ratio {(med['timm'] + med['eager fp32']) / (med['cvdemo'] + med[default_key]):.2f}")
    print(f"ratio {med['eager fp32'] / med[default_key]:.2f}")


def bench_features(batches: int, batch_size: int) -> None:
    """Pooled features of texture patches (inference.extract_features' work, preprocessing excluded), fp32 against
    int8 onnxruntime, batch by batch alternately: images per second, and how close the int8 features are."""
    from .datasets import textures
    from .inference import Classifier, default_precision
    from .models import DEFAULT_MODEL, create_model

    model = create_model(DEFAULT_MODEL)
    fast = {p: Classifier(DEFAULT_MODEL, model, runtime="onnxruntime", precision=p) for p in ("fp32", "int8")}
    images = textures(patch=128, stride=48).images[:batches * batch_size]
    x = np.concatenate([fast["fp32"].preprocess(im) for im in images])
    chunks = [x[i:i + batch_size] for i in range(0, len(x), batch_size)]
    for classifier in fast.values():  # warm-up
        classifier.features(chunks[0])
    seconds = {p: 0.0 for p in fast}
    out: dict[str, list] = {p: [] for p in fast}
    for chunk in chunks:
        for p, classifier in fast.items():
            start = time.perf_counter()
            out[p].append(classifier.features(chunk))
            seconds[p] += time.perf_counter() - start
    f32, f8 = np.concatenate(out["fp32"]), np.concatenate(out["int8"])
    sqnr = 10 * np.log10((f32 ** 2).sum() / ((f32 - f8) ** 2).sum())
    default, _ = default_precision(DEFAULT_MODEL, "onnxruntime")
    print(f"{DEFAULT_MODEL} features, {len(x)} texture patches in batches of {batch_size}, load average "
          f"{os.getloadavg()[0]:.2f}, default path onnxruntime {default}")
    print(f"images/s   fp32 {len(x) / seconds['fp32']:.1f}   int8 {len(x) / seconds['int8']:.1f}   "
          f"ratio {seconds['fp32'] / seconds['int8']:.2f}")
    print(f"int8 features against fp32: SQNR {sqnr:.1f} dB, mean cosine "
          f"{np.mean((f32 * f8).sum(1) / np.linalg.norm(f32, axis=1) / np.linalg.norm(f8, axis=1)):.4f}")


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
    p = sub.add_parser("classify", help="eager timm (fp32, bf16) vs onnxruntime fp32 and int8, batch 1")
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--image", default=None, help="photo to use (default: scikit-image's rocket.jpg)")
    p.add_argument("--model", default=None, help="an offline classifier (default: tf_efficientnet_lite0)")
    f = sub.add_parser("features", help="pooled features, fp32 vs int8 onnxruntime, images/s")
    f.add_argument("--batches", type=int, default=4)
    f.add_argument("--batch-size", type=int, default=32)
    a = sub.add_parser("augment", help="16 RandAugment samples of a 512 px image + batched classification")
    a.add_argument("--runs", type=int, default=10)
    t = sub.add_parser("transfer", help="linear-probe timings; pretrained probe vs from scratch, same budget")
    t.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.what == "classify":
        bench_classify(args.runs, args.image, args.model)
    elif args.what == "features":
        bench_features(args.batches, args.batch_size)
    elif args.what == "augment":
        bench_augment(args.runs)
    else:
        if args.seeds < 1:
            parser.error("--seeds must be at least 1")
        bench_transfer(args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
