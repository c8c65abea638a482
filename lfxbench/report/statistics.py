"""Statistics behind the leaderboard: each cell's per-example values and the 95 % confidence
interval of each row's mean (`confidence_intervals`); the ranks and critical-difference
diagrams are in :mod:`lfxbench.report.significance`.

Every function reads the tidy tables of a run (``results``: one row per cell × seed;
``samples``: per-example values of a cell, several named groups per cell) and answers keyed
like the board of `lfxbench.report.leaderboard.aggregate`: (model, dataset, method,
metric, model_b, method_b), with empty ``model_b`` / ``method_b`` on the rows of a single
explanation. Ranks are grouped by ``GROUP``: the methods of one leaderboard table
(``BLOCK``: model, dataset, method kind) under one metric.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Hashable

import numpy as np
import pandas as pd
from scipy import stats

KEYS = ["model", "dataset", "method", "metric", "model_b", "method_b"]
CELL = ["model", "dataset", "method", "metric", "seed"]
BLOCK = ["model", "dataset", "method_kind"]  # the methods one leaderboard table compares
GROUP = [*BLOCK, "metric"]

BOOTSTRAP = "bootstrap over seeds × examples"
T_OVER_SEEDS = "t over seeds"

# Matching a sample group to its cell's value: relative to the larger of |value| and the
# group's mean |sample|, so a value near 0 that comes from cancelling samples still matches.
MATCH_RTOL = 1e-9
# Fixed, so a leaderboard rebuilt from the same results shows the same intervals.
BOOTSTRAP_SEED = 20240607
N_RESAMPLES = 2000
LEVEL = 0.95

PerExample = dict[tuple[Hashable, ...], np.ndarray]


def with_method_kind(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` with a ``method_kind`` on every row: "feature" where it has none, as
    results from before example methods do."""
    kinds = results.get("method_kind", pd.Series(index=results.index, dtype=object))
    return results.assign(method_kind=kinds.fillna("feature"))


