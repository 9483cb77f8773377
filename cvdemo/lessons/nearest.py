"""The lecture's starting point, measured: classify an image by storing every training image and searching for
the nearest ones (k-nearest neighbours), on raw pixels and on pretrained features, as the stored set grows;
beside it a linear probe, which learns once and then stores only its weights.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import LimitError
from ..train import one_thread
from .experiments import fit_linear

__all__ = ["MAX_STORED", "knn_growth", "knn_predict", "stored_sizes"]

MAX_STORED = 320  # the largest stored set by default (the backbone runs over each image once, ~40 images/s)
MAX_K = 15


def knn_predict(stored: torch.Tensor, labels: torch.Tensor, queries: torch.Tensor, k: int = 1) -> torch.Tensor:
    """The majority label among each query's k nearest stored rows (Euclidean distance; between classes with as many
    votes, the one whose votes rank nearer wins)."""
    distances = torch.cdist(queries, stored)
    nearest = distances.topk(min(k, len(stored)), dim=1, largest=False).indices  # nearest first
    votes = torch.zeros(len(queries), int(labels.max()) + 1)
    k = nearest.shape[1]
    closeness = (k - torch.arange(k, dtype=torch.float32)) / (k * k + 1)  # < 1 in all: breaks ties only
    votes.scatter_add_(1, labels[nearest], 1 + closeness.expand_as(nearest))
    return votes.argmax(1)


def stored_sizes(classes: int, available: int, largest: int = MAX_STORED) -> list[int]:
    """One image per class, then doubling, up to min(available, largest): the sizes the stored set grows through."""
    top = min(available, largest)
    sizes = [classes]
    while sizes[-1] * 2 < top:
        sizes.append(sizes[-1] * 2)
    return sizes + [top] if top > sizes[-1] else sizes


def _per_query_us(run, queries: int, repeats: int = 5) -> float:
    """Microseconds per query of `run()` (all queries at once): the fastest of `repeats` runs after a warm-up."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / queries * 1e6


@one_thread()  # tiny matrix products and a linear head: one torch thread beats two waiting on each other
def knn_growth(dataset: str = "textures", k: int = 1, seed: int = 0, *, sizes: Sequence[int] | None = None,
               test_images: int = 200, model: str | None = None) -> dict:
    """k-NN on raw pixels (the image's own pixels, 0..1, grey for one-channel data: 64 values for an 8x8 digit)
    and on the pretrained backbone's pooled features (`inference.extract_features`, L2-normalised, so the
    distance ranks like cosine), and a linear probe on the same features (`fit_linear`), each given the same
    stored (training) images: nested stratified subsets of the training split (75%, stratified, seeded) of each
    size in `sizes` (default `stored_sizes`: one per class, doubling, up to MAX_STORED), tested on the same
    held-out images (at most `test_images`, stratified). On textures, pixel distance is near chance where the
    features are near perfect; on the 8x8 digits (centred, aligned, tiny) pixel k-NN beats the ImageNet features.

    Returns {"sizes", "k", "test_images", "dims" ({pixels, features}), "pixels" / "features" / "probe": {"acc",
    "bytes" (what is kept to classify: the stored float32 rows, or the probe's weights), "us_per_query"
    (search or forward time for one query, all queries batched, the fastest of 3 runs on the CPU)},
    "seconds" (feature extraction included: the backbone runs once per image, cached)}."""
    from ..datasets import load_builtin, pick_labelled, split
    from ..transfer import cached_features

    if not 1 <= k <= MAX_K:
        raise LimitError(f"k must be from 1 to {MAX_K}, got {k!r}", code="limit.k", value=k, limit=MAX_K)
    start = time.perf_counter()
    train, val = split(load_builtin(dataset), 0.25, seed=seed)
    sizes = sorted(set(int(n) for n in sizes)) if sizes is not None else stored_sizes(len(train.classes), len(train))
    if not sizes or sizes[0] < len(train.classes) or sizes[-1] > len(train):
        raise LimitError(f"stored sizes must be from {len(train.classes)} (one per class) to {len(train)}, got "
                         f"{sizes}", code="limit.stored", value=sizes, low=len(train.classes), high=len(train))
    test = val.subset(pick_labelled(val, min(test_images, len(val)), seed))
    largest = pick_labelled(train, sizes[-1], seed)  # sorted; every smaller set is a subset of it
    stored = train.subset(largest)
    images = stored.images + test.images
    pixels = _pixels(images)
    features = cached_features(images, model or "tf_efficientnet_lite0")
    features = features / np.linalg.norm(features, axis=1, keepdims=True).clip(1e-12)
    n_stored, y_test = len(stored), torch.from_numpy(test.labels.astype(np.int64))
    out: dict = {"sizes": sizes, "k": k, "test_images": len(test), "dataset": dataset,
                 "dims": {"pixels": pixels.shape[1], "features": features.shape[1]},
                 "pixels": {"acc": [], "bytes": [], "us_per_query": []},
                 "features": {"acc": [], "bytes": [], "us_per_query": []},
                 "probe": {"acc": [], "bytes": [], "us_per_query": []}}
    with torch.inference_mode():
        for n in sizes:
            keep = np.searchsorted(largest, pick_labelled(train, n, seed))  # rows of `stored`
            y = torch.from_numpy(stored.labels[keep].astype(np.int64))
            for name, rows in (("pixels", pixels), ("features", features)):
                x, q = torch.from_numpy(rows[keep]), torch.from_numpy(rows[n_stored:])
                predicted = knn_predict(x, y, q, k)
                out[name]["acc"].append(float((predicted == y_test).float().mean()))
                out[name]["bytes"].append(x.numel() * 4)
                out[name]["us_per_query"].append(_per_query_us(lambda: knn_predict(x, y, q, k), len(q)))
            with torch.inference_mode(False):
                head = fit_linear(features[keep], stored.labels[keep], len(train.classes), seed=seed)
            q = torch.from_numpy(features[n_stored:])
            out["probe"]["acc"].append(float((head(q).argmax(1) == y_test).float().mean()))
            out["probe"]["bytes"].append(sum(p.numel() for p in head.parameters()) * 4)
            out["probe"]["us_per_query"].append(_per_query_us(lambda: head(q).argmax(1), len(q)))
    out["seconds"] = time.perf_counter() - start
    return out


def _pixels(images: list) -> np.ndarray:
    """Each image's own pixels in 0..1, flattened: one grey value per pixel when the images are grey (R = G = B,
    as the digits and faces are), else RGB."""
    arrays = [np.asarray(im.convert("RGB"), np.float32) / 255 for im in images]
    grey = all((a == a[..., :1]).all() for a in arrays)
    return np.stack([(a[..., 0] if grey else a).ravel() for a in arrays])
