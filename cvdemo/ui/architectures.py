"""Architectures tab: the CNN lessons, each claim shown by a live, measured experiment (cvdemo.lessons):
FC vs CNN under shifts, AlexNet / VGG layer tables with latency, the 3x3 lesson, feature maps, and a
small classic trained from scratch."""
from __future__ import annotations

import time

import gradio as gr
import pandas as pd
from gradio.i18n import I18nData

from .. import jobs, lessons
from ..errors import LimitError
from ..images import sample_photos
from ..measure import seed_verdict
from ..models import DEFAULT_MODEL
from ..train import StopFlag, one_thread
from .common import (LAYER_TABLES, MAX_TRAIN_SECONDS, TRAINING, Curve, Number, RawImage, Slider, call, expected,
                     finished, gated, heartbeat, left, require, training_job, user_errors, working)
from .i18n import Phrase, _
from .session import Workspace

LATENCY_RUNS = 3    # timed forward passes (after one warm-up) per latency figure
# Display names: a model's own name, or a text to translate (_) where it holds words.
TABLE_MODELS = [(_("architectures.model_alexnet"), "paper_alexnet"),
                (_("architectures.model_alexnet_lrn"), "paper_alexnet_lrn"),
                (_("architectures.model_alexnet_2gpu"), "paper_alexnet_2gpu"),
                ("AlexNet + BatchNorm", "paper_alexnet_bn"),
                *[(f"VGG{d}{' + BatchNorm' if bn else ''}", f"paper_vgg{d}{'_bn' if bn else ''}")
                  for d in (11, 13, 16, 19) for bn in (False, True)],
                (_("architectures.model_resnet18"), "resnet18"), (_("architectures.model_lite0"), DEFAULT_MODEL),
                (_("architectures.model_lenet5"), "lenet5")]
CLASSICS = [(_("architectures.classic_alexnet"), "small_alexnet"),
            (_("architectures.classic_alexnet_lrn"), "small_alexnet_lrn"),
            (_("architectures.classic_alexnet_bn"), "small_alexnet_bn"),
            (_("architectures.classic_vgg11"), "small_vgg11"),
            (_("architectures.classic_vgg11_bn"), "small_vgg11_bn"),
            (_("architectures.classic_vgg16_bn"), "small_vgg16_bn")]


def _offered(key: str, allowed: list[tuple]) -> str:
    """The model name if it is one of the choices; refuses keys that aren't offered."""
    values = [value for _label, value in allowed]
    if key not in values:
        raise LimitError(f"Unknown model '{key}'; choose one of {', '.join(values)}.", code="limit.model",
                         name=key, choices=", ".join(values))
    return key


def _label(key: str, allowed: list[tuple], workspace: Workspace) -> str:
    """A choice's display name in the session's language."""
    label = {value: label for label, value in allowed}[key]
    return workspace.tr(label.key) if isinstance(label, I18nData) else label


def _reveal() -> gr.Dataframe:
    """A result table stays hidden until its first result: empty, it would show headings in no language."""
    return gr.Dataframe(visible=True)


