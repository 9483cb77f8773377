"""Features for linear probes, and the lesson "does augmentation fight bias?"."""
import numpy as np
import torch
from PIL import Image
from torch.utils.data import TensorDataset

from cvdemo.inference import PooledFeatures, extract_features, get_classifier
from cvdemo.lessons import bias_experiment, fit_linear
from cvdemo.train import evaluate


def test_onnx_features_equal_the_torch_backbone(examples):
    classifier = get_classifier()
    image = Image.open(examples["cat"]).convert("RGB")
    fast = extract_features([image])
    with torch.no_grad():
        eager = PooledFeatures(classifier.model)(torch.from_numpy(classifier.preprocess(image))).numpy()
    assert fast.shape == (1, 1280)
    assert np.abs(fast - eager).max() < 1e-3
    assert not classifier.model.training  # exporting the features must leave the model in eval mode


def test_linear_head_separates_separable_features():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 1, (50, 8)), rng.normal(2, 1, (50, 8))]).astype(np.float32)
    y = np.array([0] * 50 + [1] * 50)
    assert evaluate(fit_linear(x, y, 2), TensorDataset(torch.from_numpy(x), torch.from_numpy(y)))["acc"] > 0.95


def test_brightness_augmentation_fixes_the_dark_image_failure():
    result = bias_experiment(seed=0)
    plain, augmented = result["without_augmentation"], result["with_augmentation"]
    assert plain["normal"] > 0.9 and augmented["normal"] > 0.9
    assert plain["dark"] < 0.7  # trained on well-lit faces only: fails in the dark
    assert augmented["dark"] > 0.85  # brightness augmentation closes the gap
