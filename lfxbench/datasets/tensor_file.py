"""Your own data without a plugin: four arrays in one file (``.pt`` or ``.npz``)."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
import torch

from lfxbench.datasets.base import DatasetSplits
from lfxbench.errors import DataFileError, DataNotFoundError
from lfxbench.registry import register_dataset

logger = logging.getLogger(__name__)
EXPECTED = (
    "a .pt file (a dict of tensors, read with weights_only=True) or an .npz file (no "
    "pickles) with x_train and x_test, and optionally y_train and y_test (integer labels)"
)


def _arrays(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return {name: torch.from_numpy(archive[name]) for name in archive.files}
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError, EOFError, zipfile.BadZipFile) as error:
        problem = f"cannot be read ({type(error).__name__}: {str(error).splitlines()[0]})"
        raise DataFileError(path, problem, EXPECTED) from error
    if not isinstance(payload, dict):
        raise DataFileError(path, f"holds a {type(payload).__name__}, not a dict", EXPECTED)
    return payload


@register_dataset("tensor_file")
def tensor_file(path: Path) -> DatasetSplits:
    """Train and test inputs (and labels) from one .pt or .npz file of your own."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path} does not exist; expected {EXPECTED}")
    arrays = _arrays(path)
    missing = [name for name in ("x_train", "x_test") if name not in arrays]
    if missing:
        raise DataFileError(
            path, f"lacks {', '.join(missing)} (it holds {sorted(arrays)})", EXPECTED
        )
    splits = {}
    for split in ("train", "test"):
        inputs = arrays[f"x_{split}"]
        if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
            raise DataFileError(path, f"x_{split} is not a floating-point array", EXPECTED)
        labels = arrays.get(f"y_{split}")
        if labels is None:  # labels are for evaluation only; no metric that needs them
            logger.info("%s: no y_%s, every %s example gets label 0", path, split, split)
            labels = torch.zeros(len(inputs), dtype=torch.int64)
        elif labels.is_floating_point() or labels.dim() != 1 or len(labels) != len(inputs):
            problem = f"y_{split} is not {len(inputs)} integer labels (one per x_{split} row)"
            raise DataFileError(path, problem, EXPECTED)
        splits[split] = (inputs.float(), labels.long())
    return DatasetSplits(*splits["train"], *splits["test"], description=f"tensors from {path}")
