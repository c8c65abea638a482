"""Atomic files, the on-disk caches of trained models and attributions, and the checks a
file must pass before anything trusts it.

Every write goes to a temporary file in the target folder and is renamed into place,
so an interrupted run (or two workers racing) never leaves a half-written file. A write
that the system refuses (read-only folder, full disk, a file where a folder should be) is
an ``LfxbenchError`` naming the path. A cell or cache file that does not load or does not
fit what it should hold is reported with a ``CorruptFileWarning`` naming it and treated
as absent: it is recomputed, never used.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import secrets
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lfxbench.errors import LfxbenchError


def stable_hash(payload: Any, length: int = 16) -> str:
    """Hash of a JSON-able payload, independent of key order: the root of every cache key."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@functools.lru_cache(maxsize=256)
def _file_sha256(path: Path, size: int, modified_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """A file's content hash (recomputed only when its size or time changes)."""
    status = Path(path).stat()
    return _file_sha256(Path(path), status.st_size, status.st_mtime_ns)


# Exclusive, binary, never through a planted symbolic link: what mkstemp asks for.
_NEW_FILE_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


class CorruptFileWarning(UserWarning):
    """A cell or cache file that does not load or does not fit: it is recomputed."""


def _warn_unusable(path: Path, problem: str) -> None:
    warnings.warn(f"{path}: {problem}; recomputing it", CorruptFileWarning, stacklevel=3)


def _os_reason(error: OSError, folder: Path, *own_paths: Path | None) -> str:
    """``[Errno N] reason``, plus the path the system names when it is not one of ours
    (never the hidden temporary file's), or the file that stands where ``folder`` or one
    of its parents should be (``--out`` given a file)."""
    reason = f"[Errno {error.errno}] {error.strerror}" if error.errno else str(error)
    if isinstance(error, (NotADirectoryError, FileExistsError)):
        for candidate in [*reversed(folder.parents), folder]:
            if candidate.exists() and not candidate.is_dir():
                return f"{reason} ({candidate} is a file, not a folder)"
    if error.filename is not None and Path(os.fsdecode(error.filename)) not in own_paths:
        reason += f": {os.fsdecode(error.filename)}"
    return reason


def make_folder(folder: Path) -> None:
    """``folder`` and its parents, or an error naming it (e.g. ``--out`` is a file)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LfxbenchError(
            f"cannot create {folder}: {_os_reason(error, folder, folder)}"
        ) from error


def _new_temporary(folder: Path, name: str) -> tuple[int, Path]:
    # Mode 0o666 as open() gives it, so the kernel applies the umask (and a folder's
    # default ACL) itself: mkstemp's 0o600 hides a shared cache or a served leaderboard
    # from everyone else, and reading the umask means setting it, process-wide and racy.
    for _ in range(100):
        temporary = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(temporary, _NEW_FILE_FLAGS, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name for {name} in {folder}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path, temporary = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = _new_temporary(path.parent, path.name)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        if temporary is not None:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise LfxbenchError(
                f"cannot write {path}: {_os_reason(error, path.parent, path, temporary)}"
            ) from error
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


# -- finished cells ----------------------------------------------------------------------

_NUMBER = (int, float)
# What collecting the records reads (older optional fields, e.g. `samples`, are defaulted).
CELL_FIELDS: dict[str, type | tuple[type, ...]] = {
    "suite": str,
    "model": str,
    "dataset": str,
    "method": str,
    "metric": str,
    "seed": int,
    "value": _NUMBER,
    "direction": str,
    "cell_key": str,
    "curve": list,
    "curve_axes": list,
    "details": dict,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER) and not isinstance(value, bool)


def _cell_problem(record: Any, key: str) -> str | None:
    if not isinstance(record, dict):
        return f"holds a JSON {type(record).__name__}, not a cell record"
    for field, kind in CELL_FIELDS.items():
        if field not in record:
            return f"lacks the field {field!r}"
        value = record[field]
        if not isinstance(value, kind) or isinstance(value, bool):  # JSON true is no number
            allowed = kind.__name__ if isinstance(kind, type) else "number"
            return f"field {field!r} is {value!r}, not a {allowed}"
    if record["cell_key"] != key:
        return f"is the record of cell {record['cell_key']!r}, not of {key!r}"
    if len(record["curve_axes"]) != 2 or not all(
        isinstance(point, list) and len(point) == 2 for point in record["curve"]
    ):
        return "field 'curve' or 'curve_axes' is not a list of (x, y) pairs"
    if not isinstance(record.get("samples", {}), dict):
        return "field 'samples' is not a mapping of groups to values"
    return None


def read_cell(path: Path, key: str) -> dict[str, Any] | None:
    """The record of the finished cell ``key`` in ``path``; None where there is none to
    trust (absent, unreadable, not JSON, a field missing or of the wrong type, another
    cell's record), with a warning naming the file unless it is simply absent."""
    try:
        record = json.loads(Path(path).read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        _warn_unusable(path, f"is not a readable cell record ({error})")
        return None
    problem = _cell_problem(record, key)
    if problem is not None:
        _warn_unusable(path, problem)
        return None
    return record


# -- cached models and attributions ------------------------------------------------------


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {list(value.shape)}"
    return f"a {type(value).__name__}"


def state_dict_problem(state_dict: Any, model: torch.nn.Module) -> str | None:
    """Why ``state_dict`` does not fit ``model`` exactly (names, shapes, dtypes), or None.
    Checked before ``load_state_dict``, which casts dtypes silently and copies the tensors
    that fit before it raises on those that do not."""
    if not isinstance(state_dict, dict):
        return f"its state_dict is {_describe(state_dict)}, not a mapping of tensors"
    expected = model.state_dict()
    missing, unexpected = expected.keys() - state_dict.keys(), state_dict.keys() - expected
    if missing or unexpected:
        return (
            f"its state_dict does not fit a {type(model).__name__} (missing: "
            f"{sorted(missing) or 'none'}; unexpected: {sorted(map(str, unexpected)) or 'none'})"
        )
    for name, tensor in expected.items():
        value = state_dict[name]
        if (
            not isinstance(value, torch.Tensor)
            or value.shape != tensor.shape
            or value.dtype != tensor.dtype
        ):
            return (
                f"its state_dict[{name!r}] is {_describe(value)}, the model needs "
                f"{_describe(tensor)}"
            )
    return None


def trained_model_problem(payload: dict[str, Any], model: torch.nn.Module) -> str | None:
    """Why a cached trained model (weights, training log and seconds) cannot be used."""
    problem = state_dict_problem(payload.get("state_dict"), model)
    if problem is not None:
        return problem
    if not _is_number(payload.get("seconds")):
        return f"its 'seconds' is {payload.get('seconds')!r}, not a number"
    log = payload.get("log")
    if not isinstance(log, dict) or not isinstance(log.get("epochs_run"), int):
        return "its 'log' lacks the number of epochs run"
    checkpoints = log.get("checkpoints", [])
    if not isinstance(checkpoints, list):
        return "its 'log.checkpoints' is not a list"
    for index, checkpoint in enumerate(checkpoints):
        if not isinstance(checkpoint, (list, tuple)) or len(checkpoint) != 3:
            return f"its log.checkpoints[{index}] is not (epoch, learning rate, state_dict)"
        problem = state_dict_problem(checkpoint[2], model)
        if problem is not None:
            return f"log.checkpoints[{index}]: {problem}"
    return None


def attribution_problem(
    payload: dict[str, Any], kind: str, inputs_shape: tuple[int, ...], n_corpus: int | None
) -> str | None:
    """Why cached attributions do not explain the inputs at hand, or None. The shapes are
    the contract of ``EvaluationContext.attributions``: a feature method's like the
    inputs, a per-unit method's ``[B, d_H, *input]``, an example method's ``[B, corpus]``."""
    values = payload.get("values")
    if not isinstance(values, torch.Tensor) or not values.is_floating_point():
        return f"its 'values' is {_describe(values)}, not floating-point attributions"
    shape, n = tuple(values.shape), inputs_shape[0]
    if kind == "unit":
        fits = len(shape) == len(inputs_shape) + 1 and shape[0] == n
        fits = fits and shape[2:] == inputs_shape[1:]
        needed = f"[{n}, d_H, {', '.join(map(str, inputs_shape[1:]))}]"
    else:
        needed_shape = (n, n_corpus) if kind == "example" else inputs_shape
        fits, needed = shape == needed_shape, str(list(needed_shape))
    if not fits:
        return f"its attributions have shape {list(shape)}, the explained inputs need {needed}"
    if not _is_number(payload.get("seconds")):
        return f"its 'seconds' is {payload.get('seconds')!r}, not a number"
    for field in ("peak_memory_mb", "calibration_seconds", "calibration_after_seconds"):
        if field in payload and not _is_number(payload[field]):  # absent in older entries
            return f"its {field!r} is {payload[field]!r}, not a number"
    return None


class Cache:
    """Content-addressed artefacts: ``models/<key>.pt`` and ``attributions/<key>.pt``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.pt"

    def load(
        self,
        kind: str,
        key: str,
        problem: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> dict[str, Any] | None:
        """The entry, or None where it is absent or unusable: it does not load, is not a
        mapping, or ``problem`` (the caller's check of what it needs) names a defect."""
        path = self.path(kind, key)
        if not path.is_file():
            return None
        try:
            # Tensors and plain containers only: a cache file cannot run code.
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            first_line = (str(error).splitlines() or [type(error).__name__])[0]
            _warn_unusable(path, f"does not load ({first_line})")
            return None
        if not isinstance(payload, dict):
            found = f"holds {_describe(payload)}, not a mapping"
        else:
            found = problem(payload) if problem is not None else None
        if found is not None:
            _warn_unusable(path, found)
            return None
        return payload

    def save(self, kind: str, key: str, payload: Any) -> None:
        atomic_torch_save(self.path(kind, key), payload)
