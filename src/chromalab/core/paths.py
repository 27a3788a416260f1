"""Where each stage reads and writes, relative to the repository root (dvc.yaml declares the same)."""

import os
from pathlib import Path

RAW = Path("data/raw")  # download: images/ + manifest.csv (+ rejected.csv)
PREPARED = Path("data/prepared")  # prepare: {split}_L.npy, {split}_ab.npy, manifest.csv, summary.json
PALETTE = Path("data/palette")  # palette: kmeans.json, gamut.json
MODELS = Path("data/models")  # train: MODEL/best.pt, MODEL/last.pt, MODEL/run.json
REPORTS = Path("reports")
EVAL = REPORTS / "eval"  # evaluate: MODEL/metrics.json, MODEL/gallery/*.png
CONFIDENCE_SUFFIX = ".confidence.png"  # evaluate: MODEL/gallery/NN.confidence.png, the map beside NN.png
TRAIN_REPORTS = REPORTS / "train"  # train: MODEL/history.csv (dvc plots)
# train: MODEL/state.pt, a killed run's resumable state; not a DVC output, so a rerun finds it
RESUME = Path("data/resume")


def repo_root(start=None) -> Path:
    """The pipeline's root: DVC_ROOT inside a stage, else the nearest folder holding dvc.yaml."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"])
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    return here


def shown(path) -> str:
    """A path as a user reads it in a log line: relative to the working directory when below it
    (transcripts then hold no machine's absolute path), else as it is."""
    path = Path(path)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)
