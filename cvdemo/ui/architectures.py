"""Architectures tab: the CNN lessons, each claim shown by a live, measured experiment (cvdemo.lessons):
FC vs CNN under shifts, AlexNet / VGG layer tables with latency, the 3x3 lesson, feature maps, and a
small classic trained from scratch."""
from __future__ import annotations

import functools
import os
import platform
import threading
from collections import OrderedDict

import gradio as gr
import pandas as pd
import torch

from .. import lessons
from ..errors import LimitError
from ..models import DEFAULT_MODEL, create_model
from ..train import StopFlag, one_thread
from .classify import require
from .common import RawImage, example_images, user_errors
from .transfer import MAX_TRAIN_SECONDS

MAX_CACHED = 2      # built models kept for the layer table (VGG19 alone is 570 MB)
LATENCY_RUNS = 3    # timed forward passes (after one warm-up) per latency figure
TABLE_MODELS = [("AlexNet (2012)", "alexnet"), ("AlexNet + LRN (as the paper)", "alexnet+lrn"),
                ("AlexNet + BatchNorm", "alexnet+bn"),
                *[(f"VGG{d}{' + BatchNorm' if bn else ''}", f"vgg{d}{'_bn' if bn else ''}")
                  for d in (11, 13, 16, 19) for bn in (False, True)],
                ("ResNet-18 (timm, no weights)", "resnet18"), ("EfficientNet-Lite0 (timm, no weights)", DEFAULT_MODEL)]
CLASSICS = [("AlexNet small", "alexnet_small"), ("AlexNet small + LRN", "alexnet_small+lrn"),
            ("AlexNet small + BatchNorm", "alexnet_small+bn"), ("VGG11 small", "vgg11_small"),
            ("VGG11 small + BatchNorm", "vgg11_small+bn"), ("VGG16 small + BatchNorm", "vgg16_small+bn")]
_models: OrderedDict[str, torch.nn.Module] = OrderedDict()
_models_lock = threading.Lock()  # one build / table / timing at a time (hooks go on the cached model)


def _split(key: str, allowed: list[tuple[str, str]]) -> tuple[str, dict]:
    """'alexnet+lrn' -> ('alexnet', {'lrn': True}); refuses keys that aren't offered."""
    if key not in {v for _, v in allowed}:
        raise LimitError(f"Unknown model '{key}'; choose one of {', '.join(v for _, v in allowed)}.", code="limit.model")
    name, _, extra = key.partition("+")
    return name, {"lrn": {"lrn": True}, "bn": {"batchnorm": True}}.get(extra, {})


def _cached(key: str) -> torch.nn.Module:
    if key not in _models:
        while len(_models) >= MAX_CACHED:
            _models.popitem(last=False)  # drop the oldest before building the next one
        name, kwargs = _split(key, TABLE_MODELS)
        _models[key] = create_model(name, pretrained=False, **kwargs)
    _models.move_to_end(key)
    return _models[key]


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


@user_errors
def fc_vs_cnn(seed: int = 0, epochs: int = 10):
    """Train an MLP and a SmallCNN on centred digits, test them shifted: curve, table, summary."""
    r = lessons.fc_vs_cnn_shift(epochs=int(epochs), seed=int(seed or 0))
    names = {"mlp": "MLP (fully connected)", "cnn": "SmallCNN"}
    curve = pd.DataFrame([{"shift": s, "accuracy": a, "model": names[k]}
                          for k in names for s, a in zip(r["shifts"], r[k])])
    table = pd.DataFrame({"shift (px)": r["shifts"], "MLP": r["mlp"], "CNN": r["cnn"]}).round(3)
    p, t = r["params"], r["seconds"]
    text = (f"Trained {r['epochs']} epochs on {r['train_images']} centred digits ({r['digit']} px on a "
            f"{r['canvas']} px canvas), tested on {r['test_images']}: MLP {p['mlp']:,} parameters "
            f"(1024-{r['mlp_hidden']}-10, {t['mlp']:.1f} s), SmallCNN {p['cnn']:,} ({t['cnn']:.1f} s). "
            f"At {r['shifts'][-1]} px: MLP **{r['mlp'][-1]:.0%}**, CNN **{r['cnn'][-1]:.0%}** (chance: 10%).\n\n"
            f"_{r['note']}_")
    return curve, table, text


