"""`lfxbench compare`: verdicts that respect direction, spread and calibrated runtime."""

from __future__ import annotations

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
    from lfxbench.leaderboard import aggregate

    aggregate(results(BASE)).to_csv(tmp_path / "board.csv", index=False)
    results(BASE).to_csv(tmp_path / "cand.csv", index=False)
    assert main(["compare", str(tmp_path / "board.csv"), str(tmp_path / "cand.csv")]) == 0
    assert main(["compare", str(tmp_path / "nope.csv"), str(tmp_path / "cand.csv")]) == 2
