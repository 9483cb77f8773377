"""The app's training jobs, each as the page calls it, and where it runs. The UI calls these, never the library
functions they stand for (tests/test_gpu.py checks), so that this is the one place that decides.

On the GPU (`cvdemo.gpu`: a GPU call, which ZeroGPU lends a GPU for; elsewhere the plain library function on
`pick_device`'s device): the jobs that train through `pick_device`'s device or run a pretrained backbone over many
images (batch inference: probe features, a teacher's pass). Each reserves its time budget plus
`gpu.SETUP_SECONDS` of ZeroGPU time, or `gpu.DEFAULT_SECONDS` without one (`gpu.budget_seconds`).

On the CPU wherever the app runs: the digits lessons, whose tiny models train on the CPU by design
(`device="cpu"`: the same weights for a seed on any machine). Lending them a GPU would only spend the visitor's
ZeroGPU quota.
"""
from __future__ import annotations

from . import distill, gpu, lessons, selftrain, transfer as transfer_

__all__ = ["ablation", "alexnet_pieces", "bias_experiment", "distill_classifier", "fc_vs_cnn_shift", "inside_kd",
           "knn_growth", "mix_training", "self_train", "sweep", "three_way_live", "train_classic", "transfer"]

# --- on the GPU ---
transfer = gpu.streamed(transfer_.transfer)  # the Transfer tab: probe features, fine-tuning
distill_classifier = gpu.streamed(distill.distill_classifier)  # the teacher's pass, the student's training
self_train = gpu.streamed(selftrain.self_train)  # photos: every round's backbone features
train_classic = gpu.streamed(lessons.train_classic)  # AlexNet / VGG from scratch
alexnet_pieces = gpu.streamed(lessons.alexnet_pieces)  # small AlexNet, two variants over seeds
mix_training = gpu.streamed(lessons.mix_training)  # a small CNN with and without CutMix / MixUp
knn_growth = gpu.returned(lessons.knn_growth)  # pretrained features of every stored image
bias_experiment = gpu.returned(lessons.bias_experiment)  # features of the faces, plain and brightened

# --- on the CPU ---
fc_vs_cnn_shift = lessons.fc_vs_cnn_shift
three_way_live = distill.three_way_live
sweep = distill.sweep
inside_kd = distill.inside_kd
ablation = selftrain.ablation  # the digits' Noisy Student ablations (pixels)
