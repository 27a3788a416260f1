"""Paired comparisons of evaluations on the same test images: the recommended model against the
others of one run (the report), or one run against another (`chromalab compare A B`: two commits,
two DVC experiments, or two workspaces' reports/ folders).

Both sides must have scored the same images (per_image.csv lists them): a paired bootstrap over
different images would compare the images, not the models.
"""

from __future__ import annotations

import io
import math
import subprocess
from pathlib import Path

from chromalab.core import paths
from chromalab.core.errors import UserError
from chromalab.report.records import EVAL_SUBDIR, read_per_image
from chromalab.scoring import uncertainty

PAIRED = ("psnr", "delta_colorfulness", "semantic_agreement")
# The colour cast (metrics.colour_cast), pooled over pixels: from per_image.csv files that have it.
PAIRED_CAST = ("neutral_chroma", "b_bias")
TITLES = {"psnr": "PSNR (dB)", "delta_colorfulness": "abs(ΔCF)", "semantic_agreement": "agreement",
          "neutral_chroma": "neutral chroma", "b_bias": "b* bias"}


def versus(a: dict, b: dict, seed: int = 0, draws: int = uncertainty.DRAWS) -> dict:
    """{statistic: paired result} of a minus b for each statistic both sides carry (and that is
    defined: no neutral chroma where no test pixel is neutral)."""
    if list(a["image"]) != list(b["image"]):
        raise UserError(f"paired comparison: the two evaluations scored different test images "
                        f"({len(a['image'])} and {len(b['image'])}); compare runs of the same prepared data")
    found = {name: uncertainty.paired(a, b, name, seed, draws) for name in (*PAIRED, *PAIRED_CAST)
             if all(k in a and k in b for k in uncertainty.needs(name))}
    return {name: result for name, result in found.items() if math.isfinite(result["difference"])}


class Source:
    """Where one side's reports/ come from: a folder on disk, or a git revision (a commit, a
    branch, a tag or a DVC experiment's name) read with `git show`, without a checkout."""

    def __init__(self, spec: str, root: Path):
        self.spec, self.root = spec, root
        folder = Path(spec)
        self.folder = folder if (folder / EVAL_SUBDIR).is_dir() else None
        self.revision = None if self.folder else _resolve(spec, root)

    def text(self, relative: str) -> str | None:
        if self.folder:
            path = self.folder / relative
            return path.read_text(encoding="utf-8") if path.is_file() else None
        done = subprocess.run(["git", "show", f"{self.revision}:{paths.REPORTS.as_posix()}/{relative}"], cwd=self.root,
                              capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else None

    def per_image(self, model: str) -> dict | None:
        text = self.text(f"{EVAL_SUBDIR.as_posix()}/{model}/per_image.csv")
        if text is None:
            return None
        return read_per_image(io.StringIO(text), f"{self.spec}: {model}/per_image.csv")


def _resolve(spec: str, root: Path) -> str:
    """A git revision for `spec`: itself, or the DVC experiment of that name (refs/exps/...)."""
    if subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"], cwd=root,
                      capture_output=True).returncode == 0:
        return spec
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], cwd=root,
                          capture_output=True, text=True).stdout.split()
    found = [r for r in refs if r.rsplit("/", 1)[-1] == spec]
    if len(found) == 1:
        return found[0]
    raise UserError(f"compare: {spec!r} is neither a folder holding {EVAL_SUBDIR}/, a git revision, nor "
                    f"one DVC experiment's name" + (f" ({len(found)} experiments have it)" if found else ""))


def compare(spec_a: str, spec_b: str, models: list[str] | None, root: Path, seed: int = 0) -> list[dict]:
    """For each model both sides evaluated (or those named): b minus a, paired, per statistic."""
    a, b = Source(spec_a, root), Source(spec_b, root)
    names = models or sorted(_models(a) & _models(b))
    if not names:
        raise UserError(f"compare: {spec_a} and {spec_b} have no evaluated model in common "
                        f"(per_image.csv, written by the evaluate stage)")
    rows = []
    for name in names:
        left, right = a.per_image(name), b.per_image(name)
        if left is None or right is None:
            raise UserError(f"compare: {name}: no per_image.csv in {spec_a if left is None else spec_b}")
        if left["image"] != right["image"]:
            raise UserError(f"compare: {name}: {spec_a} scored {len(left['image'])} test images, {spec_b} "
                            f"{len(right['image'])}{' other ones' if len(left['image']) == len(right['image']) else ''}; "
                            "compare runs of the same prepared data")
        rows.append({"model": name, "images": len(left["image"]), **versus(right, left, seed)})
    return rows


def _models(source: Source) -> set[str]:
    if source.folder:
        return {p.parent.name for p in (source.folder / EVAL_SUBDIR).glob("*/per_image.csv")}
    done = subprocess.run(["git", "ls-tree", "-r", "--name-only", source.revision, f"{paths.EVAL.as_posix()}/"],
                          cwd=source.root, capture_output=True, text=True)
    return {Path(p).parent.name for p in done.stdout.split() if p.endswith("/per_image.csv")}


def render(rows: list[dict], spec_a: str, spec_b: str) -> str:
    """The comparison as a text table: B minus A with its 95 % interval."""
    shown = [*PAIRED, *(k for k in PAIRED_CAST if any(k in row for row in rows))]
    lines = [f"{spec_b} minus {spec_a}: paired bootstrap over the same test images, 95 % interval; "
             "* = significant (the interval leaves out 0)",
             f"{'model':16} {'images':>6}  " + "  ".join(f"{TITLES[k]:>26}" for k in shown)]
    for row in rows:
        cells = []
        for key in shown:
            v = row.get(key)
            cells.append(f"{v['difference']:+7.3f} [{v['ci'][0]:+.3f}, {v['ci'][1]:+.3f}]{'*' if v['significant'] else ' '}"
                         if v else "—")
        lines.append(f"{row['model']:16} {row['images']:>6}  " + "  ".join(f"{c:>26}" for c in cells))
    return "\n".join(lines)
