"""How a claim is tested on a run: the :class:`Check` protocol, the orderings of section
4.1 and Appendix C.1 (latent shift, similarity rates, ROAR) and their tolerances.

A check reads named models and methods and returns a :class:`Finding` (our value: means
and spread over seeds; whether the claim holds; why). A :class:`Claim` pairs a published
statement with its check and setting; other studies: :mod:`.pretext_checks`, :mod:`.vae_checks`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from lfxbench.paper_report.protocols import Protocol
from lfxbench.paper_report.runs import Missing, Run

CHORD_AREA = 0.5  # "rises sharply, then decelerates": the curve's normalised area above it
FIGURE_SLACK = 0.1  # a value read off a figure


@dataclass(frozen=True)
class Finding:
    ours: str
    holds: bool
    why: str


def fmt(value: float) -> str:
    return "nan" if value is None or math.isnan(value) else f"{value:.3g}"


def mean_std(series: pd.Series) -> str:
    """mean ± std over seeds (std only with 2+ seeds)."""
    if len(series) > 1:
        return f"{fmt(series.mean())} ± {series.std(ddof=1):.2g}"
    return fmt(series.mean())


def seed_count(series: dict[str, pd.Series]) -> str:
    counts = {len(s) for s in series.values()}
    n = max(counts) if counts else 0
    return f"{n} seed{'s' if n != 1 else ''}"


class Check:
    """How one claim is tested on a run of its study."""

    study: str
    numeric: bool = False  # a published number: needs the paper's protocol

    def models(self, run: Run) -> list[str]:
        raise NotImplementedError

    def methods(self) -> tuple[str, ...]:
        return ()

    def evaluate(self, run: Run) -> Finding:
        raise NotImplementedError


class OrderingCheck(Check):
    """A relation between named per-seed values, judged on the means and on each seed."""

    statement = ""

    def series(self, run: Run) -> dict[str, pd.Series]:
        raise NotImplementedError

    def failures(self, values: dict[str, float]) -> list[str]:
        """What breaks the relation (empty: it holds)."""
        raise NotImplementedError

    def describe(self, series: dict[str, pd.Series]) -> str:
        return ", ".join(f"{name} {mean_std(s)}" for name, s in series.items())

    def evaluate(self, run: Run) -> Finding:
        series = self.series(run)
        failed = self.failures({name: s.mean() for name, s in series.items()})
        ours = f"{self.describe(series)} ({seed_count(series)})"
        common = sorted(set.intersection(*(set(s.index) for s in series.values())))
        if len(common) >= 2:
            kept = sum(
                not self.failures({name: s[seed] for name, s in series.items()}) for seed in common
            )
            ours += f"; holds on {kept}/{len(common)} seeds"
        return Finding(ours, not failed, "; ".join(failed) if failed else self.statement)


@dataclass(frozen=True)
class Versus(OrderingCheck):
    """Each method is (or, expected False, is not) above a reference method."""

    study: str
    metric: str
    model: str
    reference: str
    expect: tuple[tuple[str, bool], ...]
    statement: str = ""

    def models(self, run: Run) -> list[str]:
        return [self.model]

    def methods(self) -> tuple[str, ...]:
        return (*(m for m, _ in self.expect), self.reference)

    def series(self, run: Run) -> dict[str, pd.Series]:
        return {m: run.values(self.model, m, self.metric) for m in self.methods()}

    def failures(self, values: dict[str, float]) -> list[str]:
        reference = values[self.reference]
        wrong = []
        for method, above in self.expect:
            if (values[method] > reference) != above:
                relation = "≤" if above else ">"
                wrong.append(
                    f"{method} {fmt(values[method])} {relation} {self.reference} {fmt(reference)}"
                )
        return wrong


@dataclass(frozen=True)
class Best(OrderingCheck):
    """One method above every other method the run has for the model and metric."""

    study: str
    metric: str
    model: str
    method: str
    excluded: tuple[str, ...] = ("random", "random_examples")  # references are not rivals
    statement: str = ""

    def models(self, run: Run) -> list[str]:
        return [self.model]

    def methods(self) -> tuple[str, ...]:
        return (self.method,)

    def series(self, run: Run) -> dict[str, pd.Series]:
        best = run.values(self.model, self.method, self.metric)
        rows = run.results[
            run.results["model"].eq(self.model)
            & run.results["metric"].eq(self.metric)
            & run.results["model_b"].eq("")
        ]
        rivals = [
            m for m in dict.fromkeys(rows["method"]) if m not in (self.method, *self.excluded)
        ]
        if not rivals:
            raise Missing(f"no method to compare {self.method} with on {self.model}")
        return {self.method: best} | {m: run.values(self.model, m, self.metric) for m in rivals}

    def failures(self, values: dict[str, float]) -> list[str]:
        best = values[self.method]
        return [
            f"{m} {fmt(v)} ≥ {self.method} {fmt(best)}"
            for m, v in values.items()
            if m != self.method and not best > v
        ]


@dataclass(frozen=True)
class Threshold(OrderingCheck):
    """Each method's value is (expected False: is not) above a threshold."""

    study: str
    metric: str
    model: str
    expect: tuple[tuple[str, bool], ...]
    threshold: float = CHORD_AREA
    statement: str = ""

    def models(self, run: Run) -> list[str]:
        return [self.model]

    def methods(self) -> tuple[str, ...]:
        return tuple(m for m, _ in self.expect)

    def series(self, run: Run) -> dict[str, pd.Series]:
        return {m: run.values(self.model, m, self.metric) for m in self.methods()}

    def failures(self, values: dict[str, float]) -> list[str]:
        return [
            f"{m} {fmt(values[m])} {'≤' if above else '>'} {self.threshold:g}"
            for m, above in self.expect
            if (values[m] > self.threshold) != above
        ]


