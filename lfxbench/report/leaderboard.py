"""From tidy results to a ranked leaderboard: aggregate over seeds, rank, trends, metric
rank agreement (rendered by :mod:`lfxbench.report.formats`)."""

from __future__ import annotations

import itertools
import json
import warnings
from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from lfxbench.report.significance import significance_ranks
from lfxbench.report.statistics import (
    BLOCK,
    GROUP,
    KEYS,
    confidence_intervals,
    per_example_values,
    with_method_kind,
)

ARROWS = {"higher": "↑", "lower": "↓"}
AGREEMENT_COLUMNS = [*BLOCK, "metric_a", "metric_b", "n_methods", "spearman_rho", "kendall_tau"]


def _ci95_halfwidth(values: pd.Series) -> float:
    n = values.count()
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n))


def aggregate(
    results: pd.DataFrame, samples: pd.DataFrame | None = None, *, statistics: bool = True
) -> pd.DataFrame:
    """One row per (model, dataset, method, metric[, pair]): mean ± spread over seeds, the
    95 % CI of the mean (over seeds × examples where ``samples`` hold per-example values),
    ranks and timing. Single-explanation rows have empty ``model_b`` / ``method_b`` (as
    every reader of results gives them: `results.read_table`, `records_to_tables`).

    Methods are ranked within their table (``BLOCK``: model, dataset, method kind) and
    metric. ``rank`` is 1 + the number of methods significantly better (`significance`),
    and ``rank_test`` says which test decided it; ``rank_by_mean`` orders by the mean alone.

    ``statistics=False`` leaves out what costs: the bootstrap intervals (``ci_low``,
    ``ci_high``, ``ci_method``) and the significance ranks (``rank``, ``rank_test``); rows
    are then sorted by ``rank_by_mean`` where they would be by ``rank``."""
    results = with_method_kind(results)
    for column in (
        "attribution_seconds_per_example",
        "attribution_seconds",
        "training_seconds",
        "calibration_seconds",
        "calibration_after_seconds",
    ):
        if column not in results:
            results[column] = np.nan
    grouped = results.groupby(KEYS, sort=False)
    board = grouped.agg(
        method_kind=("method_kind", "first"),
        direction=("direction", "first"),
        # Not skipping NaN: one seed without a value must not pass for the others' mean.
        mean=("value", lambda values: values.mean(skipna=False)),
        std=("value", "std"),
        n_seeds=("seed", "nunique"),
        attribution_ms_per_example=("attribution_seconds_per_example", lambda s: 1e3 * s.mean()),
        metric_seconds=("metric_seconds", "mean"),
        training_seconds=("training_seconds", "mean"),
        attribution_seconds=("attribution_seconds", "mean"),
        calibration_seconds=("calibration_seconds", "mean"),
        calibration_after_seconds=("calibration_after_seconds", "mean"),
    ).reset_index()
    board["ci95"] = grouped["value"].apply(_ci95_halfwidth).to_numpy()
    board["std"] = board["std"].fillna(0.0)
    # 1 is best, ties share the better rank. Pairwise rows are not ranked against each
    # other (rank 0).
    board["signed_mean"] = board["mean"].where(board["direction"].eq("lower"), -board["mean"])
    single = board["model_b"].eq("")
    ranks = (
        board[single]
        .groupby(GROUP, sort=False)["signed_mean"]
        .rank(method="min", na_option="bottom")  # a NaN mean ranks last, after the ties
    )
    board["rank_by_mean"] = 0
    board.loc[single, "rank_by_mean"] = ranks.astype(int)
    rank = "rank_by_mean"
    if statistics:
        per_example = per_example_values(results, samples)
        intervals = confidence_intervals(results, samples, per_example=per_example)
        significance = significance_ranks(results, samples, per_example=per_example)
        board = board.merge(intervals, on=KEYS, how="left").merge(significance, on=KEYS, how="left")
        board = board.rename(columns={"significance_rank": "rank"})
        rank = "rank"
    board = board.sort_values(
        ["model", "metric", rank, "signed_mean", "method"], ignore_index=True, na_position="last"
    )
    return board.drop(columns="signed_mean")


def _value(record) -> str:
    spread = f" ± {record.std:.3g}" if record.n_seeds > 1 else ""
    return f"{record.mean:.4g}{spread}"


def pair_order(firsts: Iterable[str], seconds: Iterable[str]) -> list[str]:
    """The suite's order of the compared names: pairs run (i, j) with i before j, so the
    earlier a name, the more often it comes first."""
    firsts = list(firsts)
    names = list(dict.fromkeys([*firsts, *seconds]))
    leads = Counter(firsts)
    return sorted(names, key=lambda name: -leads[name])


