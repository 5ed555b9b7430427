"""The import paths: v6 (lazy), v6.utils and v6.utils.ib_connection (the plan's, re-exports)."""

from __future__ import annotations

import subprocess
import sys


def test_the_plans_import_paths_re_export_the_core() -> None:
    import v6
    import v6.connection as core
    import v6.manager as shell
    from v6.utils import CircuitBreaker, CircuitState, ConnectionState, IBConnectionManager
    from v6.utils.ib_connection import IBConnectionManager as FromModule

    assert IBConnectionManager is FromModule is shell.IBConnectionManager is v6.IBConnectionManager
    assert CircuitBreaker is v6.CircuitBreaker is core.CircuitBreaker
    assert CircuitState is v6.CircuitState
    assert ConnectionState is v6.ConnectionState
    assert v6.errors.ConfigError.__module__ == "v6.errors"


def test_importing_v6_errors_does_not_import_ib_async() -> None:
    code = "import sys, v6.errors, v6; assert 'ib_async' not in sys.modules, 'ib_async loaded'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_two_public_classes_or_functions_share_a_name() -> None:
    """Across src/v6, a public module-level class or function name means one thing."""
    import ast
    from collections import defaultdict
    from pathlib import Path

    where: dict[str, list[str]] = defaultdict(list)
    src = Path(__file__).resolve().parent.parent / "src" / "v6"
    for path in sorted(src.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            defined = isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            if defined and not node.name.startswith("_"):
                where[node.name].append(str(path.relative_to(src)))
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}