@dataclass(frozen=True)
class GroupOrder(OrderingCheck):
    """The mean of one group's method means above the other group's."""

    study: str
    metric: str
    model: str
    above: tuple[str, ...]
    below: tuple[str, ...]
    statement: str = ""

    def models(self, run: Run) -> list[str]:
        return [self.model]

    def methods(self) -> tuple[str, ...]:
        return (*self.above, *self.below)

    def series(self, run: Run) -> dict[str, pd.Series]:
        return {m: run.values(self.model, m, self.metric) for m in self.methods()}

    def failures(self, values: dict[str, float]) -> list[str]:
        high = sum(values[m] for m in self.above) / len(self.above)
        low = sum(values[m] for m in self.below) / len(self.below)
        if high > low:
            return []
        return [
            f"mean of {', '.join(self.above)} {fmt(high)} ≤ that of {', '.join(self.below)} "
            f"{fmt(low)}"
        ]


@dataclass(frozen=True)
class TopAboveBottom(OrderingCheck):
    """Similarity rate of the top-M examples above that of the bottom-M, every method and
    every selected fraction below 50 %."""

    study: str
    model: str
    methods_: tuple[str, ...]
    metric: str = "similarity_rate"
    statement: str = "top-M above bottom-M for every method"

    def models(self, run: Run) -> list[str]:
        return [self.model]

    def methods(self) -> tuple[str, ...]:
        return self.methods_

    def fractions(self, run: Run) -> list[str]:
        rows = run.single(self.model, self.methods_[0], self.metric)
        labels = [c[len("detail_top_") :] for c in rows if c.startswith("detail_top_")]
        labels = [label for label in labels if label.endswith("%") and float(label[:-1]) < 50]
        if not labels:
            raise Missing(f"{self.metric} on {self.model} records no top/bottom rates below 50 %")
        return sorted(labels, key=lambda label: float(label[:-1]))

    def series(self, run: Run) -> dict[str, pd.Series]:
        out = {}
        for fraction in self.fractions(run):
            for method in self.methods_:
                for side in ("top", "bottom"):
                    out[f"{method} {side} {fraction}"] = run.values(
                        self.model, method, self.metric, f"detail_{side}_{fraction}"
                    )
        return out

    def failures(self, values: dict[str, float]) -> list[str]:
        wrong = []
        for name, top in values.items():
            if " top " in name:
                bottom_name = name.replace(" top ", " bottom ")
                bottom = values[bottom_name]
                if not top > bottom:
                    wrong.append(f"{name} {fmt(top)} ≤ bottom {fmt(bottom)}")
        return wrong

    def describe(self, series: dict[str, pd.Series]) -> str:
        first = next(iter(series)).split(" ")[-1]  # the smallest fraction
        fractions = sorted({name.split(" ")[-1] for name in series}, key=lambda f: float(f[:-1]))
        parts = [
            f"{m} {mean_std(series[f'{m} top {first}'])} vs "
            f"{mean_std(series[f'{m} bottom {first}'])}"
            for m in self.methods_
        ]
        return (
            f"top vs bottom {first}: "
            + ", ".join(parts)
            + (f" (checked at M = {', '.join(fractions)})")
        )


@dataclass(frozen=True)
class PeakNear(Check):
    """The highest mean top-M similarity rate (over methods and fractions) near a value
    read off a figure."""

    study: str
    model: str
    methods_: tuple[str, ...]
    target: float
    metric: str = "similarity_rate"
    numeric: bool = True

    def models(self, run: Run) -> list[str]:
        return [self.model]

    def methods(self) -> tuple[str, ...]:
        return self.methods_

    def evaluate(self, run: Run) -> Finding:
        best = (-math.inf, "", "")
        for method in self.methods_:
            rows = run.single(self.model, method, self.metric)
            for column in (c for c in rows if c.startswith("detail_top_") and c.endswith("%")):
                mean = rows.groupby("seed")[column].mean().mean()
                if mean > best[0]:
                    best = (mean, method, column[len("detail_top_") :])
        if best[1] == "":
            raise Missing(f"{self.metric} on {self.model} records no top-M rates")
        gap = abs(best[0] - self.target)
        holds = gap <= FIGURE_SLACK
        return Finding(
            f"peak {fmt(best[0])} ({best[1]}, top {best[2]}; {len(run.seeds)} seed(s))",
            holds,
            f"|Δ| = {gap:.2g} {'≤' if holds else '>'} {FIGURE_SLACK:g}",
        )


@dataclass(frozen=True)
class AllOf(Check):
    """Several checks of one model that must all hold."""

    study: str
    checks: tuple[Check, ...]
    statement: str = ""

    def models(self, run: Run) -> list[str]:
        return list(dict.fromkeys(m for check in self.checks for m in check.models(run)))

    def methods(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for check in self.checks for m in check.methods()))

    def evaluate(self, run: Run) -> Finding:
        findings = [check.evaluate(run) for check in self.checks]
        failed = [f.why for f in findings if not f.holds]
        return Finding(
            " / ".join(f.ours for f in findings),
            not failed,
            "; ".join(failed) if failed else self.statement,
        )


@dataclass(frozen=True)
class Claim:
    """One published claim or number: where it is printed, what it says, how it is tested."""

    source: str
    text: str
    check: Check
    protocol: Protocol
