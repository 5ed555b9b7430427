"""The promises of v6.testing's docstrings about imports: no module of v6.testing takes part in an
import cycle, and the fake gateway and the simulated broker stand on the pure layers only (the
broker below the gateway). Read from the source (``ast``), TYPE_CHECKING imports included."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
TESTING = SRC / "v6" / "testing"
PURE_LAYERS = ("v6.protocol", "v6.errors", "v6.validation")
ALLOWED = {
    "v6.testing.broker": ("loguru", *PURE_LAYERS),
    "v6.testing.gateway": ("loguru", *PURE_LAYERS, "v6.testing.broker"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (``from a import b``: ``a.b`` and ``a``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


MODULES = {module_name(p): p for p in TESTING.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    return {name: imported(path) & MODULES.keys() - {name} for name, path in MODULES.items()}


def test_no_module_of_v6_testing_is_in_an_import_cycle() -> None:
    graph = import_graph()
    on_path: list[str] = []
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(name: str) -> None:
        if name in on_path:
            cycles.append([*on_path[on_path.index(name) :], name])
            return
        if name in done:
            return
        on_path.append(name)
        for dependency in sorted(graph[name]):
            visit(dependency)
        on_path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
    assert cycles == []


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_gateway_and_broker_import_only_the_pure_layers(package: str) -> None:
    allowed = (package, *ALLOWED[package])
    stdlib = sys.stdlib_module_names | {"__future__"}
    wrong = {
        f"{name}: {target}"
        for name, path in MODULES.items()
        if name == package or name.startswith(package + ".")
        for target in imported(path)
        if target.split(".")[0] not in stdlib
        and not any(target == a or target.startswith(a + ".") for a in allowed)
    }
    assert wrong == set()
