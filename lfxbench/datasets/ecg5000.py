"""ECG5000 from the UCR/UEA archive files, and an offline procedural heartbeat generator."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from pydantic import Field

from lfxbench.datasets.base import DatasetSplits
from lfxbench.datasets.files import read_file_bytes
from lfxbench.datasets.mnist import subsample
from lfxbench.errors import DataFileError, DataNotFoundError
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


def find_ecg5000_file(data_dir: Path, split: str) -> Path:
    stem = f"ECG5000_{split}"
    candidates = [
        data_dir / folder / f"{stem}{suffix}"
        for folder in ECG5000_FOLDERS
        for suffix in ECG5000_SUFFIXES
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    searched = "\n  ".join(str(candidate) for candidate in candidates)
    raise DataNotFoundError(
        f"missing {stem}.txt (or {stem}.ts / .tsv); searched:\n  {searched}\n"
        f"Download it from {ECG5000_SOURCE} into {data_dir / ECG5000_FOLDERS[0]}, point "
        f"--data-dir (or LFXBENCH_DATA) at the folder that holds it, or use the offline "
        f"'ecg_procedural' (synthetic heartbeats, not ECG5000)."
    )


def _ecg_split(path: Path, n: int | None, seed: int, binary: bool):
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
    train = _ecg_split(find_ecg5000_file(data_dir, "TRAIN"), n_train, subset_seed, binary)
    test = _ecg_split(find_ecg5000_file(data_dir, "TEST"), n_test, subset_seed + 1, binary)
    kind = "normal 0 / abnormal 1" if binary else "classes 1-5, 1 = normal"
    return DatasetSplits(*train, *test, description=f"ECG5000 (UCR archive, {kind})")


# --- procedural heartbeats ---------------------------------------------------------------
#
# One beat = 140 samples, R-peak aligned (like ECG5000's beats, which were cut around each
# beat and resampled to 140 points). Model, in samples t = 0..139:
#
#   x(t) = sum over waves k in (P, Q, R, S, T) of a_k exp(-(t - mu_k)^2 / (2 sigma_k^2))
#        + st * [logistic((t - 48) / 1.5) - logistic((t - mu_T) / 4)]     (ST-segment shift)
#        + f * sin(2 pi nu_f t / 140 + phi_f)                             (fibrillatory waves)
#        + w * sin(2 pi nu_w t / 140 + phi_w) + drift * (t / 139 - 1/2)   (baseline wander)
#        + N(0, 0.015^2)                                                  (noise)
#
# then each beat is z-normalised (zero mean, unit variance), as the UCR archive does.
# At ~70 bpm one sample is ~6 ms: PR ~ 110 ms to the R peak, QRS ~ 80 ms, T peak ~ 230 ms
# after R. Per beat, every amplitude and width is multiplied by (1 + 0.1 N(0, 1)), P and T
# move by N(0, 1) samples, Q/R/S by N(0, 0.3), and the whole beat is scaled by (1 + 0.1 N).

ECG_CLASS_NAMES = {
    1: "normal",
    2: "ST elevation",
    3: "ST depression with inverted T",
    4: "premature-ventricular-like (wide QRS, no P, discordant T)",
    5: "missing P with fibrillatory waves (atrial-fibrillation-like)",
}
R_PEAK_INDEX = 42
ECG5000_NORMAL_FRACTION = 0.584  # 2,919 of ECG5000's 5,000 beats are normal
# Segments (sample index ranges) used to read a beat: the isoelectric PR segment between the
# P wave and the QRS complex, and the ST segment between the S wave and the T wave.
PR_SEGMENT = (31, 36)
ST_SEGMENT = (52, 62)

# Normal wave parameters: (amplitude, centre in samples, width sigma in samples).
_NORMAL_WAVES = {
    "P": (0.15, 24.0, 3.5),
    "Q": (-0.12, 38.5, 1.4),
    "R": (1.0, float(R_PEAK_INDEX), 1.6),
    "S": (-0.28, 45.5, 1.6),
    "T": (0.32, 80.0, 7.0),
}
_WAVE_ORDER = ("P", "Q", "R", "S", "T")


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def simulate_heartbeats(
    labels: torch.Tensor, generator: torch.Generator, normalize: bool = True
) -> torch.Tensor:
    """One synthetic beat per label (1-5, see ``ECG_CLASS_NAMES``) -> float32 [N, 140].

    Vectorised over the batch; the model is documented at the top of this section.
    """
    labels = torch.as_tensor(labels, dtype=torch.int64)
    if labels.numel() and (labels.min() < 1 or labels.max() > len(ECG_CLASS_NAMES)):
        raise ValueError(f"labels must lie in 1..{len(ECG_CLASS_NAMES)}")
    n = len(labels)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(n, *shape, generator=generator, dtype=torch.float64)

    base = torch.tensor([_NORMAL_WAVES[k] for k in _WAVE_ORDER], dtype=torch.float64)
    amp = base[:, 0].repeat(n, 1) * (1 + 0.1 * randn(5))
    mu = base[:, 1].repeat(n, 1) + randn(5) * torch.tensor([1.0, 0.3, 0.3, 0.3, 1.0])
    sigma = base[:, 2].repeat(n, 1) * (1 + 0.1 * randn(5)).clamp(min=0.5)
    st = torch.zeros(n, dtype=torch.float64)
    fib_amp = torch.zeros(n, dtype=torch.float64)
    P, Q, R, S, T = range(5)

    elevated = labels == 2
    st[elevated] = _uniform(n, 0.15, 0.3, generator)[elevated]
    amp[elevated, T] *= 1.2

    depressed = labels == 3
    st[depressed] = -_uniform(n, 0.1, 0.2, generator)[depressed]
    amp[depressed, T] = -_uniform(n, 0.15, 0.3, generator)[depressed]

    ventricular = labels == 4  # wide, bizarre QRS without P, T opposite to the QRS
    amp[ventricular, P] = 0.0
    amp[ventricular, Q] = 0.0
    amp[ventricular, R] *= 1.1
    sigma[ventricular, R] *= 2.5
    amp[ventricular, S] = -_uniform(n, 0.4, 0.6, generator)[ventricular]
    sigma[ventricular, S] *= 2.5
    mu[ventricular, S] += 3.0
    amp[ventricular, T] = -_uniform(n, 0.35, 0.55, generator)[ventricular]
    sigma[ventricular, T] *= 1.3

    atrial = labels == 5
    amp[atrial, P] = 0.0
    fib_amp[atrial] = _uniform(n, 0.03, 0.06, generator)[atrial]

    t = torch.arange(ECG_LENGTH, dtype=torch.float64)
    waves = amp[:, :, None] * torch.exp(-0.5 * ((t - mu[:, :, None]) / sigma[:, :, None]) ** 2)
    beats = waves.sum(1)
    plateau = torch.sigmoid((t - 48.0) / 1.5) - torch.sigmoid((t - mu[:, T, None]) / 4.0)
    beats += st[:, None] * plateau
    phase = 2 * math.pi * t / ECG_LENGTH
    fib_freq, fib_phase = _uniform(n, 5.0, 8.0, generator), _uniform(n, 0, 2 * math.pi, generator)
    beats += fib_amp[:, None] * torch.sin(fib_freq[:, None] * phase + fib_phase[:, None])
    wander_amp, wander_freq = _uniform(n, 0, 0.05, generator), _uniform(n, 0.2, 0.6, generator)
    wander_phase = _uniform(n, 0, 2 * math.pi, generator)
    beats += wander_amp[:, None] * torch.sin(wander_freq[:, None] * phase + wander_phase[:, None])
    beats += 0.03 * randn(1) * (t / (ECG_LENGTH - 1) - 0.5)
    beats *= 1 + 0.1 * randn(1)
    beats += 0.015 * randn(ECG_LENGTH)
    if normalize:
        beats = (beats - beats.mean(1, keepdim=True)) / beats.std(1, keepdim=True)
    return beats.to(torch.float32)


def class_counts(n: int, normal_fraction: float) -> list[int]:
    """Beats per class 1..5: ``round(n * normal_fraction)`` normal, the rest split evenly."""
    n_normal = round(n * normal_fraction)
    n_kinds = len(ECG_CLASS_NAMES) - 1
    share, extra = divmod(n - n_normal, n_kinds)
    return [n_normal] + [share + (1 if i < extra else 0) for i in range(n_kinds)]


def _procedural_split(n: int, normal_fraction: float, generator: torch.Generator, normalize: bool):
    counts = torch.tensor(class_counts(n, normal_fraction))
    labels = torch.repeat_interleave(torch.arange(1, len(counts) + 1), counts)
    labels = labels[torch.randperm(n, generator=generator)]
    return simulate_heartbeats(labels, generator, normalize)[:, None, :], labels


@register_dataset("ecg_procedural")
def ecg_procedural(
    n_train: Annotated[int, Field(ge=1)] = 4000,
    n_test: Annotated[int, Field(ge=1)] = 1000,
    seed: int = 0,
    normal_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = ECG5000_NORMAL_FRACTION,
    normalize: bool = True,
    binary: bool = False,
) -> DatasetSplits:
    """Synthetic single heartbeats [1, 140] (P-QRS-T Gaussian model), not ECG5000; offline.

    Labels follow ECG5000's convention, 1 = normal and 2-5 abnormal kinds, but the kinds are
    this generator's (``ECG_CLASS_NAMES``): 2 ST elevation, 3 ST depression with an inverted
    T wave, 4 premature-ventricular-like (wide QRS, no P, discordant T), 5 missing P with
    fibrillatory waves. By default 58.4 % of beats are normal, as in ECG5000, and the
    abnormal kinds share the rest equally (``normal_fraction=0.2`` balances all five); both
    splits have these proportions exactly. Beats are R-peak aligned (R at index 42) and
    z-normalised per beat like the UCR archive (``normalize=False`` keeps millivolt-like
    units). ``binary=True`` maps the labels to 0 = normal, 1 = abnormal, as ``ecg5000``
    does. Deterministic from ``seed``.
    """
    generator = torch.Generator().manual_seed(seed)
    train = _procedural_split(n_train, normal_fraction, generator, normalize)
    test = _procedural_split(n_test, normal_fraction, generator, normalize)
    if binary:
        train, test = [(beats, (labels != 1).to(torch.int64)) for beats, labels in (train, test)]
    return DatasetSplits(
        *train,
        *test,
        description=(
            "synthetic heartbeats (P-QRS-T Gaussian model, not ECG5000): 1 normal, "
            "2 ST elevation, 3 ST depression + inverted T, 4 PVC-like, 5 missing P"
        ),
    )
