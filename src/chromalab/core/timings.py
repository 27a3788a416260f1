"""What a stage run measured of itself: seconds and images per second.

They differ on every rerun, so they never go inside an output DVC or git compares byte for byte
(a rerun of an unchanged pipeline would then dirty the tree). Each goes to a `timings.json`
beside the outputs, which .dvcignore and .gitignore both skip; MLflow gets the same figures.
Speed comparisons between models come from `make bench`, under controlled conditions.
"""

from __future__ import annotations

from pathlib import Path

from chromalab.core import atomic
from chromalab.core.errors import UserError

FILE = "timings.json"


def write(folder, values: dict) -> None:
    atomic.write_json(Path(folder) / FILE, values)


def read(folder) -> dict:
    """The timings recorded in `folder`, {} when none were."""
    try:
        return atomic.read_json(Path(folder) / FILE) or {}
    except (OSError, UserError):
        return {}
