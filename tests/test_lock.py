"""The committed dvc.lock matches the code and params it records: otherwise a new user's first
`make repro` retrains what the last commit changed without rerunning (issue: a stale lock). Checked
the way `dvc status` checks, with DVC's own hashing, for the code and params dependencies only:
fast, and no data needed."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def stale_dependencies(root: Path) -> dict[str, list[str]]:
    """{stage: [the code or params dependencies whose hash or values differ from dvc.lock's]}."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    stale = {}
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            for dep in stage.deps:
                if isinstance(dep, ParamsDependency) or str(dep.def_path).startswith(("src/", "pipeline/")):
                    for path, change in (dep.status() or {}).items():
                        stale.setdefault(stage.name, []).append(f"{path} {change}")
    return stale


def test_the_committed_lock_matches_the_code_and_params():
    stale = stale_dependencies(REPO)
    assert stale == {}, ("dvc.lock is stale: run `make repro` and commit dvc.lock; "
                         + "; ".join(f"{stage}: {', '.join(deps)}" for stage, deps in sorted(stale.items())))


def test_the_check_sees_a_changed_file(tmp_path):
    import shutil
    import subprocess
    import sys

    for item in ("dvc.yaml", "dvc.lock", "params.yaml", ".dvcignore", "pipeline", "src"):
        source = REPO / item
        shutil.copytree(source, tmp_path / item, ignore=shutil.ignore_patterns("__pycache__")) if source.is_dir() \
            else shutil.copy(source, tmp_path / item)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    dvc = Path(sys.executable).parent / "dvc"
    subprocess.run([str(dvc), "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([str(dvc), "config", "core.analytics", "false"], cwd=tmp_path, check=True)
    before = stale_dependencies(tmp_path)
    with open(tmp_path / "src/chromalab/core/paths.py", "a") as f:
        f.write("\n# a change\n")
    params = (tmp_path / "params.yaml").read_text().replace("  count: 8 ", "  count: 9 ")
    (tmp_path / "params.yaml").write_text(params)
    after = stale_dependencies(tmp_path)
    assert "src/chromalab/core/paths.py modified" in after["download"] and "src/chromalab/core/paths.py modified" \
        not in before.get("download", [])
    assert any("params.yaml" in d for d in after["neutral_released"])
    assert not any("params.yaml" in d for d in before.get("neutral_released", []))


def test_bytecode_caches_do_not_count_as_code():
    """src/chromalab/models/__pycache__ embeds each file's mtime: counted, a fresh clone's code
    would differ from every lock."""
    ignored = (REPO / ".dvcignore").read_text().split()
    assert "__pycache__/" in ignored
