from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lfxbench.cli import main

DATA = Path(__file__).parent / "data"


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


@pytest.fixture
def tiny_suite(tmp_path: Path) -> Path:
    """A copy of the tiny suite (and its plugin file) in a scratch folder."""
    for name in ("tiny.yaml", "user_plugin.py"):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path / "tiny.yaml"
