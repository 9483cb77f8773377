"""Self-train tab: pseudo-labels and Noisy Student rounds on a built-in set (some labels hidden) or the user's
zip (class folders + `unlabeled/`); per-round accuracy vs the supervised-only baseline, the pseudo-labels
accepted and rejected at the threshold, and precision vs coverage where the hidden labels are known."""
from __future__ import annotations

import time

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from .. import datasets, jobs, uploads
from ..errors import LimitError
from ..measure import seed_verdict
from ..selftrain import Pool, copies_for, precision_coverage, prepare
from .common import (TRAINING, Curve, File, Number, Slider, check_trainable, escape, gated, heartbeat, skipped_text,
                     training_job, user_errors, working)
from .i18n import Phrase, _
from .session import Workspace

THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)  # the precision-coverage curve's points
GALLERY_SIZE = 24     # accepted / rejected pseudo-labels shown each
THUMB = 96            # their side in pixels (digits are 8x8: scaled up without smoothing)
MAX_EPOCHS = 60       # the most epochs the tab offers per model (each round's teacher and student train this long)


def thumb(image: Image.Image) -> Image.Image:
    scale = max(1, THUMB // max(image.size))
    big = image.resize((image.width * scale, image.height * scale), Image.NEAREST) if scale > 1 else image.copy()
    big.thumbnail((THUMB, THUMB))
    return big


def galleries(workspace: Workspace, pool: Pool, row: dict, threshold: float):
    """The last model's pseudo-labels at `threshold`: (accepted, rejected) captioned galleries, most confident
    first among the accepted and least confident first among the rejected; captions say right/wrong when known."""
    pred, conf = row["predicted"], row["confidence"]
    accepted = np.flatnonzero(conf >= threshold)
    rejected = np.flatnonzero(conf < threshold)

    def caption(i: int) -> str:
        label = f"{pool.classes[pred[i]]} {conf[i]:.0%}"
        if pool.hidden is None:
            return label
        truth = pool.classes[pool.hidden[i]]
        if truth == pool.classes[pred[i]]:
            return f"{label} ✓"
        return f"{label} ✗ ({workspace.tr('selftrain.true')}: {truth})"

    def show(order) -> list:
        return [(thumb(pool.unlabeled[i]), caption(i)) for i in order[:GALLERY_SIZE]]

    return (show(accepted[np.argsort(-conf[accepted], kind="stable")]),
            show(rejected[np.argsort(conf[rejected], kind="stable")]))


def coverage(workspace: Workspace, pool: Pool, row: dict, threshold: float):
    """(precision-vs-coverage curve, one line about the current threshold) of the last model's predictions."""
    tr = workspace.tr
    accepted = int((row["confidence"] >= threshold).sum())
    share = accepted / len(row["confidence"]) if len(row["confidence"]) else 0.0
    if pool.hidden is None:
        return None, tr("selftrain.at_threshold_unknown", threshold=f"{threshold:.2f}", accepted=accepted,
                        coverage=f"{share:.0%}")
    rows = precision_coverage(row["confidence"], row["predicted"], pool.hidden, sorted({*THRESHOLDS, threshold}))
    curve = pd.DataFrame([{key: r[key] for key in ("coverage", "precision", "threshold")} for r in rows
                          if r["precision"] is not None])
    now = next(r for r in rows if r["threshold"] == threshold)
    precision = "-" if now["precision"] is None else f"{now['precision']:.1%}"
    return curve, tr("selftrain.at_threshold", threshold=f"{threshold:.2f}", accepted=accepted,
                     coverage=f"{share:.0%}", precision=precision)


def rounds_plot(workspace: Workspace, rows: list[dict]) -> pd.DataFrame:
    tr = workspace.tr
    series = (("accuracy", "selftrain.series_self"), ("baseline", "selftrain.series_base"))
    return pd.DataFrame([{"round": r["round"], "accuracy": r[key], "run": tr(name)} for r in rows
                         for key, name in series])


COLUMNS = ("selftrain.col_round", "selftrain.col_accuracy", "selftrain.col_accepted", "selftrain.col_coverage",
           "selftrain.col_precision", "selftrain.col_classes", "selftrain.col_student", "selftrain.col_params",
           "selftrain.col_seconds")


def student(workspace: Workspace, row: dict) -> str:
    """What a round's student reads: its pretrained backbone's features, or the digits' pixels."""
    return row["backbone"] or workspace.tr("selftrain.pixels")


def rounds_table(workspace: Workspace, rows: list[dict], classes: list[str]) -> pd.DataFrame:
    return pd.DataFrame([[r["round"], f"{r['accuracy']:.1%}", r["accepted"], f"{r['coverage']:.0%}",
                          "-" if r["precision"] is None else f"{r['precision']:.1%}",
                          ", ".join(f"{c}:{n}" for c, n in zip(classes, r["class_counts"]) if n),
                          student(workspace, r), f"{r['params']:,}", f"{r['seconds']:.1f}"]
                         for r in rows], columns=[workspace.tr(key) for key in COLUMNS])


def load_pool(source: str, builtin: str, fraction: float, zip_file, seed: int) -> tuple[Pool, list[str]]:
    """The experiment's images: a built-in set with a share of labels kept, or the user's zip."""
    if source == "zip":
        if not zip_file:
            raise LimitError("Choose a zip of class folders (with an unlabeled/ folder) first.",
                             code="dataset.no_zip")
        data, skipped = uploads.from_zip(zip_file)
        check_trainable(data, skipped)
        return prepare(data, float(fraction), seed), skipped
    return prepare(builtin, float(fraction), seed), []  # (an unknown name: load_builtin says so)


@user_errors
@gated(TRAINING)
def run(source, builtin, fraction, zip_file, threshold, balanced, larger, rounds, epochs, seed, workspace: Workspace):
    """Noisy Student rounds, streaming the per-round plot and table; then the pseudo-label galleries, the
    precision-coverage curve and what the run showed."""
    tr, skip = workspace.tr, gr.skip()
    seed, threshold = int(seed or 0), float(threshold)
    with workspace.job() as stop_flag:
        start = time.monotonic()
        yield (tr("selftrain.preparing"),) + (skip,) * 7
        pool, skipped = load_pool(source, builtin, fraction, zip_file, seed)
        rows, status, stopped = [], tr("selftrain.preparing"), False
        for event in heartbeat(jobs.self_train(pool, rounds=int(rounds), threshold=threshold, seed=seed,
                                               epochs=int(epochs), copies=copies_for(pool),
                                               class_balanced=bool(balanced),
                                               larger=bool(larger), stop=stop_flag)):
            if event is None:  # a round in progress (or the features being computed)
                what = tr("selftrain.round_running", round=len(rows), rounds=int(rounds)) if rows else status
                yield (working(workspace, what, time.monotonic() - start),) + (skip,) * 7
                continue
            if event.kind != "round":
                stopped = event.kind == "stopped"
                break
            rows.append(event.metrics)
            status = tr("selftrain.round_done", round=event.epoch, rounds=event.epochs,
                        acc=f"{event.metrics['accuracy']:.1%}", seconds=f"{event.elapsed:.1f}")
            yield (status, rounds_plot(workspace, rows), rounds_table(workspace, rows, pool.classes)) + (skip,) * 5
    workspace.selftrain = (pool, rows[-1])
    accepted, rejected = galleries(workspace, pool, rows[-1], threshold)
    curve, at_threshold = coverage(workspace, pool, rows[-1], threshold)
    done = tr("selftrain.stopped" if stopped else "selftrain.done", data=escape(pool.name), labelled=len(pool.labelled),
              unlabeled=len(pool.unlabeled), test=len(pool.test), seconds=f"{rows[-1]['seconds']:.1f}",
              round=rows[-1]["round"], rounds=int(rounds)) + skipped_text(workspace, skipped)
    yield (done, rounds_plot(workspace, rows), rounds_table(workspace, rows, pool.classes), curve, at_threshold,
           accepted, rejected, your_run(workspace, pool, rows))


YOUR_RUN = {(True, True): "selftrain.your_run", (False, True): "selftrain.your_run_no_gain",  # (gained, precision known)
            (True, False): "selftrain.your_run_unknown", (False, False): "selftrain.your_run_no_gain_unknown"}


def your_run(workspace: Workspace, pool: Pool, rows: list[dict]) -> str:
    """The lesson panel: the baseline, the last round, the gain, and how good the pseudo-labels were."""
    first, last = rows[0], rows[-1]
    precision = None if last["precision"] is None else f"{last['precision']:.1%}"  # None: no hidden labels
    key = YOUR_RUN[last["accuracy"] > first["accuracy"], precision is not None]
    return workspace.show("selftrain", key, data=escape(pool.name), labelled=len(pool.labelled),
                          unlabeled=len(pool.unlabeled),
                          base=f"{first['accuracy']:.1%}", acc=f"{last['accuracy']:.1%}", rounds=last["round"],
                          gain=f"{(last['accuracy'] - first['accuracy']) * 100:+.1f}", accepted=last["accepted"],
                          precision=precision, step=f"{100 / max(len(pool.test), 1):.1f}",
                          students=" → ".join(dict.fromkeys(student(workspace, r) for r in rows)),
                          params=f"{last['params']:,}")


@user_errors
def rethreshold(threshold, workspace: Workspace):
    """Move the threshold after a run: the galleries and the coverage line again, without training."""
    if workspace.selftrain is None:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    pool, row = workspace.selftrain
    curve, line = coverage(workspace, pool, row, float(threshold))
    return (curve, line, *galleries(workspace, pool, row, float(threshold)))


FACTORS = [(_("selftrain.factor_noise"), "noise"), (_("selftrain.factor_labels"), "labels"),
           (_("selftrain.factor_rounds"), "rounds")]
VARIANTS = {"noise": "selftrain.variant_noise", "no_noise": "selftrain.variant_no_noise",
            "hard": "selftrain.variant_hard", "soft": "selftrain.variant_soft",
            "one_round": "selftrain.variant_one_round", "three_larger": "selftrain.variant_three_larger"}
VERDICTS = {"clear": "selftrain.verdict_clear", "unclear": "selftrain.verdict_unclear",
            "one_seed": "selftrain.verdict_one_seed"}


def _pm(values: tuple[float, float], points: bool = False) -> str:
    mean, std = values
    return f"{100 * mean:+.1f} ± {100 * std:.1f}" if points else f"{mean:.1%} ± {std:.1%}"


def _mean_precision(values: list[float | None]) -> str:
    """The pseudo-labels' precision, mean over seeds ("-" where none was accepted)."""
    known = [v for v in values if v is not None]
    return f"{np.mean(known):.1%}" if known else "-"


@user_errors
@gated(TRAINING)
def ablate(factor: str, seeds: int, epochs: int, workspace: Workspace):
    """Noisy Student's ablations on the digits over seeds: stream each round, then the two variants side by side
    (mean ± std), their mean curves per round and what the run showed."""
    tr, skip, seeds = workspace.tr, gr.skip(), int(seeds)
    with workspace.job() as stop_flag:
        yield tr("selftrain.preparing"), None, skip, skip
        for event in jobs.ablation(factor, seeds, epochs=int(epochs), stop=stop_flag):
            if event.kind == "round":
                m = event.metrics
                yield (tr("selftrain.ablate_line", variant=tr(VARIANTS[m["variant"]]), seed=m["seed"] + 1, seeds=seeds,
                          round=m["round"], acc=f"{m['accuracy']:.1%}", seconds=f"{event.elapsed:.0f}"),
                       skip, skip, skip)
    r = event.result
    if not r["seeds"]:
        yield tr("selftrain.done_stopped"), skip, skip, skip
        return
    variants = r["variants"]
    curve = pd.DataFrame([{"round": i, "accuracy": acc, "variant": tr(VARIANTS[code])}
                          for code, v in variants.items() for i, acc in enumerate(v["curve"])])
    table = pd.DataFrame([{tr("selftrain.col_variant"): tr(VARIANTS[code]), tr("selftrain.col_round"): v["rounds"],
                           tr("selftrain.col_baseline"): _pm((v["baseline_mean"], v["baseline_std"])),
                           tr("selftrain.col_final"): _pm((v["final_mean"], v["final_std"])),
                           tr("selftrain.col_gain"): _pm((v["gain_mean"], v["gain_std"]), points=True),
                           tr("selftrain.col_accepted"): round(float(np.mean(v["accepted"]))),
                           tr("selftrain.col_precision"): _mean_precision(v["precision"]),
                           tr("selftrain.col_params"): f"{v['params'][-1]:,}"} for code, v in variants.items()])
    (a, va), (b, vb) = variants.items()
    verdict = Phrase(VERDICTS[seed_verdict(va["gain"], vb["gain"])])
    lesson = workspace.show("selftrain", "selftrain.your_run_ablate", seeds=r["seeds"], a=Phrase(VARIANTS[a]),
                            b=Phrase(VARIANTS[b]), a_base=f"{va['baseline_mean']:.1%}",
                            b_base=f"{vb['baseline_mean']:.1%}",
                            a_final=f"{va['final_mean']:.1%}", b_final=f"{vb['final_mean']:.1%}",
                            a_gain=_pm((va["gain_mean"], va["gain_std"]), True),
                            b_gain=_pm((vb["gain_mean"], vb["gain_std"]), True), verdict=verdict,
                            labelled=r["labelled"], unlabeled=r["unlabeled"])
    done = tr("selftrain.ablate_done", seconds=f"{event.elapsed:.0f}", labelled=r["labelled"], unlabeled=r["unlabeled"])
    yield done, curve, table, lesson


def build(workspace: gr.State, lesson: gr.Markdown) -> None:
    gr.Markdown(_("selftrain.step_data"))
    with gr.Row():
        source = gr.Radio([(_("selftrain.source_builtin"), "builtin"), (_("selftrain.source_zip"), "zip")],
                          value="builtin", label=_("selftrain.source"))
        builtin = gr.Dropdown(list(datasets.BUILTIN), value="digits", label=_("selftrain.builtin"))
        fraction = Slider(0.02, 0.5, 0.05, step=0.01, label=_("selftrain.fraction"),
                          info=_("selftrain.fraction_info"))
        zip_file = File(label=_("selftrain.zip"), file_types=[".zip"], type="filepath", elem_id="selftrain-zip")
    gr.Markdown(_("selftrain.step_run"))
    with gr.Row():
        threshold = Slider(0.5, 0.99, 0.9, step=0.01, label=_("selftrain.threshold"),
                           info=_("selftrain.threshold_info"), elem_id="selftrain-threshold")
        with gr.Column():
            balanced = gr.Checkbox(False, label=_("selftrain.balanced"), info=_("selftrain.balanced_info"))
            larger = gr.Checkbox(False, label=_("selftrain.larger"), info=_("selftrain.larger_info"))
        rounds = Slider(1, 5, 3, step=1, label=_("selftrain.rounds"), elem_id="selftrain-rounds")
        epochs = Slider(1, MAX_EPOCHS, 30, step=1, label=_("selftrain.epochs"), info=_("selftrain.epochs_info"),
                        elem_id="selftrain-epochs")
        seed = Number(0, precision=0, minimum=0, maximum=2**31 - 1, label=_("app.seed"))
    with gr.Row():
        go = gr.Button(_("selftrain.run"), variant="primary")
        halt = gr.Button(_("app.stop"), variant="stop", interactive=False)
    status = gr.Markdown()
    per_round = Curve(x="round", y="accuracy", color="run", label=_("selftrain.per_round"), color_title="",
                      x_title=_("selftrain.col_round"), y_title=_("selftrain.col_accuracy"), y_axis_format=".0%")
    table = gr.Dataframe(label=_("selftrain.table"), interactive=False, wrap=True, elem_id="selftrain-table")
    gr.Markdown(_("selftrain.step_look"))
    with gr.Row():
        curve = gr.LinePlot(x="coverage", y="precision", label=_("selftrain.curve"), x_lim=[0, 1],
                            x_title=_("selftrain.coverage"), y_title=_("selftrain.precision"), x_axis_format=".0%",
                            y_axis_format=".0%")
        at_threshold = gr.Markdown()
    with gr.Row():
        accepted = gr.Gallery(label=_("selftrain.accepted"), columns=4, height=320)
        rejected = gr.Gallery(label=_("selftrain.rejected"), columns=4, height=320)

    gr.Markdown(_("selftrain.ablate_head"))
    with gr.Row():
        with gr.Column(scale=1):
            factor = gr.Radio(FACTORS, value="noise", label=_("selftrain.factor"))
            ablate_seeds = Slider(1, 5, 2, step=1, label=_("selftrain.seeds"), elem_id="ablate-seeds")
            ablate_epochs = Slider(1, MAX_EPOCHS, 10, step=1, label=_("selftrain.epochs"), elem_id="ablate-epochs")
            with gr.Row():
                ablate_run = gr.Button(_("selftrain.ablate_run"), variant="primary")
                ablate_halt = gr.Button(_("app.stop"), variant="stop")
            ablate_status = gr.Markdown()
        ablate_plot = gr.LinePlot(x="round", y="accuracy", color="variant", color_title="", scale=2,
                                  x_title=_("selftrain.col_round"), y_title=_("selftrain.col_accuracy"),
                                  label=_("selftrain.ablate_plot"))
    ablate_table = gr.Dataframe(label=_("selftrain.ablate_table"), interactive=False, elem_id="ablate-table")

    outputs = [status, per_round, table, curve, at_threshold, accepted, rejected, lesson]
    at_slider = [curve, at_threshold, accepted, rejected]
    training_job(go, run, [source, builtin, fraction, zip_file, threshold, balanced, larger, rounds, epochs, seed,
                           workspace],
                 outputs, workspace, status, clear=tuple(outputs[1:-1]), halt=halt, api_name="selftrain").success(
        rethreshold, [threshold, workspace], at_slider, api_visibility="private")  # (moved during the run)
    halt.click(Workspace.request_stop, workspace, status, api_visibility="private", queue=False)
    ablate_run.click(ablate, [factor, ablate_seeds, ablate_epochs, workspace],
                     [ablate_status, ablate_plot, ablate_table, lesson],
                     api_name="selftrain_ablation", concurrency_id="training", concurrency_limit=None)
    ablate_halt.click(Workspace.request_stop, workspace, ablate_status, api_visibility="private", queue=False)
    # typed (Enter), dragged or moved with the arrow keys: the galleries and the line follow the slider's last value
    threshold.change(rethreshold, [threshold, workspace], at_slider, api_visibility="private",
                     trigger_mode="always_last")