@user_errors
def layer_table(key: str, size: int = 224):
    """A model's layers (shape, params, FLOPs, receptive field), totals, and its measured CPU latency."""
    size = int(size)
    with _models_lock:
        model = _cached(key)
        try:
            rows = lessons.layer_table(model, (3, size, size))
        except RuntimeError as err:
            raise LimitError(f"'{key}' can't take {size} px images: {str(err)[:200]}", code="limit.size") from None
        ms = lessons.latency(model, (3, size, size), runs=LATENCY_RUNS, warmup=1)
        threads = torch.get_num_threads()
    table = pd.DataFrame([{"layer": r["name"], "type": r["type"], "kernel": r["kernel"],
                           "output shape": "x".join(map(str, r["output_shape"])), "params": r["params"],
                           "MFLOPs": round(r["flops"] / 1e6, 1),
                           "receptive field": f"{r['rf']} (jump {r['jump']})" if r["jump"] != "" else str(r["rf"])}
                          for r in rows])
    total = rows[-1]
    last = next((r for r in reversed(rows[:-1]) if r["kernel"] and isinstance(r["rf"], int)), None)
    label = {v: k for k, v in TABLE_MODELS}[key]
    text = (f"**{label}** at {size} px: **{total['params']:,}** parameters, **{total['flops'] / 1e9:.2f} GFLOPs** "
            f"per image (2 x multiply-adds).")
    if last is not None:
        text += f" One unit of `{last['name']}` ({last['type']}) sees **{last['rf']} px** of the input."
    text += (f"\n\nMeasured CPU latency, batch 1, median of {LATENCY_RUNS} runs after a warm-up: **{ms:.0f} ms** "
             f"(torch eager, {threads} threads, on {os.cpu_count()} cores of {_cpu()}; a shared machine varies).")
    return table, text


def three_by_three() -> str:
    """The stacked-3x3 lesson as a Markdown table, measured from built layers."""
    r = lessons.stacked_3x3_lesson()
    lines = [f"| layers (C = {r['channels']} → {r['channels']}) | receptive field | parameters | formula | ReLUs |",
             "|---|---|---|---|---|"]
    lines += [f"| {row['layers']} | {row['rf']} | {row['params']:,} | `{row['formula']}` | {row['relus']} |"
              for row in r["rows"]]
    lines.append("")
    lines += [f"- {c['stack']} vs {c['single']}: {'same' if c['same_rf'] else 'different'} receptive field "
              f"({c['rf']}), **{c['param_ratio']:.2f}x** the parameters ({c['params_saved']:,} fewer), more ReLUs."
              for c in r["comparisons"]]
    return "\n".join(lines)


@functools.lru_cache(maxsize=1)
def _feature_layers() -> tuple[list[str], list[str], dict[str, tuple]]:
    """The default model's feature-map layers, the library's default picks, and each layer's output shape
    (from a weightless copy: shapes don't depend on weights)."""
    model = create_model(DEFAULT_MODEL, pretrained=False)
    names = lessons.available_layers(model)
    defaults = lessons.default_layers(  # the picks feature_maps makes when given no layers
model, [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)])
    shapes: dict[str, tuple] = {}

    def record(name):
        def hook(_module, _inputs, out) -> None:  # returns None: the output stays as it was
            shapes.setdefault(name, tuple(out.shape[1:]))
        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if n in names]
    with torch.no_grad():
        model(torch.zeros(1, *model.pretrained_cfg["input_size"]))
    for h in handles:
        h.remove()
    return names, defaults, shapes


@user_errors
def feature_maps(image, layers: list[str]):
    """Grids of the first 16 channels of each chosen layer of the pretrained model, first to last."""
    if not layers:
        raise LimitError("Pick at least one layer.", code="limit.layer")
    shapes = _feature_layers()[2]
    return [(grid, f"{name} · {'x'.join(map(str, shapes.get(name, ())))}")
            for name, grid in lessons.feature_maps(require(image), layers=list(layers))]


@user_errors
def train_classic(run: dict, key: str, epochs: int = 5):
    """Train a small classic from scratch on the digits; stream status and the accuracy curve."""
    name, kwargs = _split(key, CLASSICS)
    run["stop"] = stop = StopFlag()
    points: list[dict] = []
    yield "Preparing the digits (32 px) and building the model…", None, ""  # None: clear the last run's curve
    with one_thread():  # small models: one torch thread is faster than two waiting on each other
        for event in lessons.train_classic(name, epochs=int(epochs), max_seconds=MAX_TRAIN_SECONDS, stop=stop,
                                           **kwargs):
            if event.kind == "epoch":
                points += [{"epoch": event.epoch, "accuracy": event.metrics[f"{s}_acc"], "split": s}
                           for s in ("train", "val")]
                line = (f"Epoch {event.epoch}/{event.epochs} · val acc {event.metrics['val_acc']:.1%} · "
                        f"{event.elapsed:.0f} s")
                yield line, pd.DataFrame(points), gr.skip()
    best = event.best or {}
    done = "Stopped" if event.kind == "stopped" else "Done"
    label = {v: k for k, v in CLASSICS}[key]
    result = (f"**{label}** from scratch, {len(event.history or [])} epochs in {event.elapsed:.0f} s: validation "
              f"accuracy **{best.get('val_acc', 0):.1%}** (best epoch {best.get('epoch', '-')}, kept). For the "
              f"pretrained route, load the digits in the Transfer tab and train a linear probe.")
    yield f"{done}.", pd.DataFrame(points) if points else None, result


