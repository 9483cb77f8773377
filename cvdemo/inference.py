"""Classification: cheap preprocessing, a fast runtime, top-k labels and Grad-CAM.

On a CPU the model runs in onnxruntime (exported once per model and cached): about 2.5-3x
faster than timm eager for the default model, same probabilities within 1e-6. The offline networks can run
in static int8 instead (`cvdemo.quantize`, only on a CPU with VNNI). On a GPU the model runs in torch (a ZeroGPU
Space's server has none: it classifies as a CPU does; `cvdemo.gpu.pick_device`).
`python -m cvdemo.bench classify` measures them side by side.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import images, measure, quantize
from .errors import LimitError, Note
from .export import export_onnx
from .cache import bound, building, cache_dir
from .gpu import pick_device
from .models import DEFAULT_MODEL, check_imagenet_classifier, create_model

MAX_TOP_K = 20
MAX_LOADED_MODELS = 4  # classifiers kept in memory, least recently used dropped first
IDLE_SECONDS = 600  # ... and one no request used this long is dropped (`unload_idle`; the default model stays)
# Images one onnxruntime call takes at most (bigger batches go in chunks): each session keeps an arena as big as
# its largest call's activations, for good (batch 32 at 224 px: ~700 MB; 4: ~110 MB), and 4 are as fast per image.
RUNTIME_BATCH = 4


def class_names(model: torch.nn.Module) -> list[str]:
    """Human-readable class names: the model's own, else ImageNet's (any subset timm knows)."""
    import timm.data

    cfg = getattr(model, "pretrained_cfg", {}) or {}
    if cfg.get("label_names"):
        return list(cfg["label_names"])
    subset = timm.data.infer_imagenet_subset(model)
    if subset:
        info = timm.data.ImageNetInfo(subset)
        return [info.index_to_description(i) for i in range(info.num_classes())]
    return [f"class {i}" for i in range(model.num_classes)]


class PooledFeatures(torch.nn.Module):
    """A timm model without its classifier: image batch -> pooled features (N, D)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


def default_precision(name: str, runtime: str) -> tuple[str, Note | None]:
    """("int8" or "fp32", why not int8 where it was a candidate): int8 for an offline network in onnxruntime on a
    CPU with VNNI whose int8 model keeps fp32's top-1 often enough (`quantize.AGREEMENT`); fp32 for the rest."""
    if runtime != "onnxruntime" or name not in quantize.AGREEMENT:
        return "fp32", None
    if not quantize.cpu_has_vnni():
        return "fp32", Note("int8 off: this CPU has no VNNI (8-bit dot products), so int8 would be no faster",
                            "classify.no_vnni")
    agreement = quantize.AGREEMENT[name]
    if agreement < quantize.MIN_AGREEMENT:
        return "fp32", Note(f"int8 off: it kept fp32's top-1 class on only {agreement:.1%} of "
                            f"{quantize.AGREEMENT_IMAGES} test images ({quantize.MIN_AGREEMENT:.0%} needed)",
                            "classify.int8_disagrees", agreement=f"{agreement:.1%}",
                            images=quantize.AGREEMENT_IMAGES, needed=f"{quantize.MIN_AGREEMENT:.0%}")
    return "int8", None


