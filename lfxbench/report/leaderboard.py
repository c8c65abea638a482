"""From tidy results to a ranked leaderboard: aggregate over seeds, rank, render."""

from __future__ import annotations

import html
import json
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

KEYS = ["model", "dataset", "method", "metric", "model_b", "method_b"]
ARROWS = {"higher": "↑", "lower": "↓"}


def _ci95_halfwidth(values: pd.Series) -> float:
    n = values.count()
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n))


def aggregate(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, dataset, method, metric[, pair]): mean ± spread over seeds, rank,
    timing. Single-explanation rows have empty ``model_b`` / ``method_b`` (as every reader
    of results gives them: `results.read_table`, `records_to_tables`)."""
    results = results.copy()
    kinds = results.get("method_kind", pd.Series(index=results.index, dtype=object))
    results["method_kind"] = kinds.fillna("feature")  # results from before example methods
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
    ascending = board["direction"].eq("lower")
    # Rank within each (model, dataset, metric): 1 is best, ties share the better rank.
    # Pairwise rows are not ranked against each other (rank 0).
    signed = board["mean"].where(ascending, -board["mean"])
    single = board["model_b"].eq("")
    ranks = (
        signed[single]
        .groupby(
            [board.loc[single, "model"], board.loc[single, "dataset"], board.loc[single, "metric"]]
        )
        .rank(method="min", na_option="bottom")  # a NaN mean ranks last, after the ties
    )
    board["rank"] = 0
    board.loc[single, "rank"] = ranks.astype(int)
    return board.sort_values(["model", "metric", "rank", "method"], ignore_index=True)


def _value(record) -> str:
    spread = f" ± {record.std:.3g}" if record.n_seeds > 1 else ""
    return f"{record.mean:.4g}{spread}"


def wide_tables(board: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per model and kind of method: one row per method; each metric beside its time."""
    tables = {}
    single = board[board["model_b"].eq("")]
    for (model, dataset, kind), part in single.groupby(
        ["model", "dataset", "method_kind"], sort=False
    ):
        rows: dict[str, dict[str, object]] = {}
        for record in part.itertuples():
            row = rows.setdefault(record.method, {"method": record.method})
            arrow = ARROWS[record.direction]
            row[f"{record.metric} {arrow}"] = f"{_value(record)} (#{record.rank})"
            row[f"{record.metric} time [s]"] = f"{record.metric_seconds:.3g}"
            row["attribution [ms/example]"] = f"{record.attribution_ms_per_example:.3g}"
            row["_sort"] = min(row.get("_sort", 10**9), record.rank)
        table = pd.DataFrame(rows.values()).sort_values(["_sort", "method"]).drop(columns="_sort")
        n_seeds = int(part["n_seeds"].max())
        plural = "s" if n_seeds != 1 else ""
        tables[f"{model} ({dataset}, {kind} importance, {n_seeds} seed{plural})"] = table
    return tables


def _pair_order(firsts: pd.Series, seconds: pd.Series) -> list[str]:
    """The suite's order of the compared names: pairs run (i, j) with i before j, so the
    earlier a name, the more often it comes first."""
    names = list(dict.fromkeys([*firsts, *seconds]))
    leads = firsts.value_counts()
    return sorted(names, key=lambda name: -leads.get(name, 0))


def pair_tables(board: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Lower-triangular agreement matrices, one per metric and method (across models) or
    per metric and model (across methods)."""
    tables = {}
    pairs = board[board["model_b"].ne("")]
    for metric, part in pairs.groupby("metric", sort=False):
        across_models = part["model"].ne(part["model_b"])
        for group_column, row_column, column in (
            ("method", "model_b", "model"),
            ("model", "method_b", "method"),
        ):
            subset = part[across_models] if group_column == "method" else part[~across_models]
            for name, block in subset.groupby(group_column, sort=False):
                order = _pair_order(block[column], block[row_column])
                matrix = pd.DataFrame("", index=order[1:], columns=order[:-1])
                for record in block.itertuples():
                    first, second = getattr(record, column), getattr(record, row_column)
                    if order.index(first) > order.index(second):
                        first, second = second, first
                    matrix.loc[second, first] = _value(record)
                across = "models" if group_column == "method" else "methods"
                matrix.index.name = f"{metric} across {across}"
                seeds = int(block["n_seeds"].max())
                tables[f"{metric} across {across}: {name} ({seeds} seeds)"] = matrix.reset_index()
    return tables


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


def render(
    board: pd.DataFrame,
    fmt: Literal["md", "csv", "html"],
    title: str = "",
    trend_table: pd.DataFrame | None = None,
) -> str:
    if fmt == "csv":
        return board.to_csv(index=False, float_format="%.6g")
    sections = wide_tables(board) | pair_tables(board)
    if trend_table is not None and not trend_table.empty:
        for parameter, part in trend_table.groupby("parameter", sort=False):
            sections[f"trends with {parameter} (Spearman over models and seeds)"] = part.drop(
                columns="parameter"
            ).round({"spearman_rho": 3, "p_value": 4})
    if fmt == "md":
        parts = [f"# {title}\n"] if title else []
        parts.append(
            "Mean ± std over seeds, (#rank) per metric; ↑ higher is better, "
            "↓ lower is better. Times are per cell (metric) and per example "
            "(attribution).\n"
        )
        for heading, table in sections.items():
            parts.append(f"## {heading}\n\n{table.to_markdown(index=False)}\n")
        return "\n".join(parts)
    if fmt == "html":
        body = [f"<h1>{html.escape(title)}</h1>"] if title else []
        for heading, table in sections.items():
            body.append(f"<h2>{html.escape(heading)}</h2>")
            body.append(table.to_html(index=False, border=0, classes="leaderboard", na_rep=""))
        style = (
            "<style>body{font-family:sans-serif} table.leaderboard{border-collapse:collapse}"
            " .leaderboard td,.leaderboard th{padding:4px 10px;border-bottom:1px solid #ddd}"
            "</style>"
        )
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title>{style}</head><body>{''.join(body)}</body></html>\n"
        )
    raise ValueError(f"unknown format {fmt!r}; allowed: md, csv, html")
