"""What every dataset entry returns, and what every loader of real files shares.

``DatasetSplits`` (train/test tensors, labels for evaluation only), ``subsample`` and
``balanced_subset`` (seeded subsets), ``Resplit`` (a suite's ``split:``),
``find_data_file`` (where in the data directory a file is, or an error saying where it was
looked for and where to get it) and ``read_file_bytes`` (a file's bytes, or an error naming
what is wrong with it).
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lfxbench.errors import DataFileError, DataNotFoundError

GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class DatasetSplits:
    train_inputs: torch.Tensor
    train_labels: torch.Tensor
    test_inputs: torch.Tensor
    test_labels: torch.Tensor
    description: str = ""
    # Where a generator knows them (dSprites): the factors of variation of every image
    # ([N, n_factors], for evaluation only) and the ground-truth object masks of the test
    # images (shaped like the inputs, for localisation metrics).
    train_factors: torch.Tensor | None = None
    test_factors: torch.Tensor | None = None
    test_masks: torch.Tensor | None = None
    # Not an init field: `dataclasses.replace` must not carry a stale fingerprint over.
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            inputs, labels = getattr(self, f"{split}_inputs"), getattr(self, f"{split}_labels")
            if len(inputs) != len(labels):
                raise ValueError(f"{split}: {len(inputs)} inputs but {len(labels)} labels")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_inputs.shape[1:])

    def fingerprint(self) -> str:
        """Content hash of all four tensors: part of every cache key built on this data."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for tensor in (
                self.train_inputs,
                self.train_labels,
                self.test_inputs,
                self.test_labels,
            ):
                digest.update(str(tuple(tensor.shape)).encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint


def subsample(inputs: torch.Tensor, labels: torch.Tensor, n: int | None, seed: int):
    """``n`` examples drawn at random (seeded by ``seed``), in their original order; all of
    them when ``n`` is ``None`` or not smaller than the split."""
    if n is None or n >= len(inputs):
        return inputs, labels
    keep = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(seed))[:n]
    keep = keep.sort().values
    return inputs[keep], labels[keep]


def balanced_subset(labels: torch.Tensor, n: int | None, seed: int) -> torch.Tensor:
    """Indices of ``n`` examples with (as near as possible) equal counts per label.

    The paper's example-importance protocol: e.g. 1,000 examples, 100 per class. Labels
    only choose the subset. ``None`` keeps every example, in order. A subset that the
    labels cannot balance (a class with fewer examples than its share, or ``n`` larger
    than the split) is an error naming the counts, never a quietly unbalanced subset.
    """
    if n is None:
        return torch.arange(len(labels))
    classes, counts = labels.unique(return_counts=True)
    share = n // len(classes)
    if n > len(labels) or int(counts.min()) < share:
        pairs = zip(classes.tolist(), counts.tolist(), strict=True)
        per_label = ", ".join(f"{label}: {count}" for label, count in pairs)
        raise ValueError(
            f"a balanced subset of {n} examples needs {share} of "
            f"each of the {len(classes)} labels, but the split has {len(labels)} examples "
            f"(label: count {per_label}); ask for at most {len(classes) * int(counts.min())}, "
            "or for all of them (null)"
        )
    generator = torch.Generator().manual_seed(seed)
    shuffled = torch.randperm(len(labels), generator=generator)
    # Round-robin over classes in shuffled order: class c's k-th example gets position k.
    position = torch.empty(len(labels), dtype=torch.long)
    for label in classes:
        members = (labels[shuffled] == label).nonzero().squeeze(1)
        position[members] = torch.arange(len(members))
    rounds = position * len(classes) + torch.searchsorted(classes, labels[shuffled])
    chosen = shuffled[rounds.argsort(stable=True)[:n]]
    return chosen.sort().values


