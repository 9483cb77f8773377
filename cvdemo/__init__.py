"""cvdemo: an interactive computer-vision lab. Every app feature is also a Python call and a CLI.

    from cvdemo import classify
    classify("cat.jpg")  # [(label, probability), ...], highest first
"""
from .errors import CvdemoError, ImageError, LimitError, ModelError

__all__ = ["classify", "CvdemoError", "ImageError", "LimitError", "ModelError"]


def __getattr__(name: str):
    """`classify` imported on first use: `import cvdemo.train` (a torchrun worker, a DDP process) then loads torch
    alone, not timm, torchvision and onnx through cvdemo.inference (about 2 s of CPU per process)."""
    if name == "classify":
        from .inference import classify

        globals()["classify"] = classify
        return classify
    raise AttributeError(f"module 'cvdemo' has no attribute {name!r}")
