"""The README's leaderboard excerpts, generated from the committed leaderboards.

An excerpt is the text between a marker line such as

    <!-- excerpt: leaderboard/smoke.csv model=mnist_ae_reconstruction metrics=latent_shift -->

and the next ``<!-- /excerpt -->``: the Markdown quality and time tables of that
leaderboard CSV (``lfxbench leaderboard RUN --format csv``), restricted to one model and
the listed metrics. ``lfxbench report readme`` rewrites them; ``--check`` only says which
differ (exit 1), so a test keeps the README true.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd

from lfxbench.errors import LfxbenchError
from lfxbench.report.formats import markdown_tables, narrow_markdown
from lfxbench.report.results import read_table
from lfxbench.storage import atomic_write_text

MARKER = re.compile(
    r"^<!-- excerpt: (?P<spec>.+?) -->\n(?P<body>.*?)^<!-- /excerpt -->$", re.S | re.M
)
OPTIONS = ("model", "metrics", "kind")


def excerpt(board: pd.DataFrame, model: str, metrics: list[str] | None, kind: str | None) -> str:
    """The quality and time tables of ``model`` (its ``metrics``, of one method ``kind``)."""
    rows = board[board["model"].eq(model) & board["model_b"].eq("")]
    if metrics:  # in the order asked for: the first one sorts the methods
        rows = rows[rows["metric"].isin(metrics)]
        position = rows["metric"].map({metric: i for i, metric in enumerate(metrics)})
        rows = rows.iloc[position.argsort(kind="stable")]
    if kind:
        rows = rows[rows["method_kind"].eq(kind)]
    if rows.empty:
        raise LfxbenchError(
            f"no rows of model {model!r} with metrics {metrics or 'any'} (kind {kind or 'any'}); "
            f"models: {', '.join(sorted(board['model'].unique()))}"
        )
    return "\n\n".join(map(narrow_markdown, markdown_tables(rows).values()))


def _parse(spec: str, readme: Path) -> tuple[Path, dict[str, str]]:
    source, *options = shlex.split(spec)
    parsed = {}
    for option in options:
        name, _, value = option.partition("=")
        if name not in OPTIONS or not value:
            raise LfxbenchError(
                f"{readme}: excerpt {spec!r}: {option!r} is not NAME=VALUE with NAME one of "
                f"{', '.join(OPTIONS)}"
            )
        parsed[name] = value
    if "model" not in parsed:
        raise LfxbenchError(f"{readme}: excerpt {spec!r} needs model=MODEL_ID")
    return readme.parent / source, parsed


def regenerate(readme: Path, check: bool = False) -> list[str]:
    """Rewrite every excerpt of ``readme`` (unless ``check``); the specs that changed."""
    text = readme.read_text(encoding="utf-8")
    changed = []

    def replace(match: re.Match[str]) -> str:
        source, options = _parse(match["spec"], readme)
        board = read_table(source, "a leaderboard CSV (lfxbench leaderboard RUN --format csv)")
        metrics = options["metrics"].split(",") if "metrics" in options else None
        body = excerpt(board, options["model"], metrics, options.get("kind")) + "\n"
        if body != match["body"]:
            changed.append(match["spec"])
        return f"<!-- excerpt: {match['spec']} -->\n{body}<!-- /excerpt -->"

    updated = MARKER.sub(replace, text)
    if changed and not check:
        atomic_write_text(readme, updated)
    return changed
