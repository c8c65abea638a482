"""lfxbench from Python: ``run`` a suite (a file, a shipped suite's name or a dict), or
``evaluate`` an encoder of your own on your own tensors, with the command line's
validation, caches and timing.

>>> run("smoke").leaderboard()                      # doctest: +SKIP
>>> evaluate(encoder, inputs, methods=["saliency"])  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from lfxbench.errors import LfxbenchError
from lfxbench.execution.executors import EXECUTORS
from lfxbench.execution.runner import Runner, default_cache_dir
from lfxbench.report.results import load_results, write_run
from lfxbench.storage import atomic_write_bytes
from lfxbench.suite import Suite, load_suite, validate_suite
from lfxbench.suite_checks import SAFE_NAME, SAFE_NAME_RULE
from lfxbench.suite_yaml import find_suite


@dataclasses.dataclass
class Run:
    """A finished run: its suite, run directory, cell records and the files written."""

    suite: Suite
    run_dir: Path
    records: list[dict[str, Any]]
    environment: dict[str, Any]
    written: dict[str, Path]

    @property
    def results(self) -> pd.DataFrame:
        """One tidy row per measurement, as ``results.csv``."""
        return load_results(self.run_dir)

    def leaderboard(self, format: str = "md") -> str:
        """The leaderboard as Markdown, CSV or HTML text."""
        return (self.run_dir / f"leaderboard.{format}").read_text()


def check_writable_folder(flag: str, folder: Path) -> None:
    """Before any model trains: an output folder that cannot be one, or cannot be written."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None:  # a relative path under a missing working directory
        return
    if not existing.is_dir():
        raise LfxbenchError(f"{flag} {str(folder)!r}: {str(existing)!r} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise LfxbenchError(f"{flag} {str(folder)!r}: {str(existing)!r} is not writable")


def run(
    suite: str | Path | dict[str, Any],
    *,
    overrides: Sequence[str] = (),
    out: str | Path = "runs",
    run_name: str | None = None,
    cache_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    device: str | None = None,
    executor: str | None = None,
    progress: bool = False,
) -> Run:
    """Run a suite (``lfxbench run``): every unfinished cell, then the results and the
    leaderboard in ``out/<run_name or suite name>/``."""
    if isinstance(suite, dict):
        validated = validate_suite(suite, source="<dict>")
    else:
        validated = load_suite(find_suite(suite), tuple(overrides))
    if run_name is not None and not SAFE_NAME.fullmatch(run_name):
        raise LfxbenchError(f"--run-name {run_name!r} cannot be used: {SAFE_NAME_RULE}")
    out = Path(out)
    run_dir = out / (run_name or validated.name)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    for flag, folder in (("--out", out), ("--cache-dir", cache)):
        check_writable_folder(flag, folder)
    runner = Runner(
        validated,
        run_dir,
        cache_dir=cache,
        data_dir=Path(data_dir) if data_dir else None,
        device=device,
        progress=progress,
    )
    records = runner.run(EXECUTORS[executor or validated.executor])
    written = write_run(run_dir, validated, records, runner.environment)
    return Run(validated, run_dir, records, runner.environment, written)


def _stored(folder: Path, prefix: str, data: bytes, identity: bytes | None = None) -> Path:
    """``data`` in ``folder`` under the hash of ``identity`` (default: the data), written
    once: the same encoder or tensors give the same file, hence the same cache keys."""
    digest = hashlib.sha256(data if identity is None else identity).hexdigest()[:16]
    path = folder / f"{prefix}-{digest}.pt"
    if not path.is_file():
        atomic_write_bytes(path, data)
    return path


def _encoder_identity(encoder: nn.Module) -> bytes:
    """Which encoder it is: its class, its modules and its weights (``torch.jit.save`` gives
    other bytes for the same network every time)."""
    digest = hashlib.sha256(f"{type(encoder).__module__}.{type(encoder).__qualname__}".encode())
    digest.update(repr(encoder).encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.digest()


def evaluate(
    encoder: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    train_inputs: torch.Tensor | None = None,
    train_labels: torch.Tensor | None = None,
    methods: Sequence[str | dict[str, Any]] = ("saliency", "integrated_gradients", "random"),
    metrics: Sequence[str | dict[str, Any]] = ("latent_shift",),
    seeds: Sequence[int] = (0,),
    baseline: str | dict[str, Any] = "black",
    batch_size: int = 256,
    device: str = "auto",
    out: str | Path = "runs",
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Explain ``encoder`` on ``inputs`` with ``methods`` and score them with ``metrics``:
    tidy rows as ``results.csv``. The encoder is traced (``torch.jit.trace``) and stored with
    the tensors under the cache directory by content, so a second call reuses every cached
    explanation. ``train_inputs`` (default: ``inputs``) is the data methods and mean baselines
    learn from; labels are for metrics that need them (``similarity_rate``)."""
    folder = (Path(cache_dir) if cache_dir else default_cache_dir()) / "evaluate"
    inputs = inputs.detach().cpu()
    was_training = encoder.training
    with torch.no_grad():
        traced = torch.jit.trace(encoder.eval().cpu(), inputs[: min(2, len(inputs))])
    encoder.train(was_training)
    archive = io.BytesIO()
    torch.jit.save(traced, archive)
    tensors = {"x_train": inputs if train_inputs is None else train_inputs.detach().cpu()}
    tensors["x_test"] = inputs
    for name, values in (
        ("y_test", labels),
        ("y_train", train_labels if train_inputs is not None else labels),
    ):
        if values is not None:
            tensors[name] = values.detach().cpu().long()
    data = io.BytesIO()
    torch.save(tensors, data)
    suite = {
        "name": "evaluate",
        "device": device,
        "seeds": list(seeds),
        "batch_size": batch_size,
        "datasets": [
            {
                "id": "data",
                "name": "tensor_file",
                "params": {"path": str(_stored(folder, "data", data.getvalue()))},
            }
        ],
        "models": [
            {
                "id": "encoder",
                "name": "scripted_encoder",
                "dataset": "data",
                "checkpoint": str(
                    _stored(folder, "encoder", archive.getvalue(), _encoder_identity(encoder))
                ),
                "train": False,
                "baseline": baseline,
            }
        ],
        "methods": list(methods),
        "metrics": list(metrics),
    }
    return run(suite, out=out, cache_dir=cache_dir).results
