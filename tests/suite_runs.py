"""``lfxbench run`` as the CLI-level tests call it (a module of its own: two conftest.py
files share the module name ``conftest``, so neither can be imported reliably)."""

from __future__ import annotations

from pathlib import Path

from lfxbench.cli import main


def run(suite: Path, tmp_path: Path, *extra: str) -> int:
    """``lfxbench run suite`` into ``tmp_path/runs`` with its caches in ``tmp_path/cache``."""
    return main(
        [
            "run",
            str(suite),
            "--out",
            str(tmp_path / "runs"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--quiet",
            *extra,
        ]
    )
