"""Ranks that respect significance, and critical-difference diagrams across models.

Ranks (`significance_ranks`): within each (model, dataset, method kind, metric), the
methods of one leaderboard table under one metric, every pair of methods is compared by a
two-sided Wilcoxon signed-rank test (Pratt's treatment of zero differences) on paired
observations, the p-values Holm-corrected over the pairs of that group. A method's rank is
1 + the number of methods significantly better than it (p < alpha after correction, better
by the metric's direction on the mean over seeds), so methods that the data cannot tell
apart share a rank. The observations are per-example values, paired by (seed, position of
the example), where every method of the group has them (the same seeds, the same number of
examples per seed); otherwise the per-seed values, paired by seed. Pratt's treatment keeps
the examples on which two methods score the same in the ranking of the differences, where
Wilcoxon's would drop them and judge the pair on the examples where they differ alone. A
two-sided Wilcoxon test on n pairs cannot reach p < 0.05 below n = 6 (its smallest p is
2 / 2**n), so on per-seed values from a few seeds every method ties: the data do not
separate them, and the ranks say so.

Pairing by position trusts that a cell's samples list every explained example in order.
A metric that drops undefined examples is caught where that changes the counts (the
per-seed values are used then), not where two methods drop as many at different places.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from matplotlib.figure import Figure
from scipy import stats

from lfxbench.report.statistics import (
    GROUP,
    KEYS,
    PerExample,
    per_example_values,
    single_rows,
    with_method_kind,
)

RANK_TEST = "Wilcoxon–Holm"


def _paired_observations(
    part: pd.DataFrame, methods: list[str], per_example: PerExample
) -> tuple[dict[str, np.ndarray], str]:
    """Each method's observations, aligned across methods, and the words for the test."""
    model, dataset, metric = (part[column].iloc[0] for column in ("model", "dataset", "metric"))
    by_method = {method: rows for method, rows in part.groupby("method", sort=False)}
    values = {
        method: dict(zip(by_method[method]["seed"], by_method[method]["value"], strict=True))
        for method in methods
    }
    seeds = sorted(values[methods[0]])
    if all(sorted(values[method]) == seeds for method in methods):
        arrays = {
            method: [per_example.get((model, dataset, method, metric, seed)) for seed in seeds]
            for method in methods
        }
        counts = [None if array is None else len(array) for array in arrays[methods[0]]]
        aligned = all(
            [None if array is None else len(array) for array in arrays[method]] == counts
            for method in methods
        )
        if aligned and None not in counts:
            plural = "s" if len(seeds) != 1 else ""
            if len(set(counts)) == 1:
                words = f"{len(seeds)} seed{plural} × {counts[0]} examples"
            else:
                words = f"{len(seeds)} seed{plural}, {sum(counts)} examples"
            return {method: np.concatenate(arrays[method]) for method in methods}, words
    common = sorted(set.intersection(*(set(values[method]) for method in methods)))
    observations = {
        method: np.array([values[method][seed] for seed in common], dtype=float)
        for method in methods
    }
    plural = "s" if len(common) != 1 else ""
    return observations, f"{len(common)} seed{plural}, per-seed values"


def _wilcoxon_holm(observations: dict[str, np.ndarray]) -> pd.DataFrame:
    """Holm-corrected two-sided p-values of every pair (1 on the diagonal)."""
    methods = list(observations)
    long = pd.DataFrame(
        {
            "value": np.concatenate([observations[m] for m in methods]),
            "method": np.repeat(methods, [len(observations[m]) for m in methods]),
        }
    )
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # Identical methods (every difference 0) give 0/0 in the normal approximation;
        # scipy then answers p = 1, which is the tie they are.
        warnings.simplefilter("ignore", RuntimeWarning)
        # statsmodels' Holm runs a full gc.collect() on every call, which in a process
        # holding torch and the run's tables costs more than all the tests of a group:
        # frozen, the objects alive before the call are left out of that collection.
        gc.freeze()
        try:
            p_values = sp.posthoc_wilcoxon(
                long, val_col="value", group_col="method", zero_method="pratt", p_adjust="holm"
            )
        finally:
            gc.unfreeze()
    return p_values.fillna(1.0).loc[methods, methods]


