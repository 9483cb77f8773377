"""Export trained models: safetensors + config.json (timm's Hugging Face format), ONNX, Hub push.

A saved folder loads back with plain timm, no cvdemo needed:

    timm.create_model(arch, num_classes=N, checkpoint_path="folder/model.safetensors")

(`pretrained_cfg_overlay` alone would silently drop a head whose size differs: pass num_classes.)
User-supplied weights are only ever read as safetensors, never unpickled.
"""
from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import torch

from .errors import ModelError
from .cache import atomic_write
from .models import hub_reachable

MAX_CONFIG_BYTES = 1_000_000


def export_onnx(model: torch.nn.Module, path: Path, input_size: tuple[int, int]) -> Path:
    """ONNX (opset 17, dynamic batch), written atomically; input "input" (N,3,H,W) -> "output".
    Exported from a CPU copy in eval mode, so a model on any device (a GPU's after training) exports,
    and the caller's model is left as it was: on its device, in its train/eval mode, untouched."""
    plain = copy.deepcopy(model).cpu().eval().to(memory_format=torch.contiguous_format)
    example = torch.zeros(1, 3, *input_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        atomic_write(Path(path), lambda tmp: torch.onnx.export(
            plain, (example,), str(tmp), dynamo=False, opset_version=17,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}))
    return Path(path)


def model_config(model: torch.nn.Module, classes: list[str]) -> dict:
    """What config.json adds to timm's fields: the class names, and where the pretrained weights came from."""
    config = {"label_names": list(classes)}
    source = (getattr(model, "pretrained_cfg", None) or {}).get("source")
    if source:
        config["weights_source"] = source
    return config


def save_model(model: torch.nn.Module, folder: Path, classes: list[str]) -> Path:
    """model.safetensors + config.json (architecture, num_classes, label_names, weights_source, preprocessing)."""
    from timm.models import save_for_hf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plain = copy.deepcopy(model).cpu().eval().to(memory_format=torch.contiguous_format)  # safetensors needs contiguous
    save_for_hf(plain, str(folder), model_config=model_config(model, classes), safe_serialization=True)
    return folder


def load_model(folder: Path) -> tuple[torch.nn.Module, list[str]]:
    """A folder written by `save_model` (or a timm HF export) -> (model in eval mode, class names).
    Only safetensors weights are read; config.json is plain JSON checked field by field."""
    import timm

    folder = Path(folder)
    config_path, weights = folder / "config.json", folder / "model.safetensors"
    if not weights.is_file():
        raise ModelError("No model.safetensors in the folder; only safetensors weights are accepted "
                         "(a .pt/.pth/.bin file can run code when loaded).", code="model.not_safetensors")
    try:
        if config_path.stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError("config.json is too large")
        config = json.loads(config_path.read_text())
        arch = config["architecture"]
        num_classes = int(config["num_classes"])
        classes = [str(c) for c in config.get("label_names") or range(num_classes)]
        if not isinstance(arch, str) or not timm.is_model(arch) or len(classes) != num_classes:
            raise ValueError(f"unknown architecture or label count ({arch!r}, {num_classes})")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError(f"config.json is missing or invalid: {err}", code="model.bad_config", reason=str(err)) from err
    try:
        model = timm.create_model(arch, num_classes=num_classes, checkpoint_path=str(weights))
    except (RuntimeError, OSError, ValueError) as err:
        raise ModelError(f"The weights don't fit {arch} with {num_classes} classes: {err}",
                         code="model.bad_weights", arch=arch, classes=num_classes, reason=str(err)) from err
    return model.eval(), classes


def push_to_hub(model: torch.nn.Module, classes: list[str], repo_id: str, token: str) -> str:
    """Upload to the Hugging Face Hub with the user's token; fails at once, clearly, offline."""
    from timm.models import push_to_hf_hub

    if not repo_id or "/" not in repo_id or not token:
        raise ModelError("Give a repository id like 'your-name/my-model' and a write token.", code="hub.bad_request")
    if not hub_reachable():
        raise ModelError("The Hugging Face Hub can't be reached (no network, or HF_HUB_OFFLINE=1). "
                         "Download the files instead and upload them later.", code="hub.offline")
    try:
        plain = copy.deepcopy(model).cpu().eval().to(memory_format=torch.contiguous_format)
        return str(push_to_hf_hub(plain, repo_id, token=token,
                                  model_config=model_config(model, classes), safe_serialization=True))
    except Exception as err:  # network, auth, permissions: all reported, none fatal
        raise ModelError(f"Pushing to the Hub failed: {err}", code="hub.failed", reason=str(err)) from err