class Classifier:
    """A model ready to classify: preprocessing, runtime (onnxruntime or torch), precision and labels."""

    def __init__(self, name: str, model: torch.nn.Module, labels: list[str] | None = None,
                 runtime: str | None = None, data_config: dict | None = None, precision: str | None = None) -> None:
        """`data_config` (input_size, crop_pct, interpolation, mean, std) defaults to the model's timm config;
        `precision` ("int8" or "fp32", onnxruntime only) to `default_precision`."""
        import timm.data

        self.name = name
        self._chosen = (runtime, precision)  # as asked: None is decided on the device (again, wherever unpickled)
        self.model = model.eval()
        self.labels = labels or class_names(model)
        self.data_config = cfg = data_config or timm.data.resolve_data_config({}, model=model)
        self.input_size: tuple[int, int] = tuple(cfg["input_size"][1:])  # (H, W)
        self.crop_pct: float = cfg.get("crop_pct") or 1.0
        self.interpolation = Image.Resampling.BILINEAR if cfg.get("interpolation") == "bilinear" else Image.Resampling.BICUBIC
        mean, std = np.asarray(cfg["mean"], np.float32), np.asarray(cfg["std"], np.float32)
        # (x/255 - mean)/std == x*scale + shift, one fused multiply-add per pixel
        self._scale, self._shift = 1 / (255 * std), -mean / std
        self.device = pick_device()
        self.runtime = runtime or ("torch" if self.device.type != "cpu" else "onnxruntime")
        self.precision, self.precision_note = (precision, None) if precision else default_precision(name, self.runtime)
        if self.precision not in ("int8", "fp32") or (self.precision == "int8" and self.runtime != "onnxruntime"):
            raise ValueError(f"precision must be 'fp32', or 'int8' in onnxruntime; got {self.precision!r}")
        self._session = self._features_session = None
        if self.runtime == "onnxruntime":
            # fp32 files were tagged "logits" before their pads were fixed: those age out of the cache
            path = self._int8_file() if self.precision == "int8" else self._export_onnx(self.model, "fp32")
            self._session = self._open(path)
            if self.precision == "int8":
                self._features_session = self._session  # the int8 model has a "features" output too
        if self.runtime == "torch":
            self.model.to(self.device, memory_format=torch.channels_last)

    def __reduce__(self):
        """A Classifier crosses a process boundary (into or out of a ZeroGPU worker: `cvdemo.gpu`) as what built
        it, with a CPU copy of its model; the receiving process builds it again, on its own device and runtime."""
        model = self.model if self.device.type == "cpu" else copy.deepcopy(self.model).cpu()
        runtime, precision = self._chosen
        return Classifier, (self.name, model, self.labels, runtime, self.data_config, precision)

    # --- preprocessing ---
    def crop_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The source region that timm's eval transform keeps: resize the short side to
        size/crop_pct (integer sizes, as torchvision rounds), then centre-crop `input_size`."""
        h, w = self.input_size
        short = math.floor(min(h, w) / self.crop_pct)
        if width <= height:
            rw, rh = short, int(short * height / width)
        else:
            rw, rh = int(short * width / height), short
        left, top = int(round((rw - w) / 2.0)), int(round((rh - h) / 2.0))
        sx, sy = width / rw, height / rh  # source pixels per resized pixel
        return left * sx, top * sy, (left + w) * sx, (top + h) * sy

    def crop(self, image: Image.Image) -> Image.Image:
        """The input_size RGB crop the model sees: crop and resize in one PIL call."""
        h, w = self.input_size
        box = self.crop_box(*image.size)
        return image.resize((w, h), self.interpolation, box=box, reducing_gap=3.0)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """RGB image -> normalised float32 array (1, 3, H, W)."""
        return self.normalize(self.crop(image))

    def normalize(self, crop: Image.Image) -> np.ndarray:
        """An already cropped RGB image -> normalised float32 array (1, 3, H, W)."""
        pixels = np.asarray(crop, dtype=np.float32)
        return np.ascontiguousarray((pixels * self._scale + self._shift).transpose(2, 0, 1)[None])

    # --- runtime ---
    @property
    def runtime_label(self) -> str:
        """What runs the model, as the info line says it: "onnxruntime int8", "onnxruntime fp32" or "torch"."""
        return f"onnxruntime {self.precision}" if self.runtime == "onnxruntime" else self.runtime

    @staticmethod
    def _open(path: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = min(4, torch.get_num_threads())  # torch's count (OMP_NUM_THREADS)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _export_onnx(self, module: torch.nn.Module, tag: str) -> Path:
        """Export once to ONNX (opset 17, dynamic batch)."""
        return self._runtime_file(tag, lambda path: export_onnx(module, path, self.input_size))

    def _int8_file(self) -> Path:
        """The static int8 model (`cvdemo.quantize`), built once, calibrated on `quantize.calibration_images()`
        preprocessed exactly as for inference."""
        def build(path: Path) -> None:
            calibration = np.concatenate([self.preprocess(im) for im in quantize.calibration_images()])
            quantize.quantize(self._export_onnx(self.model, "fp32"), path, calibration)

        return self._runtime_file(quantize.RECIPE, build)

    def _runtime_file(self, tag: str, build) -> Path:
        """A runtime file made once by `build(path)`, cached by `tag` and a hash of the model's weights; the cache
        of runtimes stays under cache.MAX_RUNTIME_BYTES (the least recently used go first)."""
        digest = hashlib.sha256()
        for key, tensor in self.model.state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().numpy().tobytes())
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.name)[:80]
        path = cache_dir() / f"{safe}-{tag}-{digest.hexdigest()[:16]}.onnx"
        with building(path):
            if path.exists():
                os.utime(path)  # recently used: pruned last
                return path
            build(path)
        bound("*.onnx", keep=path)
        return path

    def features(self, batch: np.ndarray) -> np.ndarray:
        """Pooled backbone features (N, D) of a preprocessed batch: what a linear probe trains on."""
        if self.runtime == "onnxruntime":
            if self._features_session is None:  # exported on first use only
                self._features_session = self._open(self._export_onnx(PooledFeatures(self.model).eval(), "features"))
            return _run(self._features_session, "features" if self.precision == "int8" else "output", batch)
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device).contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
                return PooledFeatures(self.model).eval()(x).float().cpu().numpy()

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw model outputs for a preprocessed batch (N, 3, H, W)."""
        if self._session is not None:
            return _run(self._session, "output", batch)
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device).contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
                return self.model(x).float().cpu().numpy()

    def probabilities(self, images_: list[Image.Image]) -> np.ndarray:
        """Softmax probabilities (N, classes) for RGB images."""
        batch = np.concatenate([self.preprocess(im) for im in images_])
        return softmax(self.logits(batch))

    def top_k(self, probs: np.ndarray, k: int) -> list[tuple[str, float]]:
        order = np.argsort(-probs)[:k]
        return [(self.labels[i], float(probs[i])) for i in order]

    def classify(self, image, top_k: int = 5) -> tuple[list[tuple[str, float]], float]:
        """Top-k (label, probability) for one image (anything the image door takes), and the
        milliseconds the model itself took (preprocessing excluded)."""
        check_top_k(top_k)
        batch = self.preprocess(images.load_image(image))
        start = time.perf_counter()
        logits = self.logits(batch)[0]
        ms = (time.perf_counter() - start) * 1000
        return self.top_k(softmax(logits), top_k), ms

    # --- explanation ---
    def gradcam(self, image, class_index: int | None = None) -> tuple[np.ndarray, Image.Image, str]:
        """Grad-CAM (Selvaraju et al. 2017) on the last feature map: which regions of the crop
        the model saw raised the score of `class_index` (default: its top class). Returns the
        map (crop-sized, 0..1), that crop, and the label of the class it explains."""
        crop = self.crop(images.load_image(image))
        model = self.model
        x = torch.from_numpy(self.normalize(crop)).to(next(model.parameters()).device)
        with torch.enable_grad():
            features = model.forward_features(x).detach().requires_grad_(True)
            logits = model.forward_head(features)
            index = int(logits[0].argmax()) if class_index is None else int(class_index)
            (grad,) = torch.autograd.grad(logits[0, index], features)
        weights = grad.mean(dim=(2, 3), keepdim=True)  # channel importance
        cam = torch.relu((weights * features).sum(dim=1))[0].detach().float().cpu().numpy()
        cam = cam / cam.max() if cam.max() > 0 else cam
        heat = Image.fromarray(np.uint8(cam * 255)).resize(crop.size, Image.Resampling.BICUBIC)
        return np.asarray(heat, np.float32) / 255, crop, self.labels[index]

    def explain(self, image, class_index: int | None = None) -> tuple[Image.Image, str]:
        """The Grad-CAM map blended over the crop the model saw, and the class it explains."""
        from matplotlib import colormaps

        cam, crop, label = self.gradcam(image, class_index)
        blended = 0.55 * np.asarray(crop, np.float32) / 255 + 0.45 * colormaps["jet"](cam)[..., :3]
        return Image.fromarray(np.uint8(np.clip(blended, 0, 1) * 255)), label


