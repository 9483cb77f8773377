"""Augment tab: build a pipeline, draw K reproducible samples with captions, see what the
classifier makes of each, export the pipeline as JSON and as torchvision code."""
from __future__ import annotations

import json

import gradio as gr

from .. import images
from ..augment import OPS, PRESETS, build_pipeline
from ..errors import LimitError
from ..inference import get_classifier
from ..probe import bias_experiment
from .classify import require
from .common import RawImage, example_images, user_errors

MAX_SAMPLES = 16
PREVIEW_SIDE = 768  # images are shrunk to this longest side before augmenting (speed, memory)


def short(label: str) -> str:
    """'tabby, tabby cat' -> 'tabby'."""
    return label.split(",")[0]


@user_errors
def augment(image, spec: str, k: int = 8, seed: int = 0, mix_image=None):
    """K samples of the pipeline `spec` (JSON) drawn with `seed`, each captioned with what was drawn
    and the classifier's top-1; returns the gallery and a per-sample list (for the API)."""
    if not isinstance(k, (int, float)) or not 1 <= int(k) <= MAX_SAMPLES:
        raise LimitError(f"Number of samples must be from 1 to {MAX_SAMPLES}, got {k!r}", code="limit.samples")
    if not isinstance(seed, (int, float)) or not 0 <= int(seed) < 2**31:
        raise LimitError(f"Seed must be a whole number from 0 to {2**31 - 1}, got {seed!r}", code="limit.seed")
    pipeline = build_pipeline(spec)
    original = images.load_image(require(image))
    original.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    classifier = get_classifier()
    first = classifier.top_k(classifier.probabilities([original])[0], 1)[0]
    mix_labels, second = None, None
    if mix_image is not None or pipeline.mixes:
        second = images.load_image(mix_image if mix_image is not None else example_images()[1])
        second.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
        mix_labels = (short(first[0]), short(classifier.top_k(classifier.probabilities([second])[0], 1)[0][0]))
    samples = pipeline.sample(original, k=int(k), seed=int(seed), mix_with=second, labels=mix_labels)
    probs = classifier.probabilities([s.image for s in samples])
    gallery, rows, kept = [], [], 0
    for sample, p in zip(samples, probs):
        label, conf = classifier.top_k(p, 1)[0]
        kept += label == first[0]
        gallery.append((sample.image, f"{sample.caption or 'unchanged'} → top-1: {short(label)} {conf:.0%}"))
        rows.append({"caption": sample.caption, "mix": sample.mix, "top1": label, "confidence": round(conf, 4)})
    summary = (f"Original image: **{short(first[0])}** ({first[1]:.0%}). The top-1 stayed **{short(first[0])}** "
               f"in **{kept} of {len(samples)}** samples.")
    return gallery, rows, summary


def run_bias_experiment(seed: int = 0):
    """Train a linear probe on normally lit faces with and without brightness augmentation; test on dark ones."""
    r = bias_experiment(seed=int(seed or 0))
    plain, aug = r["without_augmentation"], r["with_augmentation"]
    return (f"Faces vs non-faces ({r['train']} training, {r['val']} validation images; validation darkened to "
            f"×{r['dark_factor']} brightness), linear probe on EfficientNet-Lite0 features:\n\n"
            f"| trained on | normal validation | dark validation |\n|---|---|---|\n"
            f"| normal images only | {plain['normal']:.0%} | **{plain['dark']:.0%}** |\n"
            f"| + brightness augmentation | {aug['normal']:.0%} | **{aug['dark']:.0%}** |\n\n"
            f"Augmentation spec: `{json.dumps(r['spec']['ops'][0])}` · {r['seconds']:.0f} s")


@user_errors
def export(spec: str):
    """The spec back as formatted JSON, and the torchvision.transforms.v2 code it stands for."""
    pipeline = build_pipeline(spec)
    return pipeline.to_json(indent=2), pipeline.to_code()


def spec_from_controls(order, b_lo, b_hi, c_lo, c_hi, degrees, p_h, p_v, s_lo, s_hi, translate, z_lo, z_hi,
                       shear, n, m, cut_alpha, mix_alpha) -> str:
    """The controls as a spec: per-image ops in the order chosen, then CutMix/MixUp (batch ops come last)."""
    params = {
        "brightness": {"brightness": [b_lo, b_hi], "contrast": [c_lo, c_hi]},
        "rotation": {"degrees": degrees},
        "hflip": {"p": p_h},
        "vflip": {"p": p_v},
        "crop": {"scale": [s_lo, s_hi]},
        "affine": {"translate": [translate, translate], "scale": [z_lo, z_hi], "shear": shear},
        "randaugment": {"num_ops": int(n), "magnitude": int(m)},
        "cutmix": {"alpha": cut_alpha},
        "mixup": {"alpha": mix_alpha},
    }
    order = sorted(order or [], key=lambda op: op in ("cutmix", "mixup"))  # stable: keeps the chosen order
    return json.dumps({"ops": [{"op": op, **params[op]} for op in order]}, indent=2)


