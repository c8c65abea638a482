"""The agreement heat maps of the HTML report: across models (a methods × model-pairs table,
or a triangle per method when there are many pairs) and across methods (a triangle per model
and kind of method); and how alike the metrics rank the methods."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from lfxbench.report.html_format import e, finite, kinds, num, sort_key, value_html, words
from lfxbench.report.leaderboard import BLOCK, pair_order

# Up to this many model pairs, agreement across models is one table methods × pairs (a
# column per pair reads at a glance); with more, a triangle per method is more compact.
MAX_PAIR_COLUMNS = 6


class Scale:
    """Cell colours of one metric's heat maps: −1…1 diverging for correlation-like
    values, else the values' own range, so matrices of one metric compare by colour."""

    def __init__(self, values: Iterable[Any]):
        valid = [float(v) for v in values if finite(v)]
        self.diverging = bool(valid) and min(valid) >= -1 and max(valid) <= 1
        self.low = -1.0 if self.diverging or not valid else min(valid)
        self.high = 1.0 if self.diverging or not valid else max(valid)

    def style(self, value: Any) -> str:
        if not finite(value):
            return ""
        value = float(value)
        if self.diverging:
            strength, colour = abs(value), (33, 102, 172) if value >= 0 else (178, 24, 43)
        else:
            span = self.high - self.low
            strength, colour = ((value - self.low) / span if span else 1.0), (33, 102, 172)
        strength = min(max(strength, 0.0), 1.0)
        red, green, blue = (round(255 + (c - 255) * strength) for c in colour)
        ink = "#fff" if strength > 0.55 else "#111"
        return f"background:rgb({red},{green},{blue});color:{ink}"

    def legend(self) -> str:
        if self.diverging:
            gradient, low, high = "#b2182b,#fff,#2166ac", "−1", "1"
        else:
            gradient, low, high = "#fff,#2166ac", num(self.low, 3), num(self.high, 3)
        return (
            f'<span class="sub">colour: {e(low)}<span class="scale" '
            f'style="background:linear-gradient(90deg,{gradient})"></span>{e(high)}</span>'
        )


def _heat_cell(record: dict[str, Any] | None, scale: Scale) -> str:
    if record is None:
        return '<td class="empty"></td>'
    inner, tip = value_html(record, with_rank=False)
    return (
        f'<td class="num" style="{scale.style(record.get("mean"))}" '
        f'data-sort="{sort_key(record.get("mean"))}" title="{e(tip)}">{inner}</td>'
    )


def _triangle(
    label: str, kind: str, cells: dict[tuple[str, str], dict[str, Any]], order: list[str], scale
) -> str:
    """Lower-triangular matrix of ``order`` × ``order`` (diagonal and above left out)."""
    head = "".join(f'<th class="num">{e(name)}</th>' for name in order[:-1])
    rows = []
    for i, second in enumerate(order[1:], start=1):
        row = [f'<th class="rowhead">{e(second)}</th>']
        for j, first in enumerate(order[:-1]):
            record = (cells.get((first, second)) or cells.get((second, first))) if j < i else None
            row.append(_heat_cell(record, scale))
        rows.append(f"<tr>{''.join(row)}</tr>")
    return (
        f'<div><h4>{e(label)}</h4><div class="scroll"><table class="heat" '
        f'aria-label="{e(label)}" data-kind="{e(kind)}"><thead><tr><th></th>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div></div>"
    )


def agreement_section(board: pd.DataFrame, pairs: pd.DataFrame) -> str:
    parts = [
        '<p class="legend">Agreement between the explanations of two models (one method) '
        "or of two methods (one model); mean over seeds, 95 % CI beneath.</p>"
    ]
    for metric, part in pairs.groupby("metric", sort=False):
        scale = Scale(part["mean"])
        across_models = part[part["model"].ne(part["model_b"])]
        across_methods = part[part["model"].eq(part["model_b"])]
        if not across_models.empty:
            parts.append(
                f"<h3>{e(words(metric))} across models {scale.legend()}</h3>"
                + _across_models(across_models, scale)
            )
        if not across_methods.empty:
            parts.append(
                f"<h3>{e(words(metric))} across methods {scale.legend()}</h3>"
                + _across_methods(across_methods, scale)
            )
    return "".join(parts)


