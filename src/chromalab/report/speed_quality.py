"""Quality against speed: each model's PSNR and ΔCF on the full-resolution photos (evaluate.photos)
against the seconds per megapixel its evaluate stage took to colorize them.

Speeds differ on every rerun, so the picture is a side file like the timings.json it is drawn from:
reports/speed_quality.svg, which git skips and nothing depends on (a tracked picture would dirty
the tree on every rerun). The report writes it whenever the evaluate stages of this workspace left
their timings, and its page shows it when the photos were scored.
"""

from __future__ import annotations

from pathlib import Path

from chromalab.core import atomic, timings
from chromalab.core.config import GREY

FILE = "speed_quality.svg"
SPEED = "photos_seconds_per_megapixel"  # what evaluate's photo pass records in timings.json


def scored_photos(records: list[dict]) -> bool:
    """Whether the league's photos were scored at full resolution (the page then shows the picture)."""
    return any("photos_psnr" in r for r in records if r["name"] != GREY)


def points(records: list[dict], eval_dir: Path) -> dict[str, tuple[float, dict]]:
    """{model: (seconds per megapixel, its record)} for the models with photo scores and a timing."""
    found = {}
    for record in records:
        if record["name"] == GREY or "photos_psnr" not in record:
            continue
        speed = timings.read(eval_dir / record["name"]).get(SPEED)
        if isinstance(speed, (int, float)) and speed > 0:
            found[record["name"]] = (float(speed), record)
    return found


def write(records: list[dict], reports_dir: Path, eval_dir: Path) -> Path | None:
    """Draw reports/speed_quality.svg from the timings, or remove a stale one when there are none."""
    from chromalab.report import figures

    found, path = points(records, eval_dir), reports_dir / FILE
    if not found:
        path.unlink(missing_ok=True)
        return None
    grey = next((r for r in records if r["name"] == GREY and "photos_psnr" in r), None)
    atomic.write_bytes(path, figures.speed_quality_figure(found, grey))
    return path
