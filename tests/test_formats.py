"""The leaderboard's exports: Markdown that fits a terminal, booktabs LaTeX with the best
value bold, JSON, the metrics' rank agreement, and README excerpts regenerated from
committed leaderboards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lfxbench.cli import main
from lfxbench.report.excerpts import regenerate
from lfxbench.report.formats import MARKDOWN_WIDTH, latex_escape, render
from lfxbench.report.leaderboard import aggregate, metric_agreement

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
    # 8 metrics: 28 pairs in each block's agreement section, as narrow as the rest.
    agreement = text.split("seeds): do the metrics rank methods alike?\n")[1].split("## ")[0]
    assert agreement.count("\n| ") == 1 + 28  # the header, then a row per pair


def _latex_bold(text: str) -> dict[tuple[str, str], set[str]]:
    """The bold methods of each (caption's model, column heading) of rendered LaTeX."""
    bold: dict[tuple[str, str], set[str]] = {}
    for table in text.split("\\begin{table}")[1:]:
        lines = table.splitlines()
        caption = next(line for line in lines if line.startswith("\\caption{"))
        model = caption.removeprefix("\\caption{").split(" (")[0]
        header = lines[lines.index("\\toprule") + 1].removesuffix(" \\\\").split(" & ")
        body = lines[lines.index("\\midrule") + 1 : lines.index("\\bottomrule")]
        for line in body:
            method, *cells = line.removesuffix(" \\\\").split(" & ")
            for column, cell in zip(header[1:], cells, strict=True):
                shown = bold.setdefault((model, column), set())
                if cell.startswith("\\textbf{"):
                    shown.add(method)
    return bold


def test_latex_is_booktabs_with_the_best_value_bold_and_its_ci():
    board = aggregate(results())
    text = render(board, "latex", title="wide")
    assert text.count("\\toprule") == text.count("\\bottomrule") == text.count("\\begin{table}")
    line = next(row for row in text.splitlines() if row.startswith(latex_escape(METHODS[-1])))
    assert "\\scriptsize [" in line
    # Per-seed values of 3 seeds separate no method (every rank is 1, every cell bold): rank
    # by the mean to have one best per column.
    assert set(board["rank"]) == {1}
    bold = _latex_bold(render(board.assign(rank=board["rank_by_mean"]), "latex", title="wide"))
    assert {model for model, _ in bold} == {"ae", "vae"}
    assert len(bold) == 2 * len(METRICS)
    for (model, column), methods in bold.items():
        metric = column.rsplit(" $", 1)[0].replace(" ", "_")
        rows = board[board["model"].eq(model) & board["metric"].eq(metric)]
        lower = rows["direction"].iloc[0] == "lower"
        assert column.endswith("$\\downarrow$" if lower else "$\\uparrow$")
        best = rows.loc[rows["mean"].idxmin() if lower else rows["mean"].idxmax(), "method"]
        assert methods == {latex_escape(best)}, (model, column)
    # The lower-is-better metric: the best is the smallest, the first method.
    assert bold["ae", "model parameter randomisation $\\downarrow$"] == {latex_escape(METHODS[0])}


def test_json_holds_every_row_and_nan_as_null():
    board = aggregate(results(seeds=1))
    document = json.loads(render(board, "json", title="wide"))
    assert document["title"] == "wide" and len(document["rows"]) == len(board)
    assert all(row["std"] == 0 for row in document["rows"])  # one seed
    assert document["rows"][0]["ci_low"] is None  # no interval from one seed


def ranked(values: dict[str, tuple[str, list[float]]], methods=("a", "b", "c")) -> pd.DataFrame:
    """Results of one model and seed: each metric's (direction, value per method)."""
    rows = [
        {
            "suite": "ranked",
            "model": "ae",
            "dataset": "mnist_5k",
            "method": method,
            "method_kind": "example",
            "metric": metric,
            "model_b": "",
            "method_b": "",
            "seed": 0,
            "value": value,
            "direction": direction,
            "metric_seconds": 0.1,
        }
        for metric, (direction, per_method) in values.items()
        for method, value in zip(methods, per_method, strict=True)
    ]
    return pd.DataFrame(rows)


def test_metric_agreement_compares_orders_of_merit_signed_by_direction():
    board = aggregate(
        ranked(
            {
                "up": ("higher", [1.0, 2.0, 3.0]),
                "up_reversed": ("higher", [3.0, 2.0, 1.0]),
                # Lower is better: values reversed from `up` are the same order of merit.
                "down_reversed": ("lower", [3.0, 2.0, 1.0]),
            }
        )
    )
    agreement = metric_agreement(board).set_index(["metric_a", "metric_b"])
    # Each unordered pair once, in the board's order of metrics (by name).
    assert list(agreement.index) == [
        ("down_reversed", "up"),
        ("down_reversed", "up_reversed"),
        ("up", "up_reversed"),
    ]
    assert agreement.loc[("up", "up_reversed"), ["spearman_rho", "kendall_tau"]].tolist() == [
        pytest.approx(-1.0),
        pytest.approx(-1.0),
    ]
    assert agreement.loc[("down_reversed", "up"), "spearman_rho"] == pytest.approx(1.0)
    assert agreement.loc[("down_reversed", "up"), "kendall_tau"] == pytest.approx(1.0)
    assert agreement.loc[("down_reversed", "up_reversed"), "spearman_rho"] == pytest.approx(-1.0)
    assert set(agreement["n_methods"]) == {3}
    assert set(agreement[["model", "dataset", "method_kind"]].itertuples(index=False)) == {
        ("ae", "mnist_5k", "example")
    }


def test_metric_agreement_needs_three_methods_with_a_finite_mean():
    two = aggregate(ranked({"x": ("higher", [1.0, 2.0]), "y": ("higher", [2.0, 1.0])}, "ab"))
    assert metric_agreement(two).empty
    # A method without a finite mean for one of the two metrics does not count.
    holed = aggregate(ranked({"x": ("higher", [1.0, 2.0, 3.0]), "y": ("higher", [1, 2, np.nan])}))
    (row,) = metric_agreement(holed).to_dict("records")
    assert row["n_methods"] == 2 and np.isnan(row["spearman_rho"])
    # One metric: nothing to compare.
    assert metric_agreement(aggregate(ranked({"x": ("higher", [1.0, 2.0, 3.0])}))).empty


def test_markdown_and_json_hold_the_metric_agreement():
    board = aggregate(ranked({"up": ("higher", [1.0, 2.0, 3.0]), "dn": ("lower", [1.0, 2, 3])}))
    text = render(board, "md", title="ranked")
    heading = "## ae (mnist_5k, example importance, 1 seed): do the metrics rank methods alike?"
    assert heading in text
    # After the block's own tables.
    assert text.index("## ae (mnist_5k, example importance, 1 seed): time") < text.index(heading)
    section = text.split(heading)[1]
    assert "| dn " in section and "| up " in section and "-1" in section
    document = json.loads(render(board, "json", title="ranked"))
    (row,) = document["metric_agreement"]
    assert (row["metric_a"], row["metric_b"], row["n_methods"]) == ("dn", "up", 3)
    assert row["spearman_rho"] == pytest.approx(-1.0)
    # No section (and no note about it) where no block has two metrics.
    single = aggregate(ranked({"up": ("higher", [1.0, 2.0, 3.0])}))
    assert "rank methods alike" not in render(single, "md", title="ranked")
    assert json.loads(render(single, "json", title="ranked"))["metric_agreement"] == []


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
