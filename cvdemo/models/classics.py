"""The classic CNNs built from scratch, layer by layer as the papers describe them, for the lessons.

    from cvdemo.models import create_model
    model = create_model("paper_alexnet")        # 62,378,344 parameters (224 px, 1000 classes)
    model = create_model("paper_vgg16", num_classes=10)
    model = create_model("small_alexnet_lrn", num_classes=10)   # trains on 32 px images in seconds

Registered names (none is a timm name, so timm's pretrained `vgg16` stays timm's): paper_alexnet,
paper_alexnet_lrn, paper_alexnet_bn, small_alexnet(_lrn, _bn); paper_vgg{11,13,16,19}(_bn),
small_vgg{11,13,16,19}(_bn); fc_mlp and shift_cnn (the FC-vs-CNN pair); lenet5 (LeNet-5, see `LeNet5`:
60,000 trainable parameters up to F6, as the paper counts). They have no pretrained weights.

AlexNet (Krizhevsky, Sutskever & Hinton 2012):
    conv 96 11x11/4 (padding 2: 224 -> 55) - ReLU - [LRN] - maxpool 3/2 (overlapping) -> 27
    conv 256 5x5 pad 2 - ReLU - [LRN] - maxpool 3/2 -> 13
    conv 384 3x3 pad 1 - ReLU - conv 384 3x3 - ReLU - conv 256 3x3 - ReLU - maxpool 3/2 -> 6x6x256 = 9216
    FC 4096 - ReLU - dropout - FC 4096 - ReLU - dropout - FC classes
  Dropout as the paper puts it: on the outputs of the first two fully connected layers (torchvision's
  AlexNet puts it before them instead). `groups=1` (default) is the one-tower layout, 62,378,344
  parameters for 1000 classes (the well-known single-tower count); `groups=2` is the paper's two-GPU
  network, whose conv2, conv4 and conv5 see only the kernel maps on their own GPU: 60,965,224 parameters
  (the paper's "60 million"). LRN as in the paper (k=2, n=5, alpha=1e-4, beta=0.75) after the ReLUs of
  conv1 and conv2: b = a / (k + alpha * sum of a^2 over the n neighbouring channels)^beta. It normalises
  across channels at each pixel (not local brightness) and learns nothing; BatchNorm replaced it.
  PyTorch's LocalResponseNorm divides alpha by n, so it is built with alpha = 1e-4 * 5.
  `batchnorm=True` puts BatchNorm2d between each conv and its ReLU instead (not with `lrn`);
  `activation="tanh"` and `dropout=0.0` undo two more of its pieces (the Architectures tab's ablations).
  Initialisation: weights N(0, gain^2 / fan_in) (He et al. 2015 for ReLU, gain sqrt(2); tanh's gain 5/3),
  biases 0 (neither the paper's N(0, 0.01) with biases 1 nor PyTorch's default: with the default, the ReLU
  small AlexNet reached only 10-23% validation accuracy after 3 epochs on 500 digits, AdamW or SGD, measured).
  An AdaptiveAvgPool2d((6, 6)) before the FCs (as torchvision has) is the identity at 224 px and lets
  other input sizes through; it has no parameters.
  `small=True`, for 32x32 inputs (e.g. the 8x8 digits upscaled): every channel count / 4
  (96, 256, 384, 384, 256 -> 24, 64, 96, 96, 64); conv1 5x5 stride 1 padding 2 instead of 11x11 stride 4
  (a stride of 4 would leave a 32 px image 8 px wide after one layer); FC 4096 -> 256; the rest as
  the paper (conv2 5x5, conv3-5 3x3, the three overlapping 3/2 max pools, ReLU, dropout, LRN/BN
  switches). At 32 px: 32 -> 15 -> 7 -> 3, so 3x3x64 = 576 features into the FCs (adaptive pool to 3x3).

VGG (Simonyan & Zisserman 2015), configurations A (VGG11), B (VGG13), D (VGG16), E (VGG19) as the
paper's table: 3x3 convs padding 1 (+ ReLU), "M" = maxpool 2/2, then FC 4096 - ReLU - dropout -
FC 4096 - ReLU - dropout - FC classes (the paper's and torchvision's order). An AdaptiveAvgPool2d((7, 7)) (identity at
224 px) precedes the FCs. Parameters at 1000 classes: 132,863,336 / 133,047,848 / 138,357,544 /
143,667,240 (no BN). `batchnorm=True` adds BatchNorm2d after each conv (the later "_bn" variants;
convs keep their bias, as torchvision's). Configuration C (with 1x1 convs) is not built.
  `small=True`: channels / 4 (64..512 -> 16..128), FC 4096 -> 256, adaptive pool to 1x1 (at 32 px the
  five max pools leave 1x1 anyway), so 128 features into the FCs; kernels, padding and pools unchanged.

MLP and SmallCNN are the pair of the "fully connected vs convolutional" lesson: with the defaults, on a
1x32x32 input, MLP (1024-23-10) has 23,815 parameters and SmallCNN (16-32-64 channels) 23,946 (within 1%). SmallCNN ends with a global
max pool, so its output barely changes when the object moves.
"""
from __future__ import annotations

