"""A leaderboard (``leaderboard.aggregate``'s board) as Markdown, CSV, HTML, LaTeX or JSON.

Markdown stays narrow enough for a terminal: quality and time are separate tables, each
split so that no row is wider than ``MARKDOWN_WIDTH`` characters. LaTeX is booktabs with
the best value of each column bold and the 95 % CI beside the value.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from lfxbench.report.html_format import interval, words
from lfxbench.report.leaderboard import ARROWS, BLOCK, metric_agreement, pair_tables

Format = Literal["md", "csv", "html", "latex", "json"]
FORMATS: tuple[Format, ...] = ("md", "csv", "html", "latex", "json")
MARKDOWN_WIDTH = 120
LATEX_METRICS_PER_TABLE = 5  # what fits a printed page's width
RANK_NOTE = (
    "#rank = 1 + the number of methods significantly better (two-sided paired Wilcoxon "
    "signed-rank tests, Holm-corrected within each table and metric, α = 0.05): methods "
    "whose difference is not significant share a rank."
)
AGREEMENT_NOTE = (
    "Metric agreement: Spearman's ρ and Kendall's τ between the methods' means under two "
    "metrics, each signed so that higher is better (1: the same order of methods, −1: the "
    "reverse)."
)
AGREEMENT_HEADING = "do the metrics rank methods alike?"


def number(value: float, digits: int = 4) -> str:
    return (
        ""
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}g}")
    )


def best_rows(part: pd.DataFrame) -> pd.Series:
    """The rows of one model x metric that hold its best value: rank 1 (ties included)."""
    return part["rank"].eq(part["rank"].min()) & part["mean"].notna()


def single_blocks(board: pd.DataFrame) -> dict[tuple[str, str, str], pd.DataFrame]:
    """Single-explanation rows by (model, dataset, method kind), in the board's order."""
    single = board[board["model_b"].eq("")]
    return {
        key: part for key, part in single.groupby(["model", "dataset", "method_kind"], sort=False)
    }


def method_order(part: pd.DataFrame) -> list[str]:
    """Methods sorted by the block's first metric (its rank, then its mean)."""
    first = part["metric"].iloc[0]
    lead = part[part["metric"].eq(first)].copy()
    lead["signed"] = lead["mean"].where(lead["direction"].eq("lower"), -lead["mean"])
    ordered = lead.sort_values(["rank", "signed", "method"], na_position="last")["method"]
    rest = sorted(set(part["method"]) - set(ordered))
    return [*ordered, *rest]


def _heading(model: str, dataset: str, kind: str, part: pd.DataFrame) -> str:
    seeds = int(part["n_seeds"].max())
    return f"{model} ({dataset}, {kind} importance, {seeds} seed{'s' if seeds != 1 else ''})"


def narrow_markdown(table: pd.DataFrame, width: int = MARKDOWN_WIDTH) -> str:
    """``table`` as Markdown, split by columns into tables no wider than ``width``."""
    return "\n\n".join(chunk.to_markdown(index=False) for chunk in _chunks(table, width))


def _chunks(table: pd.DataFrame, width: int) -> list[pd.DataFrame]:
    """``table`` split by columns (the first kept in each) into tables whose Markdown rows
    are at most ``width`` characters (a single column wider than that stands alone)."""

    def cell_width(column: str) -> int:
        # "| value " plus the two spaces tabulate pads numbers with.
        return max([len(str(column)), *map(len, table[column].astype(str))]) + 5

    first, rest = table.columns[0], list(table.columns[1:])
    chunks, current, used = [], [], cell_width(first) + 1
    for column in rest:
        if current and used + cell_width(column) > width:
            chunks.append(table[[first, *current]])
            current, used = [], cell_width(first) + 1
        current.append(column)
        used += cell_width(column)
    if current or not chunks:
        chunks.append(table[[first, *current]])
    return chunks


