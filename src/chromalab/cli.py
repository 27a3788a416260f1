"""The `chromalab` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from chromalab.errors import EXIT_USER_ERROR, UserError, setup_logging


def _colorize(args) -> int:
    from chromalab import colorize

    files = colorize.expand_inputs(args.inputs)
    if not files:
        raise UserError("no image files among the inputs")
    runner, config = colorize.load(args.model, args.size, args.device)
    logging.getLogger("chromalab").info("model %s (%s -> %s), working size %d px",
                                        config["model"], config["network"], config["representation"], runner.size)
    args.out.mkdir(parents=True, exist_ok=True)
    failures = colorize.colorize_files(runner, files, args.out)
    for path, reason in failures:
        print(f"error: {reason}" if str(path) in reason else f"error: {path}: {reason}", file=sys.stderr)
    print(f"colorized {len(files) - len(failures)} of {len(files)} photo(s) into {args.out}", file=sys.stderr)
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chromalab", description="Train, compare and serve image colorization models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("colorize", help="colorize photos at full resolution",
                       description="Colorize image files and folders; each becomes OUT/<stem>.png at its original size.")
    c.add_argument("inputs", nargs="+", help="image files or folders (searched recursively)")
    c.add_argument("--out", type=Path, required=True, help="folder for the colorized PNGs")
    c.add_argument("--model", help="league name (e.g. unet) or checkpoint path; default: best test PSNR in reports/metrics.json")
    c.add_argument("--size", type=int, help="working size: the shorter side the model sees (default: its training size)")
    c.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    c.set_defaults(run=_colorize)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.debug)
    try:
        code = args.run(args)
    except UserError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        code = EXIT_USER_ERROR
    return code


if __name__ == "__main__":
    sys.exit(main())
