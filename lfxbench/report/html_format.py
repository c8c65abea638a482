"""Small formatting helpers shared by the HTML report's modules: escaping, numbers, the
95 % CI and the inner HTML of a value cell."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable
from typing import Any

KIND_ORDER = ("feature", "unit", "example")


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def num(value: Any, digits: int = 4) -> str:
    """``digits`` significant digits; plain notation from 1e-3 up to a million."""
    if not finite(value):
        return "–"
    value = float(value)
    size = abs(value)
    if value == 0:
        text = "0"
    elif 1e-3 <= size < 10**digits:
        text = f"{value:.{digits}g}"
    elif 10**digits <= size < 1e6:
        text = f"{value:.0f}"
    else:
        text = f"{value:.{digits - 1}g}"
    return re.sub(r"e([+-])0*(\d)", lambda m: f"e{m[1].replace('+', '')}{m[2]}", text)


def sort_key(value: Any) -> str:
    return repr(float(value)) if finite(value) else ""


def words(name: str) -> str:
    return name.replace("_", " ")


def kinds(values: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(values))
    return sorted(names, key=lambda k: (KIND_ORDER.index(k) if k in KIND_ORDER else 99, k))


def interval(record: dict[str, Any]) -> tuple[float, float, str] | None:
    """A board row's 95 % CI and how it was made: the board's own bounds where it has
    them, else mean ± ci95 (boards written before the bounds); None where undefined."""
    low, high = record.get("ci_low"), record.get("ci_high")
    if finite(low) and finite(high):
        return float(low), float(high), str(record.get("ci_method") or "")
    half, mean = record.get("ci95"), record.get("mean")
    if finite(half) and finite(mean):
        seeds = record.get("n_seeds")
        how = f"t over {int(seeds)} seeds" if finite(seeds) else "t"
        return float(mean) - float(half), float(mean) + float(half), how
    return None


def _interval_text(interval: tuple[float, float, str], mean: Any) -> str:
    low, high, _ = interval
    text = f"[{num(low, 3)}, {num(high, 3)}]"
    # A near-zero spread prints as [x, x]: say how small it is instead.
    if num(low, 3) == num(high, 3) and finite(mean):
        text = f"± {num(max(high - float(mean), float(mean) - low), 2)}"
    return text


def _tooltip(record: dict[str, Any], interval: tuple[float, float, str] | None) -> str:
    parts = [f"mean {num(record.get('mean'), 6)}"]
    seeds = record.get("n_seeds")
    if finite(seeds) and seeds > 1 and finite(record.get("std")):
        parts[0] += f" ± {num(record['std'], 3)} (std over {int(seeds)} seeds)"
    if interval is not None:
        low, high, how = interval
        parts.append(f"95 % CI [{num(low, 5)}, {num(high, 5)}]" + (f" ({how})" if how else ""))
    rank = record.get("rank")
    if finite(rank) and rank > 0:
        parts.append(f"rank {int(rank)}")
    return "; ".join(parts)


def value_html(record: dict[str, Any], with_rank: bool) -> tuple[str, str]:
    """The inner HTML of a value cell and its title."""
    bounds = interval(record)
    rank = record.get("rank")
    inner = f'<span class="v">{num(record.get("mean"))}</span>'
    if with_rank:
        shown = f"#{int(rank)}" if finite(rank) and rank > 0 else ""
        inner += f'<span class="rk">{shown}</span>'
    if bounds is not None:
        inner += f'<div class="ci">{e(_interval_text(bounds, record.get("mean")))}</div>'
    return inner, _tooltip(record, bounds)
