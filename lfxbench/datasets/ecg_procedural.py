"""Offline procedural heartbeats shaped like ECG5000's, not ECG5000 (that is ``ecg5000.py``).

One beat = 140 samples, R-peak aligned (like ECG5000's beats, which were cut around each
beat and resampled to 140 points). Model, in samples t = 0..139::

  x(t) = sum over waves k in (P, Q, R, S, T) of a_k exp(-(t - mu_k)^2 / (2 sigma_k^2))
       + st * [logistic((t - 48) / 1.5) - logistic((t - mu_T) / 4)]     (ST-segment shift)
       + f * sin(2 pi nu_f t / 140 + phi_f)                             (fibrillatory waves)
       + w * sin(2 pi nu_w t / 140 + phi_w) + drift * (t / 139 - 1/2)   (baseline wander)
       + N(0, 0.015^2)                                                  (noise)

then each beat is z-normalised (zero mean, unit variance), as the UCR archive does.
At ~70 bpm one sample is ~6 ms: PR ~ 110 ms to the R peak, QRS ~ 80 ms, T peak ~ 230 ms
after R. Per beat, every amplitude and width is multiplied by (1 + 0.1 N(0, 1)), P and T
move by N(0, 1) samples, Q/R/S by N(0, 0.3), and the whole beat is scaled by (1 + 0.1 N).
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field

from lfxbench.datasets.base import DatasetSplits
from lfxbench.datasets.ecg5000 import ECG_LENGTH
from lfxbench.registry import register_dataset

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

    Vectorised over the batch; the model is documented at the top of this module.
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