def stop_classic(run: dict) -> str:
    if "stop" in run:
        run["stop"].set()
    return "Stopping after this step; the best epoch so far is kept…"


def build(workspace: gr.State, lesson: gr.Markdown) -> None:
    gr.Markdown("The CNN lessons, each claim shown by an experiment that runs here, on built models.")

    gr.Markdown("### 1. Fully connected vs convolutional, under shifts\nA fully connected layer has a weight "
                "per input pixel, so a shifted digit is a new input; a CNN shares its filters over positions "
                "and a global pool forgets where. Both train on centred digits, then see them shifted.")
    with gr.Row():
        with gr.Column(scale=1):
            seed = gr.Number(0, precision=0, minimum=0, label="Seed")
            epochs = gr.Slider(1, 30, 10, step=1, label="Epochs")
            shift_run = gr.Button("Run (≈10-60 s)", variant="primary")
            shift_text = gr.Markdown()
        with gr.Column(scale=2):
            shift_plot = gr.LinePlot(x="shift", y="accuracy", color="model", y_lim=[0, 1],
                                     label="Validation accuracy vs shift (px)")
            shift_table = gr.Dataframe(headers=["shift (px)", "MLP", "CNN"], label="Accuracy per shift",
                                       interactive=False, max_height=220)

    gr.Markdown("### 2. AlexNet and VGG as the papers built them\nAlexNet: 11x11 stride-4 convolutions, LRN "
                "and overlapping 3/2 max pooling; VGG: only stacked 3x3 convolutions. Every figure below is "
                "counted from the built layers; the receptive field grows layer by layer.")
    with gr.Row():
        arch = gr.Dropdown(TABLE_MODELS, value="alexnet", label="Model", scale=2, elem_id="arch-model")
        size = gr.Slider(64, 384, 224, step=16, label="Input size (px)", scale=2)
        table_run = gr.Button("Show the layer table", variant="primary", scale=1)
    table_text = gr.Markdown()
    table = gr.Dataframe(headers=["layer", "type", "kernel", "output shape", "params", "MFLOPs", "receptive field"],
                         label="Layers (total last)", interactive=False, max_height=420)

    gr.Markdown("### 3. Why stacked 3x3 convolutions\nTwo 3x3 layers see as far as one 5x5 (three as far "
                "as one 7x7) with fewer parameters and an extra ReLU between them. Measured on built layers:")
    gr.Markdown(three_by_three())

    gr.Markdown(f"### 4. Feature maps of the pretrained classifier ({DEFAULT_MODEL})\nEarly layers respond to edges "
                "and colours at full resolution; deeper ones to larger patterns on coarser grids (each tile: "
                "one channel, scaled to its own range).")
    names, defaults, _ = _feature_layers()
    with gr.Row():
        image = RawImage(label="Image", type="filepath", sources=["upload", "webcam", "clipboard"],
                         value=example_images()[0], height=220)
        with gr.Column():
            layers = gr.Dropdown(names, value=defaults, multiselect=True, label="Layers")
            maps_run = gr.Button("Show feature maps", variant="primary")
    gallery = gr.Gallery(label="First 16 channels per layer, first layer to last", columns=5, height=300,
                         object_fit="contain")

    gr.Markdown("### 5. Train a small AlexNet or VGG from scratch\nThe same layers at a quarter of the "
                "width, on 32 px digits, through the app's training loop; compare LRN with BatchNorm.")
    run = gr.State({})  # this session's Stop flag
    with gr.Row():
        with gr.Column(scale=1):
            classic = gr.Dropdown(CLASSICS, value="alexnet_small", label="Architecture")
            classic_epochs = gr.Slider(1, 30, 5, step=1, label="Epochs")
            with gr.Row():
                train_run = gr.Button("Train", variant="primary")
                halt = gr.Button("Stop", variant="stop")
            status = gr.Markdown()
            result = gr.Markdown()
        with gr.Column(scale=2):
            curve = gr.LinePlot(x="epoch", y="accuracy", color="split", y_lim=[0, 1], label="Accuracy")

    shift_run.click(fc_vs_cnn, [seed, epochs], [shift_plot, shift_table, shift_text], api_name="fc_vs_cnn",
                    concurrency_id="training", concurrency_limit=1)
    table_run.click(layer_table, [arch, size], [table, table_text], api_name="layer_table",
                    concurrency_id="layer_table", concurrency_limit=1)
    maps_run.click(feature_maps, [image, layers], gallery, api_name="feature_maps", concurrency_id="inference")
    train_run.click(train_classic, [run, classic, classic_epochs], [status, curve, result], api_name="train_classic",
                    concurrency_id="training", concurrency_limit=1)
    halt.click(stop_classic, run, status, api_visibility="private", queue=False)