@user_errors
@gated(TRAINING)
def fc_vs_cnn(seed: int, epochs: int, workspace: Workspace):
    """Train an MLP and a SmallCNN on centred digits, test them shifted: curve, table, summary, and the
    lesson panel's "your run"."""
    what, start, skip = workspace.tr("architectures.fc_running", epochs=int(epochs)), time.monotonic(), gr.skip()
    for item in heartbeat(call(jobs.fc_vs_cnn_shift, epochs=int(epochs), seed=int(seed or 0))):
        if item is None:
            yield skip, skip, working(workspace, what, time.monotonic() - start), skip
        else:
            r = item
    names = {"mlp": workspace.tr("architectures.mlp"), "cnn": "SmallCNN"}
    curve = pd.DataFrame([{"shift": s, "accuracy": a, "model": names[k]}
                          for k in names for s, a in zip(r["shifts"], r[k])])
    table = pd.DataFrame({workspace.tr("architectures.shift_px"): r["shifts"], "MLP": r["mlp"],
                          "CNN": r["cnn"]}).round(3).style.format("{:.1%}", subset=["MLP", "CNN"])  # shown as 88.6%
    p, t, m = r["params"], r["seconds"], lessons.shift_summary(r)
    figures = {f"{k}_{field}": f"{m[k][field]:.0%}" for k in m for field in ("centred", "mean", "worst")}
    figures.update(mlp_at=m["mlp"]["worst_at"], cnn_at=m["cnn"]["worst_at"], shift=r["shifts"][-1])
    text = workspace.tr("architectures.fc_summary", epochs=r["epochs"], train_images=r["train_images"],
                        digit=r["digit"], canvas=r["canvas"], test_images=r["test_images"],
                        mlp_params=f"{p['mlp']:,}", hidden=r["mlp_hidden"], mlp_s=f"{t['mlp']:.1f}",
                        cnn_params=f"{p['cnn']:,}", cnn_s=f"{t['cnn']:.1f}", **figures)
    lesson = workspace.show("architectures", "architectures.your_run_shift", epochs=r["epochs"], **figures)
    yield curve, table, text, lesson


@user_errors
@gated(TRAINING)
def shift_fixes(seed: int, epochs: int, workspace: Workspace):
    """The shift experiment with its two fixes (shift-augmented MLP, anti-aliased CNN): curves, the MLP's
    first-layer weights as images, a summary and the lesson panel's "your run"."""
    r = jobs.fc_vs_cnn_shift(epochs=int(epochs), seed=int(seed or 0), fixes=True)
    names = {"mlp": workspace.tr("architectures.mlp"), "mlp_aug": workspace.tr("architectures.mlp_aug"),
             "cnn": "SmallCNN", "cnn_aa": workspace.tr("architectures.cnn_aa")}
    curve = pd.DataFrame([{"shift": s, "accuracy": a, "model": names[k]}
                          for k in names for s, a in zip(r["shifts"], r[k])])
    summary, w = r["summary"], r["weights"]
    numbers = {f"{k}_{m}": f"{summary[k][m]:.0%}" for k in names for m in ("worst", "mean")}
    numbers.update(shift=r["shifts"][-1], outside=f"{w['change_outside']:.1e}", inside=f"{w['change_inside']:.3f}",
                   mlp_aug0=f"{r['mlp_aug'][0]:.0%}", cnn_worst_shift=summary["cnn"]["worst_shift"],
                   cnn_aa_worst_shift=summary["cnn_aa"]["worst_shift"], seconds=f"{r['seconds']['total']:.0f}",
                   hidden=r["mlp_hidden"])
    return (curve, lessons.weight_grid(w["images"]), workspace.tr("architectures.fixes_summary", **numbers),
            workspace.show("architectures", "architectures.your_run_fixes", **numbers))