def pairwise_tests(
    results: pd.DataFrame,
    samples: pd.DataFrame | None,
    alpha: float = 0.05,
    per_example: PerExample | None = None,
) -> dict[tuple[Hashable, ...], tuple[pd.DataFrame | None, str]]:
    """Per (model, dataset, method kind, metric) of single-explanation rows (a
    ``method_kind`` missing from ``results`` is "feature"): the Holm-corrected Wilcoxon
    p-values of every pair of methods with a mean, and the words for the test used
    (``rank_test``). The p-values are None where no test ran: under 2 methods with a mean,
    under 2 paired observations, or too few observations for any p-value below ``alpha``.
    """
    if per_example is None:
        per_example = per_example_values(results, samples)
    tests = {}
    for group, part in single_rows(with_method_kind(results)).groupby(GROUP, sort=False):
        means = part.groupby("method", sort=False)["value"].agg(lambda v: v.mean(skipna=False))
        methods = [method for method, mean in means.items() if np.isfinite(mean)]
        if len(methods) < 2:
            tests[group] = (None, "no test: fewer than 2 methods with a value")
            continue
        observations, words = _paired_observations(part, methods, per_example)
        n = len(next(iter(observations.values())))
        if n < 2:
            tests[group] = (None, f"no test: {words}")
            continue
        # On n pairs the two-sided test (exact up to n = 13 in scipy) never goes below
        # 2 / 2**n: with fewer pairs nothing can differ, so spare the tests.
        smallest_p = 2.0 ** (1 - n)  # underflows to 0 for many pairs, never overflows
        if smallest_p >= alpha:
            tests[group] = (None, f"{RANK_TEST}, {words}: p ≥ {smallest_p:.2g}, all tie")
            continue
        tests[group] = (_wilcoxon_holm(observations), f"{RANK_TEST}, {words}")
    return tests


def significance_ranks(
    results: pd.DataFrame,
    samples: pd.DataFrame | None,
    alpha: float = 0.05,
    per_example: PerExample | None = None,
) -> pd.DataFrame:
    """Columns KEYS, ``significance_rank`` and ``rank_test``, one row per board key.

    ``significance_rank``: 1 + the number of methods of the same (model, dataset, method
    kind, metric) significantly better (see the module's docstring for the test); a method
    whose mean over seeds is NaN ranks after every method with a mean; pairwise rows rank 0
    (their ``rank_test`` is empty). ``rank_test`` names the test and its observations, the
    same for every row of a group, e.g. "Wilcoxon–Holm, 2 seeds × 100 examples".
    """
    results = with_method_kind(results)
    tests = pairwise_tests(results, samples, alpha, per_example)
    board = results.groupby(KEYS, sort=False).agg(
        method_kind=("method_kind", "first"),
        direction=("direction", "first"),
        mean=("value", lambda v: v.mean(skipna=False)),
    )
    board = board.reset_index()
    board["significance_rank"] = 0
    board["rank_test"] = ""
    single = board["model_b"].eq("")
    for group, part in board[single].groupby(GROUP, sort=False):
        p_values, words = tests[group]
        # Larger is better from here on, whatever the metric's direction.
        signed = part["mean"].where(part["direction"].ne("lower"), -part["mean"])
        score = dict(zip(part["method"], signed, strict=True))
        finite = [method for method, value in score.items() if np.isfinite(value)]
        ranks = []
        for method in part["method"]:
            if method not in finite:
                ranks.append(1 + len(finite))
                continue
            better = 0
            if p_values is not None:
                better = sum(
                    score[other] > score[method] and p_values.loc[method, other] < alpha
                    for other in finite
                    if other != method
                )
            ranks.append(1 + better)
        board.loc[part.index, "significance_rank"] = ranks
        board.loc[part.index, "rank_test"] = words
    return board[[*KEYS, "significance_rank", "rank_test"]]


