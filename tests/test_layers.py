"""The package's structure: layers that only import downward, so there is no import cycle.

Every ``import`` in ``gptedu`` (at module level or inside a function: a lazy import is still a dependency) is read
from the source with ``ast``; no module is executed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gptedu

ROOT = Path(gptedu.__file__).parent

# The core package, bottom to top: a module may import only from its own layer's lower entries or lower layers.
# (Within a layer, order is not checked; the cycle test below covers it.) gptedu.grading sits on top of all of it.
LAYERS = [
    ["gptedu.configs", "gptedu.corpus"],  # no torch, no other gptedu module
    ["gptedu.data", "gptedu.device", "gptedu.distributed", "gptedu.sampling"],  # torch; the basics
    ["gptedu.char", "gptedu.gpt2"],  # the two model families
    ["gptedu.checkpoint", "gptedu.plots"],  # saving and loading models, drawing them
    ["gptedu.trainer"],
    ["gptedu.cli", "gptedu.__main__"],
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The gptedu modules ``path`` imports (``from gptedu.x import y`` counts as gptedu.x and gptedu.x.y)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", "") == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(node.args[0].value)
    return {m for m in found if m == "gptedu" or m.startswith("gptedu.")}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def layer_of(module: str) -> int | None:
    for level, members in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members):
            return level
    return None


def test_the_core_package_has_no_import_cycle():
    core = {m: deps for m, deps in graph().items() if not m.startswith("gptedu.grading")}
    assert cycles(core) == []


def test_core_modules_only_import_downward():
    upward = []
    for module, deps in graph().items():
        level = layer_of(module)
        if level is None:
            continue
        for dep in deps:
            dep_level = layer_of(dep)
            if dep_level is not None and dep_level > level:
                upward.append(f"{module} (layer {level}) imports {dep} (layer {dep_level})")
    assert upward == []


def test_every_core_module_has_a_layer():
    unplaced = [m for m in graph() if m != "gptedu" and not m.startswith("gptedu.grading") and layer_of(m) is None]
    assert unplaced == [], "place new modules in LAYERS"


def test_the_bottom_layer_needs_no_torch():
    """configs and corpus are read before PyTorch loads (the command line's checks rely on it)."""
    for module in ("gptedu.configs", "gptedu.corpus"):
        path = ROOT / (module.split(".")[1] + ".py")
        names = {n.names[0].name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Import)}
        names |= {n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)}
        assert not any(str(n).split(".")[0] in ("torch", "numpy") for n in names), module


def test_the_cycle_finder_finds_a_cycle():
    """The check above can fail: a cycle like the old trainer <-> checkpoint <-> configs is reported."""
    old = {"gptedu.trainer": {"gptedu.checkpoint", "gptedu.configs"}, "gptedu.checkpoint": {"gptedu.trainer"},
           "gptedu.configs": {"gptedu.trainer"}, "gptedu.data": set()}  # fmt: skip
    assert cycles(old) == [["gptedu.checkpoint", "gptedu.configs", "gptedu.trainer"]]