def _across_models(part: pd.DataFrame, scale: Scale) -> str:
    """All methods of one metric in one set: a methods × model-pairs table per kind of
    method when there are few pairs, else a triangle per method."""
    order = pair_order(part["model"], part["model_b"])

    def pair(record: dict[str, Any]) -> tuple[str, str]:
        a, b = record["model"], record["model_b"]
        return (a, b) if order.index(a) <= order.index(b) else (b, a)

    records = part.to_dict("records")
    pairs = sorted({pair(r) for r in records}, key=lambda p: (order.index(p[0]), order.index(p[1])))
    blocks = []
    for kind in kinds(part["method_kind"]):
        of_kind = [r for r in records if r["method_kind"] == kind]
        methods = list(dict.fromkeys(r["method"] for r in of_kind))
        if len(pairs) <= MAX_PAIR_COLUMNS:
            cells = {(r["method"], pair(r)): r for r in of_kind}
            used = [p for p in pairs if any((m, p) in cells for m in methods)]
            head = "".join(f'<th class="num">{e(a)}<br>vs {e(b)}</th>' for a, b in used)
            body = "".join(
                f'<tr><th class="rowhead">{e(method)}</th>'
                + "".join(_heat_cell(cells.get((method, p)), scale) for p in used)
                + "</tr>"
                for method in methods
            )
            label = f"{kind} methods"
            blocks.append(
                f'<div><h4>{e(label)}</h4><div class="scroll"><table class="heat" '
                f'aria-label="{e(label)}" data-kind="{e(kind)}"><thead><tr>'
                f'<th class="rowhead">method</th>{head}</tr></thead><tbody>{body}</tbody>'
                "</table></div></div>"
            )
        else:
            for method in methods:
                cells = {pair(r): r for r in of_kind if r["method"] == method}
                names = [n for n in order if any(n in p for p in cells)]
                blocks.append(_triangle(f"{method} ({kind})", kind, cells, names, scale))
    return f'<div class="matrices">{"".join(blocks)}</div>'


def _across_methods(part: pd.DataFrame, scale: Scale) -> str:
    """A triangle per model and kind of method (both methods of a pair share one kind:
    `cells.expand_pairs`)."""
    blocks = []
    for model in dict.fromkeys(part["model"]):
        of_model = part[part["model"].eq(model)]
        for kind in kinds(of_model["method_kind"]):
            block = of_model[of_model["method_kind"].eq(kind)]
            order = pair_order(block["method"], block["method_b"])
            cells = {(r["method"], r["method_b"]): r for r in block.to_dict("records")}
            blocks.append(_triangle(f"{model}, {kind} methods", kind, cells, order, scale))
    return f'<div class="matrices">{"".join(blocks)}</div>'


def metric_agreement_section(agreement: pd.DataFrame) -> str:
    """How alike the metrics of each model and kind rank the methods (`metric_agreement`):
    one small sortable table per block."""
    scale = Scale([-1, 1])
    legend = (
        '<p class="legend">Do two metrics rank the methods alike? Spearman’s ρ and Kendall’s τ '
        "between the methods’ means, each metric signed so that higher is better: 1 is the same "
        f"order of methods, −1 the reverse. {scale.legend()}</p>"
    )
    # (header, numeric): a numeric column sorts highest first on the first click.
    columns = [("metric a", False), ("metric b", False), ("methods", True)]
    columns += [("Spearman ρ", True), ("Kendall τ", True)]
    head = "".join(
        f'<th class="num sortable" data-col="{i}" data-first="desc">{e(text)}</th>'
        if numeric
        else f'<th class="sortable" data-col="{i}">{e(text)}</th>'
        for i, (text, numeric) in enumerate(columns)
    )
    tables = []
    for (model, dataset, kind), part in agreement.groupby(BLOCK, sort=False):
        rows = []
        for record in part.to_dict("records"):
            cells = [
                f'<td class="name" data-sort="{e(record[name])}">{e(words(record[name]))}</td>'
                for name in ("metric_a", "metric_b")
            ]
            cells.append(f'<td class="num">{int(record["n_methods"])}</td>')
            cells += [
                f'<td class="num" style="{scale.style(record[name])}" '
                f'data-sort="{sort_key(record[name])}">{num(record[name], 3)}</td>'
                for name in ("spearman_rho", "kendall_tau")
            ]
            rows.append(f"<tr>{''.join(cells)}</tr>")
        label = f"{model}, {kind} methods"
        tables.append(
            f'<div><h4>{e(label)} <span class="sub">{e(dataset)}</span></h4>'
            f'<div class="scroll"><table class="metric-agreement sortable" '
            f'aria-label="{e(label)}: metric agreement" data-model="{e(model)}" '
            f'data-kind="{e(kind)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div></div>"
        )
    return f'{legend}<div class="matrices">{"".join(tables)}</div>'
