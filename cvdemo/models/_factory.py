"""`create_model(name)`: the one door to every model, and the Hub check behind it."""
from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlparse

import timm
import torch
from safetensors.torch import load_file

from ..errors import ModelError
from ._registry import MODELS
from .pretrained import OFFLINE_WEIGHTS, offline_weights

DEFAULT_MODEL = "tf_efficientnet_lite0"

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


def _shown(name: str) -> str:
    return name if len(name) <= 80 else name[:77] + "..."  # what error messages quote


def check_imagenet_classifier(name: str | None) -> str:
    """The name, stripped, if it can classify ImageNet; a cvdemo-built model (random weights, lesson sizes)
    raises ModelError naming the offline classifiers instead of answering "hare 0.001"."""
    name = (name or "").strip() or DEFAULT_MODEL  # a blank name is the default, not a model named ""
    if name in MODELS:
        raise ModelError(f"'{_shown(name)}' is one of cvdemo's lesson models: it has no ImageNet weights and "
                         f"can't classify photos. {offline_message()}", code="model.not_a_classifier",
                         name=_shown(name), offline=", ".join(OFFLINE_WEIGHTS))
    return name


def create_model(name: str | None = None, *, pretrained: bool = True, **kwargs) -> torch.nn.Module:
    """Build a model by name, in eval mode: a cvdemo model (`list_models()`: built from scratch, `pretrained`
    ignored; its `.built_as` is (name, kwargs)), an OFFLINE_WEIGHTS name, or any timm name (with a pretrained tag
    or `hf-hub:` prefix), whose weights come from the Hub. `kwargs` go to the constructor (`num_classes=N`: a new,
    untrained head)."""
    name = (name or "").strip() or DEFAULT_MODEL
    if name in MODELS:
        model = MODELS[name].build(**kwargs)
        model.built_as = (name, dict(kwargs))  # what export.save_model writes to rebuild it
        return model.eval()
    shown, offline = _shown(name), ", ".join(OFFLINE_WEIGHTS)
    if name in OFFLINE_WEIGHTS:
        model = timm.create_model(name, pretrained=False, **kwargs)
        if pretrained:
            state = load_file(str(offline_weights(name)))
            if "num_classes" in kwargs:  # a new head: keep the pretrained backbone only
                head = model.pretrained_cfg.get("classifier", "classifier")
                state = {k: v for k, v in state.items() if not k.startswith(head + ".")}
                model.load_state_dict(state, strict=False)
            else:
                model.load_state_dict(state)
            # say where the weights came from (exports write pretrained_cfg into config.json)
            model.pretrained_cfg = {**model.pretrained_cfg, "hf_hub_id": None,
                                    "source": OFFLINE_WEIGHTS[name].source}
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
