"""Command line: `python -m cvdemo classify IMG...` (more subcommands arrive with each lesson)."""
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
        print(f"{path}  ({classifier.name}, {classifier.runtime}, {ms:.1f} ms)")
        for label, prob in top:
            print(f"  {prob:6.1%}  {label}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cvdemo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("classify", help="print the top-k classes of each image")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--model", default=None, help="model name (default: efficientnet_lite0, offline)")
    p.add_argument("--top-k", type=int, default=5)
    p.set_defaults(run=cmd_classify)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
