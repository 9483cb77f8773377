"""Augmentation pipelines from a JSON-able spec: the preview in the app is the object training uses.

    from cvdemo.augment import build_pipeline, PRESETS
    pipe = build_pipeline({"ops": [{"op": "hflip"}, {"op": "rotation", "degrees": 30}]})
    pipe(image)                                   # one augmented image (PIL or uint8 tensor in, same out)
    pipe.sample(image, k=8, seed=0)               # reproducible samples with captions (the playground)
    images, soft = pipe.mix_batch(images, labels, num_classes)   # CutMix / MixUp on a training batch
    pipe.to_json(); pipe.to_code()                # the spec back, and a torchvision.transforms.v2 snippet
    robustness(pipe, image, classifier, k=8)      # the samples, and how often the classifier's top-1 survives

Spec
----
``{"ops": [op, ...]}`` as a dict or a JSON string. Ops run in list order; every op may carry
``"enabled": false`` (kept in the spec and in `to_json`, skipped when running). CutMix and MixUp mix
whole batches after the per-image ops, so they must come last. Omitted fields take their defaults;
``[lo, hi]`` is a range a value is drawn from uniformly.

The ops, their fields, defaults and allowed values: ``python -m cvdemo.augment`` prints them, and
`describe_ops()` returns the same text. It is rendered from `OPS` (each op's `fields`: default, check,
meaning), the definitions `build_pipeline` checks a spec with, so it can't disagree with them.

Identity settings are identities (pixel-equal output): brightness/contrast/saturation [1, 1] and
hue [0, 0]; rotation 0; p = 0; affine degrees 0, translate [0, 0], scale [1, 1], shear 0;
RandAugment num_ops 0; crop scale [1, 1] *when the ratio range allows only the image's own aspect
ratio* (e.g. ratio [1, 1] on a square image; otherwise torchvision's crop falls back to a centre crop).

Anything wrong in a spec raises `SpecError` (a ValueError, code ``augment.bad_spec``) whose message
names the field, e.g. ``ops[2].degrees must be between 0 and 180, got 400``; ``err.field`` holds
the same path.

Captions
--------
`Pipeline.sample` captions what was actually drawn, one part per op, joined by `` · `` (a flip that
did not fire and an op whose settings are identities are left out; nothing left: ``unchanged``):
``brightness ×1.21, contrast ×0.93 · rotate −12.4° · hflip · crop (x=10, y=33, 300×280)
· affine: shift (5, −3) px, scale ×1.04 · RandAugment: Posterize(6), Rotate(−14.2°)``. With a
second image and CutMix/MixUp: ``cat: <parts> | espresso: <parts> | CutMix box (x=12, y=40, 96×80):
cat 0.82 + espresso 0.18`` (or ``MixUp λ=0.63: cat 0.63 + espresso 0.37``). ``Sample.params`` holds
the same draws as JSON, under torchvision's own parameter names.

Randomness
----------
Each op draws its parameters itself, with exactly the calls (and order) torchvision's own
``make_params``/``forward`` makes, but from an explicit ``torch.Generator`` when one is given, then
applies them with torchvision's own ``transform(inpt, params)`` (RandAugment: its own op table and
``_apply_image_or_video_transform``). So `sample` never reads or changes the global RNG and is safe
in concurrent threads, while ``pipe(img)`` (no generator) draws from the global RNG like any v2
transform does in a DataLoader, and equals ``torch.manual_seed(s); v2_transform(img)`` for a
generator seeded with ``s``.

Training::

    pipe = build_pipeline(spec)   # with a crop "size", so that a batch stacks
    data = ImageFolder(root, transform=v2.Compose([pipe, v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]))
    for images, labels in DataLoader(data, batch_size=64, shuffle=True):
        images, soft_labels = pipe.mix_batch(images, labels, num_classes)   # loss: cross_entropy(logits, soft_labels)
"""
from __future__ import annotations

import copy
import json
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from PIL import Image, ImageDraw
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from .errors import CvdemoError, LimitError
from .images import load_image

__all__ = ["MAX_SAMPLES", "OPS", "PRESETS", "Pipeline", "Sample", "SpecError", "build_pipeline", "describe_ops",
           "mix_up_close", "robustness", "short_label"]

MAX_OPS = 32  # entries in one spec
MAX_SAMPLES = 32  # images one `sample` call makes
MAX_SEED = 2**63 - 1


class SpecError(CvdemoError, ValueError):
    """An augmentation spec that can't be built; `field` names the culprit, e.g. "ops[2].degrees"."""

    code = "augment.bad_spec"

    def __init__(self, message: str, field: str, code: str | None = None, **params: object) -> None:
        super().__init__(message, code, field=field, **params)
        self.field = field


# --- field checks: (value, "ops[i].name") -> the value in canonical form, or SpecError ---

Check = Callable[[Any, str], Any]  # made by `number`, `two` or `output_size`; `check.allowed` says what passes


@dataclass(frozen=True)
class Field:
    """One field of an op: its `default`, the `check` a given value must pass, and what it means."""

    default: Any
    check: Check
    meaning: str


Fields = dict[str, Field]