from collections.abc import Sequence
import math
from functools import partial

import torch
from torch import nn

from ._registry import register_model

__all__ = ["MLP", "VGG", "VGG_CONFIGS", "AlexNet", "BlurPool", "LeNet5", "SmallCNN"]


LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 2.0  # the paper's n, alpha, beta, k


def paper_lrn() -> nn.LocalResponseNorm:
    """The paper's LRN. PyTorch computes a / (k + alpha / n * sum a^2)^beta, so alpha is given times n."""
    return nn.LocalResponseNorm(size=LRN_SIZE, alpha=LRN_ALPHA * LRN_SIZE, beta=LRN_BETA, k=LRN_K)


ACTIVATIONS = {"relu": partial(nn.ReLU, inplace=True), "tanh": nn.Tanh}  # AlexNet's ReLU, or the tanh it replaced


def _conv_block(cin: int, cout: int, kernel: int, stride: int, padding: int, *, lrn: bool,
                batchnorm: bool, groups: int = 1, activation: str = "relu") -> list[nn.Module]:
    """conv - [BN] - ReLU - [LRN]: the paper puts LRN after the ReLU; BN goes before it."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(ACTIVATIONS[activation]())
    if lrn:
        layers.append(paper_lrn())
    return layers


def _classifier(features: int, width: int, num_classes: int, dropout: float, activation: str = "relu") -> nn.Sequential:
    """FC - ReLU - dropout - FC - ReLU - dropout - FC: dropout on the first two FC layers' outputs."""
    act = ACTIVATIONS[activation]
    return nn.Sequential(
        nn.Linear(features, width), act(), nn.Dropout(dropout),
        nn.Linear(width, width), act(), nn.Dropout(dropout),
        nn.Linear(width, num_classes),
    )


class AlexNet(nn.Module):
    """AlexNet (2012), one tower (`groups=1`) or the paper's two (`groups=2`); see the module docstring.
    `activation="tanh"` and `dropout=0.0` undo two of its pieces (the lessons' ablations)."""

    def __init__(self, num_classes: int = 1000, lrn: bool = False, batchnorm: bool = False, dropout: float = 0.5,
                 small: bool = False, groups: int = 1, activation: str = "relu") -> None:
        super().__init__()
        if lrn and batchnorm:
            raise ValueError("AlexNet takes lrn=True or batchnorm=True, not both (batch norm replaces LRN)")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        if small:
            widths, fc, pooled = (24, 64, 96, 96, 64), 256, 3
            first = {"kernel": 5, "stride": 1, "padding": 2}
        else:
            widths, fc, pooled = (96, 256, 384, 384, 256), 4096, 6
            first = {"kernel": 11, "stride": 4, "padding": 2}
        c1, c2, c3, c4, c5 = widths
        norm = {"batchnorm": batchnorm, "activation": activation}
        self.features = nn.Sequential(
            *_conv_block(3, c1, **first, lrn=lrn, **norm),
            nn.MaxPool2d(kernel_size=3, stride=2),
            *_conv_block(c1, c2, 5, 1, 2, lrn=lrn, groups=groups, **norm),
            nn.MaxPool2d(kernel_size=3, stride=2),
            *_conv_block(c2, c3, 3, 1, 1, lrn=False, **norm),  # conv3 sees both towers
            *_conv_block(c3, c4, 3, 1, 1, lrn=False, groups=groups, **norm),
            *_conv_block(c4, c5, 3, 1, 1, lrn=False, groups=groups, **norm),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((pooled, pooled))
        self.classifier = _classifier(c5 * pooled * pooled, fc, num_classes, dropout, activation)
        self.num_classes = num_classes
        gain = nn.init.calculate_gain(activation)
        for m in self.modules():  # He et al. 2015's scale for ReLU (tanh's own gain for tanh); biases 0
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0, gain / math.sqrt(m.weight[0].numel()))
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