def markdown_tables(board: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per model x kind: a quality table (value ± std, #rank) and a time table."""
    tables = {}
    for (model, dataset, kind), part in single_blocks(board).items():
        order = method_order(part)
        quality = pd.DataFrame({"method": order}).set_index("method")
        time = pd.DataFrame({"method": order}).set_index("method")
        for metric, rows in part.groupby("metric", sort=False):
            column = f"{metric} {ARROWS[rows['direction'].iloc[0]]}"
            for record in rows.itertuples():
                spread = f" ± {record.std:.3g}" if record.n_seeds > 1 else ""
                quality.loc[record.method, column] = f"{number(record.mean)}{spread} #{record.rank}"
                time.loc[record.method, f"{metric} [s]"] = number(record.metric_seconds, 3)
        for record in part.itertuples():
            time.loc[record.method, "attribution [ms/example]"] = number(
                record.attribution_ms_per_example, 3
            )
        time = time[["attribution [ms/example]", *[c for c in time if c.endswith("[s]")]]]
        heading = _heading(model, dataset, kind, part)
        tables[heading] = quality.fillna("").reset_index()
        tables[f"{heading}: time"] = time.fillna("").reset_index()
    return tables


def _agreement_tables(board: pd.DataFrame) -> dict[tuple[str, str, str], pd.DataFrame]:
    """`metric_agreement` by (model, dataset, method kind), the pairs of metrics as rows."""
    agreement = metric_agreement(board)
    tables = {}
    for block, part in agreement.groupby(BLOCK, sort=False):
        table = part.drop(columns=BLOCK).reset_index(drop=True)
        for column in ("spearman_rho", "kendall_tau"):
            table[column] = table[column].map(lambda value: number(value, 3))
        tables[block] = table
    return tables


def _markdown(board: pd.DataFrame, title: str, trend_table: pd.DataFrame | None) -> str:
    parts = [f"# {title}\n"] if title else []
    agreement = _agreement_tables(board)
    note = (
        "Mean ± std over seeds; ↑ higher is better, ↓ lower is better; "
        f"{RANK_NOTE} 95 % confidence intervals are in leaderboard.csv, .html and .tex. "
        "Times are per cell (metric) and per example (attribution)."
        + (f" {AGREEMENT_NOTE}" if agreement else "")
    )
    parts.append(textwrap.fill(note, MARKDOWN_WIDTH) + "\n")
    sections = {}
    for (model, dataset, kind), part in single_blocks(board).items():
        sections |= markdown_tables(part)
        if (model, dataset, kind) in agreement:
            heading = f"{_heading(model, dataset, kind, part)}: {AGREEMENT_HEADING}"
            sections[heading] = agreement[model, dataset, kind]
    sections |= pair_tables(board)
    if trend_table is not None and not trend_table.empty:
        for parameter, part in trend_table.groupby("parameter", sort=False):
            sections[f"trends with {parameter} (Spearman over models and seeds)"] = part.drop(
                columns="parameter"
            ).round({"spearman_rho": 3, "p_value": 4})
    for heading, table in sections.items():
        parts.append(f"## {heading}\n\n{narrow_markdown(table)}\n")
    return "\n".join(parts)


_LATEX_SPECIAL = {c: f"\\{c}" for c in "&%$#_{}"} | {
    "~": r"\textasciitilde{}",
    "^": r"\^{}",
    "\\": r"\textbackslash{}",
}


# ARROWS as LaTeX writes them: pdflatex has no glyph for the Unicode arrows.
LATEX_ARROWS = {"higher": r"$\uparrow$", "lower": r"$\downarrow$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))


def _latex(board: pd.DataFrame, title: str) -> str:
    parts = [f"% {latex_escape(title)}: generated by lfxbench; needs \\usepackage{{booktabs}}"]
    for (model, dataset, kind), part in single_blocks(board).items():
        order = method_order(part)
        every_metric = list(dict.fromkeys(part["metric"]))
        for start in range(0, len(every_metric), LATEX_METRICS_PER_TABLE):
            metrics = every_metric[start : start + LATEX_METRICS_PER_TABLE]
            parts.append(_latex_table(model, dataset, kind, part, order, metrics))
    return "\n\n".join(parts) + "\n"


def _latex_table(
    model: str, dataset: str, kind: str, part: pd.DataFrame, order: list[str], metrics: list[str]
) -> str:
    part = part[part["metric"].isin(metrics)]
    cells = pd.DataFrame("", index=order, columns=metrics)
    for metric, rows in part.groupby("metric", sort=False):
        best = best_rows(rows)
        for record, is_best in zip(rows.itertuples(), best, strict=True):
            value = number(record.mean)
            value = f"\\textbf{{{value}}}" if is_best else value
            bounds = interval(record._asdict())
            if bounds is not None:
                value += f" {{\\scriptsize [{number(bounds[0], 3)}, {number(bounds[1], 3)}]}}"
            cells.loc[record.method, metric] = value
    directions = part.groupby("metric", sort=False)["direction"].first()
    header = " & ".join(
        ["method", *(f"{latex_escape(words(m))} {LATEX_ARROWS[directions[m]]}" for m in metrics)]
    )
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{latex_escape(_heading(model, dataset, kind, part))}: mean over seeds, "
        "95\\,\\% CI in brackets; bold: rank 1 (no method significantly "
        "better).}",
        f"\\begin{{tabular}}{{l{'r' * len(metrics)}}}",
        "\\toprule",
        f"{header} \\\\",
        "\\midrule",
        *(
            " & ".join([latex_escape(method), *cells.loc[method].tolist()]) + " \\\\"
            for method in order
        ),
        "\\bottomrule",
        "\\end{tabular}",
        "\\end{table}",
    ]
    return "\n".join(lines)


def _json(board: pd.DataFrame, title: str, trend_table: pd.DataFrame | None) -> str:
    def records(table: pd.DataFrame) -> list[dict]:
        return json.loads(table.to_json(orient="records", double_precision=15))

    document = {
        "title": title,
        "ranks": RANK_NOTE,
        "rows": records(board),
        "trends": [] if trend_table is None or trend_table.empty else records(trend_table),
        "metric_agreement": records(metric_agreement(board)),
    }
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def render(
    board: pd.DataFrame,
    fmt: Format,
    title: str = "",
    trend_table: pd.DataFrame | None = None,
    figures: Sequence[Path] = (),
) -> str:
    if fmt == "csv":
        return board.to_csv(index=False, float_format="%.6g")
    if fmt == "md":
        return _markdown(board, title, trend_table)
    if fmt == "latex":
        return _latex(board, title)
    if fmt == "json":
        return _json(board, title, trend_table)
    if fmt == "html":
        from lfxbench.report.html_page import render_page

        return render_page(board, title, list(figures), trend_table)
    raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
