"""Datasets: what one is (`Dataset`), the built-in ones that work offline, and what training needs.

Built in (real data shipped inside scikit-image and scikit-learn, so nothing is downloaded):
- textures: scikit-image's brick, grass and gravel photos cut into 128 px patches (3 classes).
- faces:    scikit-image's `lfw_subset`, 100 faces vs 100 non-faces (25x25 grey).
- digits:   scikit-learn's 1,797 handwritten 8x8 digits (10 classes).

`split` makes a stratified train/validation split; `check_trainable` says whether a dataset can be
trained on (2..MAX_CLASSES classes, MIN_PER_CLASS images each) and raises `DatasetError` if not;
`load(spec)` reads what a command line names (builtin:NAME, a zip or a folder).

A user's own images (uploads grouped by class, zips checked member by member, folders, export as a
zip) are untrusted input and live in `cvdemo.uploads` (which builds on this module, never the reverse).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .errors import CvdemoError, LimitError

if TYPE_CHECKING:  # found through __getattr__ at run time (uploads imports this module)
    from .uploads import clean_class_name, export_zip, from_class_files, from_folder, from_zip

__all__ = ["BUILTIN", "MAX_CLASSES", "MIN_PER_CLASS", "Dataset", "DatasetError", "check_trainable", "digits",
           "faces", "load", "load_builtin", "split", "textures",
           "clean_class_name", "export_zip", "from_class_files", "from_folder", "from_zip"]


@dataclass
class Dataset:
    """Images (RGB PIL) with integer labels indexing `classes`."""

    name: str
    classes: list[str]
    images: list[Image.Image]
    labels: np.ndarray
    description: str = field(default="")  # where the images come from, one line
    unlabeled: list[Image.Image] = field(default_factory=list)  # images with no class (self-training)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices) -> Dataset:
        indices = np.asarray(indices, dtype=int)
        return Dataset(self.name, self.classes, [self.images[i] for i in indices], self.labels[indices],
                       self.description, list(self.unlabeled))  # the unlabeled pool goes along unchanged

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


def load(spec: str) -> tuple[Dataset, list[str]]:
    """What the command line's data argument names: `builtin:NAME`, a zip of class folders, or a folder of class
    folders -> (the dataset, messages about skipped files)."""
    if spec.startswith("builtin:"):
        return load_builtin(spec.split(":", 1)[1]), []
    from .uploads import from_folder, from_zip

    return from_zip(spec) if Path(spec).suffix.lower() == ".zip" else from_folder(spec)


def split(dataset: Dataset, val_fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Stratified split: each class keeps `val_fraction` of its images for validation (at least one)."""
    if not 0 < val_fraction < 1:
        raise LimitError(f"val_fraction must be between 0 and 1, got {val_fraction}", code="limit.val_fraction",
                         value=val_fraction)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in range(len(dataset.classes)):
        idx = rng.permutation(np.flatnonzero(dataset.labels == label))
        n_val = max(1, round(len(idx) * val_fraction))
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return dataset.subset(sorted(train)), dataset.subset(sorted(val))


# --- what training needs -----------------------------------------------------------------------

MAX_CLASSES = 50  # also the most classes a user's upload may have (cvdemo.uploads)
MIN_PER_CLASS = 2  # training needs at least 2 classes with at least this many images each


class DatasetError(CvdemoError, ValueError):
    """A dataset the app can't build or train on (unsafe zip, bad class names, too few images...)."""

    code = "dataset.invalid"


def check_trainable(dataset: Dataset) -> None:
    """Raise DatasetError unless `dataset` has 2..MAX_CLASSES classes with >= MIN_PER_CLASS images each."""
    counts = dataset.counts()
    if len(dataset) == 0:
        raise DatasetError("The dataset has no labeled images. Add images to at least two class folders.",
                           "dataset.empty")
    if len(counts) > MAX_CLASSES:
        raise DatasetError(f"The dataset has {len(counts)} classes; the limit is {MAX_CLASSES}. "
                           "Merge or remove some classes.", "dataset.too_many_classes",
                           classes=len(counts), limit=MAX_CLASSES)
    used = [c for c, n in counts.items() if n > 0]
    if len(used) < 2:
        which = f" (only '{used[0]}')" if used else ""
        raise DatasetError(f"Training needs at least 2 classes with images; this dataset has {len(used)}{which}. "
                           "Add a second class.", "dataset.too_few_classes", classes=used, count=len(used))
    small = {c: n for c, n in counts.items() if n < MIN_PER_CLASS}
    if small:
        listed = ", ".join(f"'{c}' ({n})" for c, n in small.items())
        raise DatasetError(f"Each class needs at least {MIN_PER_CLASS} images; too few in {listed}. "
                           "Add images to these classes or remove them.", "dataset.too_few_images",
                           classes=list(small), limit=MIN_PER_CLASS, listed=listed)


# --- fixed splits and labelled subsets of the lessons -------------------------------------------------------

DIGITS_TEST_FRACTION = 1 / 3  # the held-out digits test split of the distillation and self-training lessons


def digits_split() -> tuple[Dataset, Dataset]:
    """(training split, held-out test split) of scikit-learn's digits: a fixed, stratified third for testing."""
    return split(load_builtin("digits"), DIGITS_TEST_FRACTION, seed=0)


def pick_labelled(data: Dataset, labelled: int, seed: int) -> np.ndarray:
    """`labelled` indices of `data`, stratified (as equal per class as possible), seeded: the few labels a
    semi-supervised lesson keeps (the rest of the training split acts as unlabeled)."""
    rng = np.random.default_rng(seed)
    classes = len(data.classes)
    if not classes <= labelled <= len(data):
        raise LimitError(f"labelled must be from {classes} (one per class) to {len(data)}, got {labelled}",
                         code="limit.labelled", value=labelled)
    per_class = [rng.permutation(np.flatnonzero(data.labels == c)) for c in range(classes)]
    order = rng.permutation(classes)
    quota = {c: labelled // classes + (i < labelled % classes) for i, c in enumerate(order)}
    return np.sort(np.concatenate([idx[:quota[c]] for c, idx in enumerate(per_class)]))