def single_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of one explanation (empty or missing pair columns)."""
    pair = table["model_b"].fillna("") if "model_b" in table else pd.Series("", table.index)
    return table[pair.eq("")]


def _matches(values: np.ndarray, value: float) -> bool:
    if len(values) == 0:
        return False
    mean = values.mean()
    if np.isnan(value) or np.isnan(mean):
        return bool(np.isnan(value) and np.isnan(mean))
    scale = max(abs(value), float(np.abs(values).mean()))
    return abs(mean - value) <= MATCH_RTOL * scale


def per_example_values(results: pd.DataFrame, samples: pd.DataFrame | None) -> PerExample:
    """Per-example values of each single-explanation cell, keyed (model, dataset, method,
    metric, seed), in the order the examples were explained.

    A cell's per-example values are the first of its sample groups (in the order of
    ``samples``) whose plain mean equals the cell's ``value`` to ``MATCH_RTOL`` relative to
    the larger of |value| and the group's mean |sample|; a NaN value matches a group whose
    mean is NaN. A cell none of whose groups average to its value (a metric whose value is
    not a mean over examples, or whose samples are not the examples it averages, e.g.
    similarity_rate's bottom group) has none: it is left out.
    """
    if samples is None or samples.empty or not set(CELL) | {"group", "value"} <= set(samples):
        return {}
    samples = single_rows(samples)
    if samples.empty:
        return {}
    numbers = samples["value"].to_numpy(dtype=float)
    groups: dict[tuple[Hashable, ...], list[np.ndarray]] = {}
    for key, positions in samples.groupby([*CELL, "group"], sort=False).indices.items():
        groups.setdefault(tuple(key[:-1]), []).append(numbers[positions])
    found: PerExample = {}
    single = single_rows(results)
    cells = zip(*(single[column] for column in CELL), strict=True)
    for key, value in zip(cells, single["value"].to_numpy(dtype=float), strict=True):
        for values in groups.get(key, ()):
            if _matches(values, value):
                found[key] = values
                break
    return found


# --------------------------------------------------------------------------- intervals


def _row_seed(key: tuple[Hashable, ...]) -> np.random.Generator:
    # One stream per row, from its key: an interval does not depend on which other rows
    # the results hold or in what order (crc32, unlike hash(), is the same in every run).
    digest = zlib.crc32("\x1f".join(map(str, key)).encode())
    return np.random.default_rng([BOOTSTRAP_SEED, digest])


def _mean_of_seed_means(*seeds: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean([seed.mean(axis=axis) for seed in seeds], axis=0)


def bootstrap_interval(
    seeds: list[np.ndarray], key: tuple[Hashable, ...] = (), n_resamples: int = N_RESAMPLES
) -> tuple[float, float]:
    """95 % BCa bootstrap interval of the mean over seeds of each seed's mean over examples,
    resampling the examples of each seed on their own (seeds are strata); the percentile
    interval where BCa is undefined."""
    if any(np.isnan(seed).any() for seed in seeds):
        return float("nan"), float("nan")
    if all(np.ptp(seed) == 0 for seed in seeds):  # no spread to resample
        point = float(_mean_of_seed_means(*seeds))
        return point, point
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            result = stats.bootstrap(
                tuple(seeds),
                _mean_of_seed_means,
                n_resamples=n_resamples,
                confidence_level=LEVEL,
                method=method,
                vectorized=True,
                axis=-1,
                rng=_row_seed(key),
            )
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            break
    return float(low), float(high)


def t_interval(values: np.ndarray) -> tuple[float, float]:
    """95 % Student-t interval of the mean of per-seed values; NaN under 2 seeds or with a
    NaN among them (the board's mean is NaN then too)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2 or np.isnan(values).any():
        return float("nan"), float("nan")
    mean, sem = values.mean(), stats.sem(values)
    if sem == 0:
        return float(mean), float(mean)
    low, high = stats.t.interval(LEVEL, len(values) - 1, loc=mean, scale=sem)
    return float(low), float(high)


def confidence_intervals(
    results: pd.DataFrame,
    samples: pd.DataFrame | None,
    per_example: PerExample | None = None,
    n_resamples: int = N_RESAMPLES,
) -> pd.DataFrame:
    """95 % confidence interval of each board row's mean: columns KEYS, ``ci_low``,
    ``ci_high``, ``ci_method``, one row per board key in the order of `aggregate`'s groups.

    Where every seed of the row has per-example values (`per_example_values`):
    ``"bootstrap over seeds × examples"``, a BCa bootstrap (``n_resamples`` resamples, a
    fixed seed per row) of the mean over seeds of each seed's mean over its
    examples (the board's mean), resampling the examples within each seed. It measures how
    much the mean depends on which examples were explained, for the seeds (trained models)
    at hand; spread between seeds is the t-interval's. BCa rather than percentile: many
    per-example scores are bounded and pile up at a bound (hits of the pointing game,
    correlations near 1), where the bootstrap distribution of the mean is skewed and the
    percentile interval comes out too short on the side away from the bound; BCa corrects
    for skew and bias, and its jackknife costs about what the resampling does. Where BCa is
    undefined, the percentile interval stands in.

    Otherwise ``"t over seeds"``: the Student-t interval of the per-seed values, NaN under
    2 seeds (or where a seed's value is NaN).
    """
    if per_example is None:
        per_example = per_example_values(results, samples)
    rows = []
    for key, part in results.groupby(KEYS, sort=False):
        cells = [(*key[:4], seed) for seed in part["seed"]]
        single = key[4] == ""
        # A seed of one example has nothing to resample.
        if single and all(len(per_example.get(cell, ())) >= 2 for cell in cells):
            low, high = bootstrap_interval([per_example[cell] for cell in cells], key, n_resamples)
            method = BOOTSTRAP
        else:
            low, high = t_interval(part["value"].to_numpy(dtype=float))
            method = T_OVER_SEEDS
        rows.append((*key, low, high, method))
    return pd.DataFrame(rows, columns=[*KEYS, "ci_low", "ci_high", "ci_method"])
