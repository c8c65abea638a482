"""``lfxbench compare BASELINE CANDIDATE``: what got better or worse, in quality and runtime.

Either side is a run directory, a ``results.csv`` (one row per seed) or a leaderboard CSV
(already aggregated). A quality difference inside the tolerance (relative, absolute, or
the seed-to-seed spread, whichever is largest) is "same"; a difference outside it is
"better" or "worse" according to the metric's direction. Runtimes are compared as a ratio
of calibrated times (each side's seconds divided by the seconds of a fixed workload timed
just before the cell's attribution, or once per run for older results), so a slower or
busier machine does not read as a slower method.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from lfxbench.errors import LfxbenchError
from lfxbench.leaderboard import KEYS, aggregate


class Tolerances(BaseModel):
    """How large a change must be to count. A suite may set them under ``compare:``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quality_rtol: float = Field(0.05, ge=0, description="relative to the baseline value")
    quality_atol: float = Field(1e-6, ge=0, description="absolute floor")
    spread_factor: float = Field(1.0, ge=0, description="x the larger seed-to-seed std")
    runtime_threshold: float = Field(2.0, gt=1, description="fail beyond this slowdown")
    runtime_floor_seconds: float = Field(
        0.1, ge=0, description="cells faster than this on both sides are not judged"
    )


class ComparisonError(LfxbenchError):
    """The two sides cannot be compared (exit code 2)."""


def load_board(path: Path) -> tuple[pd.DataFrame, dict]:
    """An aggregated leaderboard from a run directory, results CSV or leaderboard CSV, plus
    the suite's ``compare:`` settings when the run directory records them."""
    path = Path(path)
    settings: dict = {}
    if path.is_dir():
        run_file = path / "run.json"
        if run_file.is_file():
            settings = json.loads(run_file.read_text()).get("suite", {}).get("compare") or {}
        path = path / "results.csv"
    if not path.is_file():
        raise ComparisonError(
            f"{path} does not exist: give a run directory, a results.csv or a leaderboard CSV"
        )
    table = pd.read_csv(path, dtype={"model_b": str, "method_b": str})
    for column in ("model_b", "method_b"):
        if column not in table:
            table[column] = ""
        table[column] = table[column].fillna("")
    if {"value", "seed"} <= set(table.columns):
        return aggregate(table), settings
    if {"mean", "std", "direction"} <= set(table.columns):
        return table, settings
    raise ComparisonError(
        f"{path} is neither results (value, seed) nor a leaderboard (mean, std, direction)"
    )


def _cell_names(frame: pd.DataFrame) -> list[str]:
    names = []
    for row in frame[KEYS].itertuples(index=False):
        pair = f" vs {row.model_b}/{row.method_b}" if row.model_b else ""
        names.append(f"{row.model}/{row.method}/{row.metric}{pair}")
    return names


def _runtime_seconds(board: pd.DataFrame) -> pd.Series:
    attribution = board.get("attribution_seconds", pd.Series(np.nan, index=board.index))
    return attribution.fillna(0.0) + board["metric_seconds"].fillna(0.0)


def compare(
    baseline: pd.DataFrame, candidate: pd.DataFrame, tolerances: Tolerances
) -> pd.DataFrame:
    """One row per cell with both sides' values, the difference and the verdicts."""
    left = baseline.assign(runtime=_runtime_seconds(baseline))
    right = candidate.assign(runtime=_runtime_seconds(candidate))
    merged = left.merge(right, on=KEYS, how="outer", suffixes=("_base", "_cand"), indicator=True)
    only_base = merged[merged["_merge"] == "left_only"]
    only_cand = merged[merged["_merge"] == "right_only"]
    if len(only_base) or len(only_cand):
        lines = [f"  only in the baseline:  {name}" for name in _cell_names(only_base)]
        lines += [f"  only in the candidate: {name}" for name in _cell_names(only_cand)]
        raise ComparisonError(
            "the two sides do not cover the same cells; regenerate the baseline if the "
            "change is intended:\n" + "\n".join(lines)
        )
    sign = np.where(merged["direction_base"].eq("lower"), -1.0, 1.0)
    difference = merged["mean_cand"] - merged["mean_base"]
    spread = np.maximum(merged["std_base"].fillna(0), merged["std_cand"].fillna(0))
    tolerance = np.maximum.reduce(
        [
            np.full(len(merged), tolerances.quality_atol),
            tolerances.quality_rtol * merged["mean_base"].abs(),
            tolerances.spread_factor * spread,
        ]
    )
    improvement = sign * difference
    quality = np.where(
        improvement > tolerance, "better", np.where(improvement < -tolerance, "worse", "same")
    )

    calibration = merged.get("calibration_seconds_cand", np.nan) / merged.get(
        "calibration_seconds_base", np.nan
    )
    calibration = pd.Series(calibration, index=merged.index).fillna(1.0)
    ratio = merged["runtime_cand"] / merged["runtime_base"] / calibration
    judged = np.maximum(merged["runtime_base"], merged["runtime_cand"]) >= (
        tolerances.runtime_floor_seconds
    )
    runtime = np.where(
        ~judged,
        "too fast to judge",
        np.where(
            ratio > tolerances.runtime_threshold,
            "slower",
            np.where(ratio < 1 / tolerances.runtime_threshold, "faster", "same"),
        ),
    )
    table = merged[KEYS].copy()
    table["direction"] = merged["direction_base"]
    table["baseline"] = merged["mean_base"]
    table["candidate"] = merged["mean_cand"]
    table["difference"] = difference
    table["tolerance"] = tolerance
    table["quality"] = quality
    table["runtime_baseline_s"] = merged["runtime_base"]
    table["runtime_candidate_s"] = merged["runtime_cand"]
    table["runtime_ratio"] = ratio
    table["runtime"] = runtime
    table["regression"] = (table["quality"] == "worse") | (table["runtime"] == "slower")
    return table


def render_markdown(table: pd.DataFrame, tolerances: Tolerances) -> str:
    shown = pd.DataFrame(
        {
            "cell": _cell_names(table),
            "baseline": table["baseline"].map("{:.4g}".format),
            "candidate": table["candidate"].map("{:.4g}".format),
            "difference": table["difference"].map("{:+.3g}".format),
            "tolerance": table["tolerance"].map("{:.3g}".format),
            "quality": table["quality"],
            "runtime ×": table["runtime_ratio"].map("{:.2f}".format),
            "runtime": table["runtime"],
            "": np.where(table["regression"], "REGRESSION", ""),
        }
    )
    counts = table["quality"].value_counts()
    slower = int((table["runtime"] == "slower").sum())
    summary = (
        f"{len(table)} cells: {counts.get('better', 0)} better, {counts.get('same', 0)} same, "
        f"{counts.get('worse', 0)} worse in quality; {slower} slower than "
        f"{tolerances.runtime_threshold:g}× (calibrated)."
    )
    regressions = [
        name for name, bad in zip(_cell_names(table), table["regression"], strict=True) if bad
    ]
    verdict = (
        "No regression."
        if not regressions
        else "Regressions:\n" + "\n".join(f"- {name}" for name in regressions)
    )
    return f"{shown.to_markdown(index=False)}\n\n{summary}\n{verdict}\n"
