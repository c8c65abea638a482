"""A run directory: tidy results, curves, leaderboards and figures, each written atomically.

runs/<suite>/
  cells/<key>.json      one finished cell each (what a rerun skips), keyed with its data
  results.csv           one row per measurement
  curves.csv            one row per curve point
  leaderboard.{md,csv,html}
  figures/<metric>.png
  run.json              suite, environment, cell count
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd

from lfxbench.errors import LfxbenchError
from lfxbench.report.leaderboard import aggregate, render, trends
from lfxbench.report.plots import plot_curves, plot_pairs, plot_samples, plot_trend
from lfxbench.run.runner import records_to_tables
from lfxbench.storage import atomic_write_json, atomic_write_text
from lfxbench.suite import Suite

FORMATS = ("md", "csv", "html")


def _csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def write_run(
    run_dir: Path, suite: Suite, records: list[dict[str, Any]], environment: dict[str, str]
) -> dict[str, Path]:
    tables = records_to_tables(records)
    written = {}
    for name, table in tables.items():
        written[name] = run_dir / f"{name}.csv"
        atomic_write_text(written[name], _csv(table))
    board = aggregate(tables["results"])
    trend_table = trends(tables["results"], suite.trends) if suite.trends else None
    if trend_table is not None:
        written["trends"] = run_dir / "trends.csv"
        atomic_write_text(written["trends"], _csv(trend_table))
    for fmt in FORMATS:
        written[f"leaderboard.{fmt}"] = run_dir / f"leaderboard.{fmt}"
        text = render(board, fmt, title=suite.name, trend_table=trend_table)
        atomic_write_text(written[f"leaderboard.{fmt}"], text)
    figures = run_dir / "figures"
    paths = plot_curves(tables["curves"], figures) if not tables["curves"].empty else []
    if not tables["samples"].empty:
        paths += plot_samples(tables["samples"], figures)
    paths += plot_pairs(board, figures)
    for parameter in suite.trends:
        paths += plot_trend(tables["results"], parameter, figures)
    written.update({f"figure {path.stem}": path for path in paths})
    atomic_write_json(
        run_dir / "run.json",
        {
            "suite": suite.model_dump(mode="json"),
            "source": suite.source,
            "environment": environment,
            "n_cells": len(records),
        },
    )
    return written


# What every reader of a results table needs (the leaderboard also reads the suite,
# dataset and direction: LEADERBOARD_COLUMNS).
RESULT_COLUMNS = ("model", "method", "metric", "seed", "value")
LEADERBOARD_COLUMNS = (*RESULT_COLUMNS, "suite", "dataset", "direction")


def load_results(run_dir: Path, columns: tuple[str, ...] = RESULT_COLUMNS) -> pd.DataFrame:
    path = Path(run_dir) / "results.csv"
    if not path.is_file():
        raise LfxbenchError(
            f"{run_dir} holds no results.csv; is it a run directory of `lfxbench run`?"
        )
    # The cells are the record of a run, results.csv a table made from them.
    remedy = "rerun `lfxbench run` on its suite to rebuild it from the finished cells"
    try:
        results = pd.read_csv(path, dtype={"model_b": str, "method_b": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise LfxbenchError(f"{path} is not a readable table ({error}); {remedy}") from error
    missing = [column for column in columns if column not in results]
    if missing:
        raise LfxbenchError(f"{path} lacks the columns {', '.join(missing)}; {remedy}")
    return results.fillna({"model_b": "", "method_b": ""})
