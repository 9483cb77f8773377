"""Datasets: real data that works offline (shipped inside scikit-learn and scikit-image).

- textures: scikit-image's brick, grass and gravel photos cut into 128 px patches (3 classes).
- faces:    scikit-image's `lfw_subset`, 100 faces vs 100 non-faces (25x25 grey).
- digits:   scikit-learn's 1,797 handwritten 8x8 digits (10 classes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image

from .errors import LimitError


@dataclass
class Dataset:
    """Images (RGB PIL) with integer labels indexing `classes`."""

    name: str
    classes: list[str]
    images: list[Image.Image]
    labels: np.ndarray
    notes: str = field(default="")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices) -> "Dataset":
        indices = np.asarray(indices, dtype=int)
        return Dataset(self.name, self.classes, [self.images[i] for i in indices], self.labels[indices], self.notes)

    def counts(self) -> dict[str, int]:
        return {c: int((self.labels == i).sum()) for i, c in enumerate(self.classes)}


def _grey_to_rgb(array: np.ndarray) -> Image.Image:
    """A 2-D array scaled to 0..255 -> RGB image."""
    a = np.asarray(array, dtype=np.float64)
    a = (a - a.min()) / (a.max() - a.min() or 1) * 255
    return Image.fromarray(a.astype(np.uint8)).convert("RGB")


def textures(patch: int = 128, stride: int = 64) -> Dataset:
    from skimage import data

    classes = ["brick", "grass", "gravel"]
    images, labels = [], []
    for label, name in enumerate(classes):
        photo = getattr(data, name)()
        for y in range(0, photo.shape[0] - patch + 1, stride):
            for x in range(0, photo.shape[1] - patch + 1, stride):
                images.append(Image.fromarray(photo[y:y + patch, x:x + patch]).convert("RGB"))
                labels.append(label)
    return Dataset("textures", classes, images, np.array(labels),
                   f"scikit-image texture photos cut into {patch} px patches (stride {stride})")


def faces() -> Dataset:
    from skimage import data

    arrays = data.lfw_subset()  # first 100 faces, then 100 non-faces
    labels = np.array([0] * 100 + [1] * 100)
    return Dataset("faces", ["face", "non-face"], [_grey_to_rgb(a) for a in arrays], labels,
                   "scikit-image lfw_subset: 100 faces, 100 non-faces, 25x25 grey")


def digits() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = [Image.fromarray(np.uint8(a * 255 / 16)).convert("RGB") for a in d.images]
    return Dataset("digits", [str(i) for i in range(10)], images, d.target.astype(int),
                   "scikit-learn digits: 1,797 handwritten 8x8 digits")


BUILTIN: dict[str, Callable[[], Dataset]] = {"textures": textures, "faces": faces, "digits": digits}


def load_builtin(name: str) -> Dataset:
    if name not in BUILTIN:
        raise LimitError(f"Unknown built-in dataset '{name}'; choose one of {', '.join(BUILTIN)}.",
                         code="dataset.unknown", name=name)
    return BUILTIN[name]()


def split(dataset: Dataset, val_fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Stratified split: each class keeps `val_fraction` of its images for validation (at least one)."""
    if not 0 < val_fraction < 1:
        raise LimitError(f"val_fraction must be between 0 and 1, got {val_fraction}", code="limit.val_fraction")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in range(len(dataset.classes)):
        idx = rng.permutation(np.flatnonzero(dataset.labels == label))
        n_val = max(1, round(len(idx) * val_fraction))
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return dataset.subset(sorted(train)), dataset.subset(sorted(val))