VGG_CONFIGS: dict[str, list[int | str]] = {  # the paper's Table 1: conv3 widths, "M" = maxpool 2/2
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
_VGG_DEPTHS = {"11": "A", "13": "B", "16": "D", "19": "E"}


class VGG(nn.Module):
    """VGG (2015): `config` "A" / "B" / "D" / "E" (or 11 / 13 / 16 / 19); see the module docstring."""

    def __init__(self, config: str | int = "D", num_classes: int = 1000, batchnorm: bool = False,
                 small: bool = False, dropout: float = 0.5) -> None:
        super().__init__()
        key = _VGG_DEPTHS.get(str(config), str(config).upper())
        if key not in VGG_CONFIGS:
            raise ValueError(f"unknown VGG configuration {config!r}; use one of A, B, D, E (or 11, 13, 16, 19)")
        scale, fc, pooled = (4, 256, 1) if small else (1, 4096, 7)
        layers: list[nn.Module] = []
        cin = 3
        for item in VGG_CONFIGS[key]:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                cout = int(item) // scale
                layers += _conv_block(cin, cout, 3, 1, 1, lrn=False, batchnorm=batchnorm)
                cin = cout
        self.config = key
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((pooled, pooled))
        self.classifier = _classifier(cin * pooled * pooled, fc, num_classes, dropout)
        self.num_classes = num_classes
        for m in self.modules():  # torchvision's (and the paper's follow-up) initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class MLP(nn.Module):
    """Flatten - (Linear - ReLU) per hidden width - Linear: the fully connected baseline."""

    def __init__(self, in_features: int = 32 * 32, hidden: int | Sequence[int] = 23, num_classes: int = 10) -> None:
        super().__init__()
        widths = [hidden] if isinstance(hidden, int) else list(hidden)
        layers: list[nn.Module] = [nn.Flatten()]
        cin = in_features
        for width in widths:
            layers += [nn.Linear(cin, width), nn.ReLU(inplace=True)]
            cin = width
        layers.append(nn.Linear(cin, num_classes))
        self.net = nn.Sequential(*layers)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BlurPool(nn.Module):
    """Anti-aliased subsampling (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again"): blur each
    channel with the fixed binomial filter [1, 2, 1] x [1, 2, 1] / 16 (the paper's "Tri-3"), reflect-padded,
    then keep every `stride`-th pixel. No parameters (the filter is a buffer)."""

    def __init__(self, channels: int, stride: int = 2) -> None:
        super().__init__()
        kernel = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(kernel, kernel) / 16
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).contiguous())
        self.pad = nn.ReflectionPad2d(1)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(self.pad(x), self.kernel, stride=self.stride, groups=x.shape[1])


class SmallCNN(nn.Module):
    """(conv 3x3 - ReLU - maxpool 2/2) per width but the last, conv 3x3 - ReLU, a global max pool over
    all positions, then one Linear. Weight sharing + the global pool: a shifted object gives (almost)
    the same features wherever it is. `antialias=True` makes each max pool Zhang's MaxBlurPool (max over
    2x2 with stride 1, then BlurPool with stride 2): the same parameters, less aliasing."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths: Sequence[int] = (16, 32, 64),
                 global_pool: str = "max", antialias: bool = False) -> None:
        super().__init__()
        if global_pool not in ("max", "avg"):
            raise ValueError(f"global_pool must be 'max' or 'avg', got {global_pool!r}")
        layers: list[nn.Module] = []
        cin = in_channels
        for i, width in enumerate(widths):
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers += [nn.MaxPool2d(2, stride=1), BlurPool(width)] if antialias else [nn.MaxPool2d(2)]
            cin = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveMaxPool2d(1) if global_pool == "max" else nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class ScaledTanh(nn.Module):
    """LeNet-5's squashing function f(a) = A tanh(S a), A = 1.7159, S = 2/3 (LeCun et al. 1998, appendix A)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(x * (2 / 3))