class Resplit(BaseModel):
    """A dataset entry's ``split:``: which examples become the training and the test set.

    ``pool`` first joins the loader's train and test sets (train first). ``train_labels`` /
    ``test_labels`` keep only examples with those labels in each set; pooled, the test set
    defaults to every label not in ``train_labels``. ``n_train`` / ``n_test`` draw that
    many at random (seeded by ``seed``); pooled without label lists they split the pool
    into disjoint random sets. The label-free XAI paper's ECG5000 protocols are
    ``{pool: true, train_labels: [1]}`` (train on the normal beats, test on the abnormal
    ones) and ``{pool: true, n_train: 4000, n_test: 1000}`` (a random split).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    pool: bool = False
    train_labels: list[int] | None = Field(None, min_length=1)
    test_labels: list[int] | None = Field(None, min_length=1)
    n_train: int | None = Field(None, ge=1)
    n_test: int | None = Field(None, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _coherent(self) -> Resplit:
        if self.pool and self.train_labels is None and self.test_labels is not None:
            raise ValueError("a pooled split with test_labels needs train_labels too")
        if self.pool and self.train_labels is None and self.n_train is None and not self.n_test:
            raise ValueError("a pooled split needs train_labels or n_train / n_test")
        if self.pool and self.train_labels and self.test_labels:
            shared = sorted(set(self.train_labels) & set(self.test_labels))
            if shared:
                raise ValueError(
                    f"pooled train_labels and test_labels share {shared}: the same examples "
                    "would be in both sets"
                )
        return self

    def apply(self, data: DatasetSplits) -> DatasetSplits:
        generator = torch.Generator().manual_seed(self.seed)
        if self.pool:
            if data.test_masks is not None:
                raise ValueError(
                    "split.pool: this dataset's object masks exist for its test set only"
                )
            inputs = torch.cat([data.train_inputs, data.test_inputs])
            labels = torch.cat([data.train_labels, data.test_labels])
            order = torch.randperm(len(labels), generator=generator)
            if self.train_labels is None:
                n_train = self.n_train or len(labels) - (self.n_test or 0)
                n_test = self.n_test or len(labels) - n_train
                if n_train + n_test > len(labels) or n_test < 1:
                    raise ValueError(
                        f"split: n_train {n_train} + n_test {n_test} exceed the "
                        f"{len(labels)} pooled examples"
                    )
                train, test = order[:n_train], order[n_train : n_train + n_test]
            else:
                in_train = torch.isin(labels[order], torch.tensor(self.train_labels))
                in_test = (
                    ~in_train
                    if self.test_labels is None
                    else torch.isin(labels[order], torch.tensor(self.test_labels))
                )
                train = _first(order[in_train], self.n_train, "train", self.train_labels)
                test = _first(order[in_test], self.n_test, "test", self.test_labels)
            train, test = train.sort().values, test.sort().values
            factors = _joined(data.train_factors, data.test_factors)
            return DatasetSplits(
                inputs[train],
                labels[train],
                inputs[test],
                labels[test],
                description=f"{data.description}; {self.describe()}",
                train_factors=None if factors is None else factors[train],
                test_factors=None if factors is None else factors[test],
            )
        train = _kept(data.train_labels, self.train_labels, self.n_train, "train", generator)
        test = _kept(data.test_labels, self.test_labels, self.n_test, "test", generator)
        return DatasetSplits(
            data.train_inputs[train],
            data.train_labels[train],
            data.test_inputs[test],
            data.test_labels[test],
            description=f"{data.description}; {self.describe()}",
            train_factors=None if data.train_factors is None else data.train_factors[train],
            test_factors=None if data.test_factors is None else data.test_factors[test],
            test_masks=None if data.test_masks is None else data.test_masks[test],
        )

    def describe(self) -> str:
        parts = ["train and test pooled"] if self.pool else []
        for split in ("train", "test"):
            chosen, n = getattr(self, f"{split}_labels"), getattr(self, f"n_{split}")
            if chosen is not None:
                parts.append(f"{split}: labels {chosen}")
            if n is not None:
                parts.append(f"{n} {split} examples at random (seed {self.seed})")
        return ", ".join(parts)


def _first(candidates: torch.Tensor, n: int | None, split: str, chosen) -> torch.Tensor:
    if n is not None and n > len(candidates):
        raise ValueError(
            f"split: n_{split} {n} but only {len(candidates)} examples have labels {chosen}"
        )
    return candidates if n is None else candidates[:n]


def _kept(labels, chosen, n, split, generator) -> torch.Tensor:
    """Indices of one split's examples with the ``chosen`` labels, ``n`` of them at random."""
    keep = torch.arange(len(labels))
    if chosen is not None:
        keep = keep[torch.isin(labels, torch.tensor(chosen))]
        if len(keep) == 0:
            raise ValueError(f"split: no {split} example has labels {chosen}")
    if n is not None:
        if n > len(keep):
            raise ValueError(f"split: n_{split} {n} but the {split} set has {len(keep)}")
        keep = keep[torch.randperm(len(keep), generator=generator)[:n]].sort().values
    return keep