@user_errors
@gated(LAYER_TABLES)
def layer_table(key: str, size: int, workspace: Workspace):
    """A model's layers (shape, params, FLOPs, receptive field), totals, and its measured CPU latency."""
    name, size, start = _offered(key, TABLE_MODELS), int(size), time.monotonic()
    what = workspace.tr("architectures.table_running", model=_label(key, TABLE_MODELS, workspace), runs=LATENCY_RUNS)
    for item in heartbeat(call(lessons.layer_report, name, (3, size, size), runs=LATENCY_RUNS)):
        if item is None:
            yield gr.skip(), working(workspace, what, time.monotonic() - start)
        else:
            report = item
    rows, last, tr = report["rows"], report["deepest"], workspace.tr
    words = {"total": tr("architectures.total"), lessons.GLOBAL: tr("architectures.rf_global"),
             lessons.NA: tr("architectures.rf_na")}
    table = pd.DataFrame([{
        tr("architectures.col_layer"): words.get(r["name"], r["name"]),
        tr("architectures.col_type"): words.get(r["type"], r["type"]),
        tr("architectures.col_kernel"): r["kernel"],
        tr("architectures.col_shape"): "x".join(map(str, r["output_shape"])),
        tr("architectures.col_params"): r["params"],
        "MFLOPs": round(r["flops"] / 1e6, 1),
        tr("architectures.col_rf"): (tr("architectures.rf_jump", rf=r["rf"], jump=r["jump"]) if r["jump"] != ""
                                     else words.get(r["rf"], str(r["rf"])))} for r in rows]
                         ).style.format("{:,}", subset=[tr("architectures.col_params")])  # shown as 62,378,344
    total, shape = rows[-1], report["input_size"]
    text = tr("architectures.table_summary", model=_label(key, TABLE_MODELS, workspace), size=shape[-1],
              params=f"{total['params']:,}", gflops=f"{total['flops'] / 1e9:.2f}")
    if shape[-1] != size:
        text += " " + tr("architectures.table_own_size", shape="x".join(map(str, shape)))
    if last is not None:
        text += " " + tr("architectures.table_rf", layer=last["name"], type=last["type"], rf=last["rf"])
    if report["fc_params"]:
        text += " " + tr("architectures.table_fc", fc=f"{report['fc_params']:,}",
                         share=f"{report['fc_params'] / max(total['params'], 1):.0%}")
    text += "\n\n" + tr("architectures.table_latency", runs=LATENCY_RUNS, ms=f"{report['ms']:.0f}",
                        threads=report["threads"], cores=report["cores"], cpu=report["cpu"])
    yield table, text


def three_by_three() -> str:
    """The stacked-3x3 lesson as a Markdown table, measured from built layers (its heading row translated
    in the browser, the rest numbers)."""
    r = lessons.stacked_3x3_lesson()
    ratio = {c["stack"]: c["param_ratio"] for c in r["comparisons"]}
    rows = [f"| {row['layers']} | {row['rf']} | {row['params']:,} | `{row['formula']}` (C = {r['channels']}) | "
            f"{row['relus']} | {ratio.get(row['layers'], 1):.2f}x |" for row in r["rows"]]
    return _("architectures.stacked_columns") + "\n" + "\n".join(rows)


@user_errors
def feature_maps(image, layers: list[str], workspace: Workspace | None = None):
    """Grids of the first 16 channels of each chosen layer of the pretrained model, first to last.
    (`workspace`: the language of its errors.)"""
    if not layers:
        raise LimitError("Pick at least one layer.", code="limit.layer")
    shapes = lessons.feature_layers()[0]
    return [(grid, f"{name} · {'x'.join(map(str, shapes.get(name, ())))}")
            for name, grid in lessons.feature_maps(require(image), layers=list(layers))]


@user_errors
@gated(TRAINING)
def train_classic(run: dict, key: str, epochs: int, workspace: Workspace):
    """Train a small classic from scratch on the digits; stream status and the accuracy curve, then the
    result and the lesson panel's "your run"."""
    name = _offered(key, CLASSICS)
    run["stop"] = stop = StopFlag()
    points: list[dict] = []
    splits = {"train": workspace.tr("architectures.split_train"), "val": workspace.tr("architectures.split_val")}
    yield workspace.tr("architectures.preparing"), gr.skip(), "", gr.skip()  # (training_job cleared the curve)
    with one_thread():  # small models: one torch thread is faster than two waiting on each other
        for event in jobs.train_classic(name, epochs=int(epochs), max_seconds=MAX_TRAIN_SECONDS, stop=stop):
            if event.kind == "epoch":
                points += [{"epoch": event.epoch, "accuracy": event.metrics[f"{s}_acc"], "split": splits[s]}
                           for s in splits]
                line = workspace.tr("architectures.epoch_line", epoch=event.epoch, epochs=event.epochs,
                                    acc=f"{event.metrics['val_acc']:.1%}", seconds=f"{event.elapsed:.0f}")
                line += left(workspace, event.elapsed, expected(event))
                yield line, pd.DataFrame(points), gr.skip(), gr.skip()
    best = event.best or {}
    numbers = {"model": _label(key, CLASSICS, workspace), "epochs": len(event.history or []),
               "seconds": f"{event.elapsed:.0f}", "acc": f"{best.get('val_acc', 0):.1%}",
               "best": best.get("epoch", "-")}
    yield (finished(workspace, event), pd.DataFrame(points) if points else gr.skip(),
           workspace.tr("architectures.classic_result", **numbers),
           workspace.show("architectures", "architectures.your_run_classic", **numbers))


