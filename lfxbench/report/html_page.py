"""One self-contained HTML leaderboard page: tables, metric rank agreement, agreement heat
maps, trends, figures.

Everything the page needs is inline (CSS, a few lines of JS, figures as ``data:`` PNGs), so
the file can be mailed, archived or opened from a CI artefact without a network.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lfxbench.errors import LfxbenchError
from lfxbench.report.html_agreement import Scale, agreement_section, metric_agreement_section
from lfxbench.report.html_format import e, finite, kinds, num, sort_key, value_html, words
from lfxbench.report.leaderboard import ARROWS, metric_agreement

# The page's CSS and JS, package data inlined into every page. In the JS, rows sort on each
# cell's data-sort (numbers numerically, NaN as "" always last); the first click on a metric
# sorts best first (data-first), later clicks toggle.
STYLE = "\n" + (files("lfxbench.report") / "page.css").read_text(encoding="utf-8")
SCRIPT = "\n" + (files("lfxbench.report") / "page.js").read_text(encoding="utf-8")


def render_page(
    board: pd.DataFrame,
    title: str,
    figures: Sequence[Path] = (),
    trend_table: pd.DataFrame | None = None,
) -> str:
    """The leaderboard ``board`` (as `leaderboard.aggregate` makes it) as one HTML page.

    A table per model and kind of method (quality columns, then time), how alike its
    metrics rank the methods, agreement rows as heat maps, the trend table if given and the
    PNGs of ``figures`` (other files skipped).
    """
    board = _prepared(board)
    single = board[board["model_b"].eq("")]
    pairs = board[board["model_b"].ne("")]
    sections: list[tuple[str, str, str]] = []  # (anchor, heading, body)
    if not single.empty:
        sections.append(("leaderboard", "Leaderboard", _leaderboard_section(single)))
    agreement = metric_agreement(board)
    if not agreement.empty:
        sections.append(
            ("metric-agreement", "Metric agreement", metric_agreement_section(agreement))
        )
    if not pairs.empty:
        sections.append(("agreement", "Agreement", agreement_section(board, pairs)))
    if trend_table is not None and not trend_table.empty:
        sections.append(("trends", "Trends", _trend_section(trend_table)))
    pngs = [Path(path) for path in figures if Path(path).suffix.lower() == ".png"]
    if pngs:
        sections.append(("figures", "Figures", _figure_section(pngs)))
    nav = "".join(f'<a href="#{anchor}">{e(heading)}</a>' for anchor, heading, _ in sections)
    body = [f"<h1>{e(title)}</h1>" if title else "", f"<nav>{nav}</nav>" if nav else ""]
    if not sections:
        body.append('<p class="legend">No results.</p>')
    for anchor, heading, content in sections:
        body.append(f'<h2 id="{anchor}">{e(heading)}</h2>{content}')
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(title or 'lfxbench leaderboard')}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}<script>{SCRIPT}</script></body></html>\n"
    )


def _prepared(board: pd.DataFrame) -> pd.DataFrame:
    """A copy with the columns every section reads, defaulted for boards of older runs."""
    board = board.copy()
    for column in ("model_b", "method_b"):
        board[column] = board[column].fillna("").astype(str) if column in board else ""
    for column, default in (("dataset", ""), ("method_kind", "feature")):
        board[column] = board[column].fillna(default) if column in board else default
    if "direction" not in board:
        board["direction"] = ""
    board["direction"] = board["direction"].fillna("")
    for column in ("mean", "std", "n_seeds", "rank", "ci95", "ci_low", "ci_high"):
        board[column] = pd.to_numeric(board[column], errors="coerce") if column in board else np.nan
    board["ci_method"] = board["ci_method"].fillna("") if "ci_method" in board else ""
    return board


# --- leaderboard tables ------------------------------------------------------------------


def _leaderboard_section(single: pd.DataFrame) -> str:
    legend = (
        '<p class="legend">Mean over seeds; beneath it, small and grey, the 95 % confidence '
        "interval (hover a value for details). <b>Bold</b>: the best of each column, and every "
        "method ranked 1 in it. #: the rank. ↑ higher is better, ↓ lower is better. Time: "
        "attribution per example, each metric per cell, training per model. Click a header "
        "to sort.</p>"
    )
    parts = [legend]
    models = list(dict.fromkeys(single["model"]))
    for model in models:
        of_model = single[single["model"].eq(model)]
        for dataset in dict.fromkeys(of_model["dataset"]):
            part = of_model[of_model["dataset"].eq(dataset)]
            for kind in kinds(part["method_kind"]):
                parts.append(_leaderboard_table(part[part["method_kind"].eq(kind)]))
    return "".join(parts)


def _first_finite(values: Iterable[Any]) -> float:
    return next((float(v) for v in values if finite(v)), float("nan"))


def _best_methods(records: list[dict[str, Any]]) -> set[str]:
    """Methods in bold: the best mean by the metric's direction, and every rank 1."""
    valid = [r for r in records if finite(r.get("mean"))]
    best = {r["method"] for r in valid if finite(r.get("rank")) and r["rank"] == 1}
    direction = next((r["direction"] for r in valid if r.get("direction") in ARROWS), "")
    if direction:
        pick = max if direction == "higher" else min
        top = pick(float(r["mean"]) for r in valid)
        best |= {r["method"] for r in valid if float(r["mean"]) == top}
    return best


