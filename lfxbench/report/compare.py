"""``lfxbench compare BASELINE CANDIDATE``: what got better or worse, in quality and runtime.

Either side is a run directory, a ``results.csv`` (one row per seed) or a leaderboard CSV
(already aggregated); anything else is a ``ComparisonError`` (exit 2) naming the file.

Quality: a difference inside the tolerance (relative, absolute, or the seed-to-seed spread,
whichever is largest) is "same"; outside it, "better" or "worse" by the metric's direction.
A mean that is NaN or infinite on one side only (one NaN seed makes its cell's mean NaN) is
"not finite", a regression: the metric broke, or the baseline cannot vouch for the
candidate. NaN on both sides is "undefined", not a regression: the metric is undefined for
that cell in both runs.

Runtime: seconds are divided by the seconds of a fixed workload timed next to the cell's
attribution (once per run for older results); timed both before and after it, the larger
counts, since load only ever lengthens a timing and the slower one saw the load the
attribution met. With one row per seed on both sides the calibrated ratio is taken per seed,
and a cell is "slower" only if every seed is slower beyond the threshold ("faster" likewise):
a busy moment rarely hits every seed, a slower method always does. The threshold rises to
the machine's noise where that is larger, the spread of the workload's timings within either
run: a ratio no larger than the machine's own swings cannot be told from them. Leaderboard
CSVs have no seeds: their cells are judged on mean seconds over mean calibration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lfxbench.errors import LfxbenchError
from lfxbench.report.leaderboard import KEYS, aggregate
from lfxbench.report.results import read_run_suite, read_table
from lfxbench.report.tolerances import Tolerances


class ComparisonError(LfxbenchError):
    """The two sides cannot be compared (exit code 2)."""


EXPECTED = "expected a run directory, a results.csv (one row per seed) or a leaderboard CSV"
NAMES = ["model", "dataset", "method", "metric"]
COLUMNS = {
    "results": [*NAMES, "seed", "value", "direction", "metric_seconds"],
    "leaderboard": [*NAMES, "mean", "std", "direction", "metric_seconds"],
}
CALIBRATIONS = ["calibration_seconds", "calibration_after_seconds"]
NUMBERS = ["value", "mean", "std", "attribution_seconds", "metric_seconds", *CALIBRATIONS]
RATIOS = ["runtime_ratio", "runtime_ratio_min", "runtime_ratio_max"]
SEED_RUNTIME, SEED_CALIBRATION = "runtime_seconds seed=", "calibration_seconds seed="


def _run_settings(run_dir: Path) -> dict:
    """The suite's ``compare:`` settings that the run directory's ``run.json`` records."""
    settings = read_run_suite(run_dir).get("compare") or {}
    try:
        Tolerances.model_validate(settings)
    except ValueError as error:
        raise ComparisonError(
            f"{run_dir / 'run.json'} is not a run.json as `lfxbench run` writes it: its "
            f"`compare:` settings do not validate: {str(error).replace(chr(10), ' ')}"
        ) from None
    return settings


def _reject(path: Path, rows: pd.Series, problem: str, values: pd.Series | None = None) -> None:
    """Fail on the first row where ``rows`` is true, by its line in the file (and value)."""
    if rows.any():
        first = rows.to_numpy().argmax()
        shown = "" if values is None else f" {values.iloc[first]!r}"
        raise ComparisonError(f"{path}: line {first + 2}: {problem}{shown}")


def _validated(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    kind = "results" if "value" in table else "leaderboard" if "mean" in table else None
    if kind is None:
        found = ", ".join(repr(str(column))[:30] for column in table.columns[:8])
        raise ComparisonError(
            f"{path} has neither a `value` column (results) nor a `mean` column (a "
            f"leaderboard); {EXPECTED}. Its columns: {found}"
        )
    missing = [column for column in COLUMNS[kind] if column not in table]
    if missing:
        raise ComparisonError(
            f"{path} lacks the column(s) {', '.join(missing)}; expected {kind} CSV columns "
            f"{', '.join(COLUMNS[kind])}"
        )
    if table.empty:
        raise ComparisonError(f"{path} has a header but no rows; {EXPECTED}")
    for column in [name for name in NUMBERS if name in table]:
        numbers = pd.to_numeric(table[column], errors="coerce")
        bad = numbers.isna() & table[column].notna()
        _reject(path, bad, f"{column} should be a number, not", table[column])
        table[column] = numbers
    seed = ["seed"] if kind == "results" else []
    names = ", ".join(NAMES + seed)
    _reject(path, table[NAMES + seed].isna().any(axis=1), f"one of {names} is empty")
    directions = ~table["direction"].isin(["higher", "lower"])
    _reject(path, directions, "direction should be higher or lower, not", table["direction"])
    _reject(path, table.duplicated(KEYS + seed), f"repeats the {names} of an earlier line")
    return table


def _aggregate(results: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard of ``results``, with each seed's runtime and calibration beside its
    cell (columns ``runtime_seconds seed=S``, ``calibration_seconds seed=S``)."""
    timings = results[[*KEYS, "seed"]].assign(
        runtime_seconds=_runtime_seconds(results), calibration_seconds=_calibration(results)
    )
    seeds = timings.pivot(
        index=KEYS, columns="seed", values=["runtime_seconds", "calibration_seconds"]
    )
    seeds.columns = [f"{name} seed={seed}" for name, seed in seeds.columns]
    # aggregate() does not skip NaN: a seed whose metric broke makes its cell's mean NaN.
    # Its intervals and significance ranks go unread here, and they cost the most.
    board = aggregate(results, statistics=False)
    return board.merge(seeds.reset_index(), on=KEYS, how="left")


