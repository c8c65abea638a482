"""ECG5000 from the UCR/UEA archive files (its offline stand-in: ``ecg_procedural.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from pydantic import Field

from lfxbench.datasets.base import DatasetSplits, find_data_file, read_file_bytes, subsample
from lfxbench.errors import DataFileError
from lfxbench.registry import register_dataset

ECG5000_FOLDERS = ("ECG5000", "ecg5000", "UCRArchive_2018/ECG5000", "Univariate_ts/ECG5000", ".")
# Per split, the file names tried in each folder, in this order: the timeseriesclassification.com
# zip (.txt whitespace-separated, .ts sktime format), the UCR 2018 archive (.tsv) and the UCR
# 2015 archive (no suffix, comma-separated).
ECG5000_SUFFIXES = (".txt", ".ts", ".tsv", "")
ECG5000_SOURCE = (
    "https://www.timeseriesclassification.com/description.php?Dataset=ECG5000 (ECG5000.zip) "
    "or the UCR archive https://www.cs.ucr.edu/~eamonn/time_series_data_2018/"
)
ECG5000_CLASSES = {
    1: "normal",
    2: "R-on-T premature ventricular contraction",
    3: "premature ventricular contraction",
    4: "supraventricular premature or ectopic beat",
    5: "unclassified beat",
}
ECG_LENGTH = 140
UCR_TEXT_EXPECTED = "UCR text rows 'label v1 v2 ...' (whitespace, tab or comma separated)"
TS_EXPECTED = "an sktime .ts file whose @data lines are 'v1,v2,...:label'"
ECG5000_TEXT_EXPECTED = (
    f"UCR text rows 'label v1 ... v{ECG_LENGTH}' (a class 1-5, then {ECG_LENGTH} samples; "
    f"whitespace, tab or comma separated) from {ECG5000_SOURCE}"
)
ECG5000_TS_EXPECTED = (
    f"an sktime .ts file whose @data lines are 'v1,...,v{ECG_LENGTH}:label' (a class 1-5) "
    f"from {ECG5000_SOURCE}"
)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def parse_ucr_text(
    text: str, source: str = "<text>", expected: str = UCR_TEXT_EXPECTED
) -> tuple[np.ndarray, np.ndarray]:
    """UCR text rows ``label v1 v2 ...`` (whitespace, tab or comma separated) -> (X, y).

    A row that is not numbers, not as long as the first, or whose label is not a whole number
    is a ``DataFileError`` naming ``source``, the line and what was ``expected``.
    """
    numbered = [
        (number, line.replace(",", " ").split())
        for number, line in enumerate(text.splitlines(), start=1)
    ]
    numbered = [(number, fields) for number, fields in numbered if fields]
    if not numbered:
        raise DataFileError(source, "no data rows", expected)
    line_numbers = np.array([number for number, _ in numbered])
    widths = np.array([len(fields) for _, fields in numbered])
    try:
        # One flat conversion, ragged or not: the offending token is looked up only on failure.
        values = np.array([token for _, fields in numbered for token in fields], dtype=np.float64)
    except ValueError:
        number, token = next(
            (number, token)
            for number, fields in numbered
            for token in fields
            if not _is_number(token)
        )
        raise DataFileError(source, f"line {number}: {token!r} is not a number", expected) from None
    ragged = np.flatnonzero(widths != widths[0])
    if len(ragged):
        row = ragged[0]
        problem = (
            f"line {line_numbers[row]} has {widths[row]} values but line {line_numbers[0]} has "
            f"{widths[0]}; every row must be as long"
        )
        raise DataFileError(source, problem, expected)
    if widths[0] < 2:
        raise DataFileError(source, "rows of one value: a label but no series", expected)
    table = values.reshape(len(numbered), widths[0])
    _check_values(table[:, 1:], table[:, 0], line_numbers, source, expected)
    return table[:, 1:].astype(np.float32)[:, None, :], table[:, 0].astype(np.int64)


def parse_ts(
    text: str, source: str = "<text>", expected: str = TS_EXPECTED
) -> tuple[np.ndarray, np.ndarray]:
    """sktime/UEA ``.ts`` text -> (X [N, channels, length], y).

    Header lines start with ``@`` (``@data`` ends the header) and comments with ``#``; each data
    line is ``v1,v2,...:label`` (one ``:``-separated block per channel, the label last). A line
    that breaks this is a ``DataFileError`` naming ``source``, the line and what was ``expected``.
    """
    series, labels, line_numbers = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(("@", "#")):
            continue
        *channels, label = line.split(":")
        if not channels:
            raise DataFileError(source, f"line {number} is not 'v1,v2,...:label'", expected)
        try:
            series.append([[float(value) for value in channel.split(",")] for channel in channels])
            labels.append(float(label))
        except ValueError:
            tokens = [*",".join(channels).split(","), label]
            token = next(token for token in tokens if not _is_number(token))
            problem = f"line {number}: {token!r} is not a number"
            raise DataFileError(source, problem, expected) from None
        line_numbers.append(number)
    if not series:
        raise DataFileError(source, "no @data lines", expected)

    def layout(beat: list[list[float]]) -> str:
        lengths = ", ".join(str(len(channel)) for channel in beat)
        return f"{len(beat)} channel{'s' if len(beat) > 1 else ''} of {lengths} values"

    first = layout(series[0])
    for number, beat in zip(line_numbers, series, strict=True):
        if layout(beat) != first:
            problem = (
                f"line {number} holds {layout(beat)} but line {line_numbers[0]} holds {first}; "
                "every series must be as long"
            )
            raise DataFileError(source, problem, expected)
    inputs, targets = np.asarray(series, dtype=np.float64), np.asarray(labels)
    _check_values(inputs, targets, np.asarray(line_numbers), source, expected)
    return inputs.astype(np.float32), targets.astype(np.int64)


def _check_values(
    series: np.ndarray, labels: np.ndarray, line_numbers: np.ndarray, source: str, expected: str
) -> None:
    """Every value finite and every label a whole number, or an error naming the first line."""
    not_finite = ~np.isfinite(series.reshape(len(series), -1)).all(1)
    if not_finite.any():
        number = line_numbers[not_finite.argmax()]
        raise DataFileError(source, f"line {number} holds a value that is not finite", expected)
    fractional = labels != np.round(labels)
    if fractional.any():
        row = fractional.argmax()
        problem = f"line {line_numbers[row]}: label {labels[row]:g} is not a whole number"
        raise DataFileError(source, problem, expected)


def read_ecg5000_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One split file -> beats float32 [N, 1, 140] and classes int64 [N] in 1-5."""
    is_ts = path.suffix == ".ts"
    expected = ECG5000_TS_EXPECTED if is_ts else ECG5000_TEXT_EXPECTED
    raw = read_file_bytes(path, expected)
    if b"\0" in raw:
        raise DataFileError(path, "binary data (it holds NUL bytes), not text", expected)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        problem = f"not UTF-8 text (line {line} holds the byte 0x{raw[error.start]:02x})"
        raise DataFileError(path, problem, expected) from error
    parse = parse_ts if is_ts else parse_ucr_text
    series, labels = parse(text, str(path), expected)
    _, n_channels, length = series.shape
    if n_channels != 1:
        raise DataFileError(path, f"its series have {n_channels} channels, not one", expected)
    if length != ECG_LENGTH:
        problem = f"its beats have {length} samples, not ECG5000's {ECG_LENGTH}"
        raise DataFileError(path, problem, expected)
    outside = labels[(labels < 1) | (labels > len(ECG5000_CLASSES))]
    if len(outside):
        problem = f"holds label {outside[0]}, outside ECG5000's classes 1-{len(ECG5000_CLASSES)}"
        raise DataFileError(path, problem, expected)
    return series, labels


