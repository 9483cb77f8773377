"""Command line:

    python -m cvdemo classify IMG... [--model NAME] [--top-k 5]
    python -m cvdemo train --data DIR|ZIP|builtin:NAME --mode probe|finetune|full [--out DIR]
    torchrun --nproc_per_node=N -m cvdemo train ...     (the same, data-parallel)
    python -m cvdemo distill three-way|sweep|make-teacher ...   (see python -m cvdemo distill -h)
    python -m cvdemo selftrain digits|faces|textures|ZIP|DIR [--rounds 3] ...   (see python -m cvdemo selftrain -h)
"""
from __future__ import annotations

import argparse
import sys

from .errors import CvdemoError


def cmd_classify(args: argparse.Namespace) -> int:
    from .inference import get_classifier

    try:
        classifier = get_classifier(args.model)
    except CvdemoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    failed = 0
    for path in args.images:
        try:
            top, ms = classifier.classify(path, top_k=args.top_k)
        except CvdemoError as err:
            print(f"error: {path}: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}  ({classifier.name}, {classifier.runtime_label}, {ms:.1f} ms)")
        for label, prob in top:
            print(f"  {prob:6.1%}  {label}")
    return 1 if failed else 0


def cmd_train(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .datasets import load
    from .export import export_onnx, save_model
    from .train import is_main_process, progress_bar
    from .transfer import default_config, transfer

    try:
        data, skipped = load(args.data)
        for message in skipped:
            print(f"skipped: {message}", file=sys.stderr)
        spec = Path(args.augment).read_text() if args.augment else None
        given = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "weight_decay")
                 if getattr(args, k) is not None}
        config = default_config(args.mode, args.seed, max_seconds=args.max_seconds, **given)
        final = progress_bar(transfer(data, mode=args.mode, arch=args.model, config=config,
                                      val_fraction=args.val_fraction, augment=spec))
    except CvdemoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if final is None or not is_main_process():
        return 0
    result = final.result
    for note in result.notes:  # e.g. a setting lowered, CutMix/MixUp not applied by the probe
        print(f"note: {note}", file=sys.stderr)
    out = Path(args.out)
    save_model(result.classifier.model, out, result.classes)
    export_onnx(result.classifier.model, out / "model.onnx", result.classifier.input_size)
    metrics = {"mode": result.mode, "arch": result.arch, "classes": result.classes, "val_acc": result.val_acc,
               "per_class_acc": result.per_class_acc, "confusion": result.confusion.tolist(),
               "history": result.history, "seconds": result.seconds, "stopped": result.stopped,
               "notes": [str(note) for note in result.notes]}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"validation accuracy {result.val_acc:.3f} ({result.mode}, {result.arch}); wrote {out}/model.safetensors, "
          f"config.json, model.onnx, metrics.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["distill"]:  # the distillation lesson has its own subcommands
        from .distill import main as distill_main

        return distill_main(argv[1:])
    if argv[:1] == ["selftrain"]:  # so has self-training
        from .selftrain import main as selftrain_main

        return selftrain_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m cvdemo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("distill", help="knowledge distillation on the digits (python -m cvdemo distill -h)")
    sub.add_parser("selftrain", help="pseudo-labels and Noisy Student (python -m cvdemo selftrain -h)")
    p = sub.add_parser("classify", help="print the top-k classes of each image")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--model", default=None, help="model name (default: tf_efficientnet_lite0, offline)")
    p.add_argument("--top-k", type=int, default=5)
    p.set_defaults(run=cmd_classify)
    t = sub.add_parser("train", help="transfer learning on a folder, a zip or builtin:NAME")
    t.add_argument("--data", required=True, help="folder of class folders, zip of them, or builtin:textures|faces|digits")
    t.add_argument("--model", default="tf_efficientnet_lite0", help="backbone (timm name)")
    t.add_argument("--mode", choices=["probe", "finetune", "full", "scratch"], default="probe")
    for flag, kind in (("--epochs", int), ("--batch-size", int), ("--lr", float), ("--weight-decay", float)):
        t.add_argument(flag, type=kind, default=None, help="default: the mode's (cvdemo.transfer.DEFAULTS)")
    t.add_argument("--val-fraction", type=float, default=0.2)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-seconds", type=float, default=None)
    t.add_argument("--augment", default=None, help="augmentation spec JSON file (the Augment tab's export)")
    t.add_argument("--out", default="runs/latest", help="output folder")
    t.set_defaults(run=cmd_train)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
