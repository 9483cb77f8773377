"""The registry of models cvdemo builds itself (timm's `register_model`, as data): name -> constructor.

None of them has ImageNet weights, so none is ever served as an ImageNet classifier, and no name
shadows a timm name (checked when it registers), so `create_model("vgg16")` stays timm's VGG16.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Callable[..., nn.Module]  # build(**kwargs) -> a fresh, randomly initialised model
    summary: str  # one line: what it is and what it is for


MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, build: Callable[..., nn.Module], summary: str) -> None:
    """Add a model; a name that timm already has, or one registered twice, is a programming error."""
    import timm

    if name in MODELS or timm.is_model(name):
        raise ValueError(f"model name {name!r} is taken (by cvdemo or by timm)")
    MODELS[name] = ModelEntry(name, build, summary)


def list_models() -> list[str]:
    """Every name `create_model` builds from cvdemo's own code (no weights), sorted."""
    return sorted(MODELS)
