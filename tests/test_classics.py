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