def _is_number(value: Any) -> bool:
    """A finite real number (numpy ones too), not a bool."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    return isinstance(value, int) or math.isfinite(value)  # (a huge int can't become a float)


def _show(value: Any) -> str:
    """repr(value) for a message, cut short."""
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than Python will print
        return "a number too large to print"
    return text if len(text) <= 60 else text[:57] + "..."


def number(lo: float, hi: float, *, integer: bool = False, above: bool = False) -> Check:
    """A number in [lo, hi] (in (lo, hi] with above=True); integer=True wants a whole number."""

    def check(value: Any, where: str) -> float | int:
        got = _show(value)
        if integer and not (_is_number(value) and value == int(value)):
            raise SpecError(f"{where} must be a whole number, got {got}", where, code="augment.not_whole",
                            value=value, got=got)
        if not _is_number(value):
            raise SpecError(f"{where} must be a number, got {got}", where, code="augment.not_a_number",
                            value=value, got=got)
        if above and not lo < value <= hi:
            raise SpecError(f"{where} must be greater than {lo:g} and at most {hi:g}, got {got}", where,
                            code="augment.not_above", value=value, got=got, low=f"{lo:g}", high=f"{hi:g}")
        if not lo <= value <= hi:
            raise SpecError(f"{where} must be between {lo:g} and {hi:g}, got {got}", where,
                            code="augment.out_of_range", value=value, got=got, low=f"{lo:g}", high=f"{hi:g}")
        return int(value) if integer else float(value)

    kind = "whole number " if integer else ""
    check.allowed = f"{lo:g} < x <= {hi:g}" if above else f"{kind}{lo:g}..{hi:g}"
    return check


def two(lo: float, hi: float, *, above: bool = False, ordered: bool = True) -> Check:
    """A list of two numbers in range; ordered=True wants a range [low, high] with low <= high."""
    each = number(lo, hi, above=above)

    def check(value: Any, where: str) -> list[float]:
        shape = "[low, high]" if ordered else "[x, y]"
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise SpecError(f"{where} must be a list of two numbers {shape}, got {_show(value)}", where,
                            code="augment.not_a_pair", value=value, shape=shape, got=_show(value))
        a, b = each(value[0], f"{where}[0]"), each(value[1], f"{where}[1]")
        if ordered and a > b:
            raise SpecError(f"{where} must be [low, high] with low ≤ high, got [{a:g}, {b:g}]", where,
                            code="augment.low_above_high", value=value, low=f"{a:g}", high=f"{b:g}")
        return [a, b]

    lowest = f"{lo:g} < lo" if above else f"{lo:g} <= lo"
    check.allowed = f"[lo, hi], {lowest} <= hi <= {hi:g}" if ordered else f"[x, y], each {each.allowed}"
    return check


_side = number(1, 4096, integer=True)


def output_size(value: Any, where: str) -> list[int] | None:
    """null (keep the input size), one int (square) or [h, w]; each side as `_side` allows."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return [_side(value[0], f"{where}[0]"), _side(value[1], f"{where}[1]")]
    if _is_number(value):
        n = _side(value, where)
        return [n, n]
    raise SpecError(f"{where} must be null, a whole number or [height, width], got {_show(value)}", where,
                    code="augment.bad_size", value=value, got=_show(value))


output_size.allowed = f"null, n (a square) or [h, w]; each {_side.allowed}"


# --- formatting helpers for captions and code ---

def _signed(x: float, digits: int = 1) -> str:
    """-12.43 -> '−12.4' (a real minus sign); never '−0.0'."""
    text = f"{x:.{digits}f}"
    if float(text) == 0:
        text = f"{0:.{digits}f}"
    return text.replace("-", "−")


def _tuple(values: list) -> str:
    return f"({values[0]!r}, {values[1]!r})"


def _uniform(lo: float, hi: float, g: torch.Generator | None) -> float:
    """torchvision's draw `torch.empty(1).uniform_(lo, hi)`, from generator g (None: global RNG)."""
    return float(torch.empty(1).uniform_(lo, hi, generator=g).item())


def _beta(alpha: float, g: torch.Generator | None) -> float:
    """What `torch.distributions.Beta(α, α).sample()` (v2.CutMix/MixUp) draws, from generator g."""
    return float(torch._sample_dirichlet(torch.tensor([[alpha, alpha]]), generator=g)[0, 0])


# --- the ops: one class each; OPS maps the spec's "op" names to them ---

class Op:
    """One spec entry: its checked `values`, the torchvision transform `t` that does the pixel work,
    `draw` (random parameters, as torchvision draws them) and `apply` (those parameters to an image)."""

    name: ClassVar[str]
    summary: ClassVar[str]  # what the op is, one line (describe_ops)
    fields: ClassVar[Fields]
    mixes: ClassVar[bool] = False  # CutMix / MixUp: works on batches, after the per-image ops

    def __init__(self, values: dict[str, Any], enabled: bool = True) -> None:
        self.values = values
        self.enabled = enabled
        self.t = self.build()

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {name: f.default for name, f in cls.fields.items()}

    def build(self) -> v2.Transform | None:
        raise NotImplementedError

    def draw(self, size: tuple[int, int], g: torch.Generator | None) -> dict[str, Any]:
        """JSON-able parameters for an image of size (h, w), under torchvision's names."""
        raise NotImplementedError

    def apply(self, img: Any, params: dict[str, Any]) -> Any:
        return self.t.transform(img, params)

    def caption(self, params: dict[str, Any]) -> str:
        """What `params` do, in words; '' when they leave the image unchanged."""
        raise NotImplementedError

    def code(self) -> str:
        """The torchvision.transforms.v2 expression that builds this op."""
        raise NotImplementedError


