"""The package's shape: no import cycles inside chromalab, and every DVC stage depends on all of
the code it runs (so `dvc repro` reruns a stage whenever its code changes, and only then).

The imports are read from the source (module level and inside functions alike), not executed."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = SRC / "chromalab"


def module_files() -> dict[str, Path]:
    """{dotted name: file} for every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The chromalab modules a file imports, anywhere in it. A package whose __init__ imports its
    folder's modules by listing them (models/) imports each of them."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name.startswith("chromalab"):
                found.add(name)
    if path.name == "__init__.py" and "pkgutil.iter_modules" in path.read_text(encoding="utf-8"):
        prefix = ".".join(path.relative_to(SRC).parts[:-1]) + "."
        found |= {m for m in modules if m.startswith(prefix) and m.count(".") == prefix.count(".")}
    return found


def graph() -> dict[str, set[str]]:
    modules = module_files()
    edges = {name: imports_of(path, modules) - {name} for name, path in modules.items()}
    for name in modules:  # importing a.b runs a/__init__.py first
        parent = name.rpartition(".")[0]
        if parent:
            edges[name].add(parent)
    return edges


def closure(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += edges.get(name, ())
            parent = name.rpartition(".")[0]
            if parent.startswith("chromalab"):
                todo.append(parent)
    return seen


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_inside_chromalab():
    # A package's __init__ importing its own modules, which import the package back, is how
    # registration works (models/): that is the parent edge, not a cycle between concepts.
    edges = graph()
    without_parent_edges = {n: {m for m in targets if not n.startswith(m + ".")} for n, targets in edges.items()}
    assert cycles(without_parent_edges) == []


# The package's layers, lowest first, one folder of src/chromalab each: a module may import its own
# folder and the folders before it only. The command line (cli.py) sits above them all.
LAYERS = ("core", "data", "models", "colorizing", "scoring", "training", "report", "video", "serving")
TOP = "chromalab.cli"


def layer_of(module: str) -> int | None:
    """A module's layer: its folder's place in LAYERS (chromalab.models.unet: models)."""
    if module == "chromalab":  # the package's __init__ imports nothing
        return -1
    if module == TOP:
        return len(LAYERS)
    folder = module.split(".")[1]
    return LAYERS.index(folder) if folder in LAYERS else None


def upward(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((m, d) for m, targets in edges.items() for d in targets if layer_of(d) > layer_of(m))


def test_every_module_is_in_a_layer_folder():
    unplaced = sorted(m for m in graph() if layer_of(m) is None)
    assert unplaced == [], f"modules outside the layer folders {LAYERS}: {unplaced}"
    folders = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert folders == sorted(LAYERS), "a package folder that LAYERS does not place"


def test_layers_only_point_down():
    assert upward(graph()) == [], "imports pointing up a layer"


def test_the_layer_check_can_fail():
    edges = {"chromalab.core.paths": {"chromalab.training.train"}, "chromalab.training.train": {"chromalab.core.paths"}}
    assert upward(edges) == [("chromalab.core.paths", "chromalab.training.train")]
    assert layer_of("chromalab.stray") is None


def test_the_cycle_check_can_fail():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def stages() -> dict[str, dict]:
    """dvc.yaml's stages, a foreach expanded for one item (the deps do not depend on it)."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    out = {}
    for name, stage in dvc["stages"].items():
        if "foreach" in stage:
            stage = stage["do"]
        out[name] = stage
    return out


def uncovered(script: Path, deps: list[str], edges: dict[str, set[str]]) -> list[str]:
    """The files of chromalab the script runs that no dep (a file or a folder above it) covers."""
    modules = module_files()
    start = imports_of(script, modules)
    needed = {modules[m] for m in closure(start, edges)}
    dep_paths = [(REPO / d.replace("${item}", "x")).resolve() for d in deps]
    return sorted(str(f.relative_to(REPO)) for f in needed
                  if not any(f == d or d in f.parents for d in dep_paths))


def test_every_stage_depends_on_all_the_code_it_runs():
    edges = graph()
    missing = {}
    for name, stage in stages().items():
        script = REPO / stage["cmd"].split()[1]
        assert script.is_file() and str(script.relative_to(REPO)) in stage["deps"], name
        gaps = uncovered(script, stage["deps"], edges)
        if gaps:
            missing[name] = gaps
    assert missing == {}, f"dvc.yaml: stages that do not depend on code they run: {missing}"


def test_a_stage_depends_on_no_code_it_does_not_run():
    """Exactly the code: an extra module would rerun the stage for nothing."""
    edges, modules = graph(), module_files()
    extra = {}
    for name, stage in stages().items():
        script = REPO / stage["cmd"].split()[1]
        needed = {modules[m] for m in closure(imports_of(script, modules), edges)}
        for dep in stage["deps"]:
            path = (REPO / dep).resolve()
            if not dep.startswith("src/"):
                continue
            files = set(path.rglob("*.py")) if path.is_dir() else {path}
            if files - needed:
                extra.setdefault(name, []).append(dep)
    assert extra == {}, f"dvc.yaml: stages that depend on code they do not run: {extra}"


def test_the_deps_check_can_fail():
    edges = graph()
    script = REPO / "pipeline" / "prepare.py"
    assert "src/chromalab/core/color.py" in uncovered(script, ["pipeline/prepare.py", "src/chromalab/data/prepare.py"], edges)
