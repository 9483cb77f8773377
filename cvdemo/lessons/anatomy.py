"""Model anatomy: what a built network is made of and costs, measured, never typed in: the layer table
(output shape, parameters, FLOPs, receptive field per layer), stacked 3x3 convolutions, CPU latency, and the
feature maps of the pretrained model.

Conventions:
- FLOPs = 2 x multiply-adds, counted as `torch.utils.flop_counter.FlopCounterMode` counts them (so
  totals agree with it): convolutions and linear layers only; bias additions, pooling, normalisation
  and activations count 0 (element-wise, small next to the convolutions).
  Conv: 2 * Cin/groups * kh * kw * Cout * Hout * Wout; linear: 2 * in * out per row.
- Receptive field (RF): the side of the input window one output unit can see, and its jump (input
  pixels between neighbouring units), computed from each built layer's kernel_size / stride /
  padding / dilation (no numbers typed in). The model is traced with torch.fx and the RF follows the
  real data flow: where branches meet (a ResNet's `x + shortcut`, a concatenation) the window is the
  union of the branches' windows, so ResNet's figures are exact, not a main-path approximation.
  A unit that sees every position (after a global pool, a flatten, a squeeze-excite) is "global";
  where the RF can't be derived (an untraceable model, upsampling, an unknown spatial op, adaptive
  pools whose windows vary) it is "n/a". Normalisations and activations count as element-wise
  (BatchNorm in eval mode is; the statistics GroupNorm / LayerNorm take over positions are ignored).
  Sizes are theoretical: padding makes windows hang over the border, so they may exceed the image.
"""
from __future__ import annotations

import copy
import functools
import math
import os
import platform
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import fx, nn

from .. import measure
from ..errors import LimitError
from ..models import DEFAULT_MODEL, create_model

__all__ = ["GLOBAL", "LATENCY_MODELS", "NA", "available_layers", "cpu_name", "default_layers", "feature_layers",
           "feature_maps", "latency", "latency_table", "layer_report", "layer_table", "stacked_3x3_lesson"]


# --- which layers a table lists ------------------------------------------------------------------

_CONV = nn.modules.conv._ConvNd
_POOL = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
         nn.modules.pooling._AdaptiveMaxPoolNd, nn.modules.pooling._LPPoolNd)
_NORM = (nn.modules.batchnorm._NormBase, nn.LocalResponseNorm, nn.CrossMapLRN2d, nn.GroupNorm, nn.LayerNorm)
_POINTWISE_MODULES = (*_NORM, nn.Identity, nn.modules.dropout._DropoutNd)
_NOT_POINTWISE = (nn.MultiheadAttention, nn.Softmax, nn.Softmin, nn.LogSoftmax)  # may run along a spatial axis


def _is_activation(module: nn.Module) -> bool:
    return type(module).__module__ == "torch.nn.modules.activation"


def _tabled(module: nn.Module, activations: bool) -> bool:
    return isinstance(module, (_CONV, nn.Linear, *_POOL, *_NORM)) or (activations and _is_activation(module))


# --- receptive fields ------------------------------------------------------------------------------
# Per spatial axis (j, a, b): output unit i sees input pixels [a + i*j, b + i*j] (a < 0: padding).
# A node's state is a tuple of those per axis, "global", "n/a", or None (does not depend on the input).

GLOBAL, NA = "global", "n/a"
_POINTWISE_CALLS = {  # functions / methods that keep positions apart (they may mix channels)
    "add", "iadd", "radd", "sub", "isub", "rsub", "mul", "imul", "rmul", "truediv", "div", "itruediv", "neg",
    "cat", "concat", "chunk", "split", "getitem", "relu", "relu_", "relu6", "gelu", "silu", "silu_", "sigmoid",
    "sigmoid_", "hardsigmoid", "hardswish", "hardtanh", "tanh", "clamp", "clamp_", "clip", "abs", "exp",
    "dropout", "contiguous", "clone", "float", "half", "bfloat16", "to", "type_as", "leaky_relu", "elu",
    "mish", "softplus", "batch_norm", "add_", "mul_", "div_", "sub_", "pow", "sqrt", "rsqrt",
}


def _pair(value: Any) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)  # type: ignore[return-value]


