"""The leaderboard's exports: Markdown that fits a terminal, booktabs LaTeX with the best
value bold, JSON, and README excerpts regenerated from committed leaderboards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lfxbench.cli import main
from lfxbench.report.excerpts import regenerate
from lfxbench.report.formats import MARKDOWN_WIDTH, latex_escape, render
from lfxbench.report.leaderboard import aggregate

README = Path(__file__).parents[1] / "README.md"
METHODS = [f"method_number_{i}" for i in range(12)]
METRICS = ["latent_shift", "faithfulness_correlation", "model_parameter_randomisation"] + [
    f"metric_{i}" for i in range(5)
]


def results(seeds: int = 3) -> pd.DataFrame:
    generator = np.random.default_rng(0)
    rows = [
        {
            "suite": "wide",
            "model": model,
            "dataset": "mnist_5k",
            "method": method,
            "method_kind": "feature",
            "metric": metric,
            "model_b": "",
            "method_b": "",
            "seed": seed,
            "value": rank + generator.normal(0, 0.01),
            "direction": "higher" if metric != "model_parameter_randomisation" else "lower",
            "metric_seconds": 0.1,
            "attribution_seconds_per_example": 0.001,
        }
        for model in ("ae", "vae")
        for rank, method in enumerate(METHODS)
        for metric in METRICS
        for seed in range(seeds)
    ]
    return pd.DataFrame(rows)


def test_markdown_rows_fit_a_terminal_and_time_has_its_own_table():
    text = render(aggregate(results()), "md", title="wide")
    assert max(map(len, text.splitlines())) <= MARKDOWN_WIDTH
    assert "## ae (mnist_5k, feature importance, 3 seeds): time" in text
    quality = text.split("## ae (mnist_5k, feature importance, 3 seeds)\n")[1].split("## ")[0]
    assert "[s]" not in quality and "ms/example" not in quality
    # Every metric is somewhere in the split quality tables, each with its direction.
    for metric in METRICS:
        assert metric in quality


def test_latex_is_booktabs_with_the_best_value_bold_and_its_ci():
    board = aggregate(results())
    text = render(board, "latex", title="wide")
    assert text.count("\\toprule") == text.count("\\bottomrule") == text.count("\\begin{table}")
    lines = text.splitlines()
    header = next(row for row in lines if "latent shift" in row).split(" & ")
    column = next(i for i, name in enumerate(header) if name.startswith("latent shift"))
    table = lines[lines.index(" & ".join(header)) :]
    line = next(row for row in table if row.startswith(latex_escape(METHODS[-1])))
    best = board[(board.model == "ae") & (board.metric == "latent_shift")].nlargest(1, "mean")
    assert line.split(" & ")[column].startswith(f"\\textbf{{{best['mean'].iloc[0]:.4g}}}")
    assert "\\scriptsize [" in line and "method\\_number\\_11" in line
    # The lower-is-better metric: the best is the smallest.
    assert "model parameter randomisation $\\downarrow$" in text


def test_json_holds_every_row_and_nan_as_null():
    board = aggregate(results(seeds=1))
    document = json.loads(render(board, "json", title="wide"))
    assert document["title"] == "wide" and len(document["rows"]) == len(board)
    assert all(row["std"] == 0 for row in document["rows"])  # one seed
    assert document["rows"][0]["ci_low"] is None  # no interval from one seed


def test_the_readme_excerpts_are_the_committed_leaderboards(tmp_path):
    stale = regenerate(README, check=True)
    assert stale == [], f"rerun `lfxbench report readme`: {stale}"


def test_an_excerpt_is_rewritten_from_its_leaderboard(tmp_path, capsys):
    aggregate(results()).to_csv(tmp_path / "wide.csv", index=False)
    readme = tmp_path / "README.md"
    readme.write_text(
        "# x\n\n<!-- excerpt: wide.csv model=vae metrics=latent_shift -->\nold\n<!-- /excerpt -->\n"
    )
    assert main(["report", "readme", str(readme), "--check"]) == 1
    assert readme.read_text().count("old") == 1  # --check changes nothing
    assert main(["report", "readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old" not in text and "| method_number_11 " in text and "latent_shift ↑" in text
    assert "faithfulness" not in text  # only the metrics asked for
    assert main(["report", "readme", str(readme), "--check"]) == 0


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("wide.csv metrics=latent_shift", "needs model=MODEL_ID"),
        ("wide.csv model=vae colour=red", "'colour=red' is not NAME=VALUE"),
        ("wide.csv model=nobody", "no rows of model 'nobody'"),
    ],
)
def test_a_bad_excerpt_marker_is_named(tmp_path, capsys, marker, message):
    aggregate(results()).to_csv(tmp_path / "wide.csv", index=False)
    readme = tmp_path / "README.md"
    readme.write_text(f"<!-- excerpt: {marker} -->\n<!-- /excerpt -->\n")
    assert main(["report", "readme", str(readme)]) == 2
    assert message in capsys.readouterr().err
