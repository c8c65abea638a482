"""`lfxbench compare`: verdicts that respect direction, spread and calibrated runtime."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lfxbench.cli import main


def results(
    values: dict[str, tuple[float, float]], seconds: float = 1.0, calibration: float = 0.5
) -> pd.DataFrame:
    """Two seeds per (method, metric); values are (seed 0, seed 1)."""
    rows = []
    for key, pair in values.items():
        method, metric = key.split("/")
        for seed, value in enumerate(pair):
            rows.append(
                {
                    "suite": "t",
                    "model": "ae",
                    "dataset": "d",
                    "method": method,
                    "metric": metric,
                    "model_b": "",
                    "method_b": "",
                    "seed": seed,
                    "value": value,
                    "direction": "lower" if metric == "loss" else "higher",
                    "method_kind": "feature",
                    "attribution_seconds": seconds,
                    "attribution_seconds_per_example": seconds / 100,
                    "metric_seconds": 0.0,
                    "training_seconds": 1.0,
                    "calibration_seconds": calibration,
                }
            )
    return pd.DataFrame(rows)


BASE = {"ig/shift": (0.80, 0.82), "random/shift": (0.25, 0.25), "ig/loss": (0.10, 0.10)}


def compare_exit(tmp_path, candidate: pd.DataFrame, *flags: str) -> int:
    results(BASE).to_csv(tmp_path / "base.csv", index=False)
    candidate.to_csv(tmp_path / "cand.csv", index=False)
    return main(["compare", str(tmp_path / "base.csv"), str(tmp_path / "cand.csv"), *flags])


def test_equal_candidate_passes(tmp_path, capsys):
    assert compare_exit(tmp_path, results(BASE)) == 0
    out = capsys.readouterr().out
    assert "3 cells: 0 better, 3 same, 0 worse" in out and "No regression." in out


def test_worse_quality_beyond_tolerance_fails_and_names_the_cell(tmp_path, capsys):
    worse = dict(BASE, **{"ig/shift": (0.30, 0.31)})
    assert compare_exit(tmp_path, results(worse)) == 1
    out = capsys.readouterr().out
    assert "- ae/ig/shift" in out and "REGRESSION" in out


def test_direction_decides_better_or_worse(tmp_path, capsys):
    # a lower loss is better; a higher one is worse
    assert (
        compare_exit(tmp_path, results(dict(BASE, **{"ig/loss": (0.05, 0.05)})), "--format", "csv")
        == 0
    )
    table = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert table.set_index("method").loc["ig"].set_index("metric").loc["loss", "quality"] == (
        "better"
    )
    assert compare_exit(tmp_path, results(dict(BASE, **{"ig/loss": (0.2, 0.2)}))) == 1


def test_difference_inside_the_seed_spread_is_same(tmp_path, capsys):
    noisy = {"ig/shift": (0.60, 1.00), "random/shift": (0.25, 0.25), "ig/loss": (0.1, 0.1)}
    # mean 0.80 vs 0.81, std 0.28: same
    assert compare_exit(tmp_path, results(noisy)) == 0


@pytest.mark.parametrize(("slowdown", "expected"), [(3.0, 1), (1.3, 0)])
def test_runtime_threshold(tmp_path, capsys, slowdown, expected):
    assert compare_exit(tmp_path, results(BASE, seconds=slowdown)) == expected
    if expected:
        assert "slower" in capsys.readouterr().out


def test_a_slower_machine_is_not_a_slower_method(tmp_path):
    # 3x the seconds, but the calibration workload also took 3x: same speed
    assert compare_exit(tmp_path, results(BASE, seconds=3.0, calibration=1.5)) == 0


def test_mismatched_cells_exit_2_with_the_list(tmp_path, capsys):
    other = dict(BASE)
    del other["random/shift"]
    other["simplex/shift"] = (0.5, 0.5)
    assert compare_exit(tmp_path, results(other)) == 2
    err = capsys.readouterr().err
    assert "only in the baseline:  ae/random/shift" in err
    assert "only in the candidate: ae/simplex/shift" in err


def test_aggregated_leaderboard_is_accepted_as_a_side(tmp_path, capsys):
    from lfxbench.report.leaderboard import aggregate

    aggregate(results(BASE)).to_csv(tmp_path / "board.csv", index=False)
    results(BASE).to_csv(tmp_path / "cand.csv", index=False)
    assert main(["compare", str(tmp_path / "board.csv"), str(tmp_path / "cand.csv")]) == 0
    assert main(["compare", str(tmp_path / "nope.csv"), str(tmp_path / "cand.csv")]) == 2


# --- NaN and infinite values ---------------------------------------------------------------


@pytest.mark.parametrize("side", ["candidate", "baseline"])
def test_a_nan_on_one_side_is_a_regression_shown_as_not_finite(tmp_path, capsys, side):
    broken = results(dict(BASE, **{"ig/shift": (0.80, float("nan"))}))  # one seed is enough
    if side == "candidate":
        assert compare_exit(tmp_path, broken) == 1
    else:
        broken.to_csv(tmp_path / "base.csv", index=False)
        results(BASE).to_csv(tmp_path / "cand.csv", index=False)
        assert main(["compare", str(tmp_path / "base.csv"), str(tmp_path / "cand.csv")]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| ae/ig/shift"))
    assert "nan" in row and "not finite" in row and "REGRESSION" in row
    assert "0 worse, 1 not finite in quality" in out and "- ae/ig/shift" in out


def test_an_infinite_value_is_not_finite(tmp_path, capsys):
    assert compare_exit(tmp_path, results(dict(BASE, **{"ig/loss": (0.1, float("inf"))}))) == 1
    assert "not finite" in capsys.readouterr().out


def test_nan_on_both_sides_is_undefined_not_a_regression(tmp_path, capsys):
    # a metric undefined for a cell in both runs (none of the committed leaderboards has one)
    undefined = dict(BASE, **{"random/shift": (float("nan"), float("nan"))})
    results(undefined).to_csv(tmp_path / "base.csv", index=False)
    results(undefined).to_csv(tmp_path / "cand.csv", index=False)
    assert main(["compare", str(tmp_path / "base.csv"), str(tmp_path / "cand.csv")]) == 0
    out = capsys.readouterr().out
    assert "2 same, 0 worse, 1 undefined in quality" in out and "No regression." in out


# --- runtime on a noisy machine ------------------------------------------------------------


def timed(
    frame: pd.DataFrame,
    seconds: tuple[float, float],
    before: tuple[float, float],
    after: tuple[float, float] | None = None,
    method: str | None = None,
) -> pd.DataFrame:
    """Per-seed attribution seconds and calibration timings (seed 0, seed 1), on the rows of
    ``method`` (all by default); ``after`` is the workload timed after the attribution."""
    frame = frame.copy()
    rows = frame["method"].eq(method) if method else pd.Series(True, index=frame.index)
    for column, per_seed in (
        ("attribution_seconds", seconds),
        ("calibration_seconds", before),
        ("calibration_after_seconds", after),
    ):
        if per_seed is not None:
            frame.loc[rows, column] = frame.loc[rows, "seed"].map(dict(enumerate(per_seed)))
    return frame


def compare_timed(tmp_path, baseline: pd.DataFrame, candidate: pd.DataFrame) -> int:
    baseline.to_csv(tmp_path / "base.csv", index=False)
    candidate.to_csv(tmp_path / "cand.csv", index=False)
    return main(["compare", str(tmp_path / "base.csv"), str(tmp_path / "cand.csv")])


# Identical code, 1 s of attribution and 0.5 s of calibration on an idle machine. Each seed
# ran while the machine was busier by a factor in [1, 3]; only one of the two calibration
# timings beside it caught that (the baseline's the one before, the candidate's the one after).
NOISY_BASE = timed(results(BASE), seconds=(1.0, 1.2), before=(0.5, 0.6), after=(0.5, 0.5))
NOISY_CAND = timed(results(BASE), seconds=(3.0, 2.5), before=(0.5, 0.5), after=(1.5, 1.25))


def test_noisy_but_equal_runs_pass(tmp_path, capsys):
    # the calibration before alone says 2.75x slower (over the threshold of 2)
    assert compare_timed(tmp_path, NOISY_BASE, NOISY_CAND) == 0
    out = capsys.readouterr().out
    assert "0 slower than 2× on every seed" in out and "No regression." in out


def test_a_4x_slower_method_on_both_seeds_fails_on_the_noisy_machine(tmp_path, capsys):
    slower = timed(NOISY_CAND, seconds=(12.0, 10.0), before=(0.5, 0.5), method="ig")
    assert compare_timed(tmp_path, NOISY_BASE, slower) == 1
    out = capsys.readouterr().out
    assert "- ae/ig/shift" in out and "- ae/ig/loss" in out and "- ae/random/shift" not in out
    ig_rows = [line.split("|") for line in out.splitlines() if line.startswith("| ae/ig/")]
    assert [(float(row[7]), row[8].strip()) for row in ig_rows] == [(4.0, "slower")] * 2


def test_a_slowdown_on_one_seed_only_is_not_slower(tmp_path, capsys):
    # seed 0 ran 4x slower with the machine's slowdown missed by both timings; seed 1 equal
    one_seed = timed(results(BASE), seconds=(4.0, 1.0), before=(0.5, 0.5), after=(0.5, 0.5))
    assert compare_timed(tmp_path, results(BASE), one_seed) == 0
    out = capsys.readouterr().out
    assert "2.50 (1.00–4.00)" in out and "0 slower than" in out


def test_a_ratio_inside_the_machines_noise_is_not_a_verdict(tmp_path, capsys):
    # the candidate's machine swung 3x (its calibrations of 0.5 s and 1.5 s across cells);
    # ig's 2.5x, unseen by its calibration, is inside that swing; a 4x slowdown is not
    swinging = timed(results(BASE), seconds=(1.0, 1.0), before=(1.5, 1.5), method="random")
    inside = timed(swinging, seconds=(2.5, 2.5), before=(0.5, 0.5), method="ig")
    assert compare_timed(tmp_path, results(BASE), inside) == 0
    assert "slower than 3× on every seed (calibrated, raised from 2× to the machine's noise)" in (
        capsys.readouterr().out
    )
    sides = [str(tmp_path / "base.csv"), str(tmp_path / "cand.csv")]
    assert main(["compare", *sides, "--runtime-noise-quantile", "0.5"]) == 1  # widening off
    outside = timed(swinging, seconds=(4.0, 4.0), before=(0.5, 0.5), method="ig")
    assert compare_timed(tmp_path, results(BASE), outside) == 1


def test_a_missing_calibration_after_falls_back_to_the_one_before(tmp_path):
    # NaN after (an attribution cached before it was recorded): the before timing counts
    partly = timed(NOISY_CAND, seconds=(3.0, 2.5), before=(1.5, 1.25), after=(np.nan, np.nan))
    assert compare_timed(tmp_path, NOISY_BASE, partly) == 0
    unseen = timed(NOISY_CAND, seconds=(3.0, 2.5), before=(0.5, 0.5), after=(np.nan, np.nan))
    assert compare_timed(tmp_path, NOISY_BASE, unseen) == 1


def test_a_leaderboard_side_is_judged_on_its_means(tmp_path, capsys):
    from lfxbench.report.leaderboard import aggregate

    aggregate(results(BASE)).to_csv(tmp_path / "board.csv", index=False)
    results(BASE, seconds=3.0).to_csv(tmp_path / "cand.csv", index=False)
    assert main(["compare", str(tmp_path / "board.csv"), str(tmp_path / "cand.csv")]) == 1
    assert "3 cells: 0 better, 3 same, 0 worse in quality; 3 slower than 2×" in (
        capsys.readouterr().out
    )


def test_a_leaderboard_side_counts_its_larger_mean_calibration(tmp_path):
    from lfxbench.report.leaderboard import aggregate

    # the noisy pair again, the candidate aggregated: its mean calibration after the
    # attribution (1.375 s) saw the load its mean calibration before (0.5 s) missed
    board = aggregate(NOISY_CAND).assign(calibration_after_seconds=1.375)
    assert compare_timed(tmp_path, NOISY_BASE, board) == 0
    assert compare_timed(tmp_path, NOISY_BASE, board.drop(columns="calibration_after_seconds")) == 1


def test_a_seed_without_a_value_makes_its_cell_nan_and_ranks_it_last():
    from lfxbench.report.leaderboard import aggregate

    board = aggregate(
        results({"ig/shift": (0.9, float("nan")), "random/shift": (0.25, 0.25)}).pipe(
            lambda frame: pd.concat([frame, results({"sal/shift": (float("nan"),) * 2})])
        )
    ).set_index("method")
    assert math.isnan(board.loc["ig", "mean"]) and math.isnan(board.loc["sal", "mean"])
    assert board.loc["random", "rank"] == 1 and set(board.loc[["ig", "sal"], "rank"]) == {2}
