"""The figures of issue 14's experiments (docs/decisions.md, "issue 14: new experiments"): each at the app's
default settings, one after the other, with its wall time and the machine's load.

    PYTHONPATH=. python scripts/lesson_figures.py [pieces] [fixes] [kd] [knn] [selftrain] [mix]   (none: all)

Not a test: it prints. Timings on a shared CPU vary with its load (printed first and last).
"""
from __future__ import annotations

import os
import sys
import time

from cvdemo import lessons
from cvdemo.augment import mix_up_close
from cvdemo.distill import inside_kd
from cvdemo.images import sample_photos
from cvdemo.inference import get_classifier
from cvdemo.selftrain import ABLATIONS, ablation
from cvdemo.train import last_event, one_thread

PARTS = ("pieces", "fixes", "kd", "knn", "selftrain", "mix")


def pieces() -> None:
    for piece in lessons.ALEXNET_PIECES:
        start = time.perf_counter()
        with one_thread():  # as the app runs it
            variants = last_event(lessons.alexnet_pieces(piece, 3, 3)).result["variants"]
        print(f"AlexNet pieces, {piece} (3 seeds x 3 epochs, 500 digits): {time.perf_counter() - start:.0f} s")
        for code, v in variants.items():
            print(f"  {code:>10}: val {v['val_mean']:.3f} ± {v['val_std']:.3f} {[round(a, 3) for a in v['val_acc']]}"
                  f", train (eval mode) {v['train_mean']:.3f} ± {v['train_std']:.3f}")


def fixes() -> None:
    for seed in (0, 1, 2):
        r = lessons.fc_vs_cnn_shift(seed=seed, fixes=True)
        w = r["weights"]
        print(f"FC vs CNN with the fixes, seed {seed}: {r['seconds']['total']:.0f} s; first-layer change inside "
              f"{w['change_inside']:.4f}, outside {w['change_outside']:.1e}")
        for name, s in r["summary"].items():
            print(f"  {name:>7}: centred {r[name][0]:.3f}, worst {s['worst']:.3f} at {s['worst_shift']} px, "
                  f"mean {s['mean']:.3f}")


def kd() -> None:
    r = last_event(inside_kd()).result
    g, ex = r["gradients"], r["example"]
    print(f"inside KD (T=4, alpha=0.9, 100 labels): {r['seconds']:.1f} s, held-out {r['test_acc']:.3f}")
    for T, plain, scaled in zip(g["T"], g["plain"], g["scaled"]):
        print(f"  T={T:>4g}: soft-term gradient {plain:.4f}, x T^2 {scaled:.3f} (hard term {g['hard'][0]:.3f})")
    first, last = r["curves"][0], r["curves"][-1]
    print(f"  soft term {first['soft']:.3f} -> {last['soft']:.3f}, hard term {first['hard']:.3f} -> {last['hard']:.3f}")
    label = ex["label"]
    print(f"  held-out digit {label}: student p(true) at T {ex['student_T'][label]:.3f}, at 1 "
          f"{ex['student_1'][label]:.3f}; teacher at T {ex['teacher_T'][label]:.3f}")


def knn() -> None:
    for dataset in ("textures", "digits"):
        r = lessons.knn_growth(dataset)
        print(f"k-NN, {dataset}: {r['seconds']:.0f} s, stored {r['sizes']}, {r['test_images']} test images")
        for m in ("pixels", "features", "probe"):
            print(f"  {m:>8}: acc {[round(a, 3) for a in r[m]['acc']]}, KB {[round(b / 1024) for b in r[m]['bytes']]}"
                  f", us/query {[round(u, 1) for u in r[m]['us_per_query']]}")


def selftrain() -> None:
    for factor in ABLATIONS:
        start = time.perf_counter()
        variants = last_event(ablation(factor, 3)).result["variants"]
        print(f"self-train ablation, {factor} (3 seeds): {time.perf_counter() - start:.0f} s")
        for code, v in variants.items():
            print(f"  {code:>12}: round 0 {v['baseline_mean']:.3f} ± {v['baseline_std']:.3f}, last "
                  f"{v['final_mean']:.3f} ± {v['final_std']:.3f}, gain {100 * v['gain_mean']:+.1f} ± "
                  f"{100 * v['gain_std']:.1f} points, student {v['params'][-1]:,} parameters")


def mix() -> None:
    cat, coffee = sample_photos()[:2]
    r = mix_up_close(cat, coffee, get_classifier(), "cutmix", 1.0, k=4, seed=0)
    print(f"CutMix up close ({r['names'][0]} + {r['names'][1]}, seed 0):")
    for s in r["samples"]:
        print(f"  lambda drawn {s['lam_drawn']:.3f}, after clipping {s['lam']:.3f}; p = {s['probs'][0]:.3f}, "
              f"{s['probs'][1]:.3f}")
    for op in ("cutmix", "mixup"):
        with one_thread():
            event = last_event(lessons.mix_training(op))
        runs = event.result["runs"]
        print(f"SmallCNN, 10 epochs, with and without {op}: {event.elapsed:.0f} s; " + ", ".join(
            f"{k} val {v['val_acc']:.3f} train {v['train_acc']:.3f}" for k, v in runs.items()))


if __name__ == "__main__":
    print("load average", os.getloadavg())
    for part in sys.argv[1:] or PARTS:
        globals()[part]()
    print("load average", os.getloadavg())