def load_board(path: Path) -> tuple[pd.DataFrame, dict]:
    """An aggregated leaderboard from a run directory, results CSV or leaderboard CSV, plus
    the suite's ``compare:`` settings when the run directory records them."""
    path = Path(path)
    settings: dict = {}
    if path.is_dir():
        settings = _run_settings(path)
        if not (path / "results.csv").is_file():
            raise ComparisonError(f"{path} is a directory without a results.csv; {EXPECTED}")
        path = path / "results.csv"
    if not path.is_file():
        raise ComparisonError(f"{path} does not exist; {EXPECTED}")
    table = _validated(read_table(path, EXPECTED), path)
    return (_aggregate(table) if "value" in table else table), settings


def _cell_names(frame: pd.DataFrame) -> list[str]:
    names = []
    for row in frame[KEYS].itertuples(index=False):
        pair = f" vs {row.model_b}/{row.method_b}" if row.model_b else ""
        names.append(f"{row.model}/{row.method}/{row.metric}{pair}")
    return names


def _runtime_seconds(board: pd.DataFrame) -> pd.Series:
    attribution = board.get("attribution_seconds", pd.Series(np.nan, index=board.index))
    return attribution.fillna(0.0) + board["metric_seconds"].fillna(0.0)


def _calibration(frame: pd.DataFrame) -> pd.Series:
    """The larger of the calibration timings before and after the attribution (NaN: none)."""
    return frame.reindex(columns=CALIBRATIONS).max(axis=1)


def _calibrated_ratio(merged: pd.DataFrame, runtime: str, calibration: str) -> pd.Series:
    """Candidate over baseline seconds, over the same ratio of calibrations (1 if unknown)."""
    machine = merged.get(f"{calibration}_cand", np.nan) / merged.get(f"{calibration}_base", np.nan)
    machine = pd.Series(machine, index=merged.index).fillna(1.0)
    return merged[f"{runtime}_cand"] / merged[f"{runtime}_base"] / machine


def _machine_noise(board: pd.DataFrame, quantile: float) -> float:
    """How much the calibration workload's time swung within one run (1: not known)."""
    columns = [name for name in board if name.startswith(SEED_CALIBRATION)] or CALIBRATIONS
    timings = pd.Series(board.reindex(columns=columns).to_numpy(float).ravel())
    timings = timings[timings > 0]
    return timings.quantile(1 - quantile) / timings.quantile(quantile) if len(timings) else 1.0