PIECES = [(_("architectures.piece_norm"), "norm"), (_("architectures.piece_activation"), "activation"),
          (_("architectures.piece_dropout"), "dropout")]
VARIANTS = {"lrn": "architectures.variant_lrn", "bn": "architectures.variant_bn", "relu": "architectures.variant_relu",
            "tanh": "architectures.variant_tanh", "dropout": "architectures.variant_dropout",
            "no_dropout": "architectures.variant_no_dropout"}
MAX_PIECE_ROWS = 24  # rows the session's table of AlexNet-piece runs keeps (two per run)
VERDICTS = {"clear": "architectures.your_run_pieces_clear", "unclear": "architectures.your_run_pieces_unclear",
            "one_seed": "architectures.your_run_pieces_one_seed"}


def _pieces_table(rows: list[dict], workspace: Workspace) -> pd.DataFrame:
    """The session's AlexNet-piece runs side by side, in the session's language (rows keep codes and numbers)."""
    tr = workspace.tr
    return pd.DataFrame([{
        tr("architectures.col_variant"): tr(VARIANTS[r["variant"]]),
        tr("architectures.col_runs"): tr("architectures.runs_cell", seeds=r["seeds"], epochs=r["epochs"],
                                         images=r["train_images"]),
        tr("architectures.col_val"): f"{r['val_mean']:.1%} ± {r['val_std']:.1%}",
        tr("architectures.col_train"): f"{r['train_mean']:.1%} ± {r['train_std']:.1%}",
        tr("architectures.col_seconds"): f"{sum(r['seconds']) / len(r['seconds']):.1f}"} for r in rows])


@user_errors
@gated(TRAINING)
def alexnet_pieces(run: dict, rows: list, piece: str, seeds: int, epochs: int, workspace: Workspace):
    """Train small AlexNet with each variant of one piece over seeds; stream the status, then add both
    variants to the session's table, draw the mean validation curves and say what the run showed."""
    run["stop"] = stop = StopFlag()
    yield workspace.tr("architectures.preparing"), gr.skip(), None, gr.skip()
    with one_thread():
        for event in jobs.alexnet_pieces(piece, int(seeds), int(epochs), max_seconds=MAX_TRAIN_SECONDS, stop=stop):
            if event.kind == "epoch":
                m = event.metrics
                yield (workspace.tr("architectures.piece_line", variant=workspace.tr(VARIANTS[m["variant"]]),
                                    seed=m["seed"] + 1, seeds=int(seeds), epoch=event.epoch, epochs=event.epochs,
                                    acc=f"{m['val_acc']:.1%}", seconds=f"{event.elapsed:.0f}"),
                       gr.skip(), gr.skip(), gr.skip())
    r = event.result
    if not r["seeds"]:
        yield workspace.tr("architectures.stopped"), gr.skip(), gr.skip(), gr.skip()
        return
    (a, va), (b, vb) = r["variants"].items()
    rows += [{"variant": code, "seeds": r["seeds"], "epochs": r["epochs"], "train_images": r["train_images"], **v}
             for code, v in r["variants"].items()]
    del rows[:-MAX_PIECE_ROWS]  # the session's latest runs
    curve = pd.DataFrame([{"epoch": i + 1, "accuracy": acc, "variant": workspace.tr(VARIANTS[code])}
                          for code, v in r["variants"].items() for i, acc in enumerate(v["curve"])])
    diff, verdict = va["val_mean"] - vb["val_mean"], seed_verdict(va["val_acc"], vb["val_acc"])
    numbers = {"a": Phrase(VARIANTS[a]), "b": Phrase(VARIANTS[b]),
               "seeds": r["seeds"], "epochs": r["epochs"], "images": r["train_images"],
               "a_val": f"{va['val_mean']:.1%} ± {va['val_std']:.1%}",
               "b_val": f"{vb['val_mean']:.1%} ± {vb['val_std']:.1%}",
               "a_gap": round(100 * va["gap"]), "b_gap": round(100 * vb["gap"]), "diff": f"{abs(diff) * 100:.1f}"}
    done = workspace.tr("architectures.stopped" if event.kind == "stopped" else "architectures.done")
    yield (done, _pieces_table(rows, workspace), curve,
           workspace.show("architectures", VERDICTS[verdict], **numbers))


