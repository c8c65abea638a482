from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def tiny_suite(tmp_path: Path) -> Path:
    """A copy of the tiny suite (and its plugin file) in a scratch folder."""
    for name in ("tiny.yaml", "user_plugin.py"):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path / "tiny.yaml"
