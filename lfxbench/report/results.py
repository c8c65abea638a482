"""A run directory: tidy results, curves, leaderboards and figures, each written atomically.

runs/<suite>/
  cells/<key>.json      one finished cell each (what a rerun skips), keyed with its data
  results.csv           one row per measurement
  curves.csv            one row per curve point
  samples.csv           per-example values of the cells that have them
  metric_agreement.csv  per model, dataset and kind: how alike each two metrics rank methods
  leaderboard.{md,csv,html,tex,json}
  figures/              PDF and PNG
  run.json              suite, environment, cell count
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from lfxbench.errors import LfxbenchError
from lfxbench.report.figure_style import display_name, run_styles, save_figure
from lfxbench.report.formats import FORMATS, render
from lfxbench.report.leaderboard import aggregate, metric_agreement, trends
from lfxbench.report.plots import plot_run
from lfxbench.report.significance import critical_difference
from lfxbench.storage import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from lfxbench.suite import Suite

SUFFIXES = {"latex": "tex"}  # a leaderboard file's suffix where it is not the format's name


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
    board = aggregate(tables["results"], tables["samples"])
    trend_table = trends(tables["results"], suite.trends) if suite.trends else None
    if trend_table is not None:
        written["trends"] = run_dir / "trends.csv"
        atomic_write_text(written["trends"], _csv(trend_table))
    agreement = metric_agreement(board)
    if not agreement.empty:
        written["metric_agreement"] = run_dir / "metric_agreement.csv"
        atomic_write_text(written["metric_agreement"], _csv(agreement))
    figures = run_dir / "figures"
    paths = plot_run(tables, board, figures, suite.trends)
    colours = {method: style["color"] for method, style in run_styles(tables["results"]).items()}
    for metric in board.loc[board["model_b"].eq(""), "metric"].unique():
        diagram = critical_difference(board, metric, colours=colours, title=display_name(metric))
        if diagram is not None:
            paths += save_figure(diagram[0], figures, ("critical_difference", metric))
    written.update({f"figure {path.name}": path for path in paths})
    for fmt in FORMATS:
        name = f"leaderboard.{SUFFIXES.get(fmt, fmt)}"
        written[name] = run_dir / name
        text = render(board, fmt, title=suite.name, trend_table=trend_table, figures=paths)
        atomic_write_text(written[name], text)
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


def load_samples(run_dir: Path) -> pd.DataFrame | None:
    """The per-example values of a run directory's cells, or None (a run without them, or
    one written before they were kept)."""
    path = Path(run_dir) / "samples.csv"
    if not path.is_file() or not path.read_bytes().strip():  # written empty: none kept
        return None
    return read_table(path, "rerun `lfxbench run` on its suite to rebuild it from the cells")


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
