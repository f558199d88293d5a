"""The package's folders are layers: a module imports only from its own layer and the ones below,
and no two modules import each other, however indirectly (TYPE_CHECKING and function-level imports
count: an import hidden from the run time is still a dependency a reader must follow)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "harness" / "coexist"
# bottom to top; "" is the faces on top: cli, pytest_plugin, preflight
LAYERS = ("base", "sandbox", "images", "net", "host", "guest", "scenario", "report", "run", "")


def module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1] if len(parts) > 2 and parts[1] in LAYERS else "")


def imports() -> dict[str, set[str]]:
    """module -> the coexist modules it imports (`from coexist.x import y`: y if it is a module)."""
    modules = {module_of(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"{node.module}.{a.name}" for a in node.names]
                graph[name] |= {t if t in modules else node.module for t in targets}
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names}
            assert not (isinstance(node, ast.ImportFrom) and node.level), f"{path}: relative import"
        graph[name] = {t for t in graph[name] if t.split(".")[0] == "coexist" and t != name}
    return graph


def test_every_module_imports_only_its_own_layer_and_the_ones_below() -> None:
    upward = [f"{module} ({LAYERS[layer(module)] or 'faces'}) imports {target} "
              f"({LAYERS[layer(target)] or 'faces'})"
              for module, targets in imports().items() for target in targets
              if layer(target) > layer(module) and not target.endswith("__init__")]
    assert upward == []


def test_no_import_cycles() -> None:
    graph = imports()
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, "import cycle: " + " -> ".join((*path[path.index(module):], module))
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


def test_every_layer_is_a_folder_and_every_folder_a_layer() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(LAYERS) - {""}