def _leaderboard_table(part: pd.DataFrame) -> str:
    model, dataset, kind = (
        part["model"].iloc[0],
        part["dataset"].iloc[0],
        part["method_kind"].iloc[0],
    )
    metrics = list(dict.fromkeys(part["metric"]))
    records = part.to_dict("records")
    by_method: dict[str, dict[str, dict[str, Any]]] = {}
    for record in records:
        by_method.setdefault(record["method"], {})[record["metric"]] = record

    def mean_rank(method: str) -> float:
        ranks = [r["rank"] for r in by_method[method].values() if finite(r.get("rank"))]
        return float(np.mean(ranks)) if ranks else math.inf

    methods = sorted(by_method, key=lambda m: (mean_rank(m), m))
    best = {
        metric: _best_methods([r for r in records if r["metric"] == metric]) for metric in metrics
    }
    direction = {
        metric: next((r["direction"] for r in records if r["metric"] == metric), "")
        for metric in metrics
    }

    # Time columns: (header, tooltip, {method: value}); one without any value is left out.
    def first_of(method: str, column: str, metric: str | None = None) -> float:
        chosen = [by_method[method][metric]] if metric else by_method[method].values()
        return _first_finite(r.get(column) for r in chosen)

    time_columns: list[tuple[str, str, dict[str, float]]] = []
    if "attribution_ms_per_example" in part:
        time_columns.append(
            (
                "attribution [ms/example]",
                "attribution time per example, mean over seeds",
                {m: first_of(m, "attribution_ms_per_example") for m in methods},
            )
        )
    if "metric_seconds" in part:
        time_columns += [
            (
                f"{words(metric)} [s]",
                f"time of the metric {metric} per cell, mean over seeds",
                {
                    m: first_of(m, "metric_seconds", metric)
                    for m in methods
                    if metric in by_method[m]
                },
            )
            for metric in metrics
        ]
    if "training_seconds" in part:
        time_columns.append(
            (
                "training [s]",
                "training time of the model, mean over seeds",
                {m: first_of(m, "training_seconds") for m in methods},
            )
        )
    time_columns = [c for c in time_columns if any(finite(v) for v in c[2].values())]

    head_top = ['<th rowspan="2" class="sortable" data-col="0">method</th>']
    head_top.append(f'<th colspan="{len(metrics)}" class="group sep">quality</th>')
    if time_columns:
        head_top.append(f'<th colspan="{len(time_columns)}" class="group sep">time</th>')
    head_bottom = []
    for index, metric in enumerate(metrics, start=1):
        arrow = ARROWS.get(direction[metric], "")
        better = f": {direction[metric]} is better" if arrow else ""
        first = "desc" if direction[metric] == "higher" else "asc"
        head_bottom.append(
            f'<th class="num sortable{" sep" if index == 1 else ""}" data-col="{index}" '
            f'data-first="{first}" title="{e(metric + better)}">'
            # A no-break space keeps the arrow with the last word when the header wraps.
            f"{e(words(metric))}{'&nbsp;' + arrow if arrow else ''}</th>"
        )
    for offset, (header, tip, _) in enumerate(time_columns):
        col = 1 + len(metrics) + offset
        head_bottom.append(
            f'<th class="num sortable{" sep" if offset == 0 else ""}" data-col="{col}" '
            f'data-first="asc" title="{e(tip)}">{e(header)}</th>'
        )

    rows = []
    for method in methods:
        cells = [f'<td class="name" data-sort="{e(method)}">{e(method)}</td>']
        for index, metric in enumerate(metrics):
            record = by_method[method].get(metric)
            sep = " sep" if index == 0 else ""
            if record is None:
                cells.append(f'<td class="num{sep}" data-sort="">–</td>')
                continue
            inner, tip = value_html(record, with_rank=True)
            bold = " best" if method in best[metric] else ""
            cells.append(
                f'<td class="num{sep}{bold}" data-sort="{sort_key(record.get("mean"))}" '
                f'title="{e(tip)}">{inner}</td>'
            )
        for offset, (_, _, values) in enumerate(time_columns):
            seconds = values.get(method, float("nan"))
            sep = " sep" if offset == 0 else ""
            cells.append(
                f'<td class="num time{sep}" data-sort="{sort_key(seconds)}">{num(seconds, 3)}</td>'
            )
        rows.append(f"<tr>{''.join(cells)}</tr>")

    seeds = part["n_seeds"].max()
    seed_text = f", {int(seeds)} seed{'s' if seeds != 1 else ''}" if finite(seeds) else ""
    sub = f"{dataset}{seed_text}" if dataset else seed_text.lstrip(", ")
    label = f"{model} — {kind} importance"
    return (
        f'<h3>{e(label)} <span class="sub">{e(sub)}</span></h3>'
        f'<div class="scroll"><table class="leaderboard sortable" aria-label="{e(label)}" '
        f'data-model="{e(model)}" data-kind="{e(kind)}">'
        f"<thead><tr>{''.join(head_top)}</tr><tr>{''.join(head_bottom)}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


# --- metric agreement, trends and figures -----------------------------------------------


def _trend_section(trend_table: pd.DataFrame) -> str:
    parts = [
        '<p class="legend">Spearman rank correlation of each metric with a model parameter, '
        "pooled over the models of one family and their seeds.</p>"
    ]
    groups = (
        trend_table.groupby("parameter", sort=False)
        if "parameter" in trend_table
        else [("", trend_table)]
    )
    rho_scale = Scale([-1, 1])
    for parameter, part in groups:
        part = part.drop(columns="parameter", errors="ignore")
        numeric = {c for c in part.columns if pd.api.types.is_numeric_dtype(part[c])}
        head = "".join(
            f'<th class="{"num " if c in numeric else ""}sortable" data-col="{i}">'
            f"{e(words(str(c)))}</th>"
            for i, c in enumerate(part.columns)
        )
        rows = []
        for record in part.to_dict("records"):
            cells = []
            for column in part.columns:
                value = record[column]
                if column in numeric:
                    style = f' style="{rho_scale.style(value)}"' if column == "spearman_rho" else ""
                    digits = 3 if column in ("spearman_rho", "p_value") else 4
                    cells.append(
                        f'<td class="num"{style} data-sort="{sort_key(value)}">'
                        f"{num(value, digits)}</td>"
                    )
                else:
                    shown = "" if value is None or value is pd.NA else value
                    cells.append(f'<td data-sort="{e(shown)}">{e(shown)}</td>')
            rows.append(f"<tr>{''.join(cells)}</tr>")
        label = f"trends with {parameter}" if parameter else "trends"
        parts.append(
            f'<h3>{e(label)}</h3><div class="scroll"><table class="trend sortable" '
            f'aria-label="{e(label)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
    return "".join(parts)


def _figure_section(pngs: list[Path]) -> str:
    items = []
    for path in pngs:
        try:
            data = base64.b64encode(path.read_bytes()).decode("ascii")
        except OSError as error:
            raise LfxbenchError(f"cannot embed the figure {path}: {error.strerror}") from None
        name = words(path.stem)
        items.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{e(name)}">'
            f"<figcaption>{e(name)}</figcaption></figure>"
        )
    return f'<div class="figs">{"".join(items)}</div>'