def build(workspace: gr.State, lesson: gr.Markdown) -> gr.Code:
    """The tab; returns the pipeline JSON (the Transfer tab trains with it)."""
    gr.Markdown("Build a pipeline with the controls (or edit its JSON), then draw samples. The same seed "
                "always gives the same samples; each caption says what was drawn and what the classifier saw.")
    with gr.Row():
        with gr.Column(scale=1):
            image = RawImage(label="Image", type="filepath", sources=["upload", "webcam", "clipboard"],
                             value=example_images()[0], height=240)
            mix_image = RawImage(label="Second image (CutMix / MixUp; default: the coffee photo)",
                                 type="filepath", sources=["upload", "clipboard"], height=160)
            order = gr.Dropdown(list(OPS), value=["crop", "hflip", "brightness"], multiselect=True,
                                label="Ops, in the order applied", info="Pick ops in the order you want them.")
            with gr.Accordion("Parameters", open=False):
                with gr.Row():
                    b_lo = gr.Slider(0, 3, 0.6, step=0.05, label="brightness from")
                    b_hi = gr.Slider(0, 3, 1.4, step=0.05, label="brightness to")
                with gr.Row():
                    c_lo = gr.Slider(0, 3, 0.8, step=0.05, label="contrast from")
                    c_hi = gr.Slider(0, 3, 1.2, step=0.05, label="contrast to")
                with gr.Row():
                    degrees = gr.Slider(0, 180, 30, step=1, label="rotation ± degrees")
                    p_h = gr.Slider(0, 1, 0.5, step=0.05, label="hflip p")
                    p_v = gr.Slider(0, 1, 0.5, step=0.05, label="vflip p")
                with gr.Row():
                    s_lo = gr.Slider(0.05, 1, 0.4, step=0.05, label="crop area from")
                    s_hi = gr.Slider(0.05, 1, 1.0, step=0.05, label="crop area to")
                with gr.Row():
                    translate = gr.Slider(0, 0.5, 0.1, step=0.01, label="affine translate")
                    z_lo = gr.Slider(0.5, 2, 0.9, step=0.05, label="affine scale from")
                    z_hi = gr.Slider(0.5, 2, 1.1, step=0.05, label="affine scale to")
                    shear = gr.Slider(0, 45, 10, step=1, label="affine shear °")
                with gr.Row():
                    n = gr.Slider(0, 14, 2, step=1, label="RandAugment N (ops)")
                    m = gr.Slider(0, 30, 9, step=1, label="RandAugment M (magnitude)")
                with gr.Row():
                    cut_alpha = gr.Slider(0.1, 5, 1.0, step=0.1, label="CutMix alpha")
                    mix_alpha = gr.Slider(0.1, 5, 0.4, step=0.1, label="MixUp alpha")
            preset = gr.Dropdown(list(PRESETS), value=None, label="Or start from a preset")
            spec = gr.Code(spec_from_controls(["crop", "hflip", "brightness"], 0.6, 1.4, 0.8, 1.2, 30, 0.5, 0.5,
                                              0.4, 1.0, 0.1, 0.9, 1.1, 10, 2, 9, 1.0, 0.4),
                           language="json", label="Pipeline (JSON): what the samples and training use")
            with gr.Row():
                k = gr.Slider(1, MAX_SAMPLES, 8, step=1, label="Samples (K)")
                seed = gr.Number(0, precision=0, minimum=0, label="Seed")
            with gr.Row():
                draw = gr.Button("Draw samples", variant="primary")
                resample = gr.Button("Resample (next seed)")
        with gr.Column(scale=2):
            summary = gr.Markdown()
            gallery = gr.Gallery(label="Samples", columns=4, height="auto", object_fit="contain")
            per_sample = gr.JSON(label="Per sample", visible=False)
            with gr.Accordion("Export", open=False):
                json_out = gr.Code(language="json", label="JSON (loads back with cvdemo.augment.build_pipeline)")
                code_out = gr.Code(language="python", label="torchvision.transforms.v2")
    with gr.Accordion("Does augmentation fight bias? (experiment, ~20 s)", open=False):
        gr.Markdown("A model trained only on well-lit photos fails on dark ones. Here a linear probe on the "
                    "offline backbone learns faces vs non-faces from normally lit images, without and with "
                    "brightness augmentation, and is tested on darkened images.")
        bias_seed = gr.Number(0, precision=0, minimum=0, label="Seed")
        bias_run = gr.Button("Run the experiment")
        bias_out = gr.Markdown()
    bias_run.click(user_errors(run_bias_experiment), bias_seed, bias_out, api_name="bias_experiment",
                   concurrency_id="training", concurrency_limit=1)
    controls = [order, b_lo, b_hi, c_lo, c_hi, degrees, p_h, p_v, s_lo, s_hi, translate, z_lo, z_hi,
                shear, n, m, cut_alpha, mix_alpha]
    for control in controls:
        control.change(spec_from_controls, controls, spec, api_visibility="private", queue=False)
    preset.select(lambda name: json.dumps(PRESETS[name], indent=2), preset, spec, api_visibility="private", queue=False)
    inputs = [image, spec, k, seed, mix_image]
    draw.click(augment, inputs, [gallery, per_sample, summary], api_name="augment", concurrency_id="inference"
               ).success(export, spec, [json_out, code_out], api_visibility="private")
    resample.click(lambda s: int(s or 0) + 1, seed, seed, api_visibility="private", queue=False).then(
        augment, inputs, [gallery, per_sample, summary], api_visibility="private", concurrency_id="inference")
    return spec
