"""The import structure: layers that only point down, no circles, no oversized package.

Every import counts, including those inside functions and under TYPE_CHECKING: a lazy import is
still a dependency. The layers are docs/ARCHITECTURE.md's, top to bottom.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engineforge", "flows", "tasks")

# Top to bottom; a module may import its own layer (no circle) and any layer below it.
LAYERS: list[tuple[str, ...]] = [
    ("engineforge.cli",),
    ("flows",),
    ("tasks",),
    ("engineforge.orchestration",),
    ("engineforge.stages",),
    ("engineforge.runtimes",),
    ("engineforge.measure", "engineforge.verify", "engineforge.sweep"),
    ("engineforge.loadgen", "engineforge.checkpoint", "engineforge.planner", "engineforge.packaging", "engineforge.quantize",
     "engineforge.recipe_checks", "engineforge.predict"),
    ("engineforge.artifacts", "engineforge.sources", "engineforge.processes", "engineforge.tracking"),
    ("engineforge.recipe", "engineforge.model", "engineforge.stage_result", "engineforge.stage_plan", "engineforge.gpus",
     "engineforge.versions", "engineforge.errors", "engineforge.settings", "engineforge.runtime_traits", "engineforge"),
]
MAX_SHARE = 0.15  # of all lines, for any one module or package


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The known modules `name` imports (a `from package import module` names the module)."""
    targets: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
                break  # `from a.b import c`: the most specific module found is the dependency
    return targets


def layer_of(name: str) -> int:
    best, index = "", None
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > len(best):
                best, index = prefix, i
    assert index is not None, f"{name} is in no declared layer; add it to LAYERS and docs/ARCHITECTURE.md"
    return index


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles():
    assert circles(graph()) == []


def test_no_import_circles_between_packages():
    # A package (or a root module) taken whole: a module kept in the package of its subject but read from a
    # layer below the package's (stage_result in stages/, read by the runtimes) would tie two packages both ways.
    def package(name: str) -> str:
        parts = name.split(".")
        return ".".join(parts[:2]) if parts[0] == "engineforge" else parts[0]

    packages: dict[str, set[str]] = {}
    for source, targets in graph().items():
        packages.setdefault(package(source), set()).update(package(target) for target in targets)
    edges = {name: targets - {name} for name, targets in packages.items()}
    assert circles(edges) == []


def test_imports_only_point_down_the_layers():
    upward = [f"{source} -> {target}" for source, targets in graph().items() for target in targets
              if layer_of(target) < layer_of(source)]
    assert upward == []


def test_no_module_or_package_holds_more_than_15_percent_of_the_lines():
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    total = sum(sizes.values())
    groups: dict[str, int] = {}
    for name, lines in sizes.items():
        parts = name.split(".")
        for depth in range(2, len(parts) + 1):  # every package below the top level, and the module itself
            groups[".".join(parts[:depth])] = groups.get(".".join(parts[:depth]), 0) + lines
    oversized = {name: round(lines / total, 3) for name, lines in groups.items() if lines / total > MAX_SHARE}
    assert oversized == {}


def test_the_checker_sees_a_circle_and_an_upward_import():
    # The checks above can fail: a two-module circle is found, and the store importing a stage is upward.
    assert circles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert layer_of("engineforge.stages.build") < layer_of("engineforge.artifacts.store")
