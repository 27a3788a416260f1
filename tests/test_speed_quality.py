"""The report's quality-against-speed picture: drawn from the evaluate stages' timings.json, a side
file that git ignores, removed when no timing is left to draw it from."""

import subprocess
from pathlib import Path

from chromalab.core import timings
from chromalab.report import speed_quality

REPO = Path(__file__).resolve().parents[1]


def _record(name, psnr, dcf):
    return {"name": name, "photos_psnr": psnr, "photos_psnr_ci": {"low": psnr - 0.5, "high": psnr + 0.4},
            "photos_delta_colorfulness": dcf}


def test_the_picture_follows_the_timings_and_stays_out_of_git(tmp_path):
    reports, eval_dir = tmp_path / "reports", tmp_path / "reports" / "eval"
    records = [_record("fast", 20.5, 12.0), _record("slow", 21.0, 30.0), _record("untimed", 19.0, 5.0),
               {"name": "plain"}, _record("grey", 18.8, 60.0)]
    for name, speed in (("fast", 0.11), ("slow", 0.93), ("grey", 0.01)):
        timings.write(eval_dir / name, {speed_quality.SPEED: speed, "images_per_second": 10.0})
    timings.write(eval_dir / "plain", {"images_per_second": 10.0})
    found = speed_quality.points(records, eval_dir)
    assert {n: s for n, (s, _) in found.items()} == {"fast": 0.11, "slow": 0.93}  # no grey, no untimed
    assert speed_quality.scored_photos(records) and not speed_quality.scored_photos([{"name": "plain"}])
    path = speed_quality.write(records, reports, eval_dir)
    svg = path.read_text()
    assert path == reports / speed_quality.FILE and "fast" in svg and "slow" in svg and "grey input" in svg
    assert "untimed" not in svg
    # Nothing left to draw from (the evaluate stages ran elsewhere): the stale picture goes.
    for name in ("fast", "slow"):
        (eval_dir / name / timings.FILE).unlink()
    assert speed_quality.write(records, reports, eval_dir) is None and not path.exists()


def test_git_ignores_the_picture_and_the_timings():
    ignored = subprocess.run(["git", "check-ignore", "reports/speed_quality.svg", "reports/eval/unet/timings.json"],
                             cwd=REPO, capture_output=True, text=True)
    assert ignored.stdout.split() == ["reports/speed_quality.svg", "reports/eval/unet/timings.json"]