def _joined(first: torch.Tensor | None, second: torch.Tensor | None) -> torch.Tensor | None:
    return None if first is None or second is None else torch.cat([first, second])


# --- real files in the data directory ---------------------------------------------------


def find_data_file(
    data_dir: Path,
    folders: Sequence[str],
    names: Sequence[str],
    source: str,
    *,
    instead: str | None = None,
    missing: str | None = None,
    download: str = "it",
    into: str | None = None,
    hint: str | None = None,
    names_first: bool = False,
    present: Callable[[Path], bool] = Path.is_file,
) -> Path:
    """The first candidate ``data_dir / folder / name`` that is ``present`` (a file, unless
    told otherwise), or a ``DataNotFoundError`` listing every path searched.

    Candidates run folder by folder (each of ``names`` in the first folder, then in the
    next), or with ``names_first`` name by name (the first name in every folder, then the
    next). The error reads "missing ``missing`` (default: the first name); searched: ...",
    then ``hint`` or, by default, "Download ``download`` from ``source`` into ``into``
    (default: the first folder), point --data-dir (or LFXBENCH_DATA) at the folder that
    holds it, or use ``instead``."
    """
    pairs = (
        [(folder, name) for name in names for folder in folders]
        if names_first
        else [(folder, name) for folder in folders for name in names]
    )
    candidates = [data_dir / folder / name for folder, name in pairs]
    for candidate in candidates:
        if present(candidate):
            return candidate
    searched = "\n  ".join(str(candidate) for candidate in candidates)
    if hint is None:
        hint = (
            f"Download {download} from {source} into {into or data_dir / folders[0]}, point "
            "--data-dir (or LFXBENCH_DATA) at the folder that holds it"
            + (f", or use {instead}." if instead else ".")
        )
    raise DataNotFoundError(f"missing {missing or names[0]}; searched:\n  {searched}\n{hint}")


def read_file_bytes(path: Path, expected: str) -> bytes:
    """The content of ``path``, decompressed when its name ends in ``.gz``.

    An unreadable, empty, non-gzip, truncated or corrupt file is a ``DataFileError`` that says
    so and what was ``expected`` (e.g. "the gzip-compressed IDX file from ...").
    """
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataFileError(path, f"cannot be read ({error.strerror})", expected) from error
    if not raw:
        raise DataFileError(path, "empty file (0 bytes)", expected)
    if path.suffix != ".gz":
        return raw
    if raw[:2] != GZIP_MAGIC:
        raise DataFileError(path, "not a gzip file", expected)
    try:
        return gzip.decompress(raw)
    except EOFError as error:
        problem = "truncated gzip file (it ends before the compressed data does); download it again"
        raise DataFileError(path, problem, expected) from error
    except (gzip.BadGzipFile, zlib.error) as error:
        problem = f"corrupt gzip file ({error}); download it again"
        raise DataFileError(path, problem, expected) from error
