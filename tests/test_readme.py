"""The README quotes the defaults; this keeps the two in step."""

from __future__ import annotations

import re
from pathlib import Path

from v6.connection import defaults

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_defaults_table_matches_the_constants() -> None:
    rows = re.findall(r"^\| [^|]+ \| `(DEFAULT_\w+)` \| `([^`]+)` \|$", README.read_text(), re.M)
    assert len(rows) >= 10
    for name, shown in rows:
        assert str(getattr(defaults, name)) == shown, name
