"""The git commit a run was made from (for lineage and MLflow tags)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def head(root: Path) -> tuple[str, str]:
    """(commit, subject) of HEAD, or ("unknown", "") outside a git checkout."""
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%H%n%s"], cwd=root, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown", ""
    lines = out.stdout.splitlines() if out.returncode == 0 else []
    return (lines[0], lines[1] if len(lines) > 1 else "") if lines else ("unknown", "")