def _run(session, output: str, batch: np.ndarray) -> np.ndarray:
    """An onnxruntime session's `output` for a batch, RUNTIME_BATCH images per call."""
    return np.concatenate([session.run([output], {"input": batch[i:i + RUNTIME_BATCH]})[0]
                           for i in range(0, len(batch), RUNTIME_BATCH)])


def check_top_k(top_k: int) -> None:
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
        raise LimitError(f"top_k must be a whole number from 1 to {MAX_TOP_K}, got {top_k!r}",
                         code="limit.top_k", value=top_k, limit=MAX_TOP_K)


_loaded: OrderedDict[str, Classifier] = OrderedDict()
_used: dict[str, float] = {}  # name -> when a request last got that loaded classifier (time.monotonic)
_name_locks: dict[str, list] = {}  # name -> [its lock, the requests holding or awaiting it]; gone when none
_registry_lock = threading.Lock()


def _cached(name: str) -> Classifier | None:
    """The loaded classifier (now the most recently used), or None; hold _registry_lock. One built for another
    device is not used: a ZeroGPU worker inherits the server's CPU classifiers when it is forked (`cvdemo.gpu`)."""
    classifier = _loaded.get(name)
    if classifier is None or classifier.device != pick_device():
        return None
    _loaded.move_to_end(name)
    _used[name] = time.monotonic()
    return classifier