# --------------------------------------------------------------------------- across models


def critical_difference(
    board: pd.DataFrame,
    metric: str,
    alpha: float = 0.05,
    colours: dict[str, Any] | None = None,
    title: str | None = None,
) -> tuple[Figure, dict[str, Any]] | None:
    """Critical-difference diagram of ``metric`` across (model, dataset) blocks, or None.

    Each block ranks the methods by their mean over seeds on the board (1 = best by the
    metric's direction); the methods are those with a mean in every block. Needs at least
    3 blocks and 2 such methods. The Friedman test (at least 3 methods) asks whether any
    method ranks differently from the rest; the Nemenyi post-hoc test gives each pair's
    p-value, and the diagram joins by a bar methods it does not separate at ``alpha``.
    ``colours``: each method's colour (those of the run's other figures); ``title``: the
    metric in words.

    Returns the figure (unsaved) and a summary: metric, direction, blocks, methods,
    average_ranks, friedman_statistic and friedman_p (None under 3 methods), nemenyi_p
    (a DataFrame), alpha.
    """
    rows = single_rows(board)
    rows = rows[rows["metric"].eq(metric) & np.isfinite(rows["mean"].astype(float))]
    if rows.empty:
        return None
    blocks = {
        f"{model} ({dataset})": part.drop_duplicates("method").set_index("method")
        for (model, dataset), part in rows.groupby(["model", "dataset"], sort=False)
    }
    if len(blocks) < 3:
        return None
    methods = list(dict.fromkeys(rows["method"]))
    methods = [m for m in methods if all(m in block.index for block in blocks.values())]
    if len(methods) < 2:
        return None
    direction = rows["direction"].iloc[0]
    means = pd.DataFrame(
        {name: block.loc[methods, "mean"].astype(float) for name, block in blocks.items()}
    ).T  # blocks × methods
    # Rank 1 is the best method of a block, by the metric's direction.
    block_ranks = means.rank(axis=1, ascending=direction == "lower")
    average_ranks = block_ranks.mean(axis=0)
    friedman_statistic = friedman_p = None
    if len(methods) >= 3:
        friedman = stats.friedmanchisquare(*(means[method] for method in methods))
        friedman_statistic, friedman_p = float(friedman.statistic), float(friedman.pvalue)
    nemenyi = sp.posthoc_nemenyi_friedman(block_ranks.to_numpy())
    nemenyi.index = nemenyi.columns = methods

    figure = Figure(figsize=(7.5, 1.2 + 0.28 * len(methods)), layout="constrained")
    axes = figure.subplots()
    palette = None if colours is None else {m: colours[m] for m in methods if m in colours}
    sp.critical_difference_diagram(
        average_ranks, nemenyi, alpha=alpha, ax=axes, color_palette=palette or None
    )
    friedman_words = (
        f"Friedman p = {friedman_p:.3g}" if friedman_p is not None else "Friedman needs 3 methods"
    )
    better = "lower" if direction == "lower" else "higher"
    figure.suptitle(
        f"{title or metric} ({better} is better): mean rank of {len(methods)} methods over "
        f"{len(blocks)} models, 1 = best\nmethods joined by a bar are not told apart by "
        f"Nemenyi's test at α = {alpha:g} ({friedman_words})",
        fontsize=9,
    )
    summary = {
        "metric": metric,
        "direction": direction,
        "blocks": list(blocks),
        "methods": methods,
        "average_ranks": average_ranks.to_dict(),
        "friedman_statistic": friedman_statistic,
        "friedman_p": friedman_p,
        "nemenyi_p": nemenyi,
        "alpha": alpha,
    }
    return figure, summary