def _union(states: list[Any]) -> Any:
    states = [s for s in states if s is not None]
    if not states:
        return None
    if NA in states:
        return NA
    if GLOBAL in states:
        return GLOBAL
    if any(len(s) != len(states[0]) or any(ax[0] != ax0[0] for ax, ax0 in zip(s, states[0])) for s in states):
        return NA  # branches with different jumps: not one regular grid
    return tuple((axes[0][0], min(ax[1] for ax in axes), max(ax[2] for ax in axes)) for axes in zip(*states))


def _window(state: Any, kernel, stride, padding, dilation=1) -> Any:
    """The state after a sliding window (conv or pool) with these settings (padding: pixels before)."""
    if not isinstance(state, tuple):
        return state
    k, s, p, d = _pair(kernel), _pair(stride), _pair(padding), _pair(dilation)
    return tuple((j * s[i], a - p[i] * j, b + (d[i] * (k[i] - 1) - p[i]) * j) for i, (j, a, b) in enumerate(state))


def _spatial(value: Any) -> tuple[int, ...] | None:
    return tuple(value.shape[2:]) if isinstance(value, torch.Tensor) and value.ndim == 4 else None


def _module_state(module: nn.Module, state: Any, in_size: tuple[int, ...] | None,
                  out_size: tuple[int, ...] | None) -> Any:
    if not isinstance(state, tuple):
        return state
    if in_size is None or len(state) != 2:
        return NA
    if isinstance(module, (_CONV, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
                           nn.modules.pooling._LPPoolNd)):
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            return NA
        kernel = _pair(module.kernel_size)
        stride = _pair(module.stride if module.stride is not None else module.kernel_size)
        dilation = _pair(getattr(module, "dilation", 1))
        padding = getattr(module, "padding", 0)
        if type(module).__name__.endswith("Same") or padding == "same":  # timm's Conv2dSame / MaxPool2dSame
            if padding != "same":  # TF "same": total padding from the input size, the odd pixel after
                totals = [max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
                          for n, k, s, d in zip(in_size, kernel, stride, dilation)]
            else:  # PyTorch's padding="same" (stride 1)
                totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
            padding = tuple(t // 2 for t in totals)
        elif padding == "valid":
            padding = 0
        return _window(state, kernel, stride, padding, dilation)
    if isinstance(module, (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)):
        if out_size is None:
            return GLOBAL
        if all(o == 1 for o in out_size) and any(n > 1 for n in in_size):
            return GLOBAL
        if all(n % o == 0 for n, o in zip(in_size, out_size)):  # regular windows: kernel = stride = n / o
            steps = [n // o for n, o in zip(in_size, out_size)]
            return _window(state, steps, steps, 0)
        return NA  # windows of varying size
    if isinstance(module, nn.Flatten) or out_size is None:
        return GLOBAL
    if isinstance(module, _NOT_POINTWISE):
        return NA
    if isinstance(module, _POINTWISE_MODULES) or _is_activation(module):
        return state if out_size == in_size else NA
    return NA  # an unknown module, or a Linear on a feature map (it would mix along W)


class _Tracer(fx.Tracer):
    """Traces into everything but the layers a table lists (those stay single calls, so hooks see them)."""

    def is_leaf_module(self, m: nn.Module, name: str) -> bool:
        return _tabled(m, activations=True) or super().is_leaf_module(m, name)


class _Propagate(fx.Interpreter):
    """Runs the traced model node by node, computing each node's receptive-field state."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.states: dict[fx.Node, Any] = {}
        self.current: fx.Node | None = None

    def run_node(self, n: fx.Node) -> Any:
        self.current = n
        inputs = [a for a in n.all_input_nodes]
        in_values = [self.env.get(a) for a in inputs]
        in_states = [self.states.get(a) for a in inputs]
        out = super().run_node(n)
        self.states[n] = self._state(n, out, in_values, in_states)
        return out

    def _state(self, n: fx.Node, out: Any, in_values: list[Any], in_states: list[Any]) -> Any:
        if n.op == "placeholder":
            size = _spatial(out)
            return tuple((1, 0, 0) for _ in size) if size else None
        if n.op in ("get_attr", "output"):
            return None
        state = _union(in_states)
        if not isinstance(state, tuple):
            return state
        sizes = [_spatial(v) for v, s in zip(in_values, in_states) if isinstance(s, tuple)]
        in_size = sizes[0] if sizes and all(s == sizes[0] for s in sizes) else None
        out_size = _spatial(out)
        if n.op == "call_module":
            return _module_state(self.module.get_submodule(n.target), state, in_size, out_size)
        name = getattr(n.target, "__name__", str(n.target)).strip("_")
        if not isinstance(out, torch.Tensor):  # a tuple (chunk/split) or a number (x.shape)
            return state if name in _POINTWISE_CALLS else None
        if name == "getitem" and not isinstance(in_values[0], torch.Tensor):  # one part of a chunk / split
            return state
        if out_size is None or (all(o == 1 for o in out_size) and in_size and any(i > 1 for i in in_size)):
            return GLOBAL  # flattened or globally reduced
        if name in _POINTWISE_CALLS and in_size == out_size:
            return state
        return NA


def _describe(state: Any) -> tuple[Any, Any]:
    if not isinstance(state, tuple):
        return (state or NA), ""
    sizes = [b - a + 1 for _, a, b in state]
    jumps = [j for j, _, _ in state]
    size = sizes[0] if len(set(sizes)) == 1 else "x".join(map(str, sizes))
    jump = jumps[0] if len(set(jumps)) == 1 else "x".join(map(str, jumps))
    return size, jump


# --- 1. the layer table ------------------------------------------------------------------------------

def _kernel_text(module: nn.Module) -> str:
    if isinstance(module, (_CONV, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
        k = _pair(module.kernel_size)
        s = _pair(module.stride if module.stride is not None else module.kernel_size)
        p = getattr(module, "padding", 0)
        text = f"{k[0]}x{k[1]}" + (f" /{s[0]}" if s[0] == s[1] else f" /{s[0]}x{s[1]}")
        if p not in (0, (0, 0)):
            text += f" pad {p if isinstance(p, str) else _pair(p)[0]}"
        if isinstance(module, _CONV) and module.groups > 1:
            text += " depthwise" if module.groups == module.in_channels else f" groups {module.groups}"
        return text
    return ""


def _flops(module: nn.Module, out: torch.Tensor) -> int:
    if isinstance(module, _CONV) and not isinstance(module, nn.modules.conv._ConvTransposeNd):
        return 2 * out.numel() * (module.in_channels // module.groups) * math.prod(_pair(module.kernel_size))
    if isinstance(module, nn.Linear):
        return 2 * out.numel() * module.in_features
    return 0


def layer_table(model: nn.Module, input_size: Sequence[int] = (3, 224, 224), *,
                activations: bool = False) -> list[dict]:
    """One row per conv, linear, pool and norm layer (and activation, if asked) in execution order, from
    one forward pass of a batch of 1 on the model's device (eval mode, no grad), then a "total" row.

    Row: name, type (class name), kernel ("11x11 /4 pad 2"), output_shape (C, H, W) without the batch,
    params (the layer's own), flops (module docstring), rf and jump (ints; "global" / "n/a").
    The total row: params = every parameter of the model (counted once), flops = the sum, rf/jump of the
    last row. A layer called twice gets two rows (its params counted in the total once).
    The forward hooks (and eval()) go on `model` itself: pass a model no other thread is running
    (`create_model` builds a fresh one)."""
    rows: list[dict] = []
    names = {}
    for name, module in model.named_modules():
        names.setdefault(module, name)
    try:
        gm = fx.GraphModule(model, _Tracer().trace(model))
        runner: _Propagate | None = _Propagate(gm)
    except Exception:  # noqa: BLE001 - fx fails in many ways (control flow on values...): no RF, rest stays
        runner = None

    def hook(module: nn.Module, inputs: Any, out: Any) -> None:
        if threading.get_ident() != thread:
            return
        tensor = out if isinstance(out, torch.Tensor) else None
        rows.append({"name": names.get(module, "?"), "type": type(module).__name__, "kernel": _kernel_text(module),
                     "output_shape": tuple(tensor.shape[1:]) if tensor is not None else (),
                     "params": sum(p.numel() for p in module.parameters(recurse=False)),
                     "flops": _flops(module, tensor) if tensor is not None else 0,
                     "_node": runner.current if runner is not None else None})

    thread = threading.get_ident()
    handles = [m.register_forward_hook(hook) for m in model.modules() if _tabled(m, activations)]
    was_training = model.training
    first = next(model.parameters(), None)
    x = torch.zeros(1, *input_size, device=first.device if first is not None else "cpu",
                    dtype=first.dtype if first is not None and first.is_floating_point() else torch.float32)
    try:
        model.eval()
        with torch.no_grad():
            if runner is not None:
                try:
                    runner.run(x)
                except Exception:  # noqa: BLE001 - the traced graph may not run (shapes baked in): plain forward
                    runner = None
                    rows.clear()
            if runner is None:
                model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    for row in rows:
        # a layer run inside a listed layer (timm's BatchNormAct2d.act) gets that layer's node: same RF
        node = row.pop("_node")
        state = runner.states.get(node, NA) if runner is not None and node is not None else NA
        row["rf"], row["jump"] = _describe(state)
    total_params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    rows.append({"name": "total", "type": "total", "kernel": "", "output_shape": rows[-1]["output_shape"] if rows else (),
                 "params": total_params, "flops": sum(r["flops"] for r in rows),
                 "rf": rows[-1]["rf"] if rows else NA, "jump": rows[-1]["jump"] if rows else ""})
    return rows


# --- 2. stacked 3x3 convolutions ---------------------------------------------------------------------

def stacked_3x3_lesson(channels: int = 64, size: int = 32) -> dict:
    """Two stacked 3x3 convs see as far as one 5x5, three as far as one 7x7, with fewer parameters and
    more ReLUs (one after each conv: 2 or 3 against 1). Builds the layers (C -> C, no bias, padding keeps the size) and measures RF and params
    with the same code as `layer_table`. Returns {"channels", "rows": [...], "comparisons": [...]}."""
    c = channels

    def stack(n: int, k: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for _ in range(n):  # each conv followed by its ReLU, as in VGG
            layers += [nn.Conv2d(c, c, k, padding=k // 2, bias=False), nn.ReLU()]
        return nn.Sequential(*layers)

    rows = []
    for n, k, formula in ((2, 3, "2*9*C^2"), (1, 5, "25*C^2"), (3, 3, "3*9*C^2"), (1, 7, "49*C^2")):
        table = layer_table(stack(n, k), (c, size, size))
        rows.append({"layers": f"{n} x conv {k}x{k}", "rf": table[-1]["rf"], "params": table[-1]["params"],
                     "formula": formula, "formula_value": n * k * k * c * c, "relus": n,
                     "flops": table[-1]["flops"], "flops_per_position": table[-1]["flops"] // (size * size)})
    comparisons = [{"stack": rows[i]["layers"], "single": rows[i + 1]["layers"], "rf": rows[i]["rf"],
                    "same_rf": rows[i]["rf"] == rows[i + 1]["rf"],
                    "param_ratio": rows[i]["params"] / rows[i + 1]["params"],
                    "params_saved": rows[i + 1]["params"] - rows[i]["params"]} for i in (0, 2)]
    return {"channels": c, "size": size, "rows": rows, "comparisons": comparisons}


# --- 3. latency ---------------------------------------------------------------------------------------

def latency(model: nn.Module, input_size: Sequence[int] = (3, 224, 224), runs: int = 20, warmup: int = 2) -> float:
    """Median milliseconds of one forward pass of a batch of 1 (torch eager, eval, no grad) on the model's
    device (a CPU model: the CPU, with torch's thread count): `cvdemo.measure.latency_ms`, a random input."""
    return measure.latency_ms(model, torch.randn(*input_size), runs=runs, warmup=warmup)


LATENCY_MODELS = ("paper_alexnet", "paper_vgg11", "paper_vgg16", "resnet18", "tf_efficientnet_lite0")
# One build / table / timing at a time: the timing is not shared, and one VGG19 (570 MB) is built at a time.
_report_lock = threading.Lock()


def cpu_name() -> str:
    """The CPU's model name (Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def layer_report(name: str, input_size: Sequence[int] = (3, 224, 224), *, runs: int = 3, warmup: int = 1) -> dict:
    """`layer_table` and `latency` of the model `name`, built with `create_model(name, pretrained=False)` (shapes,
    FLOPs and speed need no weights) and dropped after: building one takes 1-2 s of a 2-11 s report, and keeping
    VGG16 and AlexNet built held 800 MB for good.
    Returns "rows" (layer_table's), "deepest" (the last layer row with a kernel and a whole-number receptive
    field, or None), "ms" (median of `runs` batch-1 passes after `warmup`), "threads" (torch's CPU threads),
    "cores", "cpu", "input_size" (the one measured: a model with its own `input_size`, such as LeNet-5's
    1x32x32, gets that one) and "fc_params" (`fc_params`). A size the model can't take raises LimitError
    (limit.input_size)."""
    with _report_lock:
        model = create_model(name, pretrained=False)
        input_size = tuple(getattr(model, "input_size", None) or input_size)
        try:
            rows = layer_table(model, input_size)
        except RuntimeError as err:
            raise LimitError(f"'{name}' can't take {input_size[-1]} px images: {str(err)[:200]}",
                             code="limit.input_size", name=name, value=input_size[-1]) from None
        ms = latency(model, input_size, runs=runs, warmup=warmup)
        threads = torch.get_num_threads()
    deepest = next((r for r in reversed(rows[:-1]) if r["kernel"] and isinstance(r["rf"], int)), None)
    return {"rows": rows, "deepest": deepest, "ms": ms, "threads": threads, "cores": os.cpu_count(),
            "cpu": cpu_name(), "input_size": input_size, "fc_params": fc_params(rows)}


def fc_params(rows: list[dict]) -> int:
    """The parameters a layer table's fully connected (Linear) layers hold: VGG16's 123,642,856 of 138,357,544
    (89%), AlexNet's 58,631,144 of 62,378,344 (94%), while they do a small part of the FLOPs."""
    return sum(r["params"] for r in rows[:-1] if r["type"] == "Linear")


def latency_table(names: Sequence[str] = LATENCY_MODELS, input_size: Sequence[int] = (3, 224, 224),
                  runs: int = 10) -> list[dict]:
    """name, params, GFLOPs (layer_table's total), ms_p50 and ms_min (batch 1, about `runs` timed passes after
    2 warm-up ones: `cvdemo.measure.latency`, the median and the fastest block) and torch's CPU thread count,
    per model, built with `create_model(name, pretrained=False)` (timm names work offline that way; speed
    needs no weights). On a shared, busy machine the minimum is the steadier figure."""
    out = []
    for name in names:
        model = create_model(name, pretrained=False)
        total = layer_table(model, input_size)[-1]
        timed = measure.latency(model, torch.randn(*input_size), runs=runs, warmup=2)
        out.append({"name": name, "params": total["params"], "gflops": total["flops"] / 1e9,
                    "ms_p50": timed.median * 1000, "ms_min": min(timed.times) * 1000,
                    "threads": torch.get_num_threads()})
        del model
    return out


# --- 4. feature maps of the pretrained model -------------------------------------------------------------

def _feature_outputs(model: nn.Module, x: torch.Tensor, wanted: set[str] | None) -> list[tuple[str, torch.Tensor]]:
    """(name, output) of the named modules (all but the root when `wanted` is None), first call of each, in
    the order they start running (a block before the layers inside it). Runs on a private copy of the
    model, so these hooks never touch a model that another thread is using."""
    model = copy.deepcopy(model).eval()
    started: dict[str, int] = {}
    seen: dict[str, torch.Tensor] = {}

    def hooks_for(name: str):
        def pre(module, inputs):
            started.setdefault(name, len(started))

        def post(module, inputs, out):
            if isinstance(out, torch.Tensor) and name not in seen:
                seen[name] = out.detach()
        return pre, post

    handles = []
    for name, module in model.named_modules():
        if name and (wanted is None or name in wanted):
            pre, post = hooks_for(name)
            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return sorted(seen.items(), key=lambda item: started[item[0]])


def _model_input(model: nn.Module, input_size: Sequence[int] | None) -> torch.Tensor:
    size = input_size or (getattr(model, "pretrained_cfg", None) or {}).get("input_size") or (3, 224, 224)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return torch.zeros(1, *size, device=device)


def available_layers(model: nn.Module, max_depth: int | None = 2, input_size: Sequence[int] | None = None) -> list[str]:
    """Names of the modules whose output is a feature map (N, C, H, W), in execution order; `max_depth`
    keeps names with at most that many dotted parts (None: all). Dropouts, identities and 1x1 outputs
    (after a global pool) are left out."""
    return list(_feature_shapes(model, max_depth, input_size))


def _feature_shapes(model: nn.Module, max_depth: int | None, input_size: Sequence[int] | None) -> dict[str, tuple]:
    """{name: output shape (C, H, W)} of `available_layers`, in execution order."""
    names = {n for n, m in model.named_modules()
             if n and not isinstance(m, (nn.Identity, nn.modules.dropout._DropoutNd))
             and (max_depth is None or n.count(".") < max_depth)}
    outputs = _feature_outputs(model, _model_input(model, input_size), names)
    return {n: tuple(out.shape[1:]) for n, out in outputs if out.ndim == 4 and out.shape[2] * out.shape[3] > 1}


@functools.lru_cache(maxsize=4)
def feature_layers(model_name: str = DEFAULT_MODEL) -> tuple[dict[str, tuple], list[str]]:
    """What `feature_maps` can show for the classifier `model_name`: {layer: output shape (C, H, W)} for every
    `available_layers` name, in execution order, and the layers it shows when given none. Measured once on a
    weightless copy (shapes don't depend on weights)."""
    model = create_model(model_name, pretrained=False)
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    return _feature_shapes(model, 2, None), default_layers(model, convs)


def default_layers(model: nn.Module, order: list[str]) -> list[str]:
    blocks = getattr(model, "blocks", None)
    if hasattr(model, "conv_stem") and isinstance(blocks, nn.Sequential) and len(blocks) >= 2:
        picks = np.linspace(1, len(blocks) - 1, 4).round().astype(int)  # 4 blocks spread to the last
        return ["conv_stem"] + [f"blocks.{i}" for i in sorted(set(picks.tolist()))]
    convs = [n for n in order if isinstance(model.get_submodule(n), nn.Conv2d)]
    if len(convs) <= 5:
        return convs
    return [convs[round(i * (len(convs) - 1) / 4)] for i in range(5)]


def _grid(fmap: torch.Tensor, channels: int, min_tile: int = 64) -> Image.Image:
    """The first `channels` maps of (C, H, W), each scaled to 0..255 on its own, tiled in a square grid."""
    maps = fmap[:channels].float().cpu()
    lo = maps.amin(dim=(1, 2), keepdim=True)
    hi = maps.amax(dim=(1, 2), keepdim=True)
    maps = ((maps - lo) / (hi - lo).clamp_min(1e-8) * 255).round().to(torch.uint8).numpy()
    n, h, w = maps.shape
    scale = max(1, math.ceil(min_tile / max(h, w)))
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    gap = 2
    th, tw = h * scale, w * scale
    sheet = np.full((rows * th + (rows + 1) * gap, cols * tw + (cols + 1) * gap), 40, np.uint8)
    for i, m in enumerate(maps):
        r, c = divmod(i, cols)
        y, x = gap + r * (th + gap), gap + c * (tw + gap)
        sheet[y:y + th, x:x + tw] = np.kron(m, np.ones((scale, scale), np.uint8))
    return Image.fromarray(sheet, mode="L")


def feature_maps(image: Any, model_name: str | None = None, layers: Sequence[str] | None = None,
                 channels: int = 16) -> list[tuple[str, Image.Image]]:
    """Activations of `layers` of the offline pretrained classifier (default model: EfficientNet-Lite0) for
    `image` (anything cvdemo.images.load_image takes), preprocessed exactly as for classification. One
    grid image per layer (the first `channels` channels, each normalised to its own min..max), ordered as
    the layers run, first to last. Default layers: conv_stem and four blocks spread to the last."""
    from .. import images
    from ..inference import get_classifier

    if not 1 <= channels <= 256:
        raise LimitError(f"channels must be from 1 to 256, got {channels!r}", code="limit.channels",
                         value=channels, limit=256)
    classifier = get_classifier(model_name)
    model = classifier.model
    pil = images.load_image(image)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.from_numpy(classifier.preprocess(pil)).to(device)
    if layers is None:
        order = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        layers = default_layers(model, order)
    known = {n for n, _ in model.named_modules() if n}
    unknown = [n for n in layers if n not in known]
    if unknown:
        names = ", ".join(map(repr, unknown[:5]))
        raise LimitError(f"Unknown layer(s) {names}; see available_layers(model).", code="limit.unknown_layer",
                         layers=unknown, names=names)
    outputs = _feature_outputs(model, x, set(layers))
    flat = [n for n, out in outputs if out.ndim != 4]
    if flat:
        names = ", ".join(map(repr, flat))
        raise LimitError(f"Layer(s) {names} give no feature map (not N x C x H x W).", code="limit.flat_layer",
                         layers=flat, names=names)
    return [(name, _grid(out[0], channels)) for name, out in outputs]
