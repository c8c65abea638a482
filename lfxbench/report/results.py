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
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from lfxbench.errors import LfxbenchError
from lfxbench.report.leaderboard import aggregate, render, trends
from lfxbench.report.plots import plot_curves, plot_pairs, plot_samples, plot_trend
from lfxbench.storage import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
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


PAIR_COLUMNS = ("model_b", "method_b")  # empty on rows of a single explanation


def read_table(path: Path, expected: str) -> pd.DataFrame:
    """A results or leaderboard CSV with its pair columns filled in, or an error naming the
    file, what is wrong with it and ``expected``."""
    try:
        table = pd.read_csv(path, dtype=dict.fromkeys(PAIR_COLUMNS, str))
    except pd.errors.EmptyDataError:
        problem = "is empty"
    except UnicodeDecodeError:
        problem = "is not UTF-8 text (a binary file?)"
    except ValueError as error:  # ParserError and friends
        problem = f"is not a well-formed CSV ({str(error).strip()})"
    except OSError as error:
        problem = f"cannot be read ({error.strerror})"
    else:
        for column in PAIR_COLUMNS:
            table[column] = table[column].fillna("") if column in table else ""
        return table
    raise LfxbenchError(f"{path} {problem}; {expected}")


def read_run_suite(run_dir: Path) -> dict[str, Any]:
    """The validated suite that a run directory's ``run.json`` records ({} without one)."""
    run_file = Path(run_dir) / "run.json"
    if not run_file.is_file():
        return {}
    try:
        suite = json.loads(run_file.read_bytes())["suite"]
        if not isinstance(suite, dict):
            raise TypeError(f"its suite is a {type(suite).__name__}")
    except (OSError, ValueError, KeyError, TypeError) as error:  # ValueError: not JSON
        raise LfxbenchError(
            f"{run_file} is not a run.json as `lfxbench run` writes it (a JSON object with "
            f"the run's `suite`): {str(error).replace(chr(10), ' ')}"
        ) from None
    return suite


def load_results(run_dir: Path, columns: tuple[str, ...] = RESULT_COLUMNS) -> pd.DataFrame:
    """The results table of a run directory, with at least ``columns``."""
    path = Path(run_dir) / "results.csv"
    if not path.is_file():
        raise LfxbenchError(
            f"{run_dir} holds no results.csv; is it a run directory of `lfxbench run`?"
        )
    # The cells are the record of a run, results.csv a table made from them.
    remedy = "rerun `lfxbench run` on its suite to rebuild it from the finished cells"
    results = read_table(path, remedy)
    missing = [column for column in columns if column not in results]
    if missing:
        raise LfxbenchError(f"{path} lacks the columns {', '.join(missing)}; {remedy}")
    return results


IDENTITY = ("suite", "model", "dataset", "method", "metric", "model_b", "method_b", "seed")


def records_to_tables(records: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """Tidy ``results`` (one row per measurement), ``curves`` and per-example ``samples``."""
    results, curves, samples = [], [], []
    for record in records:
        # Cells written by an older lfxbench may lack the newer fields: default them.
        record = {"model_b": "", "method_b": "", "samples": {}, **record}
        identity = {key: record[key] for key in IDENTITY}
        row = {
            k: v
            for k, v in record.items()
            if k not in ("curve", "curve_axes", "samples", "details")
        }
        row.update({f"detail_{name}": value for name, value in record["details"].items()})
        results.append(row)
        x_axis, y_axis = record["curve_axes"]
        for x, y in record["curve"]:
            curves.append(identity | {"x": x, "y": y, "x_label": x_axis, "y_label": y_axis})
        for group, values in record["samples"].items():
            samples.extend(identity | {"group": group, "value": value} for value in values)
    return {
        "results": pd.DataFrame(results),
        "curves": pd.DataFrame(curves),
        "samples": pd.DataFrame(samples),
    }