# LeNet-5's Table I: the S2 maps each C3 map sees (6 take 3 neighbours, 6 take 4, 3 take 4 apart, 1 takes all)
LENET_C3_TABLE = ((0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
                  (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
                  (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5), (0, 1, 2, 3, 4, 5))


class PartialConv(nn.Module):
    """LeNet-5's C3: 16 5x5 maps, each over only the S2 maps Table I gives it (1,516 parameters, not the
    2,416 of a full connection). Maps that see as many inputs share one grouped conv over the gathered inputs."""

    def __init__(self, table: Sequence[Sequence[int]] = LENET_C3_TABLE, kernel: int = 5) -> None:
        super().__init__()
        self.groups = nn.ModuleList()
        order: list[int] = []
        for size in sorted({len(t) for t in table}):
            maps = [i for i, t in enumerate(table) if len(t) == size]
            order += maps
            self.register_buffer(f"inputs{len(self.groups)}", torch.tensor([c for i in maps for c in table[i]]))
            self.groups.append(nn.Conv2d(size * len(maps), len(maps), kernel, groups=len(maps)))
        self.register_buffer("order", torch.tensor(order).argsort())  # back to Table I's map order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = [conv(x[:, getattr(self, f"inputs{i}")]) for i, conv in enumerate(self.groups)]
        return torch.cat(out, 1)[:, self.order]


class LeNet5(nn.Module):
    """LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998), on a 1x32x32 input:
    C1 conv 6 5x5 (156 params) - S2 subsample (6 x (coefficient + bias): 12) - C3 partial conv 16 5x5 (Table I:
    1,516) - S4 subsample (32) - C5 conv 120 5x5 (48,120) - F6 FC 84 (10,164), each followed by the scaled tanh:
    60,000 trainable parameters, the paper's figure. A subsampling unit adds its 2x2 inputs, multiplies by a
    trainable coefficient and adds a trainable bias: built as a 2x2 average pool then a per-channel 1x1 conv
    (the factor 4 goes into the coefficient). The paper's output layer is 10 Euclidean RBF units whose
    84-element parameter vectors were set by hand (stylised 7x12 bitmaps) and kept fixed; here a Linear 84 -> 10
    (850 trainable parameters) replaces it, so the built net has 60,850."""

    input_size = (1, 32, 32)  # what the layer table feeds it (the paper pads 28x28 digits to 32x32)

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), ScaledTanh(),                       # C1: 32 -> 28
            nn.AvgPool2d(2), nn.Conv2d(6, 6, 1, groups=6), ScaledTanh(),      # S2: 28 -> 14
            PartialConv(), ScaledTanh(),                                       # C3: 14 -> 10
            nn.AvgPool2d(2), nn.Conv2d(16, 16, 1, groups=16), ScaledTanh(),   # S4: 10 -> 5
            nn.Conv2d(16, 120, 5), ScaledTanh(),                               # C5: 5 -> 1
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(120, 84), ScaledTanh(), nn.Linear(84, num_classes))
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _register() -> None:
    for prefix, small in (("paper", False), ("small", True)):
        size = "32 px, channels / 4" if small else "224 px, as published"
        register_model(f"{prefix}_alexnet", partial(AlexNet, small=small), f"AlexNet (2012), one tower, {size}")
        register_model(f"{prefix}_alexnet_lrn", partial(AlexNet, small=small, lrn=True),
                       f"AlexNet with local response normalisation, {size}")
        register_model(f"{prefix}_alexnet_bn", partial(AlexNet, small=small, batchnorm=True),
                       f"AlexNet with BatchNorm instead of LRN, {size}")
        register_model(f"{prefix}_alexnet_2gpu", partial(AlexNet, small=small, lrn=True, groups=2),
                       f"AlexNet as published: two towers (grouped conv2/4/5) and LRN, {size}")
        for depth, key in _VGG_DEPTHS.items():
            register_model(f"{prefix}_vgg{depth}", partial(VGG, key, small=small), f"VGG{depth} ({key}), {size}")
            register_model(f"{prefix}_vgg{depth}_bn", partial(VGG, key, small=small, batchnorm=True),
                           f"VGG{depth} ({key}) with BatchNorm, {size}")
    register_model("fc_mlp", MLP, "fully connected baseline of the FC-vs-CNN lesson")
    register_model("shift_cnn", SmallCNN, "small CNN with a global max pool, the FC-vs-CNN lesson's CNN")
    register_model("lenet5", LeNet5, "LeNet-5 (1998) as the paper built it (C3's partial connections), 1x32x32")


_register()