class ColorJitter(Op):
    name = "brightness"
    summary = "colour jitter, v2.ColorJitter (factors applied in a random order)"
    fields: ClassVar[Fields] = {
        "brightness": Field([0.8, 1.2], two(0, 10), "brightness factor range"),
        "contrast": Field([1.0, 1.0], two(0, 10), "contrast factor range"),
        "saturation": Field([1.0, 1.0], two(0, 10), "saturation factor range"),
        "hue": Field([0.0, 0.0], two(-0.5, 0.5), "hue shift range"),
    }
    FACTORS = ("brightness", "contrast", "saturation", "hue")  # v2.ColorJitter's fn_idx order

    def build(self):
        return v2.ColorJitter(**{k: tuple(self.values[k]) for k in self.FACTORS})

    def draw(self, size, g):
        params: dict[str, Any] = {"fn_idx": torch.randperm(4, generator=g).tolist()}
        for k in self.FACTORS:
            span = getattr(self.t, k)  # None when the range is the identity
            params[f"{k}_factor"] = None if span is None else _uniform(span[0], span[1], g)
        return params

    def caption(self, params):
        parts = []
        for i in params["fn_idx"]:
            k = self.FACTORS[i]
            f = params[f"{k}_factor"]
            if f is not None:
                parts.append(f"hue {_signed(f, 2)}" if k == "hue" else f"{k} ×{f:.2f}")
        return ", ".join(parts)

    def code(self):
        args = [f"{k}={_tuple(list(getattr(self.t, k)))}" for k in self.FACTORS if getattr(self.t, k) is not None]
        return f"v2.ColorJitter({', '.join(args)})"


class Rotation(Op):
    name = "rotation"
    summary = "v2.RandomRotation"
    fields: ClassVar[Fields] = {"degrees": Field(15.0, number(0, 180), "angle drawn from [-degrees, degrees]")}

    def build(self):
        return v2.RandomRotation(degrees=self.values["degrees"])

    def draw(self, size, g):
        return {"angle": _uniform(self.t.degrees[0], self.t.degrees[1], g)}

    def caption(self, params):
        return f"rotate {_signed(params['angle'])}°" if self.values["degrees"] else ""

    def code(self):
        return f"v2.RandomRotation(degrees={self.values['degrees']!r})"


class HFlip(Op):
    name = "hflip"
    summary = "v2.RandomHorizontalFlip"
    fields: ClassVar[Fields] = {"p": Field(0.5, number(0, 1), "probability of flipping")}
    v2_class: ClassVar[type] = v2.RandomHorizontalFlip

    def build(self):
        return self.v2_class(p=self.values["p"])

    def draw(self, size, g):
        return {"applied": bool(torch.rand(1, generator=g) < self.values["p"])}  # v2: flip unless rand >= p

    def apply(self, img, params):
        return self.t.transform(img, {}) if params["applied"] else img

    def caption(self, params):
        return self.name if params["applied"] else ""

    def code(self):
        return f"v2.{self.v2_class.__name__}(p={self.values['p']!r})"


class VFlip(HFlip):
    name = "vflip"
    summary = "v2.RandomVerticalFlip"
    v2_class = v2.RandomVerticalFlip


