"""Export trained models: weights (safetensors) + config.json, ONNX, Hub push; and the one way to read them back.

`save_model` writes every model the factory builds in one layout, model.safetensors + config.json (timm's Hugging
Face format), and `load_model` reads each back:
- a timm model: timm's config; the folder loads with plain timm too, no cvdemo needed:
      timm.create_model(arch, num_classes=N, checkpoint_path="folder/model.safetensors")
  (`pretrained_cfg_overlay` alone would silently drop a head whose size differs: pass num_classes.)
- one of cvdemo's own models (`cvdemo.models.list_models()`): config.json names the registered architecture and
  the constructor arguments that rebuild it (`model_args`), its preprocessing when known, and the sha256 of the
  weights.
A path ending in .safetensors names the weights file instead, its config beside it (checkpoints/digits_teacher.*).
Weights are only ever read as safetensors, never unpickled; a config is checked field by field (a known
architecture, known argument names, JSON scalars and short lists, bounded sizes) before anything is built.
"""
from __future__ import annotations

import copy
import hashlib
import inspect
import json
import math
import warnings
from pathlib import Path

import torch

from .cache import atomic_write
from .errors import ModelError
from .models import MODELS, create_model, hub_reachable

MAX_CONFIG_BYTES = 1_000_000
MAX_CLASSES = 100_000
MAX_PARAMS = 200_000_000  # a rebuilt cvdemo model: at most this many parameters (800 MB of float32)
MAX_NUMBER, MAX_LIST, MAX_TEXT = 1_000_000, 64, 200  # each model_args / pretrained_cfg value
DATA_KEYS = ("input_size", "crop_pct", "interpolation", "mean", "std")  # a cvdemo model's preprocessing


def export_onnx(model: torch.nn.Module, path: Path, input_size: tuple[int, int]) -> Path:
    """ONNX (opset 17, dynamic batch), written atomically; input "input" (N,3,H,W) -> "output".
    Exported from a CPU copy in eval mode, so a model on any device (a GPU's after training) exports,
    and the caller's model is left as it was: on its device, in its train/eval mode, untouched."""
    plain = copy.deepcopy(model).cpu().eval().to(memory_format=torch.contiguous_format)
    example = torch.zeros(1, 3, *input_size)
    _fix_same_padding(plain, example)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        atomic_write(Path(path), lambda tmp: torch.onnx.export(
            plain, (example,), str(tmp), dynamo=False, opset_version=17,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}))
    return Path(path)


def _fix_same_padding(model: torch.nn.Module, example: torch.Tensor) -> None:
    """TensorFlow "same" padding (timm's Conv2dSame in the tf_* models) fixed for the example's size, as timm's
    Conv2dSameExport does: the graph then holds constant pads, not a shape computation before each strided conv
    (which int8 quantisation would quantise like any other arithmetic). The outputs are unchanged."""
    from timm.layers.conv2d_same import Conv2dSame, Conv2dSameExport

    same = [m for m in model.modules() if type(m) is Conv2dSame]
    for module in same:
        module.__class__ = Conv2dSameExport
        module.pad, module.pad_input_size = None, (0, 0)
    if same:
        with torch.no_grad():
            model(example)  # each conv computes its pads from the size it sees


def model_config(model: torch.nn.Module, classes: list[str]) -> dict:
    """What config.json adds to timm's fields: the class names, and where the pretrained weights came from."""
    config = {"label_names": list(classes)}
    source = (getattr(model, "pretrained_cfg", None) or {}).get("source")
    if source:
        config["weights_source"] = source
    return config


def _paths(path: Path) -> tuple[Path, Path]:
    """(weights, config) of a saved model: a folder's model.safetensors + config.json, or x.safetensors + x.json."""
    if path.suffix == ".safetensors":
        return path, path.with_suffix(".json")
    return path / "model.safetensors", path / "config.json"


def _write(path: Path, write) -> None:
    atomic_write(path, write)
    path.chmod(0o644)  # readable like any exported file (mkstemp makes it private)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_model(model: torch.nn.Module, path: Path, classes: list[str], *, data_config: dict | None = None,
               extra: dict | None = None) -> Path:
    """Weights + config in `path` (a folder), or, for cvdemo's own models, as `path` (x.safetensors) + x.json.
    A timm model: timm's config (architecture, num_classes, label_names, weights_source, preprocessing). A cvdemo
    model (built by `create_model`): architecture, num_classes, model_args, label_names, preprocessing, the
    weights' sha256, then `extra` (informational fields, e.g. how it was trained). The preprocessing is
    `data_config` when given (a Classifier's: how the model was trained to see images), else the model's own.
    Refuses (ModelError) what `load_model` would. Returns `path`."""
    path = Path(path)
    plain = copy.deepcopy(model).cpu().eval().to(memory_format=torch.contiguous_format)  # safetensors needs contiguous
    if not hasattr(model, "built_as"):
        from timm.models import save_for_hf

        if path.suffix == ".safetensors":
            raise ValueError("a timm model is saved as a folder (timm's layout)")
        save_for_hf(plain, str(path), model_config=model_config(model, classes), safe_serialization=True,
                    data_config=data_config)
        return path
    from safetensors.torch import save_file

    arch, args = model.built_as
    data = {k: v for k, v in (data_config or getattr(model, "pretrained_cfg", None) or {}).items() if k in DATA_KEYS}
    config = {"architecture": arch, "num_classes": len(classes), "model_args": args, "label_names": list(classes),
              **({"pretrained_cfg": data} if data else {})}
    try:
        config = json.loads(json.dumps(config))  # as it will be read (tuples as lists), then checked as it will be
        _check_config(config)
    except (TypeError, ValueError) as err:
        raise ModelError(f"This model can't be exported: {err}", code="model.not_exportable",
                         reason=str(err)) from err
    weights, config_path = _paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in plain.state_dict().items()}
    _write(weights, lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))
    config = {**config, "sha256": _sha256(weights), **{k: v for k, v in (extra or {}).items() if k not in config}}
    _write(config_path, lambda tmp: tmp.write_text(json.dumps(config, indent=2) + "\n"))
    return path