KNN_NAMES = {"textures": "architectures.knn_textures", "digits": "architectures.knn_digits"}
KNN_DATASETS = [(_(key), name) for name, key in KNN_NAMES.items()]


@user_errors
@gated(TRAINING)
def knn(dataset: str, k: int, workspace: Workspace):
    """Store every image and search: k-NN on pixels and on features as the stored set grows, beside a probe."""
    r = jobs.knn_growth(dataset, int(k))  # the library refuses an unknown dataset
    tr = workspace.tr
    names = {"pixels": tr("architectures.knn_pixels", k=r["k"]), "features": tr("architectures.knn_features", k=r["k"]),
             "probe": tr("architectures.knn_probe")}
    curve = pd.DataFrame([{"stored": n, "accuracy": acc, "method": names[m]}
                          for m in names for n, acc in zip(r["sizes"], r[m]["acc"])])
    columns = (("architectures.col_method_acc", lambda m, i: f"{r[m]['acc'][i]:.0%}"),
               ("architectures.col_method_kb", lambda m, i: f"{r[m]['bytes'][i] / 1024:,.0f}"),
               ("architectures.col_method_us", lambda m, i: f"{r[m]['us_per_query'][i]:.1f}"))
    table = pd.DataFrame([{tr("architectures.col_stored"): n,
                           **{tr(key, method=names[m]): cell(m, i) for key, cell in columns for m in names}}
                          for i, n in enumerate(r["sizes"])])
    last = {f"{m}_{key}": value for m in names for key, value in
            (("acc", f"{r[m]['acc'][-1]:.0%}"), ("first", f"{r[m]['acc'][0]:.0%}"),
             ("mb", f"{r[m]['bytes'][-1] / 2**20:.2f}"), ("us", f"{r[m]['us_per_query'][-1]:.1f}"),
             ("us0", f"{r[m]['us_per_query'][0]:.1f}"))}
    numbers = {**last, "n": r["sizes"][-1], "n0": r["sizes"][0], "k": r["k"], "test": r["test_images"],
               "dataset": Phrase(KNN_NAMES[dataset]) if dataset in KNN_NAMES else dataset,
               "pixels_dims": f"{r['dims']['pixels']:,}",
               "features_dims": f"{r['dims']['features']:,}", "seconds": f"{r['seconds']:.0f}"}
    return (curve, table, tr("architectures.knn_summary", **numbers),
            workspace.show("architectures", "architectures.your_run_knn", **numbers))


def stop_classic(run: dict, workspace: Workspace) -> str:
    if "stop" in run:
        run["stop"].set()
    return workspace.tr("app.stopping")


