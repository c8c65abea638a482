"""From tidy results to a ranked leaderboard: aggregate over seeds, rank, render."""

from __future__ import annotations

import html
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

KEYS = ["model", "dataset", "method", "metric"]
ARROWS = {"higher": "↑", "lower": "↓"}


def _ci95_halfwidth(values: pd.Series) -> float:
    n = values.count()
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n))


def aggregate(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, dataset, method, metric): mean ± spread over seeds, rank, timing."""
    grouped = results.groupby(KEYS, sort=False)
    board = grouped.agg(
        direction=("direction", "first"),
        mean=("value", "mean"),
        std=("value", "std"),
        n_seeds=("seed", "nunique"),
        attribution_ms_per_example=("attribution_seconds_per_example", lambda s: 1e3 * s.mean()),
        metric_seconds=("metric_seconds", "mean"),
        training_seconds=("training_seconds", "mean"),
    ).reset_index()
    board["ci95"] = grouped["value"].apply(_ci95_halfwidth).to_numpy()
    board["std"] = board["std"].fillna(0.0)
    ascending = board["direction"].eq("lower")
    # Rank within each (model, dataset, metric): 1 is best, ties share the better rank.
    signed = board["mean"].where(ascending, -board["mean"])
    board["rank"] = (
        signed.groupby([board["model"], board["dataset"], board["metric"]])
        .rank(method="min")
        .astype(int)
    )
    return board.sort_values(["model", "metric", "rank", "method"], ignore_index=True)


def wide_tables(board: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per model: one row per method; each metric's value beside its metric time."""
    tables = {}
    for (model, dataset), part in board.groupby(["model", "dataset"], sort=False):
        rows: dict[str, dict[str, object]] = {}
        for record in part.itertuples():
            row = rows.setdefault(record.method, {"method": record.method})
            arrow = ARROWS[record.direction]
            spread = f" ± {record.std:.3g}" if record.n_seeds > 1 else ""
            row[f"{record.metric} {arrow}"] = f"{record.mean:.4g}{spread} (#{record.rank})"
            row[f"{record.metric} time [s]"] = f"{record.metric_seconds:.3g}"
            row["attribution [ms/example]"] = f"{record.attribution_ms_per_example:.3g}"
            row["_sort"] = min(row.get("_sort", 10**9), record.rank)
        table = pd.DataFrame(rows.values()).sort_values(["_sort", "method"]).drop(columns="_sort")
        n_seeds = int(part["n_seeds"].max())
        tables[f"{model} ({dataset}, {n_seeds} seed{'s' if n_seeds != 1 else ''})"] = table
    return tables


def render(board: pd.DataFrame, fmt: Literal["md", "csv", "html"], title: str = "") -> str:
    if fmt == "csv":
        return board.to_csv(index=False, float_format="%.6g")
    sections = wide_tables(board)
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
            body.append(table.to_html(index=False, border=0, classes="leaderboard"))
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
