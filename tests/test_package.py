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
