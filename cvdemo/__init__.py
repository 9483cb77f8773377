"""cvdemo: an interactive computer-vision lab. Every app feature is also a Python call and a CLI.

    from cvdemo import classify
    classify("cat.jpg")  # [(label, probability), ...], highest first
"""
from .errors import CvdemoError, ImageError, LimitError, ModelError
from .inference import classify

__all__ = ["classify", "CvdemoError", "ImageError", "LimitError", "ModelError"]
