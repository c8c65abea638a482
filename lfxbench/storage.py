"""Atomic files and the on-disk caches of trained models and attributions.

Every write goes to a temporary file in the target folder and is renamed into place,
so an interrupted run (or two workers racing) never leaves a half-written file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, payload: Any) -> None:
    # Insertion order kept: a metric's groups and details read in the order it wrote them.
    atomic_write_text(path, json.dumps(payload, indent=2, default=str) + "\n")


def atomic_torch_save(path: Path, payload: Any) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


class Cache:
    """Content-addressed artefacts: ``models/<key>.pt`` and ``attributions/<key>.pt``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.pt"

    def load(self, kind: str, key: str) -> Any | None:
        path = self.path(kind, key)
        if not path.is_file():
            return None
        try:
            # Tensors and plain containers only: a cache file cannot run code.
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a corrupt entry is recomputed, not fatal
            return None

    def save(self, kind: str, key: str, payload: Any) -> None:
        atomic_torch_save(self.path(kind, key), payload)