def build(workspace: gr.State, lesson: gr.Markdown) -> None:
    """The tab; `lesson` is its "your run" panel (the shift experiment and the classic training fill it)."""
    gr.Markdown(_("architectures.intro"))

    gr.Markdown(_("architectures.fc_head"))
    with gr.Row():
        with gr.Column(scale=1):
            seed = Number(0, precision=0, minimum=0, label=_("app.seed"))
            epochs = Slider(1, 30, 10, step=1, label=_("app.epochs"), elem_id="shift-epochs")
            shift_run = gr.Button(_("architectures.fc_run"), variant="primary")
            shift_text = gr.Markdown()
        with gr.Column(scale=2):
            shift_plot = Curve(x="shift", y="accuracy", color="model", y_lim=[0, 1], color_title="",
                               x_title=_("architectures.shift_px"), y_title=_("architectures.accuracy"),
                               label=_("architectures.shift_plot"), elem_id="shift-plot", y_axis_format=".0%")
            shift_table = gr.Dataframe(label=_("architectures.shift_table"), interactive=False, max_height=220,
                                       visible=False, elem_id="shift-table")

    gr.Markdown(_("architectures.fixes_head"))
    with gr.Row():
        with gr.Column(scale=1):
            fixes_run = gr.Button(_("architectures.fixes_run"), variant="primary")
            fixes_text = gr.Markdown()
        with gr.Column(scale=2):
            fixes_plot = gr.LinePlot(x="shift", y="accuracy", color="model", y_lim=[0, 1], color_title="",
                                     x_title=_("architectures.shift_px"), y_title=_("architectures.accuracy"),
                                     label=_("architectures.fixes_plot"))
    weights = gr.Image(label=_("architectures.weights"), type="pil", interactive=False, elem_id="mlp-weights")

    gr.Markdown(_("architectures.layers_head"))
    with gr.Row():
        arch = gr.Dropdown(TABLE_MODELS, value="paper_alexnet", label=_("app.model"), scale=2, elem_id="arch-model")
        size = Slider(64, 384, 224, step=16, label=_("architectures.size"), scale=2, elem_id="arch-size")
        table_run = gr.Button(_("architectures.table_run"), variant="primary", scale=1)
    table_text = gr.Markdown()
    table = gr.Dataframe(label=_("architectures.table"), interactive=False, max_height=2000, visible=False,
                         elem_id="layer-table")

    gr.Markdown(_("architectures.stacked_head"))
    gr.Markdown(three_by_three())

    gr.Markdown(_("architectures.maps_head"))
    shapes, defaults = lessons.feature_layers()
    with gr.Row():
        image = RawImage(label=_("app.image"), type="filepath", sources=["upload", "webcam", "clipboard"],
                         value=sample_photos()[0], height=220)
        with gr.Column():
            layers = gr.Dropdown(list(shapes), value=defaults, multiselect=True, label=_("architectures.layers"))
            maps_run = gr.Button(_("architectures.maps_run"), variant="primary")
    gallery = gr.Gallery(label=_("architectures.gallery"), columns=5, height=300, object_fit="contain")

    gr.Markdown(_("architectures.classic_head"))
    run = gr.State({})  # this session's Stop flag
    with gr.Row():
        with gr.Column(scale=1):
            classic = gr.Dropdown(CLASSICS, value="small_alexnet", label=_("architectures.architecture"))
            classic_epochs = Slider(1, 30, 5, step=1, label=_("app.epochs"))
            with gr.Row():
                train_run = gr.Button(_("architectures.train"), variant="primary")
                halt = gr.Button(_("app.stop"), variant="stop", interactive=False)
            status = gr.Markdown()
            result = gr.Markdown()
        with gr.Column(scale=2):
            curve = Curve(x="epoch", y="accuracy", color="split", y_lim=[0, 1], color_title="",
                          x_title=_("app.epochs"), y_title=_("architectures.accuracy"),
                          label=_("architectures.accuracy"), y_axis_format=".0%")

    gr.Markdown(_("architectures.pieces_head"))
    piece_run_state, piece_rows = gr.State({}), gr.State([])  # this session's Stop flag; its table's rows
    with gr.Row():
        with gr.Column(scale=1):
            piece = gr.Radio(PIECES, value="norm", label=_("architectures.piece"))
            piece_seeds = Slider(1, lessons.MAX_PIECE_SEEDS, 3, step=1, label=_("architectures.seeds"),
                                 elem_id="pieces-seeds")
            piece_epochs = Slider(1, 10, 3, step=1, label=_("app.epochs"), elem_id="pieces-epochs")
            with gr.Row():
                piece_run = gr.Button(_("architectures.pieces_run"), variant="primary")
                piece_halt = gr.Button(_("app.stop"), variant="stop")
            piece_status = gr.Markdown()
        with gr.Column(scale=2):
            piece_curve = gr.LinePlot(x="epoch", y="accuracy", color="variant", y_lim=[0, 1], color_title="",
                                      x_title=_("app.epochs"), y_title=_("architectures.accuracy"),
                                      label=_("architectures.pieces_plot"))
            piece_table = gr.Dataframe(label=_("architectures.pieces_table"), interactive=False, visible=False,
                                       elem_id="pieces-table")

    gr.Markdown(_("architectures.knn_head"))
    with gr.Row():
        with gr.Column(scale=1):
            knn_data = gr.Radio(KNN_DATASETS, value="textures", label=_("architectures.knn_dataset"))
            knn_k = Slider(1, 15, 1, step=2, label=_("architectures.knn_k"))
            knn_run = gr.Button(_("architectures.knn_run"), variant="primary")
            knn_text = gr.Markdown()
        with gr.Column(scale=2):
            knn_plot = gr.LinePlot(x="stored", y="accuracy", color="method", y_lim=[0, 1], color_title="",
                                   x_title=_("architectures.col_stored"), y_title=_("architectures.accuracy"),
                                   label=_("architectures.knn_plot"))
    knn_table = gr.Dataframe(label=_("architectures.knn_table"), interactive=False, visible=False,
                             elem_id="knn-table")

    training_job(shift_run, fc_vs_cnn, [seed, epochs, workspace], [shift_plot, shift_table, shift_text, lesson],
                 workspace, shift_text, clear=(shift_plot,), api_name="fc_vs_cnn"
                 ).success(_reveal, None, shift_table, api_visibility="private", queue=False)
    fixes_run.click(shift_fixes, [seed, epochs, workspace], [fixes_plot, weights, fixes_text, lesson],
                    api_name="shift_fixes", concurrency_id="training", concurrency_limit=None)
    table_run.click(layer_table, [arch, size, workspace], [table, table_text], api_name="layer_table",
                    concurrency_id="layer_table", concurrency_limit=None
                    ).success(_reveal, None, table, api_visibility="private", queue=False)
    maps_run.click(feature_maps, [image, layers, workspace], gallery, api_name="feature_maps",
                   concurrency_id="inference")
    training_job(train_run, train_classic, [run, classic, classic_epochs, workspace], [status, curve, result, lesson],
                 workspace, status, clear=(curve, result), halt=halt, api_name="train_classic")
    halt.click(stop_classic, [run, workspace], status, api_visibility="private", queue=False)
    piece_run.click(alexnet_pieces, [piece_run_state, piece_rows, piece, piece_seeds, piece_epochs, workspace],
                    [piece_status, piece_table, piece_curve, lesson], api_name="alexnet_pieces",
                    concurrency_id="training", concurrency_limit=None
                    ).success(_reveal, None, piece_table, api_visibility="private", queue=False)
    knn_run.click(knn, [knn_data, knn_k, workspace], [knn_plot, knn_table, knn_text, lesson], api_name="knn",
                  concurrency_id="training", concurrency_limit=None
                  ).success(_reveal, None, knn_table, api_visibility="private", queue=False)
    piece_halt.click(stop_classic, [piece_run_state, workspace], piece_status, api_visibility="private", queue=False)