def pair_tables(board: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Agreement tables of each metric and method kind: across models, one row per method
    and one column per model pair; across methods, a lower-triangular matrix per model.
    Methods of different kinds are never in one table."""
    tables = {}
    pairs = board[board["model_b"].ne("")]
    for (metric, kind), part in pairs.groupby(["metric", "method_kind"], sort=False):
        n_seeds = int(part["n_seeds"].max())
        seeds = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
        across_models = part[part["model"].ne(part["model_b"])]
        if not across_models.empty:
            columns = across_models["model"] + " vs " + across_models["model_b"]
            values = [_value(record) for record in across_models.itertuples()]
            matrix = (
                pd.DataFrame({"method": across_models["method"], "pair": columns, "v": values})
                .pivot(index="method", columns="pair", values="v")
                .reindex(index=list(dict.fromkeys(across_models["method"])))
                .reindex(columns=list(dict.fromkeys(columns)))
                .fillna("")
            )
            heading = f"{metric} across models: {kind} methods ({seeds})"
            tables[heading] = matrix.reset_index()
        within = part[part["model"].eq(part["model_b"])]
        for model, block in within.groupby("model", sort=False):
            order = pair_order(block["method"], block["method_b"])
            matrix = pd.DataFrame("", index=order[1:], columns=order[:-1])
            for record in block.itertuples():
                first, second = record.method, record.method_b
                if order.index(first) > order.index(second):
                    first, second = second, first
                matrix.loc[second, first] = _value(record)
            matrix.index.name = "method"
            heading = f"{metric} across {kind} methods: {model} ({seeds})"
            tables[heading] = matrix.reset_index()
    return tables


def metric_agreement(board: pd.DataFrame) -> pd.DataFrame:
    """How alike two metrics order the methods of one (model, dataset, method kind): per
    pair of metrics (the board's order, each pair once), Spearman's rho and Kendall's tau
    between the methods' means over the methods with a finite mean for both. Each metric is
    signed so that higher is better (a "lower" metric negated): +1 is the same order of
    merit, -1 the reverse. A block of fewer than 3 methods has no rows (an order of two
    says little); NaN where fewer than 3 have both means, or a metric ties every method."""
    rows = []
    single = board[board["model_b"].eq("")]
    for block, part in single.groupby(BLOCK, sort=False):
        if part["method"].nunique() < 3:
            continue
        merit = part["mean"].where(part["direction"].ne("lower"), -part["mean"])
        by_method = part.assign(merit=merit).pivot(index="method", columns="metric", values="merit")
        for metric_a, metric_b in itertools.combinations(dict.fromkeys(part["metric"]), 2):
            pair = by_method[[metric_a, metric_b]].astype(float)
            pair = pair[np.isfinite(pair).all(axis=1)]
            rho = tau = float("nan")
            if len(pair) >= 3:
                with warnings.catch_warnings():
                    # A metric that ties every method orders none: NaN is the answer.
                    warnings.simplefilter("ignore", stats.ConstantInputWarning)
                    rho = float(stats.spearmanr(pair[metric_a], pair[metric_b]).statistic)
                    tau = float(stats.kendalltau(pair[metric_a], pair[metric_b]).statistic)
            rows.append(
                dict(zip(BLOCK, block, strict=True))
                | {
                    "metric_a": metric_a,
                    "metric_b": metric_b,
                    "n_methods": len(pair),
                    "spearman_rho": rho,
                    "kendall_tau": tau,
                }
            )
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def trends(results: pd.DataFrame, parameters: list[str]) -> pd.DataFrame:
    """Spearman rank correlation of each metric with a model parameter (e.g. beta).

    Models of one family (same zoo entry and objective) that differ in the parameter are
    pooled, every seed one point: a trend is how the metric moves as the parameter grows.
    """
    rows = []
    single = results[results["model_b"] == ""]
    if "model_params" not in single or single.empty:
        return pd.DataFrame()
    params = single["model_params"].map(json.loads)
    for parameter in parameters:
        values = params.map(lambda p, name=parameter: p.get(name))
        usable = single.assign(parameter_value=values)[values.notna()]
        keys = ["model_name", "objective", "method", "metric"]
        for key, group in usable.groupby(keys, sort=False):
            if group["parameter_value"].nunique() < 2:
                continue
            statistic = stats.spearmanr(group["parameter_value"].astype(float), group["value"])
            rows.append(
                dict(zip(keys, key, strict=True))
                | {
                    "parameter": parameter,
                    "values": ", ".join(
                        f"{v:g}" for v in sorted(group["parameter_value"].unique())
                    ),
                    "n": len(group),
                    "spearman_rho": float(statistic.statistic),
                    "p_value": float(statistic.pvalue),
                }
            )
    return pd.DataFrame(rows)