def _ecg_split(data_dir: Path, split: str, n: int | None, seed: int, binary: bool):
    stem = f"ECG5000_{split}"
    path = find_data_file(
        data_dir,
        ECG5000_FOLDERS,
        [f"{stem}{suffix}" for suffix in ECG5000_SUFFIXES],
        ECG5000_SOURCE,
        missing=f"{stem}.txt (or {stem}.ts / .tsv)",
        instead="the offline 'ecg_procedural' (synthetic heartbeats, not ECG5000)",
    )
    series, labels = read_ecg5000_file(path)
    inputs, targets = subsample(torch.from_numpy(series), torch.from_numpy(labels), n, seed)
    if binary:
        targets = (targets != 1).to(torch.int64)
    return inputs.contiguous(), targets


@register_dataset("ecg5000")
def ecg5000(
    data_dir: Path,
    n_train: Annotated[int, Field(ge=1)] | None = None,
    n_test: Annotated[int, Field(ge=1)] | None = None,
    subset_seed: int = 0,
    binary: bool = False,
) -> DatasetSplits:
    """ECG5000 heartbeats from the UCR archive (500 train / 4,500 test, [1, 140], classes 1-5).

    Labels are the archive's classes, 1 = normal, 2-5 abnormal kinds; ``binary=True`` maps
    them to 0 = normal, 1 = abnormal. ``n_train`` / ``n_test`` draw a random subset.
    """
    train = _ecg_split(data_dir, "TRAIN", n_train, subset_seed, binary)
    test = _ecg_split(data_dir, "TEST", n_test, subset_seed + 1, binary)
    kind = "normal 0 / abnormal 1" if binary else "classes 1-5, 1 = normal"
    return DatasetSplits(*train, *test, description=f"ECG5000 (UCR archive, {kind})")