def _runtime_ratios(merged: pd.DataFrame, seeds: list[str]) -> pd.DataFrame:
    """Per cell, the median, lowest and highest calibrated ratio over ``seeds``; without
    seeds (a leaderboard side), the ratio of the means."""
    per_seed = pd.DataFrame(
        {
            seed: _calibrated_ratio(merged, SEED_RUNTIME + seed, SEED_CALIBRATION + seed)
            for seed in seeds
        },
        index=merged.index,
    )
    of_means = _calibrated_ratio(merged, "runtime", "calibration")
    ratios = [per_seed.median(axis=1), per_seed.min(axis=1), per_seed.max(axis=1)]
    return pd.DataFrame({name: r.fillna(of_means) for name, r in zip(RATIOS, ratios, strict=True)})


def compare(
    baseline: pd.DataFrame, candidate: pd.DataFrame, tolerances: Tolerances
) -> pd.DataFrame:
    """One row per cell with both sides' values, the difference and the verdicts."""
    left = baseline.assign(runtime=_runtime_seconds(baseline), calibration=_calibration(baseline))
    right = candidate.assign(
        runtime=_runtime_seconds(candidate), calibration=_calibration(candidate)
    )
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
    quality = np.select(
        [improvement > tolerance, improvement < -tolerance], ["better", "worse"], "same"
    )
    finite = np.isfinite(merged[["mean_base", "mean_cand"]]).sum(axis=1)
    quality = np.select([finite == 2, finite == 1], [quality, "not finite"], "undefined")

    seeds = [name for name in baseline if name.startswith(SEED_RUNTIME) and name in candidate]
    ratios = _runtime_ratios(merged, [name.removeprefix(SEED_RUNTIME) for name in seeds])
    noise = [_machine_noise(side, tolerances.runtime_noise_quantile) for side in (left, right)]
    limit = max(tolerances.runtime_threshold, *noise)
    judged = np.maximum(merged["runtime_base"], merged["runtime_cand"]) >= (
        tolerances.runtime_floor_seconds
    )
    runtime = np.select(
        [~judged, ratios["runtime_ratio_min"] > limit, ratios["runtime_ratio_max"] < 1 / limit],
        ["too fast to judge", "slower", "faster"],
        "same",
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
    table[RATIOS] = ratios
    table["runtime_limit"] = limit
    table["runtime"] = runtime
    broken = table["quality"].isin(["worse", "not finite"])
    table["regression"] = broken | (table["runtime"] == "slower")
    return table


def _ratio_text(median: float, lowest: float, highest: float) -> str:
    """One ratio, or the median and the seeds' range where they differ."""
    lowest_text, highest_text = f"{lowest:.2f}", f"{highest:.2f}"
    same = lowest_text == highest_text or np.isnan(lowest)
    return f"{median:.2f}" if same else f"{median:.2f} ({lowest_text}–{highest_text})"


def render_markdown(table: pd.DataFrame, tolerances: Tolerances) -> str:
    shown = pd.DataFrame(
        {
            "cell": _cell_names(table),
            "baseline": table["baseline"].map("{:.4g}".format),
            "candidate": table["candidate"].map("{:.4g}".format),
            "difference": table["difference"].map("{:+.3g}".format),
            "tolerance": table["tolerance"].map("{:.3g}".format),
            "quality": table["quality"],
            "runtime ×": [_ratio_text(*ratios) for ratios in table[RATIOS].to_numpy()],
            "runtime": table["runtime"],
            "": np.where(table["regression"], "REGRESSION", ""),
        }
    )
    counts = table["quality"].value_counts()
    broken = "".join(f", {counts[k]} {k}" for k in ("not finite", "undefined") if k in counts)
    slower = int((table["runtime"] == "slower").sum())
    threshold = tolerances.runtime_threshold
    limit = np.nanmax([threshold, *table["runtime_limit"]])
    raised = f", raised from {threshold:g}× to the machine's noise" if limit > threshold else ""
    summary = (
        f"{len(table)} cells: {counts.get('better', 0)} better, {counts.get('same', 0)} same, "
        f"{counts.get('worse', 0)} worse{broken} in quality; {slower} slower than "
        f"{limit:.3g}× on every seed (calibrated{raised})."
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
