"""The lecture's starting point (cvdemo.lessons.nearest): k-NN checked against scikit-learn's, and "store every
image and search" on pixels and on pretrained features as the stored set grows, beside a linear probe."""
import numpy as np
import pytest
import torch

from cvdemo import lessons
from cvdemo.errors import LimitError


@pytest.mark.parametrize("k", [1, 5])
def test_knn_predict_agrees_with_scikit_learn(k):
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    stored, queries = rng.normal(size=(60, 7)).astype(np.float32), rng.normal(size=(40, 7)).astype(np.float32)
    labels = (stored[:, 0] + 0.5 * rng.normal(size=60) > 0).astype(np.int64)  # two classes: an odd k has no ties
    ours = lessons.knn_predict(torch.from_numpy(stored), torch.from_numpy(labels), torch.from_numpy(queries), k)
    theirs = KNeighborsClassifier(k, algorithm="brute").fit(stored, labels).predict(queries)
    assert ours.tolist() == theirs.tolist()


def test_stored_sizes_double_from_one_per_class():
    assert lessons.stored_sizes(10, 1347) == [10, 20, 40, 80, 160, 320]
    assert lessons.stored_sizes(3, 111) == [3, 6, 12, 24, 48, 96, 111]


def test_pixels_pick_the_blandest_texture_features_find_the_class():
    r = lessons.knn_growth("textures", sizes=(3, 24, 96))
    assert r["sizes"] == [3, 24, 96] and r["test_images"] == 36 and r["dims"] == {"pixels": 128 * 128, "features": 1280}
    assert r["pixels"]["bytes"] == [n * 128 * 128 * 4 for n in (3, 24, 96)]  # every stored image kept, float32
    assert r["probe"]["bytes"] == [(1280 * 3 + 3) * 4] * 3  # the probe keeps its weights, whatever it saw
    assert max(r["pixels"]["acc"]) < 0.5 and min(r["features"]["acc"][1:]) > 0.9  # chance is 1/3
    assert all(t > 0 for name in ("pixels", "features", "probe") for t in r[name]["us_per_query"])
    with pytest.raises(LimitError):
        lessons.knn_growth("textures", k=0)
    with pytest.raises(LimitError):
        lessons.knn_growth("textures", sizes=(2, 10))  # fewer than one per class
