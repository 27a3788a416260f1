"""Where log lines go, set up in one place: a stage logs with time and module for its DVC log; the
CLI speaks to a person (`warning: …` for warnings, plain text for progress)."""

from __future__ import annotations

import logging
import sys

STAGE_FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"
TIME_FORMAT = "%H:%M:%S"
CHATTY = ("mlflow", "alembic", "urllib3", "matplotlib", "PIL")  # narrate every connection at INFO


def setup_stage(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=STAGE_FORMAT, datefmt=TIME_FORMAT)


class _ForPeople(logging.Formatter):
    def format(self, record):
        message = record.getMessage()
        return message if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {message}"


def setup_cli(quiet: bool, debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(STAGE_FORMAT, TIME_FORMAT) if debug else _ForPeople())
    handler.chromalab_cli = True
    root = logging.getLogger()
    # Replace only our own handler (the CLI's main() may run twice in one process, e.g. in tests).
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "chromalab_cli", False)] + [handler]
    root.setLevel(logging.DEBUG if debug else logging.ERROR if quiet else logging.INFO)
    if not debug:
        for name in CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)
