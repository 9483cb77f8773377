"""Built-in datasets (cvdemo.datasets): unchanged from their sources, split as documented, and the trainability
check that names what is wrong."""
import numpy as np
import pytest
from PIL import Image

from cvdemo import datasets
from cvdemo.datasets import Dataset, DatasetError, check_trainable


def picture(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8))


def test_check_trainable_names_the_offending_classes(monkeypatch):
    one = Dataset("x", ["cat"], [picture(1), picture(2)], np.array([0, 0]))
    small = Dataset("x", ["cat", "dog", "owl"], [picture(i) for i in range(4)], np.array([0, 0, 1, 2]))
    empty = Dataset("x", ["cat", "dog"], [], np.array([], dtype=int))
    for ds, code, named in ((one, "dataset.too_few_classes", "cat"), (small, "dataset.too_few_images", "'dog' (1)"),
                            (empty, "dataset.empty", "")):
        with pytest.raises(DatasetError) as err:
            check_trainable(ds)
        assert err.value.code == code and named in str(err.value)
    assert "owl" in str(pytest.raises(DatasetError, check_trainable, small).value)
    monkeypatch.setattr(datasets, "MAX_CLASSES", 2)
    with pytest.raises(DatasetError) as err:
        check_trainable(small)
    assert err.value.code == "dataset.too_many_classes"
    check_trainable(Dataset("x", ["a", "b"], [picture(i) for i in range(4)], np.array([0, 0, 1, 1])))


def test_builtin_datasets_are_unchanged():
    ds = datasets.load_builtin("faces")
    assert len(ds) == 200 and ds.unlabeled == []
    train, val = datasets.split(ds, 0.25)
    assert len(train) + len(val) == 200 and train.description == ds.description
    with pytest.raises(datasets.LimitError):
        datasets.load_builtin("nope")