def load_model(path: Path) -> tuple[torch.nn.Module, list[str]]:
    """A model written by `save_model` (or a timm Hugging Face export): a folder, or an x.safetensors file with its
    x.json -> (model in eval mode, class names). Only safetensors weights are read; the config is checked field by
    field (`_check_config`) before anything is built, and the weights against its sha256 when it has one."""
    import timm
    from safetensors.torch import load_file

    weights, config_path = _paths(Path(path))
    if not weights.is_file():
        raise ModelError(f"No {weights.name} in the folder; only safetensors weights are accepted "
                         "(a .pt/.pth/.bin file can run code when loaded).", code="model.not_safetensors")
    try:
        if config_path.stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError(f"{config_path.name} is too large")
        config = _check_config(json.loads(config_path.read_text()))
    except (OSError, ValueError) as err:
        raise ModelError(f"{config_path.name} is missing or invalid: {err}", code="model.bad_config",
                         reason=str(err)) from err
    arch, num_classes = config["architecture"], config["num_classes"]
    if config.get("sha256") is not None and config["sha256"] != _sha256(weights):
        raise ModelError(f"The weights' sha256 differs from {config_path.name}'s: the two files don't belong together.",
                         code="model.sha256_mismatch")
    try:
        if arch in MODELS:
            model = create_model(arch, **config["model_args"])
            model.load_state_dict(load_file(str(weights)))
            if config["pretrained_cfg"]:
                model.pretrained_cfg = config["pretrained_cfg"]  # how it sees images (Classifier reads it)
        else:
            model = timm.create_model(arch, num_classes=num_classes, checkpoint_path=str(weights))
    except (RuntimeError, OSError, ValueError) as err:
        raise ModelError(f"The weights don't fit {arch} with {num_classes} classes: {err}",
                         code="model.bad_weights", arch=arch, classes=num_classes, reason=str(err)) from err
    return model.eval(), config["label_names"]


def _check_config(config) -> dict:
    """The fields `load_model` uses, checked; a ValueError names the first bad one. architecture: a timm name or a
    registered cvdemo model; num_classes: 1 to MAX_CLASSES, with as many label_names. A cvdemo model's model_args:
    only its constructor's argument names, each a JSON scalar or a short list of them, building at most MAX_PARAMS
    parameters; its pretrained_cfg: only DATA_KEYS. Other fields are informational and ignored."""
    import timm

    if not isinstance(config, dict):
        raise ValueError("not a JSON object")
    arch, n = config.get("architecture"), config.get("num_classes")
    if not isinstance(arch, str) or not (arch in MODELS or timm.is_model(arch)):
        raise ValueError(f"unknown architecture {_shown(arch)}")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CLASSES:
        raise ValueError(f"num_classes must be a whole number from 1 to {MAX_CLASSES:,}, got {_shown(n)}")
    labels = config.get("label_names") or list(range(n))
    if not isinstance(labels, list) or len(labels) != n:
        raise ValueError(f"label_names must be a list of {n} names (one per class)")
    checked = {"architecture": arch, "num_classes": n, "label_names": [str(c) for c in labels],
               "sha256": config.get("sha256")}
    if arch not in MODELS:
        return checked
    build = MODELS[arch].build
    signature = inspect.signature(build).parameters
    args = _fields(config.get("model_args", {}), "model_args", signature)
    if "num_classes" in signature and args.get("num_classes", signature["num_classes"].default) != n:
        raise ValueError(f"model_args don't build {n} classes (num_classes)")
    try:
        with torch.device("meta"):  # counted, not allocated
            params = sum(p.numel() for p in build(**args).parameters())
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"model_args don't build {arch}: {err}") from None
    if params > MAX_PARAMS:
        raise ValueError(f"model_args build {params:,} parameters; the limit is {MAX_PARAMS:,}")
    data = _fields(config.get("pretrained_cfg") or {}, "pretrained_cfg", DATA_KEYS)
    return {**checked, "model_args": args, "pretrained_cfg": data}


def _fields(value, what: str, known) -> dict:
    """`value` if it is a JSON object whose keys are all `known` and whose values are JSON scalars (numbers up to
    MAX_NUMBER, strings up to MAX_TEXT characters) or lists of up to MAX_LIST of them; else ValueError."""
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object")
    for key, v in value.items():
        if key not in known:
            raise ValueError(f"{what}: unknown field {_shown(key)}")
        items = v if isinstance(v, list) else [v]
        if len(items) > MAX_LIST or not all(_scalar(x) for x in items):
            raise ValueError(f"{what}.{key} must be a number (at most {MAX_NUMBER:,}), a short text, true/false, null "
                             f"or a list of up to {MAX_LIST} of them; got {_shown(v)}")
    return dict(value)


def _scalar(x) -> bool:
    if isinstance(x, str):
        return len(x) <= MAX_TEXT
    if isinstance(x, (int, float)):
        return math.isfinite(x) and abs(x) <= MAX_NUMBER
    return x is None


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