class Crop(Op):
    """v2.RandomResizedCrop, except that size null resizes back to each input's own size."""

    name = "crop"
    summary = "random crop resized back, as v2.RandomResizedCrop"
    fields: ClassVar[Fields] = {
        "scale": Field([0.5, 1.0], two(0, 1, above=True), "crop area / image area"),
        "ratio": Field([3 / 4, 4 / 3], two(0.1, 10), "crop width / height"),
        "size": Field(None, output_size, "output size; null keeps each image's own (training batches need one)"),
    }

    def build(self):
        return None  # the output size may be each input's; apply calls the v2 kernel itself

    def draw(self, size, g):  # v2.RandomResizedCrop.make_params, line for line
        height, width = size
        area = height * width
        log_ratio = torch.log(torch.tensor(self.values["ratio"]))
        for _ in range(10):
            target_area = area * _uniform(self.values["scale"][0], self.values["scale"][1], g)
            aspect_ratio = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=g)).item()
            w = round(math.sqrt(target_area * aspect_ratio))
            h = round(math.sqrt(target_area / aspect_ratio))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, size=(1,), generator=g))
                left = int(torch.randint(0, width - w + 1, size=(1,), generator=g))
                return {"top": top, "left": left, "height": h, "width": w}
        in_ratio, ratio = width / height, self.values["ratio"]  # fallback: centre crop
        if in_ratio < min(ratio):
            w, h = width, round(width / min(ratio))
        elif in_ratio > max(ratio):
            w, h = round(height * max(ratio)), height
        else:
            w, h = width, height
        return {"top": (height - h) // 2, "left": (width - w) // 2, "height": h, "width": w}

    def apply(self, img, params):
        out = self.values["size"] or F.get_size(img)
        return F.resized_crop(img, **params, size=list(out), interpolation=v2.InterpolationMode.BILINEAR,
                              antialias=True)

    def caption(self, params):
        text = f"crop (x={params['left']}, y={params['top']}, {params['width']}×{params['height']})"
        return text + (f" → {self.values['size'][1]}×{self.values['size'][0]}" if self.values["size"] else "")

    def code(self):
        size = _tuple(self.values["size"]) if self.values["size"] else "SIZE"
        return (f"v2.RandomResizedCrop(size={size}, scale={_tuple(self.values['scale'])}, "
                f"ratio={_tuple(self.values['ratio'])}, antialias=True)")


class Affine(Op):
    name = "affine"
    summary = "v2.RandomAffine"
    fields: ClassVar[Fields] = {
        "degrees": Field(0.0, number(0, 180), "rotation angle from [-degrees, degrees]"),
        "translate": Field([0.1, 0.1], two(0, 1, ordered=False), "largest shift as a fraction of [width, height]"),
        "scale": Field([0.9, 1.1], two(0, 10, above=True), "zoom factor range"),
        "shear": Field(0.0, number(0, 45), "x-shear angle from [-shear, shear] degrees"),
    }

    def build(self):
        v = self.values
        return v2.RandomAffine(degrees=v["degrees"], translate=tuple(v["translate"]), scale=tuple(v["scale"]),
                               shear=v["shear"])

    def draw(self, size, g):  # v2.RandomAffine.make_params, line for line
        height, width = size
        v = self.values
        angle = _uniform(self.t.degrees[0], self.t.degrees[1], g)
        max_dx, max_dy = float(v["translate"][0] * width), float(v["translate"][1] * height)
        tx, ty = round(_uniform(-max_dx, max_dx, g)), round(_uniform(-max_dy, max_dy, g))
        scale = _uniform(v["scale"][0], v["scale"][1], g)
        shear_x = _uniform(self.t.shear[0], self.t.shear[1], g)
        return {"angle": angle, "translate": [tx, ty], "scale": scale, "shear": [shear_x, 0.0]}

    def caption(self, params):
        v, parts = self.values, []
        if v["degrees"]:
            parts.append(f"rotate {_signed(params['angle'])}°")
        if any(v["translate"]):
            parts.append("shift ({}, {}) px".format(*(_signed(t, 0) for t in params["translate"])))
        if v["scale"][0] != v["scale"][1] or v["scale"][0] != 1:
            parts.append(f"scale ×{params['scale']:.2f}")
        if v["shear"]:
            parts.append(f"shear {_signed(params['shear'][0])}°")
        return "affine: " + ", ".join(parts) if parts else ""

    def code(self):
        v = self.values
        return (f"v2.RandomAffine(degrees={v['degrees']!r}, translate={_tuple(v['translate'])}, "
                f"scale={_tuple(v['scale'])}, shear={v['shear']!r})")


class RandAugment(Op):
    """v2.RandAugment; the choice of ops is redone here (from its own table) so it can be recorded."""

    name = "randaugment"
    summary = "v2.RandAugment (31 magnitude bins, as torchvision)"
    fields: ClassVar[Fields] = {
        "num_ops": Field(2, number(0, 14, integer=True), "ops applied per image (N)"),
        "magnitude": Field(9, number(0, 30, integer=True), "strength of every op (M)"),
    }

    def build(self):
        return v2.RandAugment(num_ops=self.values["num_ops"], magnitude=self.values["magnitude"])

    def draw(self, size, g):  # v2.RandAugment.forward's draws, line for line
        space = self.t._AUGMENTATION_SPACE
        names = tuple(space)
        chosen = []
        for _ in range(self.t.num_ops):
            op = names[int(torch.randint(len(names), (), generator=g))]
            magnitudes_fn, signed = space[op]
            magnitudes = magnitudes_fn(self.t.num_magnitude_bins, *size)
            magnitude = 0.0
            if magnitudes is not None:
                magnitude = float(magnitudes[self.t.magnitude])
                if signed and torch.rand((), generator=g) <= 0.5:
                    magnitude *= -1
            chosen.append({"op": op, "magnitude": magnitude})
        return {"chosen": chosen}

    def apply(self, img, params):
        for c in params["chosen"]:
            img = self.t._apply_image_or_video_transform(img, c["op"], c["magnitude"],
                                                        interpolation=self.t.interpolation, fill=self.t._fill)
        return img

    @staticmethod
    def describe(op: str, m: float) -> str:
        """One RandAugment op as it acts: 'Rotate(−14.2°)', 'Contrast(×0.73)', 'Posterize(6)'."""
        if op in ("Identity", "AutoContrast", "Equalize"):
            return op
        if op == "Rotate":
            return f"Rotate({_signed(m)}°)"
        if op.startswith("Translate"):
            return f"{op}({_signed(int(m), 0)} px)"
        if op in ("Brightness", "Color", "Contrast", "Sharpness"):
            return f"{op}(×{1 + m:.2f})"
        if op == "Posterize":
            return f"Posterize({int(m)})"
        return f"{op}({_signed(m, 2)})"  # ShearX/ShearY: tan of the angle; Solarize: threshold / max

    def caption(self, params):
        if not params["chosen"]:
            return ""
        return "RandAugment: " + ", ".join(self.describe(c["op"], c["magnitude"]) for c in params["chosen"])

    def code(self):
        return f"v2.RandAugment(num_ops={self.values['num_ops']}, magnitude={self.values['magnitude']})"


class CutMix(Op):
    """v2.CutMix. Weights: first image 1 - box area / image area, second image box area / image area. The box is
    drawn for the area 1 - lam (lam from Beta), centred anywhere, then clipped at the border: "lam" is the draw,
    "lam_adjusted" (what the labels get) the first image's share after clipping, never below lam."""

    name = "cutmix"
    summary = "v2.CutMix: paste a box of the second image (a batch op: last)"
    fields: ClassVar[Fields] = {
        "alpha": Field(1.0, number(0, 10, above=True), "Beta(alpha, alpha) draws the kept area"),
    }
    mixes = True

    def build(self):
        return v2.CutMix(alpha=self.values["alpha"])  # labels come one-hot, so no num_classes

    def draw(self, size, g):  # v2.CutMix.make_params, line for line
        H, W = size
        lam = _beta(self.values["alpha"], g)
        r_x = int(torch.randint(W, size=(1,), generator=g))
        r_y = int(torch.randint(H, size=(1,), generator=g))
        r = 0.5 * math.sqrt(1.0 - lam)
        r_w_half, r_h_half = int(r * W), int(r * H)
        x1, y1 = max(r_x - r_w_half, 0), max(r_y - r_h_half, 0)
        x2, y2 = min(r_x + r_w_half, W), min(r_y + r_h_half, H)
        return {"box": [x1, y1, x2, y2], "lam_adjusted": float(1.0 - (x2 - x1) * (y2 - y1) / (W * H)), "lam": lam}

    def weights(self, params, size) -> tuple[float, float]:
        x1, y1, x2, y2 = params["box"]
        return params["lam_adjusted"], (x2 - x1) * (y2 - y1) / (size[0] * size[1])

    def caption(self, params):
        x1, y1, x2, y2 = params["box"]
        return f"CutMix box (x={x1}, y={y1}, {x2 - x1}×{y2 - y1})"

    def code(self):
        return f"v2.CutMix(alpha={self.values['alpha']!r}, num_classes=NUM_CLASSES)"


class MixUp(Op):
    """v2.MixUp: lam * first image + (1 - lam) * second image."""

    name = "mixup"
    summary = "v2.MixUp: blend the two images (a batch op: last)"
    fields: ClassVar[Fields] = {
        "alpha": Field(1.0, number(0, 10, above=True), "Beta(alpha, alpha) draws the blend weight"),
    }
    mixes = True

    def build(self):
        return v2.MixUp(alpha=self.values["alpha"])

    def draw(self, size, g):
        return {"lam": _beta(self.values["alpha"], g)}

    def weights(self, params, size) -> tuple[float, float]:
        return params["lam"], 1.0 - params["lam"]

    def caption(self, params):
        return f"MixUp λ={params['lam']:.2f}"

    def code(self):
        return f"v2.MixUp(alpha={self.values['alpha']!r}, num_classes=NUM_CLASSES)"


OPS: dict[str, type[Op]] = {cls.name: cls for cls in (ColorJitter, Rotation, HFlip, VFlip, Crop, Affine,
                                                         RandAugment, CutMix, MixUp)}

PRESETS: dict[str, dict] = {
    "light": {"ops": [
        {"op": "crop", "scale": [0.7, 1.0], "ratio": [0.75, 4 / 3]},
        {"op": "hflip", "p": 0.5},
        {"op": "brightness", "brightness": [0.8, 1.2], "contrast": [0.8, 1.2]},
    ]},
    "strong": {"ops": [
        {"op": "crop", "scale": [0.3, 1.0], "ratio": [0.75, 4 / 3]},
        {"op": "hflip", "p": 0.5},
        {"op": "rotation", "degrees": 20},
        {"op": "affine", "translate": [0.1, 0.1], "scale": [0.9, 1.1], "shear": 10},
        {"op": "brightness", "brightness": [0.6, 1.4], "contrast": [0.6, 1.4], "saturation": [0.6, 1.4]},
        {"op": "cutmix", "alpha": 1.0},
        {"op": "mixup", "alpha": 0.4},
    ]},
    "randaugment": {"ops": [
        {"op": "crop", "scale": [0.5, 1.0], "ratio": [0.75, 4 / 3]},
        {"op": "hflip", "p": 0.5},
        {"op": "randaugment", "num_ops": 2, "magnitude": 9},
    ]},
}


def describe_ops() -> str:
    """Every op a spec may use, with each field's default, allowed values and meaning: a plain-text table
    rendered from `OPS` (what `build_pipeline` checks with). `python -m cvdemo.augment` prints it."""
    head = ("op / field", "default", "allowed values", "meaning")
    ops = {cls: [(f"  {name}", _plain(f.default), f.check.allowed, f.meaning) for name, f in cls.fields.items()]
           for cls in OPS.values()}
    widths = [max(len(row[i]) for row in [head, *sum(ops.values(), [])]) for i in range(3)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + "  " + cells[3]

    lines = [line(head)]
    for cls, rows in ops.items():
        lines += [f"{cls.name.ljust(widths[0])}  {cls.summary}", *map(line, rows)]
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> str:
    """A default as a spec writes it: null, 15, 0.5, [0.75, 1.33333]."""
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return f"{value:g}"


# --- the one door ---

def build_pipeline(spec: dict | str) -> Pipeline:
    """Check a spec (a dict or a JSON string, format in the module docstring) and build its Pipeline.
    Raises SpecError naming the field for anything wrong."""
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except (ValueError, RecursionError) as err:  # JSONDecodeError, a 5000-digit number, [[[[...]]]]
            raise SpecError(f"spec is not valid JSON: {err}", "spec", code="augment.bad_json",
                            reason=str(err)) from None
    if not isinstance(spec, dict):
        raise SpecError(f'spec must be an object like {{"ops": [...]}}, got {type(spec).__name__}', "spec",
                        code="augment.spec_not_object", type=type(spec).__name__)
    for key in spec:
        if key != "ops":
            field = f"spec.{str(key)[:60]}"
            raise SpecError(f"{field} is not a known field (the spec has only \"ops\")", field,
                            code="augment.unknown_spec_field")
    ops = spec.get("ops")
    if not isinstance(ops, list):
        what = "missing" if "ops" not in spec else _show(ops)
        raise SpecError(f"ops must be a list of op objects, got {what}", "ops", code="augment.ops_not_list", got=what)
    if len(ops) > MAX_OPS:
        raise SpecError(f"ops has {len(ops)} entries; at most {MAX_OPS} are allowed", "ops",
                        code="augment.too_many_ops", count=len(ops), limit=MAX_OPS)
    built = [_build_op(entry, f"ops[{i}]") for i, entry in enumerate(ops)]
    _check_mix_order(built)
    return Pipeline(built)


def _build_op(entry: Any, where: str) -> Op:
    known = ", ".join(OPS)
    if not isinstance(entry, dict):
        raise SpecError(f'{where} must be an object like {{"op": "hflip"}}, got {_show(entry)}', where,
                        code="augment.op_not_object", got=_show(entry))
    name = entry.get("op")
    if not isinstance(name, str) or name not in OPS:
        got = "missing" if "op" not in entry else _show(name)
        raise SpecError(f"{where}.op must be one of {known}; got {got}", f"{where}.op", code="augment.unknown_op",
                        value=name, got=got, known=known)
    cls = OPS[name]
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise SpecError(f"{where}.enabled must be true or false, got {_show(enabled)}", f"{where}.enabled",
                        code="augment.bad_enabled", got=_show(enabled))
    for key in entry:
        if key not in cls.fields and key not in ("op", "enabled"):
            allowed = ", ".join([*cls.fields, "enabled"])
            field = f"{where}.{str(key)[:60]}"
            raise SpecError(f"{field} is not a field of {name!r} (its fields: {allowed})", field,
                            code="augment.unknown_field", op=name, allowed=allowed)
    values = {k: f.check(entry[k], f"{where}.{k}") if k in entry else f.default for k, f in cls.fields.items()}
    try:
        return cls(values, enabled)
    except (ValueError, TypeError) as err:  # torchvision's own checks; ours should catch everything first
        raise SpecError(f"{where} ({name}) can't be built: {err}", where, code="augment.build_failed", op=name,
                        reason=str(err)) from None


def _check_mix_order(ops: list[Op]) -> None:
    seen: dict[str, int] = {}
    for i, op in enumerate(ops):
        if op.mixes and op.name in seen:
            raise SpecError(f"ops[{i}]: only one {op.name} op is allowed (another at ops[{seen[op.name]}])",
                            f"ops[{i}]", code="augment.duplicate_mix", op=op.name, other=f"ops[{seen[op.name]}]")
        if not op.mixes and seen:
            first = min(seen.values())
            raise SpecError(f"ops[{i}] ({op.name}) comes after {ops[first].name} at ops[{first}]; cutmix and "
                            "mixup mix whole batches after the per-image ops, so put them last", f"ops[{i}]",
                            code="augment.mix_not_last", op=op.name, mixer=ops[first].name, other=f"ops[{first}]")
        if op.mixes:
            seen[op.name] = i


@dataclass(frozen=True)
class Sample:
    """One augmented image and what was drawn for it."""

    image: Image.Image  # RGB
    caption: str
    params: dict  # JSON-able: {"seed", "sample", "ops": [...], and with mixing "mix_with_ops", "mix"}
    mix: list[tuple[str, float]] | None  # [(label, weight), (label, weight)] when CutMix/MixUp mixed


class Pipeline:
    """A checked augmentation spec, runnable as a per-image transform and as a batch mixer.
    Build it with `build_pipeline`; pickles (for DataLoader workers)."""

    def __init__(self, ops: list[Op]) -> None:
        self.ops = tuple(ops)
        self._image_ops = [(i, op) for i, op in enumerate(ops) if op.enabled and not op.mixes]
        self._mixers = [op for op in ops if op.enabled and op.mixes]

    # --- the spec ---
    @property
    def spec(self) -> dict:
        """The canonical spec: every field filled in (defaults included), disabled ops kept."""
        return {"ops": [{"op": op.name, **json.loads(json.dumps(op.values)), "enabled": op.enabled}
                        for op in self.ops]}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.spec, indent=indent, ensure_ascii=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pipeline) and self.spec == other.spec

    def __repr__(self) -> str:
        return f"build_pipeline({self.to_json()})"

    def capped(self, side: int) -> Pipeline:
        """This pipeline with each crop's output at most `side` pixels on its longer side (aspect kept), drawing the
        same crops: for a model that shrinks its input to about `side` anyway (training, the preview), the same
        augmentation at a bounded cost (a spec's 4096 px crop would make 50 MB images)."""
        ops = copy.deepcopy(list(self.ops))
        for op in ops:
            if isinstance(op, Crop) and op.values["size"] and max(op.values["size"]) > side:
                h, w = op.values["size"]
                op.values["size"] = [max(1, round(h * side / max(h, w))), max(1, round(w * side / max(h, w)))]
        return Pipeline(ops)

    @property
    def mixes(self) -> bool:
        """Whether CutMix or MixUp is enabled (then `sample` wants `mix_with`, training `mix_batch`)."""
        return bool(self._mixers)

    def to_code(self) -> str:
        """A runnable torchvision.transforms.v2 snippet: `transform` (per image) and, with CutMix/MixUp,
        `mix` (per batch). SIZE / NUM_CLASSES are placeholders to set where the spec can't know them."""
        lines = ["from torchvision.transforms import v2", ""]
        image_ops = [op for _, op in self._image_ops]
        if any(isinstance(op, Crop) and not op.values["size"] for op in image_ops):
            lines += ["SIZE = (224, 224)  # crop output (h, w); the preview resizes back to each image's size"]
        if image_ops:
            lines += ["transform = v2.Compose(["] + [f"    {op.code()}," for op in image_ops] + ["])"]
        else:
            lines += ["transform = v2.Identity()"]
        if self._mixers:
            codes = [op.code() for op in self._mixers]
            mix = codes[0] if len(codes) == 1 else f"v2.RandomChoice([{', '.join(codes)}])"
            lines += ["", "NUM_CLASSES = 1000  # the number of classes in your dataset", f"mix = {mix}",
                      "# per batch (float images): images, soft_labels = mix(images, labels)"]
        return "\n".join(lines) + "\n"

    # --- running ---
    def __call__(self, img: Any, generator: torch.Generator | None = None) -> Any:
        """Augment one image (PIL image or uint8 tensor (C, H, W); the same type comes back) with the
        per-image ops; CutMix/MixUp are batch ops, see `mix_batch`. Draws from `generator` if given,
        else from torch's global RNG (as any v2 transform does)."""
        return self._run(img, generator)[0]

    def _run(self, img: Any, g: torch.Generator | None) -> tuple[Any, list[tuple[int, Op, dict]]]:
        drawn = []
        for i, op in self._image_ops:
            params = op.draw(tuple(F.get_size(img)), g)
            img = op.apply(img, params)
            drawn.append((i, op, params))
        return img, drawn

    def _pick_mixer(self, g: torch.Generator | None) -> Op | None:
        """The mixer for this batch: the only one enabled, or CutMix/MixUp 50:50 (as timm switches)."""
        if len(self._mixers) < 2:
            return self._mixers[0] if self._mixers else None
        return self._mixers[int(torch.randint(2, (1,), generator=g))]

    @staticmethod
    def _mix(op: Op, batch: torch.Tensor, soft: torch.Tensor, params: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """v2.CutMix/MixUp's own transform: sample i mixed with sample i-1, with float one-hot labels."""
        full = {"labels": soft, "batch_size": soft.shape[0], **params}
        return op.t.transform(batch, full), op.t.transform(soft, full)

    def mix_batch(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """CutMix or MixUp (one picked at random per batch when both are enabled) on a batch of
        already augmented images (N, C, H, W). Returns (images, soft_labels (N, num_classes) float32,
        each row summing to 1); images keep their dtype (integer ones are rounded after MixUp).
        Without CutMix/MixUp: the images unchanged and one-hot labels."""
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise ValueError(f"images must be a tensor (N, C, H, W), got {getattr(images, 'shape', images)!r}")
        if not isinstance(labels, torch.Tensor) or labels.shape != images.shape[:1] or labels.is_floating_point():
            raise ValueError(f"labels must be an integer tensor of shape ({images.shape[0]},), "
                             f"got {getattr(labels, 'shape', labels)!r}")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a whole number >= 1, got {num_classes!r}")
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes:
            raise ValueError(f"labels must be class indices in 0..{num_classes - 1}, got {labels.tolist()}")
        soft = torch.nn.functional.one_hot(labels.long(), num_classes).float()
        op = self._pick_mixer(generator)
        if op is None or len(labels) == 0:
            return images, soft
        batch = images if images.is_floating_point() else images.float()
        mixed, soft = self._mix(op, batch, soft, op.draw(tuple(images.shape[-2:]), generator))
        if not images.is_floating_point():
            info = torch.iinfo(images.dtype)
            mixed = mixed.round_().clamp_(info.min, info.max).to(images.dtype)
        return mixed, soft

    # --- the playground ---
    def sample(self, image: Any, k: int = 4, seed: int = 0, mix_with: Any = None,
               labels: tuple[str, str] | None = None) -> list[Sample]:
        """k augmented versions of `image` (anything `cvdemo.images.load_image` takes), reproducible:
        the same image, spec and seed give pixel-equal images and the same captions, in any thread,
        without touching torch's global RNG. With CutMix/MixUp enabled and `mix_with` (a second image,
        resized to the first's size) each sample is the mix of the two, each augmented on its own, and
        `Sample.mix` holds (label, weight) for `labels` (default "image 1", "image 2")."""
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_SAMPLES:
            raise LimitError(f"k must be a whole number from 1 to {MAX_SAMPLES}, got {k!r}", code="limit.samples",
                             value=k, limit=MAX_SAMPLES)
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
            raise LimitError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}", code="limit.seed",
                             value=seed)
        names = ("image 1", "image 2") if labels is None else tuple(labels)
        if len(names) != 2 or not all(isinstance(n, str) for n in names):
            raise LimitError(f"labels must be two strings, got {labels!r}", code="augment.bad_labels")
        first = load_image(image)
        second = None
        if self._mixers and mix_with is not None:
            second = load_image(mix_with)
            if second.size != first.size:
                second = second.resize(first.size, Image.Resampling.BICUBIC)
        g = torch.Generator().manual_seed(seed)
        return [self._sample_one(first, second, names, g, {"seed": seed, "sample": n}) for n in range(k)]

    def _sample_one(self, first: Image.Image, second: Image.Image | None, names: tuple[str, str],
                    g: torch.Generator, params: dict) -> Sample:
        img, drawn = self._run(first, g)
        params["ops"] = _records(drawn)
        caption = _caption(drawn)
        if second is None:
            if self._mixers:
                caption += " · (" + "/".join(op.name for op in self._mixers) + " needs a second image)"
            return Sample(img, caption, params, None)
        img2, drawn2 = self._run(second, g)
        op = self._pick_mixer(g)
        size = tuple(F.get_size(img))
        mix_params = op.draw(size, g)
        batch = torch.stack([F.pil_to_tensor(img), F.pil_to_tensor(img2)]).float()
        mixed, _ = self._mix(op, batch, torch.eye(2), mix_params)
        weights = op.weights(mix_params, size)
        mix = [(names[0], weights[0]), (names[1], weights[1])]
        params["mix_with_ops"] = _records(drawn2)
        params["mix"] = {"op": op.name, **mix_params, "weights": [list(m) for m in mix]}
        caption = (f"{names[0]}: {_caption(drawn)} | {names[1]}: {_caption(drawn2)} | {op.caption(mix_params)}: "
                   f"{names[0]} {weights[0]:.2f} + {names[1]} {weights[1]:.2f}")
        out = F.to_pil_image(mixed[0].round().clamp(0, 255).to(torch.uint8))
        return Sample(out, caption, params, mix)


def _records(drawn: list[tuple[int, Op, dict]]) -> list[dict]:
    return [{"op": op.name, "index": i, **params} for i, op, params in drawn]


def _caption(drawn: list[tuple[int, Op, dict]]) -> str:
    return " · ".join(filter(None, (op.caption(params) for _, op, params in drawn))) or "unchanged"


# --- what a classifier makes of the samples -----------------------------------------------------------

def short_label(label: str) -> str:
    """An ImageNet class's first name: 'tabby, tabby cat' -> 'tabby'."""
    return label.split(",")[0]


def robustness(pipeline: Pipeline, image: Any, classifier: Any, *, k: int = 8, seed: int = 0,
               mix_with: Any = None) -> dict:
    """Draw `k` samples of `image` with `pipeline` (`Pipeline.sample`) and classify each with `classifier` (a
    `cvdemo.inference.Classifier`): how much of its answer survives the augmentation. Returns "original" ((top-1
    label, probability) on `image` itself), "samples", "top1" ((label, probability) per sample), "kept" (the
    samples whose top-1 is the original's) and "mean" (the original top-1 class's mean probability over the
    samples). With `mix_with` (a second image; the pipeline mixes when it has CutMix/MixUp) the mixing captions
    name the two images by their top-1's first name."""
    first_probs = classifier.probabilities([load_image(image)])[0]
    original = classifier.top_k(first_probs, 1)[0]
    names = None
    if mix_with is not None:
        second = classifier.top_k(classifier.probabilities([load_image(mix_with)])[0], 1)[0][0]
        names = (short_label(original[0]), short_label(second))
    samples = pipeline.sample(image, k=k, seed=seed, mix_with=mix_with, labels=names)
    probs = classifier.probabilities([s.image for s in samples])
    top1 = [classifier.top_k(p, 1)[0] for p in probs]
    return {"original": original, "samples": samples, "top1": top1,
            "kept": sum(label == original[0] for label, _ in top1),
            "mean": float(probs[:, int(first_probs.argmax())].mean())}


def mix_up_close(image: Any, mix_with: Any, classifier: Any, op: str = "cutmix", alpha: float = 1.0, *, k: int = 4,
                 seed: int = 0) -> dict:
    """CutMix or MixUp of two images, up close: `k` mixes (`Pipeline.sample` with that op alone, seeded), each with
    its drawn lam and, for CutMix, lam after the box was clipped at the border (the target's true weight), its
    box outlined, the target ("0.82 tabby + 0.18 espresso": the two images named by `classifier`'s top-1 on each)
    and the classifier's probabilities for those two classes on the mixed image. Returns {"names", "classes"
    (their indices), "samples": [{"image", "lam_drawn", "lam", "box" (None for MixUp), "target" [(name, weight)] x2,
    "probs" [p(first), p(second)]}]}."""
    if op not in ("cutmix", "mixup"):
        raise LimitError(f"op must be 'cutmix' or 'mixup', got {op!r}", code="limit.mix_op", value=op)
    first, second = load_image(image), load_image(mix_with)
    tops = [int(classifier.probabilities([im])[0].argmax()) for im in (first, second)]
    names = tuple(short_label(classifier.labels[i]) for i in tops)
    samples = build_pipeline({"ops": [{"op": op, "alpha": alpha}]}).sample(first, k=k, seed=seed, mix_with=second,
                                                                          labels=names)
    probs = classifier.probabilities([s.image for s in samples])
    out = []
    for sample, p in zip(samples, probs):
        mix, picture = sample.params["mix"], sample.image.copy()
        box = mix.get("box")
        if box is not None:
            x1, y1, x2, y2 = box
            ImageDraw.Draw(picture).rectangle((x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)), outline=(255, 0, 0),
                                              width=max(2, picture.width // 150))
        out.append({"image": picture, "lam_drawn": mix["lam"], "lam": mix.get("lam_adjusted", mix["lam"]), "box": box,
                    "target": [tuple(w) for w in mix["weights"]], "probs": [float(p[tops[0]]), float(p[tops[1]])]})
    return {"names": names, "classes": tops, "samples": out}


def main(argv: list[str] | None = None) -> int:
    """`python -m cvdemo.augment`: print `describe_ops()`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m cvdemo.augment",
                                     description="The ops of an augmentation spec (see cvdemo.augment) with each "
                                                 "field's default, allowed values and meaning.")
    parser.parse_args(argv)
    print(describe_ops(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