def unload_idle(seconds: float = IDLE_SECONDS) -> list[str]:
    """Drop the loaded classifiers no request got for `seconds` (never the default model: a server at rest keeps
    what it started with); returns their names. A request that holds one keeps it until it is done."""
    now = time.monotonic()
    with _registry_lock:
        idle = [name for name in _loaded if name != DEFAULT_MODEL and now - _used.get(name, now) >= seconds]
        for name in idle:
            del _loaded[name], _used[name]
    return idle


def get_classifier(model: str | None = None) -> Classifier:
    """The classifier for a model name, built once and kept (the MAX_LOADED_MODELS most recent).
    A model being loaded blocks only the requests for that same model; its lock is dropped with the last of them."""
    name = check_imagenet_classifier(model)
    with _registry_lock:
        if (classifier := _cached(name)) is not None:
            return classifier
        entry = _name_locks.setdefault(name, [threading.Lock(), 0])
        entry[1] += 1
    try:
        with entry[0]:
            with _registry_lock:
                if (classifier := _cached(name)) is not None:  # loaded while this request waited
                    return classifier
            classifier = Classifier(name, create_model(name))
            with _registry_lock:
                _loaded[name], _used[name] = classifier, time.monotonic()
                while len(_loaded) > MAX_LOADED_MODELS:
                    _used.pop(_loaded.popitem(last=False)[0], None)
            return classifier
    finally:
        with _registry_lock:
            entry[1] -= 1
            if not entry[1]:
                del _name_locks[name]


def extract_features(images_: Iterable[Image.Image], model: str | None = None,
                     batch_size: int = RUNTIME_BATCH) -> np.ndarray:
    """Pooled backbone features (N, D) of RGB images, preprocessed exactly as for classification: what linear
    probes and the photo self-training heads train on (onnxruntime on a CPU), `batch_size` images at a time.
    `images_` may be a generator: each image is preprocessed (shrunk to the model's input) as it comes, so at most
    one full-size image is held at a time."""
    classifier = get_classifier(model)
    arrays = (classifier.preprocess(im) for im in images_)
    return np.concatenate([classifier.features(np.concatenate(batch))
                           for batch in iter(lambda: list(itertools.islice(arrays, batch_size)), [])])


def classify(image, model: str | None = None, top_k: int = 5) -> list[tuple[str, float]]:
    """Top-k ImageNet (or the model's own) classes for an image path, PIL image or numpy array,
    as [(label, probability), ...], highest first."""
    return get_classifier(model).classify(image, top_k)[0]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis, computed in float64 (stable: the largest logit is subtracted first)."""
    z = np.asarray(logits, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def compare(image, names: tuple[str, ...] | None = None, top_k: int = 5, runs: int = 5) -> list[dict]:
    """One image through several classifiers side by side (default: the offline EfficientNet-Lite0/1/2), one
    dict per model in the order given: name, input_size (H, W), params, mb (its safetensors file, MiB = 2**20
    bytes: `measure.disk_bytes`, as the Distill tab reports sizes), ms (model milliseconds: the median of `runs` forward passes after one warm-up pass,
    preprocessing excluded), runtime, and top (the top-k [(label, probability)]). Each model preprocesses the
    image its own way (its own input size and crop)."""
    from .models import OFFLINE_WEIGHTS

    check_top_k(top_k)
    if isinstance(runs, bool) or not isinstance(runs, int) or not 1 <= runs <= 50:
        raise LimitError(f"runs must be from 1 to 50, got {runs!r}", code="limit.runs", value=runs, limit=50)
    picture = images.load_image(image)
    rows = []
    for name in names or tuple(OFFLINE_WEIGHTS):
        classifier = get_classifier(name)
        batch = classifier.preprocess(picture)
        classifier.logits(batch)  # warm-up: the first pass pays for allocations
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            logits = classifier.logits(batch)[0]
            times.append((time.perf_counter() - start) * 1000)
        rows.append({"name": classifier.name, "input_size": classifier.input_size,
                     "params": measure.params(classifier.model),
                     "mb": measure.disk_bytes(classifier.model) / 2**20, "ms": float(np.median(times)),
                     "runtime": classifier.runtime, "top": classifier.top_k(softmax(logits), top_k)})
    return rows
