"""The classics built as the papers did (cvdemo.models.classics): parameter counts to the unit, LRN as the
paper's formula, dropout where the paper has it, the LRN/BN switches, the registry."""
import pytest
import torch
from torch import nn

from cvdemo.models import MODELS, create_model
from cvdemo.models.classics import MLP, VGG, AlexNet, SmallCNN


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "expected"), [
    ("paper_alexnet", 62_378_344),  # the single-tower count
    ("paper_alexnet_2gpu", 60_965_224),  # the paper's two-GPU network: conv2/4/5 grouped, "60 million"
    ("paper_vgg11", 132_863_336), ("paper_vgg13", 133_047_848), ("paper_vgg16", 138_357_544),
    ("paper_vgg19", 143_667_240),
    ("paper_vgg16_bn", 138_365_992),  # torchvision's vgg16_bn: + 2 x (2*64 + 2*128 + 3*256 + 6*512)
])
def test_parameter_counts_at_1000_classes(name, expected):
    with torch.device("meta"):  # counts need no memory
        assert count(create_model(name)) == expected


def test_lrn_is_the_papers_formula_computed_by_hand():
    """b = a / (k + alpha * sum over the n neighbouring channels of a^2)^beta with k=2, n=5, alpha=1e-4,
    beta=0.75 (PyTorch divides its alpha by n: the built layer must undo that)."""
    from cvdemo.models.classics import paper_lrn

    torch.manual_seed(0)
    a = torch.randn(1, 8, 3, 3) * 30  # large activations, where alpha matters
    expected = torch.empty_like(a)
    for c in range(8):
        window = a[0, max(0, c - 2):c + 3]  # n = 5 channels centred on c (fewer at the edges)
        expected[0, c] = a[0, c] / (2 + 1e-4 * (window ** 2).sum(0)) ** 0.75
    assert torch.allclose(paper_lrn()(a), expected, rtol=1e-5)


def test_dropout_follows_the_first_two_fc_layers():
    """AlexNet's paper and VGG's (and torchvision's VGG): FC - ReLU - dropout, twice, then the last FC."""
    for model in (AlexNet(), VGG("A")):
        kinds = [type(m).__name__ for m in model.classifier]
        assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]


def test_lrn_and_batchnorm_switches_change_the_layers():
    def kinds(model):
        return [type(m).__name__ for m in model.features]

    plain, lrn, bn = AlexNet(num_classes=10), AlexNet(num_classes=10, lrn=True), AlexNet(num_classes=10, batchnorm=True)
    assert "LocalResponseNorm" not in kinds(plain) and "BatchNorm2d" not in kinds(plain)
    lrns = [m for m in lrn.features if isinstance(m, nn.LocalResponseNorm)]
    assert len(lrns) == 2 and (lrns[0].size, lrns[0].alpha, lrns[0].beta, lrns[0].k) == (5, 5e-4, 0.75, 2)  # 1e-4 x n
    assert kinds(lrn)[:4] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]  # LRN after the ReLU
    assert kinds(bn).count("BatchNorm2d") == 5 and "LocalResponseNorm" not in kinds(bn)
    assert kinds(bn)[:3] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert count(lrn) == count(plain) and count(bn) == count(plain) + 2 * (96 + 256 + 384 + 384 + 256)
    with pytest.raises(ValueError):
        AlexNet(lrn=True, batchnorm=True)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in VGG("A", batchnorm=True, small=True).modules()) == 8


def test_registry_and_create_model():
    for name in ("paper_alexnet", "small_alexnet", "paper_vgg11", "paper_vgg13", "paper_vgg16", "paper_vgg19",
                 "paper_vgg11_bn", "paper_vgg16_bn", "paper_vgg19_bn", "small_vgg11", "fc_mlp", "shift_cnn"):
        assert name in MODELS
    model = create_model("small_alexnet_lrn", num_classes=10, pretrained=True)  # no weights: ignored
    assert not model.training and model.classifier[-1].out_features == 10
    assert any(isinstance(m, nn.LocalResponseNorm) for m in model.modules())
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert create_model("small_vgg16", num_classes=7)(torch.zeros(1, 3, 32, 32)).shape == (1, 7)
    # the pair of the FC-vs-CNN lesson: about the same number of parameters (printed in the docstring)
    mlp, cnn = count(MLP()), count(SmallCNN())
    assert (mlp, cnn) == (23_815, 23_946) and abs(mlp - cnn) / cnn < 0.2


def test_lenet5_has_the_papers_60000_trainable_parameters_layer_by_layer():
    """LeCun et al. 1998, section II.B: C1 156, S2 12, C3 1,516 (Table I's partial connections), S4 32, C5 48,120,
    F6 10,164: 60,000. The paper's output layer (10 RBF units, parameters fixed by hand) is a Linear here (850)."""
    from cvdemo.models.classics import LENET_C3_TABLE, LeNet5

    model = LeNet5()
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    c1, s2, s4, c5 = (count(m) for m in convs)
    c3 = count(model.features[5])
    f6, out = (count(m) for m in model.classifier if isinstance(m, nn.Linear))
    assert (c1, s2, c3, s4, c5, f6) == (156, 12, 1516, 32, 48_120, 10_164)
    assert c1 + s2 + c3 + s4 + c5 + f6 == 60_000 and out == 850 and count(model) == 60_850
    assert c3 == sum(len(inputs) * 25 + 1 for inputs in LENET_C3_TABLE)  # Table I, counted by hand
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
    # each C3 map sees only its Table I inputs: changing any other S2 map leaves it unchanged
    torch.manual_seed(0)
    x = torch.randn(1, 6, 14, 14)
    base = model.features[5](x)
    for channel in range(6):
        moved = x.clone()
        moved[0, channel] += 1.0
        changed = (model.features[5](moved) - base).abs().amax(dim=(0, 2, 3)) > 0
        assert changed.tolist() == [channel in inputs for inputs in LENET_C3_TABLE], channel


def test_alexnet_ablation_switches_and_blur_pool():
    tanh = AlexNet(num_classes=10, small=True, activation="tanh")
    assert not any(isinstance(m, nn.ReLU) for m in tanh.modules())
    assert sum(isinstance(m, nn.Tanh) for m in tanh.modules()) == 7  # five convs, two hidden FCs
    assert count(tanh) == count(AlexNet(num_classes=10, small=True))
    assert all(m.p == 0 for m in AlexNet(dropout=0.0).modules() if isinstance(m, nn.Dropout))
    with pytest.raises(ValueError):
        AlexNet(activation="sigmoid")
    # Zhang 2019's blur: [1, 2, 1] x [1, 2, 1] / 16 (separable), reflect padding, then every 2nd pixel (numpy)
    import numpy as np

    from cvdemo.models.classics import BlurPool

    x = np.random.default_rng(0).normal(size=(9, 9))
    padded = np.pad(x, 1, mode="reflect")
    rows = (padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4
    blurred = (rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]) / 4
    out = BlurPool(1)(torch.from_numpy(x).float()[None, None])[0, 0].numpy()
    assert np.allclose(out, blurred[::2, ::2], atol=1e-6)
    aa = SmallCNN(antialias=True)
    assert count(aa) == count(SmallCNN()) and aa(torch.zeros(1, 1, 32, 32)).shape == (1, 10)
