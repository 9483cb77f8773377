"""The small networks of the distillation and self-training lessons, registered in the factory:

    kd_student_cnn      StudentCNN: four conv-BN-ReLU-pool stages, ~61k parameters (3 classes), 64 px photos
    digits_teacher_cnn  DigitsCNN: the shipped digits teacher, 16x16 input (checkpoints/digits_teacher.*)
    digits_mlp          the digits student, 64-32-10 on the 8x8 pixels (~2.4k parameters)
    digits_tiny_cnn     the other digits student, one 8-channel conv (~1.4k parameters)
    selftrain_cnn       SelfTrainCNN: the digits self-training model (~19k parameters, `width` scales it)
    selftrain_head      FeatureMLP: the photo self-training head on frozen pretrained features
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.layers import DropPath
from torch import nn

from ._registry import register_model


class StudentCNN(nn.Module):
    """A small image CNN (four conv-BN-ReLU-pool stages, global average pool, linear head, ~61k
    parameters for 3 classes), with timm's forward_features/forward_head so Grad-CAM and the
    Classify tab treat it like any other model."""

    def __init__(self, num_classes: int, widths: Sequence[int] = (16, 32, 64, 64)) -> None:
        super().__init__()
        layers, cin = [], 3
        for w in widths:
            layers += [nn.Conv2d(cin, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DigitsCNN(nn.Module):
    """The digits teacher: two (conv, conv, pool) stages, 16x16 -> 4x4, then a linear head."""

    def __init__(self, widths: Sequence[int] = (32, 64), num_classes: int = 10, dropout: float = 0.3) -> None:
        super().__init__()
        a, b = widths
        self.widths, self.num_classes = [a, b], num_classes
        self.features = nn.Sequential(_conv(1, a), _conv(a, a), nn.MaxPool2d(2), _conv(a, b), _conv(b, b),
                                      nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(b * 4 * 4, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def digits_mlp(num_classes: int = 10) -> nn.Module:
    """The digits student: 64-32-classes on the flattened 8x8 pixels."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, num_classes))


def digits_tiny_cnn(num_classes: int = 10) -> nn.Module:
    """The other digits student: one 8-channel conv, a pool, a linear layer."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8 * 4 * 4, num_classes))


class Residual(nn.Module):
    """x + block(x), the block dropped per example with probability `drop` in training (stochastic depth)."""

    def __init__(self, block: nn.Module, drop: float = 0.0) -> None:
        super().__init__()
        self.block, self.drop_path = block, DropPath(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.block(x))


class SelfTrainCNN(nn.Module):
    """The digits self-training model on the 8x8 input: conv16, conv32, a residual conv32 block, pool to 4x4,
    dropout, linear (~19k parameters; `width` scales the channels). A noised one gets dropout and stochastic
    depth."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.3, drop_path: float = 0.0, width: float = 1.0) -> None:
        super().__init__()
        c1, c2 = round(16 * width), round(32 * width)
        self.features = nn.Sequential(nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.Conv2d(c1, c2, 3, padding=1),
                                      nn.ReLU(), Residual(nn.Sequential(nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU()),
                                                          drop_path), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c2 * 4 * 4, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class FeatureMLP(nn.Module):
    """The photo self-training model, a head on frozen pretrained features: linear to 256 (`width` scales
    it), a residual block as wide, dropout, linear to the classes. A noised one gets dropout and stochastic
    depth."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.5, drop_path: float = 0.0,
                 width: float = 1.0) -> None:
        super().__init__()
        hidden = round(256 * width)
        self.head = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(),
                                  Residual(nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU()), drop_path),
                                  nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


register_model("kd_student_cnn", StudentCNN, "small image CNN, the distillation student for photos (64 px)")
register_model("digits_teacher_cnn", DigitsCNN, "the digits teacher (16x16 input), shipped in checkpoints/")
register_model("digits_mlp", digits_mlp, "the digits student: an MLP on the 8x8 pixels")
register_model("digits_tiny_cnn", digits_tiny_cnn, "the digits student: one small conv on the 8x8 pixels")
register_model("selftrain_cnn", SelfTrainCNN, "the digits self-training CNN (8x8 input)")
register_model("selftrain_head", FeatureMLP, "the photo self-training head on frozen pretrained features")
